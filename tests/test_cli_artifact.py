"""``cosim simulate --artifact``: a pruned artifact's masks on the simulated model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from pruning.artifact import MANIFEST_FILE, MASKS_FILE
from studies.cli import app

HW = "systolic-32x32-ws"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def simulate_args(artifact: Path, *extra: str) -> list[str]:
    return ["simulate", "--artifact", str(artifact), "--hw", HW, "--seq-len", "8", *extra]


def assert_one_error_line(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_artifact_alone_is_the_model(runner: CliRunner, pruned, tmp_path: Path) -> None:
    json_path, csv_path = tmp_path / "out.json", tmp_path / "out.csv"
    args = simulate_args(pruned[2], "--json", str(json_path), "--csv", str(csv_path))
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    flat = " ".join(result.stdout.split())
    assert "pattern block:4x4, method magnitude, head cls, encoder weight density 25.0 %" in flat
    assert "has no sparse support" in result.stdout  # the default preset multiplies zeros
    assert "speedup vs dense" in result.stdout

    document = json.loads(json_path.read_text())
    assert document["artifact"] == {
        "path": str(pruned[2]),
        "pattern": "block:4x4",
        "method": "magnitude",
        "head": "cls",
        "density": pytest.approx(0.25),
        "encoder_weight_density": pytest.approx(0.25),
    }
    densities = {op["name"]: op["weight_density"] for op in document["ops"]}
    encoder = [op for op in document["ops"] if op["role"] in ("query", "ffn_in", "ffn_out")]
    assert encoder and all(op["weight_density"] == pytest.approx(0.25) for op in encoder)
    scores = [op for op in document["ops"] if op["role"] == "attention_scores"]
    assert scores and all(op["weight_density"] == 1.0 for op in scores)
    assert densities["classifier"] == 1.0  # not pruned: dense
    frame = pd.read_csv(csv_path)
    assert dict(zip(frame["op"], frame["weight_density"], strict=True)) == pytest.approx(densities)


def test_without_artifact_no_artifact_block(runner: CliRunner, tmp_path: Path) -> None:
    json_path = tmp_path / "out.json"
    args = ["simulate", "--model", "bert-tiny", "--seq-len", "8", "--json", str(json_path)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "no sparse support" not in result.stdout and "speedup" not in result.stdout
    document = json.loads(json_path.read_text())
    assert "artifact" not in document
    assert {op["weight_density"] for op in document["ops"]} == {1.0}


def test_explicit_matching_model(runner: CliRunner, pruned) -> None:
    result = runner.invoke(app, simulate_args(pruned[2], "--model", str(pruned[2])))
    assert result.exit_code == 0, result.output
    assert "encoder weight density 25.0 %" in result.stdout


def test_mismatched_model_is_one_error(runner: CliRunner, pruned) -> None:
    result = runner.invoke(app, simulate_args(pruned[2], "--model", "bert-tiny"))
    expected = "has shape [64, 64] but the model's weight is [128, 128] ([out, in])"
    assert_one_error_line(result, str(pruned[2]), expected)


def test_missing_masks_file(runner: CliRunner, pruned, tmp_path: Path) -> None:
    bad = Path(shutil.copytree(pruned[2], tmp_path / "art"))
    (bad / MASKS_FILE).unlink()
    result = runner.invoke(app, simulate_args(bad))
    assert_one_error_line(result, str(bad / MASKS_FILE), "not found")


def test_broken_manifest(runner: CliRunner, pruned, tmp_path: Path) -> None:
    bad = Path(shutil.copytree(pruned[2], tmp_path / "art"))
    (bad / MANIFEST_FILE).write_text("{not json")
    result = runner.invoke(app, simulate_args(bad))
    assert_one_error_line(result, str(bad / MANIFEST_FILE), "not valid JSON")


def test_artifact_directory_missing(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, simulate_args(tmp_path / "nowhere"))
    assert_one_error_line(result, str(tmp_path / "nowhere"), "is not a directory")
