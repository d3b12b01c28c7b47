"""The accuracy study's plots, drawn with the study framework's helpers (:mod:`studies.plots`:
``axes``, ``pareto_mask``, ``save``), from its summary table (one row per cell over seeds).

Every plot shows the dev metric relative to the dense model, with the standard error over
seeds as error bars where a cell ran with several, and a dotted line per task at the
majority-class predictor's relative metric: a pruned model on it kept nothing of what
fine-tuning learned (``gain_retained`` 0).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import pandas as pd
from matplotlib.axes import Axes

from studies.accuracy import METHOD_LABELS
from studies.plots import axes, pareto_mask

__all__ = [
    "accuracy_plots",
    "plot_metric_vs_block",
    "plot_metric_vs_compression",
    "plot_pareto_speedup",
]


def _label(task: str, head: str, method: str, pattern: str | None = None) -> str:
    parts = [task, "" if head in ("auto", None) else f"[{head}]", METHOD_LABELS.get(method, method)]
    if pattern is not None:
        parts.append(pattern)
    return " ".join(p for p in parts if p)


def _block_side(pattern: str) -> float | None:
    if pattern == "unstructured":
        return 1.0
    if pattern.startswith("block:"):
        rows, cols = pattern.split(":", 1)[1].lower().split("x")
        return math.sqrt(int(rows) * int(cols))
    return None


def _majority_floor(ax: Axes, frame: pd.DataFrame) -> None:
    """A dotted line per task at majority / dense."""
    if "majority_metric" not in frame:
        return
    rows = frame.dropna(subset=["majority_metric", "dense_metric"])
    for task, group in rows.groupby("task"):
        first = group.iloc[0]
        if first["dense_metric"]:
            ax.axhline(
                first["majority_metric"] / first["dense_metric"],
                linestyle=":",
                linewidth=0.9,
                color="black",
                alpha=0.6,
                label=f"{task} majority class",
            )


def _finish(ax: Axes, data: pd.DataFrame, xlabel: str, title: str) -> Axes:
    _majority_floor(ax, data)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("dev metric / dense dev metric")
    ax.set_title(title)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return ax


def _errors(group: pd.DataFrame) -> pd.Series | None:
    if "relative_se" not in group or group["relative_se"].isna().all():
        return None
    return group["relative_se"].fillna(0.0)


def plot_metric_vs_compression(frame: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Relative-to-dense metric against compression ratio, one line per (task, head, method,
    pattern)."""
    ax = axes(ax)
    data = frame[frame["method"] != "dense"].dropna(
        subset=["compression_ratio", "relative_to_dense"]
    )
    groups = ["task", "head", "method", "pattern"] if "head" in data else ["task", "method"]
    for keys, group in data.groupby(groups):
        group = group.sort_values("compression_ratio")
        ax.errorbar(
            group["compression_ratio"],
            group["relative_to_dense"],
            yerr=_errors(group),
            marker="o",
            capsize=3,
            label=_label(*keys) if len(keys) == 4 else " ".join(keys),
        )
    ax.axhline(1.0, color="grey", linestyle="--", linewidth=0.8, label="dense")
    if not data.empty:
        ax.set_xscale("log", base=2)
    return _finish(
        ax,
        data,
        "compression ratio (weights kept 1/x, encoder linears)",
        "Accuracy retention vs compression",
    )


def plot_metric_vs_block(
    frame: pd.DataFrame, sparsity: float | None = None, ax: Axes | None = None
) -> Axes:
    """Relative metric against block side (unstructured = 1) at one sparsity."""
    ax = axes(ax)
    data = frame[frame["method"] != "dense"].copy()
    if sparsity is None and not data.empty:
        sparsity = float(data["sparsity"].max())
    data = data[(data["sparsity"] - (sparsity or 0.0)).abs() < 1e-9]
    data["block_side"] = data["pattern"].map(_block_side)
    data = data.dropna(subset=["block_side", "relative_to_dense"])
    groups = ["task", "head", "method"] if "head" in data else ["task", "method"]
    for keys, group in data.groupby(groups):
        group = group.sort_values("block_side")
        ax.errorbar(
            group["block_side"],
            group["relative_to_dense"],
            yerr=_errors(group),
            marker="o",
            capsize=3,
            label=_label(*keys) if len(keys) == 3 else " ".join(keys),
        )
    if not data.empty:
        ax.set_xscale("log", base=2)
    return _finish(
        ax,
        data,
        "block side (sqrt of block area; 1 = unstructured)",
        f"Accuracy retention vs block size at {100 * (sparsity or 0):.0f}% sparsity",
    )


def plot_pareto_speedup(frame: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Relative metric against simulated speedup; per task, the cells no other cell beats in
    both (``studies.plots.pareto_mask`` on speedup and metric, both maximised) joined by a
    line."""
    ax = axes(ax)
    groups = ["task", "head", "method"] if "head" in frame else ["task", "method"]
    for keys, group in frame.groupby(groups):
        ax.scatter(
            group["speedup"],
            group["relative_to_dense"],
            label=_label(*keys) if len(keys) == 3 else " ".join(keys),
        )
    for _task, group in frame.dropna(subset=["speedup", "relative_to_dense"]).groupby("task"):
        flipped = pd.DataFrame({"s": -group["speedup"], "m": -group["relative_to_dense"]})
        front = group[pareto_mask(flipped, ["s", "m"])].sort_values("speedup")
        if len(front) > 1:
            ax.plot(front["speedup"], front["relative_to_dense"], color="grey", linewidth=0.8)
    return _finish(
        ax,
        frame,
        "simulated speedup vs dense (same hardware)",
        "Accuracy vs throughput (co-design join)",
    )


def accuracy_plots(frame: pd.DataFrame) -> dict[str, Callable[[], Axes]]:
    """Plot name -> a function drawing it, for ``studies.plots.save_all``."""
    if frame.empty:
        return {}
    return {
        "metric_vs_compression": functools.partial(plot_metric_vs_compression, frame),
        "metric_vs_block_size": functools.partial(plot_metric_vs_block, frame),
        "accuracy_vs_speedup": functools.partial(plot_pareto_speedup, frame),
    }
