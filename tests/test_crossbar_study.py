"""``cosim study run`` on a crossbar preset: a tiny sweep of patterns and execution modes."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pandas as pd
from typer.testing import CliRunner

from accel_sim.crossbar import CROSSBAR_ENERGY_COMPONENTS
from studies.cli import app

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
