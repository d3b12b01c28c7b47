"""The study report's compression breakdown: what stops each pattern short of the ideal."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from studies.report import breakdown_table, render_report


def compression_frame() -> pd.DataFrame:
    rows = []
    cases = (("nm:1:4", "systolic", 400), ("unstructured", "pe-array", 700),
             ("unstructured", "flexible", 200))  # fmt: skip
    for pattern, datapath, linear in cases:
        for ratio, scale in ((2.0, 2), (20.0, 1)):
            attention, vector, stalls = 100, 300, 50
            cycles = linear * scale + attention + vector + stalls
            rows.append({
                "pattern": pattern, "hardware.datapath": datapath, "pattern_family": pattern,
                "zero_handling": "skipping", "compression_ratio": ratio, "cycles": cycles,
                "linear_compute_cycles": linear * scale, "attention_compute_cycles": attention,
                "vector_compute_cycles": vector, "stall_cycles": stalls,
                "speedup": 5000 / cycles, "sequences_per_s": 1e6 / cycles,
                "baseline_sequences_per_s": 200.0, "energy_ratio": 0.5,
            })  # fmt: skip
    return pd.DataFrame(rows)


def test_breakdown_takes_each_pattern_and_datapath_at_its_highest_compression() -> None:
    frame = compression_frame()
    frame["label_group"] = frame["pattern"] + " on " + frame["hardware.datapath"]
    table = breakdown_table(frame)
    assert list(table["pattern"]) == [
        "unstructured on flexible", "nm:1:4 on systolic", "unstructured on pe-array",
    ]  # fmt: skip  (fastest first)
    assert (table["compression_ratio"] == 20.0).all()
    shares = table[["linear_share", "attention_share", "vector_share", "stall_share"]]
    assert (shares.sum(axis=1).round(12) == 1.0).all()
    flexible = table.iloc[0]
    assert flexible["vector_share"] == 300 / 650 and flexible["linear_share"] == 200 / 650


def test_compression_report_has_the_breakdown_section(tmp_path: Path) -> None:
    frame = compression_frame()
    frame["hardware.name"] = "chip"
    frame["grid.datapath"] = frame["hardware.datapath"].where(
        frame["hardware.datapath"] != "systolic"
    )
    # the same PE array again with a wider broadcast: a machine of its own
    wide = frame[frame["hardware.datapath"] == "pe-array"].assign(
        **{"grid.fifo_array.broadcast_width": 16, "linear_compute_cycles": 100}
    )
    frame = pd.concat([frame, wide], ignore_index=True)
    text = render_report(frame, {"kind": "compression", "study": "c"}, [],
                         tmp_path / "report.md")  # fmt: skip
    section = text.split("## Where the cycles go at the highest compression")[1]
    assert "| chip datapath=flexible | unstructured | 20.0 |" in section
    assert "| chip | nm:1:4 | 20.0 |" in section  # no grid value given: the spec's name alone
    assert "| chip datapath=pe-array | unstructured | 20.0 |" in section
    assert "| chip datapath=pe-array broadcast_width=16 | unstructured | 20.0 |" in section
    assert "46.2 %" in section  # the flexible run's vector share, 300 / 650


def test_the_run_section_gives_only_the_times_the_run_recorded(tmp_path: Path) -> None:
    """A sweep records simulation time, an accuracy study training time: each report gives
    what its run recorded (an accuracy report said "simulation time ... 0.0 s")."""
    frame = compression_frame()
    info = {"kind": "compression", "study": "c", "wall_s": 12.0}
    sweep = render_report(frame, {**info, "timing": {"simulation_s": 3.25}}, [],
                          tmp_path / "a.md")  # fmt: skip
    trained = render_report(frame, {**info, "timing": {"train_s": 3901.6, "seconds": 3902.9}},
                            [], tmp_path / "b.md")  # fmt: skip
    assert "- wall time of the run: 12.0 s; simulation time summed over points: 3.2 s" in sweep
    assert "training time" not in sweep
    assert "- wall time of the run: 12.0 s; training time summed over cells: 3901.6 s" in trained
    assert "simulation time" not in trained
