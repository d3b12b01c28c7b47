"""Study plots: functions that take a DataFrame (and an optional ``ax``) and return the Axes.

Nothing here shows a window or writes a file except :func:`save` and :func:`save_all`, which
write PNG and SVG. The tables are ``studies.store`` exports (one row per design point, the
columns of ``studies.evaluate.evaluate_point``) and, for the roofline, an op frame
(``studies.evaluate.op_frame``).

Every plot keeps machines apart (:func:`machine_names`: the hardware less its sparse
section, so one machine's sparse modes share its dense baseline): without ``ax``, a table
with several machines gets one panel per machine (facets); with an ``ax`` the machines share
it, told apart by colour and label (hue). No line joins points of two machines and no
baseline mixes them. The Pareto front is :func:`pareto_front`'s, the same rows the report
marks.
"""

from __future__ import annotations

import functools
import math
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from accel_sim.energy import ENERGY_COMPONENTS
from safeio.atomic import atomic_write_with
from studies.pareto import ParetoSettings, _feasible, pareto_front, pareto_mask

__all__ = [
    "ParetoSettings",
    "applicable_plots",
    "axes",
    "machine_names",
    "pareto_front",
    "pareto_mask",
    "plot_block_size",
    "plot_energy_breakdown",
    "plot_pareto",
    "plot_roofline",
    "plot_throughput_vs_compression",
    "save",
    "save_all",
]

HARDWARE_PREFIX = "hardware."
GRID_PREFIX = "grid."
LABEL_WIDTH = 40  # characters per line of a tick label or point annotation
# Hardware fields that say what the chip does with zeros: they vary per pattern within one
# machine (its dense baseline is the same chip without them), so they do not split machines.
SPARSE_FIELDS = ("sparse.",)
BARS_PER_ROW = 24
FACET_COLUMNS = 2
# A study of thousands of points keeps its plots readable and quick to draw (a 10,000-point
# DSE over 500 machines once spent over 19 minutes drawing 500 panels and 10,000 bars): each
# plot draws at most these many and says in its title which it kept; the results table and
# report hold every point.
MAX_FACETS = 8  # machines in a per-machine plot: those with the highest best throughput
MAX_BARS = 4 * BARS_PER_ROW  # energy-breakdown bars: the lowest-energy design points
MAX_SERIES = 24  # lines of throughput vs batch: the designs with the highest throughput
MAX_ANNOTATIONS = 24  # labelled Pareto-front points, spread evenly along the front


def _is_sparse_field(column: str, prefix: str) -> bool:
    return column[len(prefix) :].startswith(SPARSE_FIELDS)


def _short_value(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**6:
        for factor, prefix in ((10**12, "T"), (10**9, "G"), (10**6, "M")):
            if abs(value) >= factor:
                return f"{value / factor:g}{prefix}"
    return str(value)


def _shortest_unique_suffix(dotted: str, fields: Sequence[str]) -> str:
    """The last parts of ``dotted`` that no other of ``fields`` ends with (``size_bytes``
    alone when one buffer size varies, ``ifmap.size_bytes`` when several do)."""
    parts = dotted.split(".")
    for count in range(1, len(parts)):
        suffix = ".".join(parts[-count:])
        if not any(f != dotted and (f == suffix or f.endswith("." + suffix)) for f in fields):
            return suffix
    return dotted


def machine_names(frame: pd.DataFrame) -> pd.Series:
    """Which machine each row ran on, as a readable name: the hardware spec's name plus the
    grid values that vary across the table, leaving out the sparse section (what the chip
    does with zeros varies per pattern; the machine's dense baseline does not). Two rows get
    the same name exactly when their hardware, less the sparse section, is the same."""
    index = frame.index
    if "machine" in frame:
        return frame["machine"].astype(str)
    base = (
        frame["hardware.name"].astype(str)
        if "hardware.name" in frame
        else pd.Series("hardware", index=index)
    )
    identity_columns = [
        c for c in frame.columns
        if c.startswith(HARDWARE_PREFIX) and not _is_sparse_field(c, HARDWARE_PREFIX)
    ]
    if not identity_columns:
        return base
    identity = frame[identity_columns].map(str).agg("\x1f".join, axis=1)
    grid = [
        c for c in frame.columns
        if c.startswith(GRID_PREFIX)
        and not _is_sparse_field(c, GRID_PREFIX)
        and frame[c].nunique(dropna=False) > 1
    ]
    names = base.copy()
    fields = [column[len(GRID_PREFIX) :] for column in grid]
    for column, dotted in zip(grid, fields, strict=True):
        # a field a row's grid does not set is left out of its name
        field = _shortest_unique_suffix(dotted, fields)
        given = frame[column].notna()
        values = frame[column].astype(object).where(given, "").map(_short_value)
        names = names.where(~given, names + " " + field + "=" + values)
    # the same name for different machines (two specs named alike, --set, ...): number them
    for name in names.unique():
        rows = names == name
        ids = list(dict.fromkeys(identity[rows]))
        if len(ids) > 1:
            numbers = identity[rows].map({ident: i + 1 for i, ident in enumerate(ids)})
            names[rows] = name + " #" + numbers.astype(str)
    return names


def workload_names(frame: pd.DataFrame) -> pd.Series:
    """Model, tokens and batch of each row, for the ones that vary (else an empty string)."""
    parts = [c for c in ("model", "seq_len", "batch") if c in frame and frame[c].nunique() > 1]
    if not parts:
        return pd.Series("", index=frame.index)
    shown = {"model": lambda v: Path(str(v)).name, "seq_len": lambda v: f"{v} tokens",
             "batch": lambda v: f"batch {v}"}  # fmt: skip
    return frame[parts].apply(lambda row: ", ".join(shown[c](row[c]) for c in parts), axis=1)


def axes(ax: Axes | None, size: tuple[float, float] = (7.0, 4.5)) -> Axes:
    """``ax``, or the Axes of a new figure of ``size`` inches."""
    if ax is not None:
        return ax
    _, ax = plt.subplots(figsize=size, layout="constrained")
    return ax


def _facet_axes(names: Sequence[str], size: tuple[float, float]) -> list[Axes]:
    """One panel per name, ``FACET_COLUMNS`` to a row, each ``size``."""
    columns = min(FACET_COLUMNS, len(names))
    rows = math.ceil(len(names) / columns)
    _figure, grid = plt.subplots(
        rows,
        columns,
        figsize=(size[0] * columns, size[1] * rows),
        layout="constrained",
        squeeze=False,
    )
    panels = list(grid.flat)
    for extra in panels[len(names) :]:
        extra.set_visible(False)
    return panels[: len(names)]


def _panels(
    frame: pd.DataFrame, ax: Axes | None, size: tuple[float, float]
) -> list[tuple[str | None, pd.DataFrame, Axes]]:
    """(machine or None, its rows, its Axes): facets without ``ax``; one shared ``ax``
    (machine None: hue by machine inside the plot) with it, or with a single machine."""
    machines = list(dict.fromkeys(frame["machine"])) if "machine" in frame else []
    if ax is not None or len(machines) <= 1:
        return [(None, frame, axes(ax, size))]
    panels = _facet_axes(machines, size)
    return [
        (name, frame[frame["machine"] == name], panel)
        for name, panel in zip(machines, panels, strict=True)
    ]


def _keep_best(
    frame: pd.DataFrame, by: str, column: str, limit: int, noun: str
) -> tuple[pd.DataFrame, str]:
    """``frame`` cut to the ``limit`` values of ``by`` (machines, designs) whose best
    ``column`` is highest, and a note saying so (empty when every one fits)."""
    if by not in frame or column not in frame:
        return frame, ""
    count = frame[by].nunique()
    if count <= limit:
        return frame, ""
    best = frame.groupby(by, sort=False)[column].max().nlargest(limit)
    note = (f"the {limit} of {count} {noun}s with the highest {column} "
            f"(the results table has every {noun})")  # fmt: skip
    return frame[frame[by].isin(best.index)], note


def _best_machines(frame: pd.DataFrame, column: str) -> tuple[pd.DataFrame, str]:
    return _keep_best(frame, "machine", column, MAX_FACETS, "machine")


def _noted(ax: Axes, note: str) -> None:
    """Say above the figure which part of a large study it shows."""
    if note:
        ax.figure.suptitle(note, fontsize="small")


# ------------------------------------------------------------------------------- plots


def _series_label(row: pd.Series) -> str:
    label = f"{row['pattern_family']} ({row['zero_handling']})"
    datapath = row.get("datapath")  # datapaths that name themselves in their study columns
    return f"{label} {datapath}" if isinstance(datapath, str) else label


def plot_throughput_vs_compression(frame: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Sequences/s vs weight compression ratio per pattern family and sparse mode, with each
    machine's dense baseline and ideal line (baseline x compression ratio); one panel per
    machine (see the module docstring)."""
    if "machine" not in frame:
        frame = _prepared(frame)
    frame, note = _best_machines(frame, "sequences_per_s")
    panels = _panels(frame, ax, (7.0, 4.5))
    for machine, rows, panel in panels:
        _throughput_panel(rows, panel, machine)
    _noted(panels[0][2], note)
    return panels[0][2]


def _throughput_panel(frame: pd.DataFrame, ax: Axes, machine: str | None) -> None:
    sparse = frame[frame["pattern_family"] != "dense"].copy()
    sparse["series"] = sparse.apply(_series_label, axis=1)
    groups = ["machine", "workload"] if machine is None else ["workload"]
    many = {g: frame[g].nunique() > 1 for g in groups}
    top = max(float(frame["compression_ratio"].max()), 1.0)
    ratios = np.linspace(1.0, top, 50)
    highest = float(frame["sequences_per_s"].max())
    for keys, group in frame.groupby(groups, sort=False):
        keys = keys if isinstance(keys, tuple) else (keys,)
        suffix = ", ".join(str(k) for g, k in zip(groups, keys, strict=True) if many[g] and k)
        tag = f" [{suffix}]" if suffix else ""
        baseline = float(group["baseline_sequences_per_s"].median())
        lines = sparse.loc[sparse.index.intersection(group.index)]
        for name, series in lines.groupby("series", sort=False):
            series = series.sort_values("compression_ratio")
            ax.plot(
                series["compression_ratio"],
                series["sequences_per_s"],
                marker="o",
                label=f"{name}{tag}",
            )
        (ideal,) = ax.plot(ratios, baseline * ratios, ":", label=f"ideal (dense x ratio){tag}")
        ax.axhline(
            baseline,
            color=ideal.get_color(),
            linestyle="--",
            label=f"dense baseline ({baseline:,.0f}){tag}",
        )
        highest = max(highest, baseline * top)
    ax.set_xlabel("weight compression ratio (dense / kept weights) [x]")
    ax.set_ylabel("throughput [sequences/s]")
    title = _title(frame, "Throughput vs compression")
    ax.set_title(f"{title}\n{machine}" if machine else title, fontsize="medium")
    ax.set_xlim(left=1.0)
    ax.set_ylim(bottom=0.0, top=highest * 1.05)
    ax.legend(fontsize="x-small")
    ax.grid(alpha=0.3)


def plot_throughput_vs_batch(frame: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Sequences/s vs batch, one line per design (the point's label without its batch)."""
    ax = axes(ax)
    frame, note = _keep_best(frame, "label", "sequences_per_s", MAX_SERIES, "design")
    for name, group in frame.groupby("label", sort=False):
        group = group.sort_values("batch")
        ax.plot(group["batch"], group["sequences_per_s"], marker="o", label=name)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("batch [sequences]")
    ax.set_ylabel("throughput [sequences/s]")
    ax.set_title(_title(frame, "Throughput vs batch"))
    ax.set_ylim(bottom=0.0)
    ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.grid(alpha=0.3)
    _noted(ax, note)
    return ax


_BLOCK_METRICS = {
    "speedup": ("speedup vs dense [x]", 1.0),
    "energy_ratio": ("energy / dense energy [x]", 1.0),
    "effective_utilisation": ("effective PE utilisation [fraction]", None),
    "utilisation": ("PE utilisation [fraction]", None),
}


def plot_block_size(frame: pd.DataFrame, metric: str = "speedup", ax: Axes | None = None) -> Axes:
    """Grouped bars of ``metric`` per pattern (in table order), one bar per sparse mode; one
    panel per machine."""
    if metric not in _BLOCK_METRICS:
        raise ValueError(f"metric must be one of {', '.join(_BLOCK_METRICS)}, got {metric!r}")
    if "machine" not in frame:
        frame = _prepared(frame)
    # ranked by speedup whatever the metric, so the three block-size plots show one set
    frame, note = _best_machines(frame, "speedup" if "speedup" in frame else metric)
    panels = _panels(frame, ax, (8.0, 4.5))
    for machine, rows, panel in panels:
        _block_panel(rows, metric, panel, machine)
    _noted(panels[0][2], note)
    return panels[0][2]


def _block_panel(frame: pd.DataFrame, metric: str, ax: Axes, machine: str | None) -> None:
    label, reference = _BLOCK_METRICS[metric]
    frame = frame.copy()
    frame["x"] = frame["pattern_family_label"].astype(str)
    if "sparsity" in frame and frame["sparsity"].nunique() > 1:
        frame["x"] += frame["sparsity"].map(lambda v: f" @{v:.2f}")
    hue = frame["zero_handling"].astype(str)
    if machine is None and frame["machine"].nunique() > 1:
        hue = hue + " on " + frame["machine"]
    if frame["workload"].astype(bool).any():
        frame["x"] += " " + frame["workload"]
    frame["hue"] = hue
    if frame.duplicated(["x", "hue"]).any() and "compression_ratio" in frame:
        frame["x"] += frame["compression_ratio"].map(lambda r: f" ({r:.3g}x)")
    patterns = list(dict.fromkeys(frame["x"]))
    modes = list(dict.fromkeys(frame["hue"]))
    width = 0.8 / len(modes)
    x = np.arange(len(patterns))
    for i, mode in enumerate(modes):
        sub = frame[frame["hue"] == mode].groupby("x")[metric].mean()
        values = [float(sub.get(p, np.nan)) for p in patterns]
        bars = ax.bar(x + (i - (len(modes) - 1) / 2) * width, values, width, label=mode)
        ax.bar_label(bars, fmt="%.2f", fontsize="x-small", padding=1)
    if reference is not None:
        ax.axhline(reference, color="grey", linestyle="--", linewidth=1, label="dense")
    ax.set_xticks(x, patterns, rotation=30, ha="right")
    ax.set_xlabel("pruning pattern (block rows x cols: rows along out, cols along in)")
    ax.set_ylabel(label)
    title = _title(frame, f"{label.split(' [')[0]} vs block size")
    ax.set_title(f"{title}\n{machine}" if machine else title, fontsize="medium")
    ax.legend(title="sparse mode", fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(axis="y", alpha=0.3)


def _wrapped(text: str, width: int = LABEL_WIDTH) -> str:
    """``text`` on lines of at most ``width`` characters (a long machine name in a tick
    label or annotation would otherwise leave the axes no room)."""
    return textwrap.fill(str(text), width, break_long_words=False, break_on_hyphens=False)


def bar_labels(frame: pd.DataFrame, label: str = "label") -> pd.Series:
    """One label per row naming its design: the point's label, its compression ratio and,
    when the table has several machines, the machine."""
    text = frame[label].astype(str) if label in frame else pd.Series("", index=frame.index)
    if "compression_ratio" in frame:
        ratios = frame["compression_ratio"].map(
            lambda r: "" if r is None or pd.isna(r) else f" ({float(r):.3g}x)"
        )
        text = text + ratios
    if "machine" in frame and frame["machine"].nunique() > 1:
        text = text + " | " + frame["machine"].astype(str)
    if "workload" in frame and frame["workload"].astype(bool).any():
        text = text + " | " + frame["workload"].astype(str)
    return text


def plot_energy_breakdown(
    frame: pd.DataFrame,
    ax: Axes | None = None,
    label: str = "label",
    bars_per_row: int = BARS_PER_ROW,
) -> Axes:
    """Stacked bars of energy per component (mJ), one per design point, every point: rows
    of ``bars_per_row`` bars (one panel each), labels naming the machine and compression
    ratio, the legend beside the bars. With ``ax``, every bar goes on it."""
    if "machine" not in frame:
        frame = _prepared(frame)
    note = ""
    if len(frame) > MAX_BARS and "energy_j" in frame:
        note = (f"the {MAX_BARS} lowest-energy of {len(frame)} design points "
                "(the results table has every point)")  # fmt: skip
        frame = frame.loc[sorted(frame.nsmallest(MAX_BARS, "energy_j").index)]
    frame = frame.assign(_bar=bar_labels(frame, label))
    chunks = [frame.iloc[i : i + bars_per_row] for i in range(0, len(frame), bars_per_row)]
    chunks = chunks or [frame]
    if ax is not None:
        panels = [ax]
        chunks = [frame]
    else:
        widest = max(len(chunk) for chunk in chunks)
        _figure, grid = plt.subplots(
            len(chunks),
            1,
            figsize=(max(7.0, 0.42 * widest + 4.5), 5.2 * len(chunks)),
            layout="constrained",
            squeeze=False,
        )
        panels = list(grid.flat)
    others = [c[7:-2] for c in frame.columns if c.startswith("energy_") and c.endswith("_j")]
    components = [
        c for c in dict.fromkeys([*ENERGY_COMPONENTS, *others])  # crossbar chips: adc, ...
        if c and f"energy_{c}_j" in frame
    ]
    colours = dict(zip(components, plt.cm.tab20.colors, strict=False))
    for number, (chunk, panel) in enumerate(zip(chunks, panels, strict=True)):
        bottom = np.zeros(len(chunk))
        x = np.arange(len(chunk))
        for component in components:
            # a study mixing systolic and crossbar chips has each chip's components only on
            # its own rows: NaN elsewhere, which would erase the whole stacked bar
            values = np.nan_to_num(chunk[f"energy_{component}_j"].to_numpy(dtype=float)) * 1e3
            panel.bar(x, values, bottom=bottom, label=component, color=colours[component])
            bottom += values
        ticks = [_wrapped(text) for text in chunk["_bar"]]
        panel.set_xticks(x, ticks, rotation=40, ha="right", fontsize="x-small")
        panel.set_ylabel("energy per forward pass [mJ]")
        panel.set_xlabel("design point")
        part = f" ({number + 1} of {len(chunks)})" if len(chunks) > 1 else ""
        panel.set_title(_title(frame, "Energy breakdown") + part, fontsize="medium")
        panel.grid(axis="y", alpha=0.3)
        if number == 0:
            panel.legend(
                title="component",
                fontsize="small",
                loc="upper left",
                bbox_to_anchor=(1.01, 1.0),
            )
    _noted(panels[0], note)
    return panels[0]


_AXIS_LABELS = {
    "latency_s": ("latency per forward pass [ms]", 1e3),
    "energy_j": ("energy per forward pass [mJ]", 1e3),
    "area_mm2": ("area [mm$^2$]", 1.0),
}


def plot_pareto(
    frame: pd.DataFrame,
    ax: Axes | None = None,
    settings: ParetoSettings | None = None,
) -> Axes:
    """Every design point on the first two objectives of ``settings``, coloured by the third
    (area by default); the front :func:`pareto_front` computes over *all* its objectives
    circled (the rows the report marks), infeasible points (constraints) hollow grey."""
    settings = settings or ParetoSettings()
    if "machine" not in frame:
        frame = _prepared(frame)
    columns = settings.columns()
    x, y = ([*columns, "energy_j"])[:2] if len(columns) < 2 else columns[:2]
    colour = columns[2] if len(columns) > 2 else None
    ax = axes(ax)
    front = pareto_front(frame, settings)
    feasible = _feasible(frame, settings)
    sx, sy = _AXIS_LABELS.get(x, (x, 1.0))[1], _AXIS_LABELS.get(y, (y, 1.0))[1]
    shown = frame[feasible]
    values = shown[colour] if colour is not None else None
    varies = values is not None and len(values) and values.max() > 1.01 * values.min()
    points = ax.scatter(
        shown[x] * sx,
        shown[y] * sy,
        c=values if varies else None,
        cmap="viridis" if varies else None,
        s=25,
        alpha=0.8,
        label="design points",
    )
    if varies:
        plt.colorbar(points, ax=ax, label=_AXIS_LABELS.get(colour, (colour, 1))[0])
    if (~feasible).any():
        ax.scatter(
            frame.loc[~feasible, x] * sx,
            frame.loc[~feasible, y] * sy,
            facecolors="none",
            edgecolors="grey",
            s=25,
            label="outside the constraints",
        )
    best = frame[front].sort_values(x)
    names = ", ".join(o.removeprefix("max:") for o in settings.objectives)
    ax.scatter(
        best[x] * sx,
        best[y] * sy,
        facecolors="none",
        edgecolors="red",
        s=110,
        linewidths=1.5,
        label=f"Pareto front ({names}; epsilon {settings.epsilon:g})",
    )
    if len(columns) == 2:  # a 2-D front is a staircase: join it
        ax.plot(best[x] * sx, best[y] * sy, "r-", linewidth=1)
    labelled = best
    if len(best) > MAX_ANNOTATIONS:  # evenly along the front, both ends included
        at = np.unique(np.linspace(0, len(best) - 1, MAX_ANNOTATIONS).round().astype(int))
        labelled = best.iloc[at]
        _noted(ax, f"labels on {len(labelled)} of the {len(best)} Pareto-front points")
    labels = bar_labels(labelled)
    for (_, row), name in zip(labelled.iterrows(), labels, strict=True):
        note = ax.annotate(
            _wrapped(name), (row[x] * sx, row[y] * sy), fontsize=6, xytext=(4, 4),
            textcoords="offset points",
        )  # fmt: skip
        note.set_in_layout(False)  # long names must not squeeze the axes to nothing
    for column, set_scale in ((x, ax.set_xscale), (y, ax.set_yscale)):
        if frame[column].max() > 10 * frame[column].min() > 0:
            set_scale("log")
    ax.set_xlabel(_AXIS_LABELS.get(x, (x, 1))[0])
    ax.set_ylabel(_AXIS_LABELS.get(y, (y, 1))[0])
    ax.set_title(_title(frame, "Pareto front"), fontsize="medium")
    ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.15 if varies else 1.01, 1))
    ax.grid(alpha=0.3, which="both")
    return ax


def _roofline_gemms(ops: pd.DataFrame) -> pd.DataFrame:
    """GEMMs with MACs and DRAM traffic (a GEMM whose weights stay on chip, as on a crossbar
    chip, reads no DRAM: its intensity is unbounded and it has no place on a roofline)."""
    gemms = ops[(ops["kind"] == "gemm") & (ops["macs"] > 0)].copy()
    gemms["dram_bytes"] = gemms["dram_read_bytes"] + gemms["dram_write_bytes"]
    return gemms[gemms["dram_bytes"] > 0]


def plot_roofline(ops: pd.DataFrame, ax: Axes | None = None, design: str | None = None) -> Axes:
    """Each GEMM on the roofline of the design that ran them: useful ops (2 x nonzero-weight
    MACs) per DRAM byte vs achieved useful ops/s, for the sparse run and its dense baseline.
    ``design`` names the design point (default: the ops' hardware name) in the title."""
    ax = axes(ax)
    gemms = _roofline_gemms(ops)
    gemms["intensity"] = 2.0 * gemms["effective_macs"] / gemms["dram_bytes"]
    gemms["ops_per_s"] = 2.0 * gemms["effective_macs"] / gemms["latency_s"]
    peak = float(ops["peak_ops_per_s"].iloc[0])
    bandwidth = float(ops["dram_bandwidth_bytes_per_s"].iloc[0])
    lo = min(gemms["intensity"].min(), peak / bandwidth) / 4
    hi = max(gemms["intensity"].max(), peak / bandwidth) * 4
    xs = np.logspace(np.log10(lo), np.log10(hi), 200)
    ax.plot(
        xs,
        np.minimum(peak, bandwidth * xs),
        "k-",
        linewidth=2,
        label=f"roof: {peak / 1e12:.2f} Tops/s, {bandwidth / 1e9:.0f} GB/s",
    )
    markers = {"sparse": "o", "dense baseline": "x"}
    roles = sorted(gemms["role"].dropna().unique())
    colours = dict(zip(roles, plt.cm.tab10.colors, strict=False))
    for (run, role), group in gemms.groupby(["run", "role"]):
        ax.scatter(
            group["intensity"],
            group["ops_per_s"],
            marker=markers.get(run, "o"),
            color=colours.get(role),
            s=22,
            alpha=0.8,
            label=f"{role} ({run})",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("operational intensity [useful ops / DRAM byte]")
    ax.set_ylabel("achieved performance [useful ops/s]")
    if design is None and "hardware" in ops and len(ops):
        design = ", ".join(dict.fromkeys(ops["hardware"].astype(str)))
    title = _title(ops, "Roofline (each GEMM)")
    ax.set_title(f"{title}\non {design}" if design else title, fontsize="medium")
    ax.legend(fontsize="x-small", ncols=2, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3, which="both")
    return ax


def _title(frame: pd.DataFrame, what: str) -> str:
    parts = [what]
    model = frame["model"].iloc[0] if "model" in frame and len(frame) else None
    if model is not None and frame["model"].nunique() == 1:
        seq = frame["seq_len"].iloc[0] if "seq_len" in frame else None
        parts.append(f"{Path(str(model)).name}" + (f", {seq} tokens" if seq is not None else ""))
    return ": ".join(parts)


def save(ax: Axes, out_dir: str | Path, stem: str) -> list[Path]:
    """Write the Axes' figure as ``stem.png`` and ``stem.svg`` (each atomically) and close it."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{stem}.png", out / f"{stem}.svg"]
    figure = ax.figure
    try:
        for path in paths:
            dpi = 150 if path.suffix == ".png" else None
            write = functools.partial(figure.savefig, format=path.suffix[1:], dpi=dpi)
            atomic_write_with(path, write)
    finally:
        plt.close(figure)
    return paths


def short_labels(labels: pd.Series) -> pd.Series:
    """Labels without the words every label shares (e.g. a grid value that never varies)."""
    words = [str(label).split() for label in labels]
    common = set.intersection(*(set(w) for w in words)) if len(words) > 1 else set()
    return pd.Series(
        [" ".join(w for w in ws if w not in common) or " ".join(ws) for ws in words],
        index=labels.index,
    )


def _prepared(frame: pd.DataFrame) -> pd.DataFrame:
    """Label columns the plots group by: ``machine`` (see :func:`machine_names`),
    ``workload``, short ``label`` and ``pattern_family_label``."""
    frame = frame.copy()
    frame["machine"] = machine_names(frame) if len(frame) else pd.Series(dtype=object)
    frame["workload"] = workload_names(frame) if len(frame) else pd.Series(dtype=object)
    if "label" in frame and len(frame):
        frame["label"] = short_labels(frame["label"])
    if "pattern" in frame and "pattern_family" in frame:
        frame["pattern_family_label"] = frame["pattern"].fillna(frame["pattern_family"])
    elif "pattern" in frame:
        frame["pattern_family_label"] = frame["pattern"]
    elif "pattern_family" in frame:
        frame["pattern_family_label"] = frame["pattern_family"]
    return frame


def _roofline_design(frame: pd.DataFrame, ops: pd.DataFrame) -> str | None:
    """The representative point's design: its label and machine, found by its key."""
    if "key" not in ops or "key" not in frame or not len(ops):
        return None
    rows = frame[frame["key"] == ops["key"].iloc[0]]
    if rows.empty:
        return None
    row = rows.iloc[0]
    parts = [str(row["label"])] if row.get("label") else []
    if "machine" in row:
        parts.append(str(row["machine"]))
    return " on ".join(parts) if parts else None


def applicable_plots(
    frame: pd.DataFrame,
    kind: str,
    ops: pd.DataFrame | None = None,
    pareto: ParetoSettings | None = None,
) -> dict[str, Callable[[], Axes]]:
    """Plot name -> a function drawing it, for the plots that fit this table (an accuracy
    study's: :func:`studies.accuracy_plots.accuracy_plots`)."""
    if kind == "accuracy":
        from studies.accuracy_plots import accuracy_plots

        return accuracy_plots(frame)
    frame = _prepared(frame)
    plots: dict[str, Callable[[], Axes]] = {}
    if frame.empty:
        return plots
    sparse = frame[frame["pattern_family"] != "dense"]
    if kind == "compression" or sparse["compression_ratio"].round(3).nunique() > 2:
        plots["throughput_vs_compression"] = lambda: plot_throughput_vs_compression(frame)
    if "batch" in frame and frame["batch"].nunique() > 2:
        plots["throughput_vs_batch"] = lambda: plot_throughput_vs_batch(frame)
    if kind == "block-size":
        for metric in ("speedup", "energy_ratio", "effective_utilisation"):
            plots[f"{metric}_vs_block_size"] = functools.partial(plot_block_size, frame, metric)
    plots["energy_breakdown"] = lambda: plot_energy_breakdown(frame)
    settings = pareto or ParetoSettings()
    if len(frame) >= 3 and set(settings.columns()) <= set(frame.columns):
        plots["latency_energy_pareto"] = lambda: plot_pareto(frame, settings=settings)
    if ops is not None and not _roofline_gemms(ops).empty:
        design = _roofline_design(frame, ops)
        plots["roofline"] = lambda: plot_roofline(ops, design=design)
    return plots


def save_all(
    frame: pd.DataFrame,
    out_dir: str | Path,
    kind: str,
    ops: pd.DataFrame | None = None,
    pareto: ParetoSettings | None = None,
) -> dict[str, list[Path]]:
    """Draw and save (PNG + SVG) every plot that applies; name -> written paths."""
    written = {}
    for name, draw in applicable_plots(frame, kind, ops, pareto).items():
        written[name] = save(draw(), out_dir, name)
    return written
