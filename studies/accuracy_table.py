"""The accuracy study's tables: one row per cell (``results.csv``) and one per cell over
its seeds (``summary.csv``), with the majority-class floor every cell is read against.

Standard errors: a cell's ``metric_se`` is the bootstrap standard error over its dev
examples (:func:`pruning.glue.bootstrap_se`); the summary's ``metric_se`` is the standard
error of the mean over seeds when a cell ran with several (``se_kind`` ``seeds``), else the
one seed's bootstrap error (``se_kind`` ``dev bootstrap``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from studies.accuracy import relative_artifact

__all__ = [
    "SUMMARY_COLUMNS",
    "TABLE_COLUMNS",
    "add_majority",
    "finish_table",
    "majority_metrics",
    "summarise",
]

TABLE_COLUMNS = [
    "task",
    "head",
    "seed",
    "method",
    "pattern",
    "sparsity",
    "metric_name",
    "metric",
    "metric_se",
    "dense_metric",
    "majority_metric",
    "relative_to_dense",
    "gain_retained",
    "density",
    "compression_ratio",
    "phase_steps",
    "hw",
    "speedup",
    "energy_ratio",
    "sequences_per_s",
]
GROUP = ["task", "head", "method", "pattern", "sparsity"]
SUMMARY_COLUMNS = [
    *GROUP,
    "head_kind",
    "seeds",
    "metric_name",
    "metric",
    "metric_se",
    "se_kind",
    "dense_metric",
    "majority_metric",
    "relative_to_dense",
    "relative_se",
    "gain_retained",
    "density",
    "compression_ratio",
    "phase_steps",
    "hw",
    "speedup",
    "energy_ratio",
    "sequences_per_s",
]
_DETAIL_PREFIXES = ("metric.", "se.", "relative.", "predicted.")


def finish_table(frame: pd.DataFrame, work_dir: str | Path | None = None) -> pd.DataFrame:
    """The store's frame tidied: settings columns dropped (they are in ``run.json``), the
    table columns first, then per-metric, standard-error and prediction columns, then the
    rest. With ``work_dir``, artifact paths under it are made relative to it."""
    frame = frame.drop(columns=[c for c in frame.columns if c.startswith("settings.")])
    frame = frame.drop(columns=["study"], errors="ignore")
    if work_dir is not None and "artifact" in frame.columns:
        frame = frame.assign(
            artifact=[
                p if pd.isna(p) else relative_artifact(p, work_dir) for p in frame["artifact"]
            ]
        )
    first = [c for c in TABLE_COLUMNS if c in frame.columns]
    details = sorted(c for c in frame.columns if c.startswith(_DETAIL_PREFIXES))
    rest = [c for c in frame.columns if c not in first and c not in details]
    return frame[first + details + rest].reset_index(drop=True)


def majority_metrics(task: str, settings: Mapping[str, Any], seed: int) -> dict[str, float]:
    """The task's dev metrics of a constant predictor: the train subset's most frequent
    class (the floor a collapsed model sits on); empty for regression (STS-B)."""
    from pruning.glue import compute_metrics, get_task, load_split

    glue_task = get_task(task)
    if not glue_task.labels:
        return {}
    train = load_split(
        glue_task, "train", settings["data_dir"], settings["max_train_examples"], seed
    )
    dev = load_split(glue_task, "dev", settings["data_dir"], settings["max_eval_examples"], seed)
    majority = int(np.bincount(np.asarray(train.labels, dtype=int)).argmax())
    return compute_metrics(glue_task, [majority] * len(dev.labels), dev.labels)


def _ratio(value: Any, reference: Any) -> float | None:
    if value is None or reference is None or pd.isna(value) or pd.isna(reference):
        return None
    if reference == 0 or not math.isfinite(reference):
        return None
    return float(value) / float(reference)


def add_majority(frame: pd.DataFrame, settings: Mapping[str, Any]) -> pd.DataFrame:
    """``frame`` with ``majority_metric`` (the main metric of the constant majority-class
    predictor on the same dev subset; None where the data cannot be read) and
    ``gain_retained`` = (metric - majority) / (dense - majority): the share of the dense
    model's margin over that floor the cell keeps."""
    frame = frame.copy()
    values: dict[tuple[str, int], dict[str, float]] = {}
    for task, seed in frame[["task", "seed"]].drop_duplicates().itertuples(index=False):
        try:
            values[(task, int(seed))] = majority_metrics(task, settings, int(seed))
        except (OSError, ValueError):
            values[(task, int(seed))] = {}
    frame["majority_metric"] = [
        values[(t, int(s))].get(m)
        for t, s, m in zip(frame["task"], frame["seed"], frame["metric_name"], strict=True)
    ]
    frame["gain_retained"] = [
        _ratio(
            None if pd.isna(metric) or pd.isna(floor) else metric - floor,
            None if pd.isna(dense) or pd.isna(floor) else dense - floor,
        )
        for metric, dense, floor in zip(
            frame["metric"], frame["dense_metric"], frame["majority_metric"], strict=True
        )
    ]
    return finish_table(frame)


def _mean(values: pd.Series) -> float | None:
    numbers = pd.to_numeric(values, errors="coerce").dropna()
    return float(numbers.mean()) if len(numbers) else None


def _se_of_mean(values: pd.Series) -> float | None:
    numbers = pd.to_numeric(values, errors="coerce").dropna()
    if len(numbers) < 2:
        return None
    return float(numbers.std(ddof=1) / math.sqrt(len(numbers)))


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """One row per cell over its seeds: means of the metric, its ratio to dense, the gain
    retained and the hardware columns, with standard errors (see the module docstring)."""
    rows = []
    for keys, group in table.groupby(GROUP, sort=False, dropna=False):
        seeds = len(group)
        row: dict[str, Any] = dict(zip(GROUP, keys, strict=True))
        row["head_kind"] = group["head_kind"].iloc[0] if "head_kind" in group else None
        row["seeds"] = seeds
        row["metric_name"] = group["metric_name"].iloc[0]
        row["metric"] = _mean(group["metric"])
        if seeds > 1:
            row["metric_se"], row["se_kind"] = _se_of_mean(group["metric"]), "seeds"
        else:
            row["metric_se"], row["se_kind"] = _mean(group["metric_se"]), "dev bootstrap"
        for column in ("dense_metric", "majority_metric", "relative_to_dense", "gain_retained"):
            row[column] = _mean(group[column]) if column in group else None
        row["relative_se"] = _se_of_mean(group["relative_to_dense"]) if seeds > 1 else None
        for column in (
            "density", "compression_ratio", "phase_steps", "speedup", "energy_ratio",
            "sequences_per_s",
        ):  # fmt: skip
            row[column] = _mean(group[column]) if column in group else None
        row["hw"] = group["hw"].iloc[0]
        rows.append(row)
    summary = pd.DataFrame(rows)
    return summary[[c for c in SUMMARY_COLUMNS if c in summary.columns]]
