"""Study plots: functions that take a DataFrame (and an optional ``ax``) and return the Axes.

Nothing here shows a window or writes a file except :func:`save` and :func:`save_all`, which
write PNG and SVG. The tables are ``studies.store`` exports (one row per design point, the
columns of ``studies.evaluate.evaluate_point``) and, for the roofline, an op frame
(``studies.evaluate.op_frame``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from accel_sim.energy import ENERGY_COMPONENTS
from safeio.atomic import atomic_write_with

__all__ = [
    "applicable_plots",
    "axes",
    "pareto_mask",
    "plot_block_size",
    "plot_energy_breakdown",
    "plot_pareto",
    "plot_roofline",
    "plot_throughput_vs_compression",
    "save",
    "save_all",
]


def axes(ax: Axes | None, size: tuple[float, float] = (7.0, 4.5)) -> Axes:
    """``ax``, or the Axes of a new figure of ``size`` inches."""
    if ax is not None:
        return ax
    _, ax = plt.subplots(figsize=size, layout="constrained")
    return ax


def pareto_mask(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """True for rows no other row beats in every column (all minimised) and strictly in one."""
    values = frame[columns].to_numpy(dtype=float)
    keep = np.ones(len(values), dtype=bool)
    for i, row in enumerate(values):
        dominated = np.all(values <= row, axis=1) & np.any(values < row, axis=1)
        keep[i] = not dominated.any()
    return keep


def _series_label(row: pd.Series) -> str:
    label = f"{row['pattern_family']} ({row['zero_handling']})"
    datapath = row.get("datapath")  # datapaths that name themselves in their study columns
    return f"{label} {datapath}" if isinstance(datapath, str) else label


def plot_throughput_vs_compression(frame: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Sequences/s vs weight compression ratio per pattern family and sparse mode, with the
    dense baseline and the ideal line (baseline x compression ratio)."""
    ax = axes(ax)
    sparse = frame[frame["pattern_family"] != "dense"].copy()
    sparse["series"] = sparse.apply(_series_label, axis=1)
    for name, group in sparse.groupby("series", sort=False):
        group = group.sort_values("compression_ratio")
        ax.plot(group["compression_ratio"], group["sequences_per_s"], marker="o", label=name)
    baseline = float(frame["baseline_sequences_per_s"].median())
    top = max(float(frame["compression_ratio"].max()), 1.0)
    ratios = np.linspace(1.0, top, 50)
    ax.plot(ratios, baseline * ratios, "k:", label="ideal (dense x ratio)")
    ax.axhline(baseline, color="grey", linestyle="--", label=f"dense baseline ({baseline:,.0f})")
    ax.set_xlabel("weight compression ratio (dense / kept weights) [x]")
    ax.set_ylabel("throughput [sequences/s]")
    ax.set_title(_title(frame, "Throughput vs compression"))
    ax.set_xlim(left=1.0)
    ax.set_ylim(bottom=0.0, top=max(baseline * top, frame["sequences_per_s"].max()) * 1.05)
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return ax


def plot_throughput_vs_batch(frame: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Sequences/s vs batch, one line per design (the point's label without its batch)."""
    ax = axes(ax)
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
    return ax


_BLOCK_METRICS = {
    "speedup": ("speedup vs dense [x]", 1.0),
    "energy_ratio": ("energy / dense energy [x]", 1.0),
    "effective_utilisation": ("effective PE utilisation [fraction]", None),
    "utilisation": ("PE utilisation [fraction]", None),
}


def plot_block_size(frame: pd.DataFrame, metric: str = "speedup", ax: Axes | None = None) -> Axes:
    """Grouped bars of ``metric`` per pattern (in table order), one bar per sparse mode."""
    if metric not in _BLOCK_METRICS:
        raise ValueError(f"metric must be one of {', '.join(_BLOCK_METRICS)}, got {metric!r}")
    ax = axes(ax, (8.0, 4.5))
    label, reference = _BLOCK_METRICS[metric]
    frame = frame.copy()
    frame["x"] = frame["pattern_family_label"].astype(str)
    if "sparsity" in frame and frame["sparsity"].nunique() > 1:
        frame["x"] += frame["sparsity"].map(lambda v: f" @{v:.2f}")
    if frame.duplicated(["x", "zero_handling"]).any() and "compression_ratio" in frame:
        frame["x"] += frame["compression_ratio"].map(lambda r: f" ({r:.3g}x)")
    patterns = list(dict.fromkeys(frame["x"]))
    modes = list(dict.fromkeys(frame["zero_handling"]))
    width = 0.8 / len(modes)
    x = np.arange(len(patterns))
    for i, mode in enumerate(modes):
        sub = frame[frame["zero_handling"] == mode].groupby("x")[metric].mean()
        values = [float(sub.get(p, np.nan)) for p in patterns]
        bars = ax.bar(x + (i - (len(modes) - 1) / 2) * width, values, width, label=mode)
        ax.bar_label(bars, fmt="%.2f", fontsize="x-small", padding=1)
    if reference is not None:
        ax.axhline(reference, color="grey", linestyle="--", linewidth=1, label="dense")
    ax.set_xticks(x, patterns, rotation=30, ha="right")
    ax.set_xlabel("pruning pattern (block rows x cols: rows along out, cols along in)")
    ax.set_ylabel(label)
    ax.set_title(_title(frame, f"{label.split(' [')[0]} vs block size"))
    ax.legend(title="sparse mode", fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(axis="y", alpha=0.3)
    return ax


def plot_energy_breakdown(
    frame: pd.DataFrame, ax: Axes | None = None, label: str = "label", max_bars: int = 24
) -> Axes:
    """Stacked bars of energy per component (mJ) for each design point (first ``max_bars``)."""
    frame = frame.head(max_bars)
    ax = axes(ax, (max(7.0, 0.45 * len(frame) + 3), 4.8))
    bottom = np.zeros(len(frame))
    x = np.arange(len(frame))
    others = [c[7:-2] for c in frame.columns if c.startswith("energy_") and c.endswith("_j")]
    for component in dict.fromkeys([*ENERGY_COMPONENTS, *others]):  # crossbar chips: adc, ...
        column = f"energy_{component}_j"
        if column not in frame or component == "":
            continue
        # a study mixing systolic and crossbar chips has each chip's components only on
        # its own rows: NaN elsewhere, which would erase the whole stacked bar
        values = np.nan_to_num(frame[column].to_numpy(dtype=float)) * 1e3
        ax.bar(x, values, bottom=bottom, label=component)
        bottom += values
    ax.set_xticks(x, frame[label].astype(str), rotation=40, ha="right", fontsize="small")
    ax.set_ylabel("energy per forward pass [mJ]")
    ax.set_xlabel("design point")
    ax.set_title(_title(frame, "Energy breakdown"))
    ax.legend(fontsize="small", ncols=2)
    ax.grid(axis="y", alpha=0.3)
    return ax


def plot_pareto(
    frame: pd.DataFrame, ax: Axes | None = None, x: str = "latency_s", y: str = "energy_j"
) -> Axes:
    """Latency (ms) vs energy (mJ) of every point, coloured by area, Pareto front highlighted."""
    ax = axes(ax)
    front = pareto_mask(frame, [x, y])
    area = frame.get("area_mm2")
    varies = area is not None and area.max() > 1.01 * area.min()
    points = ax.scatter(
        frame[x] * 1e3,
        frame[y] * 1e3,
        c=area if varies else None,
        cmap="viridis" if varies else None,
        s=25,
        alpha=0.8,
        label="design points",
    )
    if varies:
        plt.colorbar(points, ax=ax, label="area [mm$^2$]")
    best = frame[front].sort_values(x)
    ax.plot(
        best[x] * 1e3,
        best[y] * 1e3,
        "r-o",
        markerfacecolor="none",
        markersize=9,
        label="Pareto front (latency, energy)",
    )
    if "label" in best:
        names = best.groupby([x, y], sort=False)["label"].agg(lambda v: " / ".join(map(str, v)))
        for (px, py), name in names.items():
            ax.annotate(
                name, (px * 1e3, py * 1e3), fontsize=6, xytext=(4, 4), textcoords="offset points"
            )
    for column, set_scale in ((x, ax.set_xscale), (y, ax.set_yscale)):
        if frame[column].max() > 10 * frame[column].min() > 0:
            set_scale("log")
    ax.set_xlabel("latency per forward pass [ms]")
    ax.set_ylabel("energy per forward pass [mJ]")
    ax.set_title(_title(frame, "Latency-energy trade-off"))
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3, which="both")
    return ax


def _roofline_gemms(ops: pd.DataFrame) -> pd.DataFrame:
    """GEMMs with MACs and DRAM traffic (a GEMM whose weights stay on chip, as on a crossbar
    chip, reads no DRAM: its intensity is unbounded and it has no place on a roofline)."""
    gemms = ops[(ops["kind"] == "gemm") & (ops["macs"] > 0)].copy()
    gemms["dram_bytes"] = gemms["dram_read_bytes"] + gemms["dram_write_bytes"]
    return gemms[gemms["dram_bytes"] > 0]


def plot_roofline(ops: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Each GEMM on the roofline: useful ops (2 x nonzero-weight MACs) per DRAM byte vs
    achieved useful ops/s, for the sparse run and its dense baseline."""
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
    ax.set_title(_title(ops, "Roofline (each GEMM)"))
    ax.legend(fontsize="x-small", ncols=2)
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
    """Label columns the plots group by."""
    frame = frame.copy()
    if "label" in frame and len(frame):
        frame["label"] = short_labels(frame["label"])
    if "pattern" in frame:
        frame["pattern_family_label"] = frame["pattern"].fillna(frame["pattern_family"])
    else:
        frame["pattern_family_label"] = frame["pattern_family"]
    return frame


def applicable_plots(
    frame: pd.DataFrame, kind: str, ops: pd.DataFrame | None = None
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
    if len(frame) >= 3:
        plots["latency_energy_pareto"] = lambda: plot_pareto(frame)
    if ops is not None and not _roofline_gemms(ops).empty:
        plots["roofline"] = lambda: plot_roofline(ops)
    return plots


def save_all(
    frame: pd.DataFrame, out_dir: str | Path, kind: str, ops: pd.DataFrame | None = None
) -> dict[str, list[Path]]:
    """Draw and save (PNG + SVG) every plot that applies; name -> written paths."""
    written = {}
    for name, draw in applicable_plots(frame, kind, ops).items():
        written[name] = save(draw(), out_dir, name)
    return written
