"""Calibration of wanda / sparsegpt from a user's text file (``--calibration-text``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pruning.calibration_text import (
    MAX_CALIBRATION_TEXT_BYTES,
    CalibrationTextError,
    read_calibration_text,
)
from pruning.glue import get_task
from pruning.job import PruneJobError, prune_job
from studies.cli import app
from tests.tiny_bert import needs_glue

runner = CliRunner()


def write(tmp_path: Path, text: str | bytes, name: str = "calib.txt") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_single_texts_and_pairs_are_read_blank_lines_skipped(tmp_path: Path) -> None:
    single = read_calibration_text(write(tmp_path, "a fine film\n\n  \nterrible acting\n"))
    assert single.text_a == ["a fine film", "terrible acting"] and single.text_b is None
    pairs = read_calibration_text(write(tmp_path, "a cat\ta dog\nit rains\tit pours\n", "p"))
    assert pairs.text_a == ["a cat", "it rains"] and pairs.text_b == ["a dog", "it pours"]
    record = pairs.record()
    assert record["examples_in_file"] == 2 and record["form"].startswith("pairs")
    assert len(record["sha256"]) == 64
    split = pairs.as_split(get_task("STS-B"))
    assert split.labels == [0.0, 0.0] and split.text_b == ["a dog", "it pours"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "has no examples"),
        ("\n \n", "has no examples"),
        ("a\tb\tc\n", "line 1 has 2 tabs"),
        ("one\ntwo\tthree\n", "line 2 has 2 text(s) where line 1 has 1"),
        ("one\t \n", "line 1 has an empty text"),
        (b"caf\xe9\n", "not UTF-8"),
        ("a\x00b\n", "NUL bytes"),
    ],
)
def test_bad_files_give_one_line_naming_the_file(tmp_path: Path, text, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(CalibrationTextError) as error:
        read_calibration_text(path)
    assert message in str(error.value) and str(path) in str(error.value)
    assert "\n" not in str(error.value)


def test_missing_oversized_and_single_texts_for_a_bi_encoder(tmp_path: Path) -> None:
    with pytest.raises(CalibrationTextError, match="cannot be read"):
        read_calibration_text(tmp_path / "absent.txt")
    with pytest.raises(CalibrationTextError, match="not a regular file"):
        read_calibration_text(tmp_path)
    big = write(tmp_path, "x" * (MAX_CALIBRATION_TEXT_BYTES + 1), "big")
    with pytest.raises(CalibrationTextError, match="larger than"):
        read_calibration_text(big)
    with pytest.raises(CalibrationTextError, match="head bi-encoder encodes sentence pairs"):
        read_calibration_text(write(tmp_path, "one sentence\n"), pairs_required=True)


def test_only_calibrated_methods_take_a_text_and_records_stay_unchanged(tmp_path: Path) -> None:
    base = {"pattern": "unstructured", "sparsity": 0.5, "task": "SST-2"}
    with pytest.raises(PruneJobError, match="calibration_text applies only to methods wanda"):
        prune_job(**base, calibration_text=tmp_path / "c.txt")
    job = prune_job(**base, method="wanda", calibration_text=tmp_path / "c.txt")
    assert job.record()["calibration_text"] == str(tmp_path / "c.txt")
    assert "calibration_text" not in prune_job(**base, method="wanda").record()
    # fisher-mask's Fisher information comes from the task loss: unlabelled text cannot feed it
    with pytest.raises(PruneJobError, match="calibrates on labelled train examples"):
        prune_job(task="SST-2", method="fisher-mask", flops_fraction=0.5,
                  calibration_text=tmp_path / "c.txt")  # fmt: skip


def tiny_args(tiny_dir: Path, out: Path) -> list[str]:
    args = ["prune", "--model", str(tiny_dir), "--pattern", "unstructured", "--sparsity", "0.5"]
    args += ["--task", "MRPC", "--max-train-examples", "16", "--max-eval-examples", "8"]
    return [*args, "--max-seq-len", "24", "--no-progress", "--out", str(out)]


@needs_glue
def test_cli_wanda_calibrates_on_the_text_and_records_it(tiny_dir: Path, tmp_path: Path) -> None:
    lines = [f"sentence number {i} about a film\tanother sentence {i}" for i in range(7)]
    text = write(tmp_path, "\n".join(lines) + "\n")
    out = tmp_path / "art"
    args = [*tiny_args(tiny_dir, out), "--method", "wanda", "--calibration-text", str(text)]
    result = runner.invoke(app, [*args, "--calibration-examples", "5"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    calibration = manifest["schedule"]["calibration"]
    assert calibration["split"] == "calibration text" and calibration["path"] == str(text)
    assert calibration["examples_in_file"] == 7 and calibration["examples"] == 5
    assert calibration["form"].startswith("pairs") and calibration["truncated"] == 0
    assert manifest["schedule"]["job"]["calibration_text"] == str(text)
    assert manifest["density"] == 0.5


@needs_glue
def test_cli_bad_calibration_text_is_one_line(tiny_dir: Path, tmp_path: Path) -> None:
    text = write(tmp_path, "one\ttwo\tthree\n")
    out = tmp_path / "art"
    args = [*tiny_args(tiny_dir, out), "--method", "sparsegpt", "--calibration-text", str(text)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "line 1 has 2 tabs" in result.output and "Traceback" not in result.output
    assert not out.exists()
    magnitude = [*tiny_args(tiny_dir, out), "--calibration-text", str(text)]
    result = runner.invoke(app, magnitude)
    assert result.exit_code == 2 and "applies only to methods wanda" in result.output
