"""``cosim variation``: a quantized artifact's dev metric per sigma, its CSV and plot, and
one clear error for every bad option."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from studies.cli import app
from studies.variation_cmd import MAX_SIGMAS, parse_sigmas
from tests.tiny_bert import needs_glue


@pytest.fixture(scope="module")
def quantized_artifact(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("variation") / "q"
    result = CliRunner().invoke(
        app,
        [
            "prune", "--model", str(tiny_dir), "--task", "MRPC", "--pattern", "crossbar:16x16",
            "--sparsity", "0.5", "--method", "admm", "--weight-bits", "4", "--cell-bits", "2",
            "--max-train-examples", "32", "--max-eval-examples", "16", "--max-seq-len", "16",
            "--epochs", "1", "--batch-size", "16", "--lr", "1e-3", "--no-progress",
            "--out", str(out),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


@needs_glue
def test_variation_writes_mean_and_se_per_sigma_and_a_plot(
    quantized_artifact: Path, tmp_path: Path
) -> None:
    csv_path, plot = tmp_path / "sigma.csv", tmp_path / "sigma.png"
    result = CliRunner().invoke(
        app,
        [
            "variation", str(quantized_artifact), "--sigmas", "0,0.5", "--seeds", "2",
            "--max-eval-examples", "16", "--csv", str(csv_path), "--plot", str(plot),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    table = pd.read_csv(csv_path)
    assert sorted(set(table["sigma"])) == [0.0, 0.5]
    exact = table[table["sigma"] == 0]
    # sigma 0 is the artifact itself: evaluated once, no spread
    assert (exact["seeds"] == 1).all() and (exact["se"] == 0).all()
    assert (table[table["sigma"] == 0.5]["seeds"] == 2).all()
    assert table["mean"].between(0, 1).all()  # MRPC: accuracy and F1
    assert plot.stat().st_size > 1000 and plot.read_bytes()[:4] == b"\x89PNG"


@needs_glue
def test_variation_refuses_an_unquantized_artifact(tiny_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "plain"
    pruned = CliRunner().invoke(
        app,
        [
            "prune", "--model", str(tiny_dir), "--task", "MRPC", "--pattern", "unstructured",
            "--sparsity", "0.5", "--max-eval-examples", "8", "--max-seq-len", "16",
            "--no-progress", "--out", str(out),
        ],
    )  # fmt: skip
    assert pruned.exit_code == 0, pruned.output
    result = CliRunner().invoke(app, ["variation", str(out), "--sigmas", "0.1"])
    assert result.exit_code == 2
    assert "no quantized model" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sigmas", "0,abc"], "--sigmas: 'abc' is not a number"),
        (["--sigmas", "-0.1"], "expected a finite number >= 0"),
        (["--sigmas", "nan"], "expected a finite number >= 0"),
        (["--sigmas", ","], "expected comma-separated numbers"),
        (["--seeds", "0"], "--seeds 0: expected an integer from 1 to"),
        (["--stuck-on", "1.5"], "stuck_on must be a fraction in [0, 1]"),
        (["--max-eval-examples", "0"], "--max-eval-examples 0"),
        (["--plot", "curve.pdf"], "expected a file name ending in .png or .svg"),
        (["--csv", "x.png", "--plot", "x.png"], "both name x.png"),
    ],
)
def test_bad_options_give_one_clear_line(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["variation", str(tmp_path), *args])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


def test_missing_artifact_is_one_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["variation", str(tmp_path / "absent")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert str(tmp_path / "absent") in " ".join(result.output.split())


def test_sigma_list_is_bounded() -> None:
    with pytest.raises(ValueError, match=f"at most {MAX_SIGMAS}"):
        parse_sigmas(",".join(["0.1"] * (MAX_SIGMAS + 1)))
    assert parse_sigmas(" 0, 0.02 ,0.1") == [0.0, 0.02, 0.1]
