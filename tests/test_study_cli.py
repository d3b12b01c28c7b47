"""``cosim study list | run | plot`` end to end on a tiny custom spec."""

from __future__ import annotations

import json

import pandas as pd
from typer.testing import CliRunner

from studies.cli import app

runner = CliRunner()

SPEC = """
name: tiny
kind: custom
models: [bert-tiny]
seq_lens: [8]
hardware: [systolic-32x32-ws]
grid:
  pe_array: [{rows: 8, cols: 8}]
  sparse.zero_handling: [gating, none]
sparsities: [0.5, 0.75]
patterns: [block:4x4, dense]
outputs: {plots_dir: figures, report: summary.md}
"""


def test_study_list():
    result = runner.invoke(app, ["study", "list"])
    assert result.exit_code == 0, result.output
    for name in ("block-size", "compression", "dse"):
        assert name in result.output


def test_study_run_resume_and_plot(tmp_path):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(SPEC)
    out = tmp_path / "out"
    args = ["study", "run", str(spec), "--out", str(out), "--no-progress"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "6 evaluated, 0 reused, 0 failed" in " ".join(first.output.split())
    table = pd.read_parquet(out / "results.parquet")
    assert len(table) == 6 and table["key"].is_unique  # 2 modes x (2 sparsities + dense)
    assert (out / "results.csv").is_file() and (out / "spec.yaml").is_file()
    run = json.loads((out / "run.json").read_text())
    assert run["study"] == "tiny" and run["seed"] == 0 and len(run["config_hashes"]) == 6
    assert run["synthetic_weights"] is True
    report = (out / "summary.md").read_text()
    assert "synthetic (random-init) weights" in report and "figures/energy_breakdown.png" in report
    assert (out / "figures" / "energy_breakdown.svg").is_file()
    assert (out / "figures" / "roofline.png").is_file()

    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert "0 evaluated, 6 reused" in " ".join(again.output.split())
    assert pd.read_parquet(out / "results.parquet").equals(table)

    (out / "figures" / "roofline.png").unlink()
    plotted = runner.invoke(app, ["study", "plot", str(out)])
    assert plotted.exit_code == 0, plotted.output
    assert (out / "figures" / "roofline.png").is_file()


def test_bad_input_is_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\npatterns: [block:4x4]\ngrid: {pe_array.rows: [0]}\n")
    for args in (
        ["study", "run", "no-such-study"],
        ["study", "run", str(bad), "--out", str(tmp_path / "o")],
        ["study", "run", "block-size", "--jobs", "2", "--dask-workers", "2"],
        ["study", "plot", str(tmp_path)],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert result.output.count("error:") == 1
