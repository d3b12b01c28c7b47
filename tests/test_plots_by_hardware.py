"""Plots and reports of studies with several machines: facets or hue per machine, never one
line or baseline across machines, every energy bar, an epsilon Pareto front that the plot and
the report agree on, and a roofline that names its design."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from accel_sim.energy import ENERGY_COMPONENTS
from studies import plots
from studies.pareto import ParetoSettings, pareto_front
from studies.report import key_table, render_report

BASELINES = {"fast-chip": 44.7, "slow-chip": 1.7}


def two_machines(ratios=(2, 4, 8), patterns=("block:4x4", "unstructured")) -> pd.DataFrame:
    """A compression study on two hardware specs: same patterns, different baselines."""
    rows = []
    for name, baseline in BASELINES.items():
        for pattern in patterns:
            for ratio in ratios:
                gain = 1.1 if pattern == "unstructured" else 1.0
                throughput = baseline * (1 + 0.5 * ratio) * gain
                rows.append({
                    "model": "bert-tiny", "seq_len": 8, "batch": 1, "pattern": pattern,
                    "pattern_family": pattern, "zero_handling": "skipping",
                    "label": f"{pattern} skipping", "compression_ratio": float(ratio),
                    "sparsity": 1 - 1 / ratio,
                    "sequences_per_s": throughput, "baseline_sequences_per_s": baseline,
                    "latency_s": 1 / throughput, "energy_j": 1e-3 / ratio,
                    "area_mm2": 2.0 if name == "fast-chip" else 1.0,
                    "speedup": throughput / baseline, "energy_ratio": 1 / ratio,
                    "hardware.name": name, "hardware.pe_array.rows": 32,
                    "hardware.sparse.zero_handling": "skipping",
                    **{f"energy_{c}_j": 1e-4 * (k + 1) / ratio
                       for k, c in enumerate(ENERGY_COMPONENTS)},
                    "key": f"{name}-{pattern}-{ratio}",
                })  # fmt: skip
    return pd.DataFrame(rows)


def close(ax) -> None:
    plots.plt.close(ax.figure)


def test_throughput_plot_has_a_panel_per_machine_with_its_own_baseline() -> None:
    frame = two_machines()
    ax = plots.plot_throughput_vs_compression(frame)
    panels = [a for a in ax.figure.axes if a.get_visible() and a.get_title()]
    assert len(panels) == 2
    for panel, (name, baseline) in zip(panels, BASELINES.items(), strict=True):
        assert name in panel.get_title()
        lines = {line.get_label(): line for line in panel.get_lines()}
        (dense,) = [line for label, line in lines.items() if label.startswith("dense baseline")]
        assert np.allclose(dense.get_ydata(), baseline)  # not the median of both machines
        (ideal,) = [line for label, line in lines.items() if label.startswith("ideal")]
        x, y = ideal.get_data()
        assert np.allclose(y, baseline * x)
        own = frame[frame["hardware.name"] == name]
        for line in panel.get_lines():
            if line.get_label().startswith(("block", "unstructured")):
                xs, ys = line.get_data()
                assert list(xs) == sorted(xs)  # no zig-zag
                assert set(np.round(ys, 9)) <= set(np.round(own["sequences_per_s"], 9))
    close(ax)


def test_throughput_plot_on_one_ax_uses_hue_per_machine() -> None:
    figure, ax = plots.plt.subplots()
    plots.plot_throughput_vs_compression(two_machines(), ax=ax)
    baselines = [line for line in ax.get_lines() if line.get_label().startswith("dense baseline")]
    assert len(baselines) == 2
    assert {"fast-chip", "slow-chip"} <= {
        name for line in baselines for name in BASELINES if name in line.get_label()
    }
    series = [line.get_label() for line in ax.get_lines() if line.get_label().startswith("block")]
    assert len(series) == 2 and len(set(series)) == 2
    plots.plt.close(figure)


def test_machines_ignore_the_sparse_section_but_split_on_everything_else() -> None:
    frame = two_machines()
    frame.loc[frame.index[:3], "hardware.sparse.zero_handling"] = "gating"
    names = plots.machine_names(frame)
    assert set(names) == {"fast-chip", "slow-chip"}
    frame["hardware.name"] = "same-name"
    frame["grid.pe_array.rows"] = np.where(frame.index < 6, 16, 32)
    frame["hardware.pe_array.rows"] = frame["grid.pe_array.rows"]
    assert set(plots.machine_names(frame)) == {"same-name rows=16", "same-name rows=32"}
    frame = frame.drop(columns=["grid.pe_array.rows"])
    assert set(plots.machine_names(frame)) == {"same-name #1", "same-name #2"}


def test_machine_names_keep_fields_apart_and_leave_out_what_a_row_does_not_set() -> None:
    frame = two_machines()
    frame["hardware.name"] = "chip"
    small = frame.index < 6
    # two buffers vary under the same leaf name: each is named by its own path
    frame["grid.sram.ifmap.size_bytes"] = np.where(small, "64 KiB", "1 MiB")
    frame["grid.sram.filter.size_bytes"] = np.where(small, "64 KiB", "2 MiB")
    # a field only some rows' grids set (a per-pattern grid): absent, not "nan", elsewhere
    frame["grid.fifo_array.broadcast_width"] = pd.Series(16, index=frame.index, dtype="Int64")
    frame.loc[~small, "grid.fifo_array.broadcast_width"] = pd.NA
    assert set(plots.machine_names(frame)) == {
        "chip ifmap.size_bytes=64 KiB filter.size_bytes=64 KiB broadcast_width=16",
        "chip ifmap.size_bytes=1 MiB filter.size_bytes=2 MiB",
    }


def test_report_tables_have_a_hardware_column_and_unique_row_labels() -> None:
    frame = two_machines()
    for kind in ("compression", "custom", "block-size"):
        table = key_table(frame, kind)
        assert table.columns[0] == "machine"
        names = ["machine", "label", "pattern", "zero_handling", "compression_ratio", "sparsity"]
        assert not table.duplicated([c for c in names if c in table]).any(), kind
        assert table.duplicated([c for c in names[1:] if c in table]).any(), kind
    report = render_report(frame, {"kind": "compression"}, [], plots.Path("r.md"))
    assert "| hardware |" in report
    assert "fast-chip" in report and "slow-chip" in report


def test_energy_breakdown_draws_every_bar_with_machine_and_ratio() -> None:
    frame = pd.concat([two_machines(ratios=range(2, 17))], ignore_index=True)
    assert len(frame) == 60
    ax = plots.plot_energy_breakdown(frame)
    panels = [a for a in ax.figure.axes if a.get_visible()]
    bars = sum(len(panel.get_xticks()) for panel in panels)
    assert bars == 60
    labels = [t.get_text() for panel in panels for t in panel.get_xticklabels()]
    assert len(set(labels)) == 60
    assert all(("fast-chip" in t or "slow-chip" in t) and "x)" in t for t in labels)
    legend = ax.get_legend()
    anchor = legend.get_bbox_to_anchor().transformed(ax.transAxes.inverted())
    assert anchor.x0 >= 1.0  # beside the bars, not over them
    close(ax)


def issue_example() -> pd.DataFrame:
    """A design 3.2x slower with 3x the energy for 0.05 % less area, and two others."""
    return pd.DataFrame({
        "label": ["good", "slow-and-tiny", "frugal", "big-and-fast"],
        "latency_s": [1.0, 3.2, 2.0, 0.5],
        "energy_j": [1.0, 3.0, 0.8, 2.0],
        "area_mm2": [10.0, 9.995, 15.0, 20.0],
    })  # fmt: skip


def test_epsilon_drops_a_design_that_buys_tiny_area_with_big_losses() -> None:
    frame = issue_example()
    exact = pareto_front(frame, ParetoSettings(epsilon=0.0))
    assert exact.tolist() == [True, True, True, True]
    front = pareto_front(frame, ParetoSettings(epsilon=0.01))
    assert front.tolist() == [True, False, True, True]


def test_objectives_and_constraints_are_the_users() -> None:
    frame = issue_example()
    two = ParetoSettings(objectives=("latency_s", "energy_j"), epsilon=0.0)
    assert pareto_front(frame, two).tolist() == [True, False, True, True]
    budget = ParetoSettings(epsilon=0.0, constraints={"area_mm2": ("<=", 12.0)})
    assert pareto_front(frame, budget).tolist() == [True, True, False, False]
    fast = ParetoSettings(objectives=("max:speed", "area_mm2"), epsilon=0.0)
    assert pareto_front(frame.assign(speed=1 / frame["latency_s"]), fast).tolist() == [
        True, True, False, True]  # fmt: skip


@pytest.mark.parametrize(
    "settings",
    [ParetoSettings(), ParetoSettings(objectives=("latency_s", "energy_j"), epsilon=0.0),
     ParetoSettings(constraints={"area_mm2": ("<=", 12.0)})],
)  # fmt: skip
def test_the_plotted_front_is_the_reported_front(settings: ParetoSettings) -> None:
    frame = pd.concat([two_machines(), issue_example().assign(
        **{"hardware.name": "x", "model": "bert-tiny", "seq_len": 8, "batch": 1,
           "pattern_family": "dense", "compression_ratio": 1.0})], ignore_index=True)
    ax = plots.plot_pareto(frame, settings=settings)
    (circled,) = [c for c in ax.collections if str(c.get_label()).startswith("Pareto front")]
    plotted = {tuple(np.round(xy, 9)) for xy in circled.get_offsets()}
    table = key_table(frame, "dse", settings)
    reported = {
        (round(lat * 1e3, 9), round(e * 1e3, 9))
        for lat, e in zip(frame.loc[table.index, "latency_s"], frame.loc[table.index, "energy_j"],
                          strict=True)
    }
    assert plotted == reported
    assert len(table) == int(pareto_front(frame, settings).sum())
    close(ax)


def test_report_names_the_pareto_settings() -> None:
    run_info = {"kind": "dse", "pareto": {"objectives": ["latency_s", "max:speedup"],
                                          "epsilon": 0.05, "constraints": {"area_mm2": "<= 3"}}}
    report = render_report(two_machines(), run_info, [], plots.Path("r.md"))
    assert "objectives latency_s, max speedup; epsilon 0.05; constraints area_mm2 <= 3" in report


def test_the_roofline_names_its_design() -> None:
    ops = pd.DataFrame({
        "run": ["sparse", "dense baseline"], "kind": ["gemm"] * 2, "role": ["query"] * 2,
        "model": "bert-tiny", "seq_len": 8, "macs": [100, 200], "effective_macs": [100, 200],
        "dram_read_bytes": [10.0, 20], "dram_write_bytes": [1.0, 1],
        "latency_s": [1e-6, 2e-6], "peak_ops_per_s": 2e9, "dram_bandwidth_bytes_per_s": 16e9,
        "hardware": "slow-chip", "key": "slow-chip-block:4x4-4",
    })  # fmt: skip
    ax = plots.plot_roofline(ops)
    assert "slow-chip" in ax.get_title()
    close(ax)
    drawn = plots.applicable_plots(two_machines(), "compression", ops)["roofline"]()
    assert "block:4x4" in drawn.get_title() and "slow-chip" in drawn.get_title()
    close(drawn)


def test_a_study_on_two_machines_reports_and_replots_per_machine(tmp_path) -> None:
    import json

    from typer.testing import CliRunner

    from studies.cli import app

    spec = tmp_path / "two.yaml"
    spec.write_text(
        "name: two\nkind: compression\nmodels: [bert-tiny]\nseq_lens: [8]\n"
        "hardware: [systolic-32x32-ws, systolic-128x128-ws]\n"
        "compression_ratios: [2, 4]\npatterns: [block:4x4, dense]\n"
        "grid: {sparse.zero_handling: [skipping]}\n"
        "pareto: {objectives: [latency_s, energy_j], epsilon: 0.0}\n"
    )
    out = tmp_path / "out"
    runner = CliRunner()
    done = runner.invoke(app, ["study", "run", str(spec), "--out", str(out)])
    assert done.exit_code == 0, done.output
    report = (out / "report.md").read_text()
    assert "| hardware |" in report
    assert "systolic-32x32-ws" in report and "systolic-128x128-ws" in report
    assert "Pareto front: objectives latency_s, energy_j; epsilon 0" in report
    assert json.loads((out / "run.json").read_text())["pareto"]["epsilon"] == 0.0
    replot = runner.invoke(app, ["study", "plot", str(out), "--objective", "latency_s",
                                 "--objective", "area_mm2", "--epsilon", "0.05",
                                 "--constraint", "area_mm2<=1000"])
    assert replot.exit_code == 0, replot.output
    assert ("Pareto front: objectives latency_s, area_mm2; epsilon 0.05; constraints "
            "area_mm2 <= 1000") in (out / "report.md").read_text()
    bad = runner.invoke(app, ["study", "plot", str(out), "--constraint", "area_mm2=3"])
    assert bad.exit_code == 2 and "COLUMN<=BOUND" in bad.stderr
    for bound in ("nan", "inf", "-inf"):  # accepted, and emptied the front without a word
        not_finite = runner.invoke(app, ["study", "plot", str(out), "--constraint",
                                         f"area_mm2<={bound}"])
        assert not_finite.exit_code == 2 and "finite" in not_finite.stderr, not_finite.output
    missing = runner.invoke(app, ["study", "plot", str(out), "--objective", "no_column"])
    assert missing.exit_code == 2 and "no_column" in missing.stderr
    # a hand-edited table with text in a column the plots format as numbers: a traceback
    import pandas as pd

    table = pd.read_parquet(out / "results.parquet")
    table["compression_ratio"] = table["compression_ratio"].map(str)
    table.to_parquet(out / "results.parquet")
    text = runner.invoke(app, ["study", "plot", str(out)])
    assert text.exit_code == 2 and "Traceback" not in text.output, text.output
    assert "column compression_ratio holds values that are not numbers" in " ".join(
        text.stderr.split()
    )


def test_long_machine_names_leave_the_plots_room(recwarn) -> None:
    """DSE machine names run to 150 characters: as tick labels and point annotations they
    are wrapped and kept out of the layout, so matplotlib never collapses the axes (it
    warns 'constrained_layout not applied' when it does)."""
    frame = two_machines()
    long = " ".join(f"sram.buffer{i}.size_bytes=512 KiB" for i in range(5))
    frame["hardware.name"] = frame["hardware.name"] + " " + long
    for draw in (plots.plot_energy_breakdown, plots.plot_pareto):
        ax = draw(frame)
        ax.figure.canvas.draw()
        plots.plt.close(ax.figure)
    collapsed = [w for w in recwarn if "constrained_layout not applied" in str(w.message)]
    assert not collapsed
    ticks = [t.get_text() for t in ax.figure.axes[0].get_xticklabels()]
    assert all(len(line) <= 60 for text in ticks for line in text.splitlines())


def many_machines(count: int = 12, ratios=range(2, 12)) -> pd.DataFrame:
    """``count`` chips that differ in DRAM bandwidth (and so in baseline throughput)."""
    frames = []
    for number in range(count):
        frame = two_machines(ratios=ratios, patterns=("unstructured",))
        frame = frame[frame["hardware.name"] == "fast-chip"].copy()
        scale = 1.0 + number  # chip k is k+1 times the first: a known best-first order
        frame["hardware.dram.bandwidth_bytes_per_s"] = 1e9 * scale
        for column in ("sequences_per_s", "baseline_sequences_per_s"):
            frame[column] *= scale
        frame["latency_s"] /= scale
        frame["energy_j"] *= 1 + 0.01 * number  # the first chips spend the least energy
        frame["key"] += f"-{number}"
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def test_large_studies_draw_bounded_plots_and_say_what_they_kept() -> None:
    """A 10,000-point DSE once spent 19 minutes drawing a panel per machine and a bar per
    point: each plot keeps its best part, named in its title, within fixed bounds."""
    frame = many_machines()
    assert frame["hardware.dram.bandwidth_bytes_per_s"].nunique() == 12 > plots.MAX_FACETS
    ax = plots.plot_throughput_vs_compression(frame)
    panels = [a for a in ax.figure.axes if a.get_visible() and a.get_title()]
    assert len(panels) == plots.MAX_FACETS
    # the machines differ only in a field no grid names, so they are numbered in table order
    kept = {int(panel.get_title().rsplit("#", 1)[1]) for panel in panels}
    assert kept == set(range(5, 13))  # the 8 fastest of 12
    assert f"the {plots.MAX_FACETS} of 12 machines" in ax.figure.get_suptitle()
    close(ax)
    ax = plots.plot_block_size(frame)
    assert len([a for a in ax.figure.axes if a.get_visible()]) == plots.MAX_FACETS
    close(ax)
    assert len(frame) == 120 > plots.MAX_BARS
    ax = plots.plot_energy_breakdown(frame)
    bars = sum(len(a.get_xticks()) for a in ax.figure.axes if a.get_visible())
    assert bars == plots.MAX_BARS
    assert f"the {plots.MAX_BARS} lowest-energy of 120" in ax.figure.get_suptitle()
    close(ax)


def test_a_long_pareto_front_labels_an_even_sample_of_it() -> None:
    count = 3 * plots.MAX_ANNOTATIONS
    latency = np.linspace(1.0, 2.0, count)
    frame = pd.DataFrame({
        "label": [f"design {i}" for i in range(count)], "latency_s": latency,
        "energy_j": 3.0 - latency, "area_mm2": 1.0,
    })  # fmt: skip
    ax = plots.plot_pareto(frame, settings=ParetoSettings(epsilon=0.0))
    labels = [t.get_text() for t in ax.texts]
    assert len(labels) == plots.MAX_ANNOTATIONS
    assert "0" in labels and str(count - 1) in labels  # both ends (the shared word dropped)
    assert f"labels on {plots.MAX_ANNOTATIONS} of the {count}" in ax.figure.get_suptitle()
    close(ax)


def test_the_report_table_of_a_large_study_is_cut_and_says_so(monkeypatch) -> None:
    from studies import report

    monkeypatch.setattr(report, "MAX_REPORT_ROWS", 10)
    text = render_report(many_machines(), {"kind": "custom"}, [], plots.Path("r.md"))
    assert "The first 10 of 120 rows; `results.csv` has every row." in text
    table_rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(table_rows) == 1 + 10  # header and ten rows


def test_throughput_vs_batch_keeps_the_fastest_designs() -> None:
    designs = plots.MAX_SERIES + 6
    frame = pd.DataFrame([
        {"label": f"design {d}", "batch": batch, "sequences_per_s": (d + 1) * batch,
         "model": "bert-tiny", "seq_len": 8}
        for d in range(designs) for batch in (1, 2, 4)
    ])  # fmt: skip
    ax = plots.plot_throughput_vs_batch(frame)
    kept = {line.get_label() for line in ax.get_lines()}
    assert kept == {f"design {d}" for d in range(6, designs)}  # the 24 fastest
    assert f"the {plots.MAX_SERIES} of {designs} designs" in ax.figure.get_suptitle()
    close(ax)
