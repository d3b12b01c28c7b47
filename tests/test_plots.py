"""Plots return labelled Axes and save PNG + SVG; plots that do not apply are left out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes

from accel_sim.datapaths.crossbar import CROSSBAR_ENERGY_COMPONENTS
from accel_sim.energy import ENERGY_COMPONENTS
from studies import plots


def table() -> pd.DataFrame:
    rows = []
    for i, (pattern, mode, ratio) in enumerate(
        [("unstructured", "unstructured-pe", r) for r in (2, 4, 8)]
        + [("block:4x4", "skipping", r) for r in (2, 4, 8)]
        + [("nm:2:4", "nm", 2.0)]
    ):
        latency = 0.01 / (1 + 0.3 * ratio) * (1 + 0.1 * i)
        rows.append(
            {"model": "bert-tiny", "seq_len": 8, "pattern": pattern,
             "pattern_family": "N:M" if pattern.startswith("nm") else pattern,
             "zero_handling": mode, "label": f"{pattern} 8x8 {mode}",
             "compression_ratio": float(ratio), "latency_s": latency,
             "sequences_per_s": 1 / latency, "baseline_sequences_per_s": 100.0,
             "speedup": 0.01 / latency, "energy_ratio": 1 / (1 + 0.1 * ratio),
             "effective_utilisation": 0.1 * ratio / 8, "energy_j": 1e-3 * (1 + (i % 3)),
             "area_mm2": 1.0 + i, "synthetic_weights": True,
             **{f"energy_{c}_j": 1e-4 * (k + 1) for k, c in enumerate(ENERGY_COMPONENTS)}}
        )  # fmt: skip
    return pd.DataFrame(rows)


def ops() -> pd.DataFrame:
    return pd.DataFrame(
        {"run": ["sparse", "dense baseline"] * 2, "kind": ["gemm"] * 4,
         "role": ["query", "query", "ffn_in", "ffn_in"], "model": "bert-tiny", "seq_len": 8,
         "macs": [100, 200, 400, 800], "effective_macs": [100, 200, 400, 800],
         "dram_read_bytes": [10.0, 20, 5, 5], "dram_write_bytes": [1.0, 1, 1, 1],
         "latency_s": [1e-6, 2e-6, 1e-6, 3e-6], "peak_ops_per_s": 2e9,
         "dram_bandwidth_bytes_per_s": 16e9}
    )  # fmt: skip


def labelled(ax: Axes) -> None:
    assert isinstance(ax, Axes)
    assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()
    assert "[" in ax.get_ylabel()  # units
    assert ax.get_legend() is not None


@pytest.mark.parametrize(
    "draw",
    [
        plots.plot_throughput_vs_compression,
        lambda f: plots.plot_block_size(plots._prepared(f), "speedup"),
        lambda f: plots.plot_block_size(plots._prepared(f), "energy_ratio"),
        plots.plot_energy_breakdown,
        plots.plot_pareto,
    ],
)
def test_plots_return_labelled_axes(draw):
    ax = draw(table())
    labelled(ax)
    plots.plt.close(ax.figure)


def test_roofline_places_each_gemm():
    ax = plots.plot_roofline(ops())
    labelled(ax)
    assert sum(len(c.get_offsets()) for c in ax.collections) == 4
    plots.plt.close(ax.figure)


def test_pareto_mask():
    frame = pd.DataFrame({"a": [1, 2, 3, 1], "b": [3, 2, 1, 4]})
    assert plots.pareto_mask(frame, ["a", "b"]).tolist() == [True, True, True, False]


def test_ideal_line_is_baseline_times_ratio():
    ax = plots.plot_throughput_vs_compression(table())
    ideal = next(line for line in ax.get_lines() if "ideal" in line.get_label())
    x, y = ideal.get_data()
    assert np.allclose(y, 100.0 * x)
    plots.plt.close(ax.figure)


def test_save_all_writes_png_and_svg(tmp_path):
    written = plots.save_all(table(), tmp_path, "block-size", ops())
    assert {"throughput_vs_compression", "speedup_vs_block_size", "energy_breakdown",
            "latency_energy_pareto", "roofline"} <= set(written)  # fmt: skip
    for paths in written.values():
        assert [p.suffix for p in paths] == [".png", ".svg"]
        assert all(p.stat().st_size > 1000 for p in paths)
    custom = plots.save_all(table().head(2), tmp_path / "custom", "custom")
    assert "latency_energy_pareto" not in custom and "speedup_vs_block_size" not in custom


def test_short_labels_drop_shared_words():
    labels = pd.Series(["block:4x4 64GB/s skipping", "nm:2:4 64GB/s nm"])
    assert plots.short_labels(labels).tolist() == ["block:4x4 skipping", "nm:2:4 nm"]


def test_energy_breakdown_of_mixed_chips_stacks_every_row_to_its_total() -> None:
    """Systolic rows lack the crossbar components and vice versa (NaN in the frame): every
    bar still stacks to that row's total energy."""
    systolic = table().head(3)
    crossbar = pd.DataFrame(
        [{"label": f"crossbar {i}", "model": "bert-tiny", "seq_len": 8, "energy_j": 0.0,
          **{f"energy_{c}_j": 1e-4 * (k + 1) * (i + 1)
             for k, c in enumerate(CROSSBAR_ENERGY_COMPONENTS)}} for i in range(2)]
    )  # fmt: skip
    frame = pd.concat([systolic, crossbar], ignore_index=True)
    parts = [c for c in frame if c.startswith("energy_") and c.endswith("_j") and c != "energy_j"]
    frame["energy_j"] = frame[parts].sum(axis=1)  # NaN skipped: each row's own components
    assert frame[parts].isna().any(axis=None)
    ax = plots.plot_energy_breakdown(frame)
    heights = np.zeros(len(frame))
    for container in ax.containers:
        tops = [bar.get_y() + bar.get_height() for bar in container]
        assert np.isfinite(tops).all()
        heights = np.maximum(heights, tops)
    assert heights == pytest.approx(frame["energy_j"].to_numpy() * 1e3)


def test_the_front_and_the_report_agree_on_which_columns_hold_numbers():
    """One rule: an object column of real numbers (a hand-edited table, a concatenation) is a
    number column for the Pareto check and the report alike; one string in it makes it text
    for both."""
    from studies.pareto import ParetoColumnError, ParetoSettings, check_numeric_columns
    from studies.study_cmd import _text_in_numeric_columns

    settings = ParetoSettings.from_mapping({"objectives": ["latency_s", "energy_j"]})
    numbers = pd.DataFrame({"latency_s": pd.Series([1.0, 2, None], dtype=object),
                            "energy_j": [3.0, 1.0, 2.0]})  # fmt: skip
    check_numeric_columns(numbers, settings)
    assert _text_in_numeric_columns(numbers) == []
    text = numbers.assign(latency_s=pd.Series([1.0, "fast", None], dtype=object))
    with pytest.raises(ParetoColumnError, match="latency_s is a text column"):
        check_numeric_columns(text, settings)
    assert _text_in_numeric_columns(text) == ["latency_s"]
