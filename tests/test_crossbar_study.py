"""``cosim study run`` on a crossbar preset: a tiny sweep of patterns and execution modes, and
the built-in ``crossbar`` study (studies/builtin/crossbar.yaml)."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pandas as pd
from typer.testing import CliRunner

from accel_sim.datapaths.crossbar import CROSSBAR_ENERGY_COMPONENTS
from studies.cli import app
from studies.spec import builtin_names, expand, load_spec

SPEC = """
name: tiny-xbar
kind: custom
models: [bert-tiny]
seq_lens: [8]
hardware: [isaac-crossbar]
grid:
  crossbar: [{rows: 64, cols: 64}]
  mapping.execution: [layer, pipelined]
sparsities: [0.5]
patterns: [crossbar:64x64, dense]
"""


def test_study_runs_on_a_crossbar_preset(tmp_path) -> None:
    spec = tmp_path / "tiny-xbar.yaml"
    spec.write_text(SPEC)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["study", "run", str(spec), "--out", str(out), "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    assert "4 evaluated, 0 reused, 0 failed" in " ".join(result.output.split())
    table = pd.read_parquet(out / "results.parquet")
    assert len(table) == 4 and set(table["zero_handling"]) == {"crossbar"}
    assert set(table["execution"]) == {"layer", "pipelined"}
    assert set(table["label"]) == {
        f"{p} xbar 64x64 {e}" for p in ("crossbar:64x64", "dense") for e in ("layer", "pipelined")
    }
    parts = table[[f"energy_{c}_j" for c in CROSSBAR_ENERGY_COMPONENTS]].sum(axis=1)
    assert (parts - table["energy_j"]).abs().max() <= 1e-12 * table["energy_j"].max()
    sparse = table[table["pattern_family"] == "crossbar:64x64"].set_index("execution")
    dense = table[table["pattern_family"] == "dense"].set_index("execution")
    assert (sparse["crossbars_unreplicated"] < dense["crossbars_unreplicated"]).all()
    assert (sparse["energy_ratio"] < 1).all()
    assert (table["latency_s"] * table["sequences_per_s"]).round(9).eq(1).all()
    piped = table[table["execution"] == "pipelined"]
    assert (piped["cycles"] >= piped["digital_cycles"]).all()
    assert (out / "plots" / "energy_breakdown.png").is_file()
    assert not (out / "plots" / "roofline.png").exists()  # weights stay on chip: no DRAM


def test_builtin_crossbar_study_is_listed_and_runs(tmp_path) -> None:
    """``cosim study list`` shows the built-in crossbar study and ``cosim study run crossbar``
    sweeps it (42 points, ~15 s on one core): crossbar:128x128 masks free crossbars as
    sparsity grows, every sparse pattern costs no more energy than dense, and pipelined runs
    respect the digital-unit bound."""
    assert "crossbar" in builtin_names()
    spec, base = load_spec("crossbar")
    points = expand(spec, base)
    assert {p["hardware"]["name"] for p in points} == {"isaac-crossbar"}
    listed = CliRunner().invoke(app, ["study", "list"])
    assert listed.exit_code == 0, listed.output
    assert any(
        line.split()[:3] == ["crossbar", str(len(points)), "points"]
        for line in listed.output.splitlines()
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["study", "run", "crossbar", "--out", str(out), "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    assert f"{len(points)} evaluated, 0 reused, 0 failed" in " ".join(result.output.split())
    table = pd.read_parquet(out / "results.parquet")
    assert len(table) == len(points)
    assert set(table["pattern_family"]) == {
        "dense",
        "unstructured",
        "block:4x4",
        "block:16x16",
        "crossbar:128x128",
    }
    parts = table[[f"energy_{c}_j" for c in CROSSBAR_ENERGY_COMPONENTS]].sum(axis=1)
    assert (parts - table["energy_j"]).abs().max() <= 1e-12 * table["energy_j"].max()
    dense = table[table["pattern_family"] == "dense"]
    dense_crossbars = int(dense["crossbars_unreplicated"].iloc[0])
    assert (table["crossbars_unreplicated"] <= dense_crossbars).all()
    assert (table["energy_ratio"] <= 1 + 1e-12).all()
    layer = table[table["execution"] == "layer"]
    for family, rows in layer.groupby("pattern_family"):
        rows = rows.sort_values("sparsity")
        assert rows["energy_j"].is_monotonic_decreasing, family
        assert rows["crossbars_unreplicated"].is_monotonic_decreasing, family
    tiles = layer[layer["pattern_family"] == "crossbar:128x128"].sort_values("sparsity")
    assert tiles["crossbars_unreplicated"].iloc[-1] < 0.2 * dense_crossbars
    assert tiles["latency_s"].is_monotonic_decreasing
    piped = table[table["execution"] == "pipelined"]
    assert (piped["cycles"] >= piped["digital_cycles"]).all()
    assert (out / "report.md").is_file()
