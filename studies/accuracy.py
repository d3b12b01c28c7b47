"""Accuracy study (issue 7, items 4-5): task metric of pruned models joined with their
simulated speedup and energy on a hardware preset, one row per cell.

A cell is (task, method, pattern, sparsity). Per task the dense model is fine-tuned once
(the *teacher*, cached under ``<work_dir>/teachers/``); it is the ``dense`` cell, the
reference every other cell is divided by, the starting point of the methods that prune a
fine-tuned model (one-shot magnitude, gradual magnitude, reweighted group lasso) and the
teacher of pruning at distilling (whose student starts from the pre-trained weights, as in
SparseBERT). Every cell's artifact is then simulated on ``hw`` (by default
:data:`BLOCK_HW` for block patterns and :data:`UNSTRUCTURED_HW` otherwise) against its own
dense baseline, so one table gives accuracy vs compression and accuracy vs throughput.

Cells are evaluated by :func:`studies.runner.run_points` into a
:class:`~studies.store.ResultStore`: a killed study resumes per cell. A cell's wall times
(:data:`WALL_TIME_FIELDS`) are stored beside its row, not in it, and its artifact path is
relative to the work directory, so the same options and seed give a byte-identical table.
Library code only; ``studies/accuracy_cmd.py`` is the command line.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = [
    "BLOCK_HW",
    "METHODS",
    "UNSTRUCTURED_HW",
    "WALL_TIME_FIELDS",
    "AccuracySettings",
    "cell_points",
    "dense_fine_tune_seconds",
    "estimate_seconds",
    "evaluate_cell",
    "finish_table",
    "hardware_for",
    "plot_metric_vs_block",
    "plot_metric_vs_compression",
    "plot_pareto_speedup",
    "prepare_teachers",
    "relative_artifact",
    "render_markdown",
    "save_plots",
    "teacher_dir",
]

# study method name -> pruning.job method
METHODS: dict[str, str] = {
    "dense": "dense",
    "magnitude": "magnitude",
    "gradual": "gradual",
    "group-lasso": "group-lasso",
    "distill": "distill",
}
METHOD_LABELS = {
    "dense": "dense fine-tune",
    "magnitude": "one-shot magnitude + fine-tune",
    "gradual": "gradual magnitude",
    "group-lasso": "reweighted group lasso",
    "distill": "pruning at distilling",
}
BLOCK_HW = "systolic-32x32-ws-skip"
UNSTRUCTURED_HW = "eie-64pe"
DENSE_PATTERN = "dense"
# Measured on the 2-core machine (pruning-algorithms.md 7.3 and this study): MiniLM-L6 train
# step at batch 32, sequence length 128, two threads; cost scales about linearly in length.
STEP_S_AT_128 = 2.5
# Relative cost per training step: distillation also runs the teacher and its hidden states.
STEP_FACTOR = {"dense": 1.0, "magnitude": 1.0, "gradual": 1.1, "group-lasso": 1.2, "distill": 2.0}
# Row fields of evaluate_cell that are wall times: the store keeps them beside the row
# (ResultStore(timing_fields=...)), run.json lists them; never in the table.
WALL_TIME_FIELDS = frozenset({"train_s", "seconds"})


@dataclass(frozen=True)
class AccuracySettings:
    """Training settings shared by every cell (all stated in ``run.json``)."""

    model: str = "all-MiniLM-L6-v2"
    max_train_examples: int | None = 1000
    max_eval_examples: int | None = 1000
    seq_len: int = 128
    epochs: float = 3.0
    distill_epochs: float | None = None  # default: epochs
    batch_size: int = 32
    lr: float = 5e-5
    seed: int = 0
    hw: str | None = None  # None: BLOCK_HW for block patterns, UNSTRUCTURED_HW otherwise
    data_dir: str | None = None

    def record(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def student_epochs(self) -> float:
        return self.epochs if self.distill_epochs is None else self.distill_epochs


def hardware_for(pattern: str, hw: str | None) -> str:
    """The preset a cell is simulated on: ``hw``, else skipping systolic for blocks."""
    if hw is not None:
        return hw
    return BLOCK_HW if pattern.startswith("block:") else UNSTRUCTURED_HW


def cell_points(
    tasks: Sequence[str],
    methods: Sequence[str],
    patterns: Sequence[str],
    sparsities: Sequence[float],
    settings: AccuracySettings,
) -> list[dict[str, Any]]:
    """Every cell's full configuration, highest-priority first: per sparsity (lowest first),
    then task, pattern, method; one ``dense`` cell per task up front."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}: expected some of {sorted(METHODS)}")
    base = settings.record()
    points: list[dict[str, Any]] = []
    if "dense" in methods:
        for task in tasks:
            points.append(_point(base, task, "dense", DENSE_PATTERN, 0.0, settings))
    for sparsity in sorted(sparsities):
        for task in tasks:
            for pattern in patterns:
                for method in methods:
                    if method != "dense":
                        points.append(_point(base, task, method, pattern, sparsity, settings))
    return points


def _point(
    base: dict[str, Any],
    task: str,
    method: str,
    pattern: str,
    sparsity: float,
    settings: AccuracySettings,
) -> dict[str, Any]:
    hw_pattern = "unstructured" if pattern == DENSE_PATTERN else pattern
    return {
        "study": "accuracy",
        "task": task,
        "method": method,
        "pattern": pattern,
        "sparsity": float(sparsity),
        "hw": hardware_for(hw_pattern, settings.hw),
        "settings": {k: v for k, v in base.items() if k != "hw"},
    }


def _teacher_fields(task: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "model": settings["model"],
        "task": task,
        "data_dir": settings["data_dir"],
        "max_train_examples": settings["max_train_examples"],
        "max_eval_examples": settings["max_eval_examples"],
        "max_seq_len": settings["seq_len"],
        "epochs": settings["epochs"],
        "batch_size": settings["batch_size"],
        "lr": settings["lr"],
        "seed": settings["seed"],
    }


def teacher_dir(work_dir: str | Path, task: str, settings: Mapping[str, Any]) -> Path:
    """Where the dense fine-tuned model of ``task`` under ``settings`` is cached."""
    fields = _teacher_fields(task, settings)
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:12]
    return Path(work_dir) / "teachers" / f"{task}-{digest}"


def _has_artifact(path: Path) -> bool:
    return (path / "manifest.json").is_file() and (path / "model.safetensors").is_file()


def _teacher_job(task: str, settings: Mapping[str, Any], source: str = "<arguments>"):
    """The dense fine-tune: magnitude at sparsity 0 keeps every weight."""
    from pruning.job import prune_job

    fields = _teacher_fields(task, settings)
    epochs = fields.pop("epochs")
    return prune_job(
        source,
        pattern="unstructured",
        sparsity=0.0,
        method="magnitude",
        epochs=epochs,
        progress=False,
        **fields,
    )


def _ensure_teacher(work_dir: str | Path, task: str, settings: Mapping[str, Any]) -> Path:
    from pruning.pipeline import run_prune

    path = teacher_dir(work_dir, task, settings)
    if not _has_artifact(path):
        # artifact written atomically by run_prune: a killed run leaves no half teacher
        run_prune(_teacher_job(task, settings), path)
    return path


def check_cells(points: Sequence[Mapping[str, Any]]) -> None:
    """Check every cell's task, model, pattern, sparsity, hardware and training settings
    before anything trains; a ValueError names the cell, the field and the expected form."""
    from accel_sim.spec import load_hardware
    from pruning.glue import get_task
    from pruning.job import PruneJobError, prune_job
    from pruning.patterns import PatternError, check_fits
    from pruning.targets import target_shapes
    from workloads import load_config

    checked: set[tuple[str, str]] = set()
    configs: dict[str, Any] = {}
    for point in points:
        task, settings = point["task"], point["settings"]
        get_task(task)  # GlueDataError: unknown task
        cell = f"of cell {task} {point['method']} {point['pattern']} {point['sparsity']:g}"
        job = None
        try:
            if ("teacher", task) not in checked:
                _teacher_job(task, settings, f"{cell} (dense fine-tune)")
            if point["method"] != "dense":
                job = prune_job(cell, **_prune_fields(point, Path("teacher")))
        except PruneJobError as error:
            raise ValueError(f"{error} (see cosim study accuracy --help)") from None
        checked.add(("teacher", task))
        if ("hw", point["hw"]) not in checked:
            load_hardware(point["hw"])  # HardwareConfigError: unknown preset or bad file
            checked.add(("hw", point["hw"]))
        if settings["model"] not in configs:
            # WorkloadError: unknown or non-BERT model
            configs[settings["model"]] = load_config(settings["model"])
        if job is not None:  # the pattern must prune the model, as the pipeline will check
            shapes = target_shapes(configs[settings["model"]], job.include)
            try:
                check_fits(job.parsed_pattern, shapes, job.scope)
            except PatternError as error:
                raise ValueError(f"{error} ({cell}; see cosim study accuracy --help)") from None


def prepare_teachers(
    points: Sequence[Mapping[str, Any]],
    work_dir: str | Path,
    report: Callable[[str], None] | None = None,
) -> dict[str, Path]:
    """Fine-tune (or find cached) the dense model of every task the points need, in this
    process, before the cells run (so parallel workers never train the same teacher)."""
    report = report or (lambda message: None)
    done: dict[str, Path] = {}
    for point in points:
        task = point["task"]
        if task in done:
            continue
        path = teacher_dir(work_dir, task, point["settings"])
        cached = _has_artifact(path)
        started = time.perf_counter()
        done[task] = _ensure_teacher(work_dir, task, point["settings"])
        if not cached:
            report(f"dense fine-tune of {task}: {time.perf_counter() - started:.0f} s -> {path}")
    return done


def dense_fine_tune_seconds(
    points: Sequence[Mapping[str, Any]], work_dir: str | Path
) -> dict[str, float | None]:
    """Per task, the wall time of its dense fine-tune (from the cached teacher's manifest;
    None where the teacher is missing or does not record it)."""
    from pruning.artifact import ArtifactError, load_artifact

    seconds: dict[str, float | None] = {}
    for point in points:
        task = point["task"]
        if task in seconds:
            continue
        path = teacher_dir(work_dir, task, point["settings"])
        try:
            value = load_artifact(path).manifest["schedule"].get("seconds")
        except (ArtifactError, OSError, KeyError, AttributeError):
            value = None
        seconds[task] = float(value) if isinstance(value, int | float) else None
    return seconds


def _final_metrics(metrics: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """The metrics of the last phase (phases are recorded in order)."""
    if not metrics:
        return {}
    last = [name for name in metrics if name != "teacher"][-1]
    return dict(metrics[last])


def _prune_fields(point: Mapping[str, Any], teacher: Path) -> dict[str, Any]:
    s = point["settings"]
    method = point["method"]
    fields = {
        "model": str(teacher),
        "task": point["task"],
        "data_dir": s["data_dir"],
        "pattern": point["pattern"],
        "sparsity": point["sparsity"],
        "method": method,
        "max_train_examples": s["max_train_examples"],
        "max_eval_examples": s["max_eval_examples"],
        "max_seq_len": s["seq_len"],
        "epochs": s["epochs"],
        "batch_size": s["batch_size"],
        "lr": s["lr"],
        "seed": s["seed"],
        "progress": False,
    }
    if method == "distill":  # student from the pre-trained weights, teacher fine-tuned
        fields["model"] = s["model"]
        fields["teacher"] = teacher
        fields["epochs"] = s["epochs"] if s.get("distill_epochs") is None else s["distill_epochs"]
    return fields


def _simulate(artifact: Path, hw: str, seq_len: int) -> dict[str, Any]:
    from accel_sim import simulate
    from accel_sim.spec import load_hardware
    from pruning.artifact import load_artifact
    from workloads import attach_artifact, build_workload

    workload = attach_artifact(build_workload(str(artifact), 1, seq_len), load_artifact(artifact))
    result = simulate(workload, load_hardware(hw), baseline=True)
    return {
        "speedup": result.speedup,
        "energy_ratio": result.energy_ratio,
        "sequences_per_s": result.sequences_per_s,
        "latency_s": result.latency_s,
        "energy_j": result.energy_j,
    }


def evaluate_cell(point: Mapping[str, Any], work_dir: str) -> dict[str, Any]:
    """Train/prune one cell, evaluate it on the dev split and simulate its artifact.

    Returns the cell's row: final dev metrics (``metric.<name>``), the main metric and its
    ratio to the dense model's, density and compression ratio from the manifest, the
    simulated speedup / energy ratio / sequences per second, the artifact path relative to
    ``work_dir``, and the wall times :data:`WALL_TIME_FIELDS` (``train_s`` up to the trained
    artifact, ``seconds`` in all; a dense cell's exclude the fine-tune), which the store
    keeps out of the table.
    """
    from pruning.artifact import load_artifact
    from pruning.glue import get_task
    from pruning.job import prune_job
    from pruning.pipeline import run_prune

    started = time.perf_counter()
    s = point["settings"]
    task = get_task(point["task"])
    teacher = _ensure_teacher(work_dir, point["task"], s)
    dense_manifest = load_artifact(teacher).manifest
    dense = _final_metrics(dense_manifest["training"]["metrics"])
    if point["method"] == "dense":
        artifact, manifest, metrics = teacher, dense_manifest, dense
    else:
        from pruning.job import PruneJobError

        out = Path(work_dir) / "cells" / _cell_name(point)
        try:
            job = prune_job(**_prune_fields(point, teacher))
        except PruneJobError as error:
            raise ValueError(str(error)) from None
        outcome = run_prune(job, out)
        artifact, manifest = outcome.artifact, outcome.manifest
        metrics = _final_metrics(outcome.metrics)
    main = task.main_metric
    row: dict[str, Any] = {
        "metric_name": main,
        "metric": metrics.get(main),
        "dense_metric": dense.get(main),
        "relative_to_dense": _ratio(metrics.get(main), dense.get(main)),
    }
    for name, value in sorted(metrics.items()):
        row[f"metric.{name}"] = value
        row[f"relative.{name}"] = _ratio(value, dense.get(name))
    row["density"] = manifest["density"]
    row["compression_ratio"] = manifest["compression_ratio"]
    row["train_examples"] = manifest["training"]["train"]["examples"]
    row["dev_examples"] = manifest["training"]["dev"]["examples"]
    row["train_s"] = time.perf_counter() - started
    row.update(_simulate(Path(artifact), point["hw"], int(s["seq_len"])))
    row["artifact"] = relative_artifact(str(artifact), work_dir)
    row["seconds"] = time.perf_counter() - started
    return row


def relative_artifact(path: str, work_dir: str | Path) -> str:
    """``path`` relative to ``work_dir`` when it lies under it (rows stored by older versions
    hold absolute paths), else unchanged: the table does not depend on where the work is."""
    try:
        return Path(path).relative_to(Path(work_dir).resolve()).as_posix()
    except ValueError:
        return path


def _ratio(value: float | None, reference: float | None) -> float | None:
    if value is None or reference is None or reference == 0 or not math.isfinite(reference):
        return None
    return float(value) / float(reference)


def _cell_name(point: Mapping[str, Any]) -> str:
    from studies.store import point_key

    pattern = point["pattern"].replace(":", "")
    return f"{point['task']}-{point['method']}-{pattern}-{point['sparsity']:g}-{point_key(point)}"


def estimate_seconds(points: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """A rough wall-time estimate from the step count (``STEP_S_AT_128`` scaled by length).

    Returns ``{"teachers": s, "cells": s, "total": s, "per_cell_max": s}``.
    """
    teachers: set[str] = set()
    teacher_s = cells_s = per_cell = 0.0
    for point in points:
        s = point["settings"]
        examples = s["max_train_examples"] or 3000
        steps_per_epoch = math.ceil(examples / s["batch_size"])
        step_s = STEP_S_AT_128 * s["seq_len"] / 128 * s["batch_size"] / 32
        if point["task"] not in teachers:
            teachers.add(point["task"])
            teacher_s += steps_per_epoch * s["epochs"] * step_s
        method = point["method"]
        if method == "dense":
            cell = 30.0
        else:
            epochs = s["epochs"]
            if method == "distill" and s.get("distill_epochs") is not None:
                epochs = s["distill_epochs"]
            if method == "group-lasso":
                epochs *= 2  # penalised training, then as long again of fixed-mask retraining
            cell = steps_per_epoch * epochs * step_s * STEP_FACTOR[method] + 60.0
        cells_s += cell
        per_cell = max(per_cell, cell)
    return {
        "teachers": teacher_s,
        "cells": cells_s,
        "total": teacher_s + cells_s,
        "per_cell_max": per_cell,
    }


# ----------------------------------------------------------------------------- table

TABLE_COLUMNS = [
    "task",
    "method",
    "pattern",
    "sparsity",
    "metric_name",
    "metric",
    "dense_metric",
    "majority_metric",
    "relative_to_dense",
    "gain_retained",
    "density",
    "compression_ratio",
    "hw",
    "speedup",
    "energy_ratio",
    "sequences_per_s",
]


def finish_table(frame: pd.DataFrame, work_dir: str | Path | None = None) -> pd.DataFrame:
    """The store's frame tidied: settings columns dropped (they are in ``run.json``), the
    table columns first, then per-metric columns, then the rest. With ``work_dir``, artifact
    paths under it are made relative to it (see :func:`relative_artifact`)."""
    frame = frame.drop(columns=[c for c in frame.columns if c.startswith("settings.")])
    frame = frame.drop(columns=["study"], errors="ignore")
    if work_dir is not None and "artifact" in frame.columns:
        frame = frame.assign(
            artifact=[
                p if pd.isna(p) else relative_artifact(p, work_dir) for p in frame["artifact"]
            ]
        )
    first = [c for c in TABLE_COLUMNS if c in frame.columns]
    metric_cols = sorted(c for c in frame.columns if c.startswith(("metric.", "relative.")))
    rest = [c for c in frame.columns if c not in first and c not in metric_cols]
    return frame[first + metric_cols + rest].reset_index(drop=True)


def majority_metrics(task: str, settings: Mapping[str, Any]) -> dict[str, float]:
    """The task's dev metrics of a constant predictor: the train subset's most frequent
    class (the floor a collapsed model sits on); empty for regression (STS-B)."""
    import numpy as np

    from pruning.glue import compute_metrics, get_task, load_split

    glue_task = get_task(task)
    if not glue_task.labels:
        return {}
    seed = settings["seed"]
    train = load_split(
        glue_task, "train", settings["data_dir"], settings["max_train_examples"], seed
    )
    dev = load_split(glue_task, "dev", settings["data_dir"], settings["max_eval_examples"], seed)
    majority = int(np.bincount(np.asarray(train.labels, dtype=int)).argmax())
    return compute_metrics(glue_task, [majority] * len(dev.labels), dev.labels)


def add_majority(frame: pd.DataFrame, settings: Mapping[str, Any]) -> pd.DataFrame:
    """``frame`` with ``majority_metric`` (the main metric of the constant majority-class
    predictor on the same dev subset; None where the data cannot be read) and
    ``gain_retained`` = (metric - majority) / (dense - majority): the share of the dense
    model's margin over that floor the cell keeps."""
    frame = frame.copy()
    values = {}
    for task in frame["task"].unique():
        try:
            scores = majority_metrics(task, settings)
        except (OSError, ValueError):
            scores = {}
        values[task] = scores
    frame["majority_metric"] = [
        values[t].get(m) for t, m in zip(frame["task"], frame["metric_name"], strict=True)
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


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def render_markdown(frame: pd.DataFrame, columns: Sequence[str] | None = None) -> str:
    """A GitHub markdown table of ``frame`` (without needing ``tabulate``)."""
    columns = [c for c in (columns or TABLE_COLUMNS) if c in frame.columns]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for _, row in frame.iterrows():
        lines.append("| " + " | ".join(_fmt(row[c]) for c in columns) + " |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- plots


def _axes(ax: Any) -> Any:
    if ax is not None:
        return ax
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=(7.0, 4.5))
    return ax


def _block_side(pattern: str) -> float | None:
    if pattern == "unstructured":
        return 1.0
    if pattern.startswith("block:"):
        rows, cols = pattern.split(":", 1)[1].lower().split("x")
        return math.sqrt(int(rows) * int(cols))
    return None


def _majority_floor(ax: Any, frame: pd.DataFrame) -> None:
    """A dotted line per task at the majority-class predictor's relative metric: a pruned
    model on it has kept nothing of what fine-tuning learned (``gain_retained`` 0)."""
    if "majority_metric" not in frame:
        return
    rows = frame.dropna(subset=["majority_metric", "dense_metric"])
    for task, group in rows.groupby("task"):
        first = group.iloc[0]
        if first["dense_metric"]:
            floor = first["majority_metric"] / first["dense_metric"]
            ax.axhline(
                floor,
                linestyle=":",
                linewidth=0.9,
                color="black",
                alpha=0.6,
                label=f"{task} majority class",
            )


def _finish(ax: Any, data: pd.DataFrame, xlabel: str, title: str) -> Any:
    """What every accuracy plot ends with: the majority-class floors, labels and legend."""
    _majority_floor(ax, data)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("dev metric / dense dev metric")
    ax.set_title(title)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    return ax


def plot_metric_vs_compression(frame: pd.DataFrame, ax: Any = None) -> Any:
    """Relative-to-dense metric against compression ratio, one line per (task, method)."""
    ax = _axes(ax)
    data = frame[frame["method"] != "dense"].dropna(
        subset=["compression_ratio", "relative_to_dense"]
    )
    for (task, method, pattern), group in data.groupby(["task", "method", "pattern"]):
        group = group.sort_values("compression_ratio")
        ax.plot(
            group["compression_ratio"],
            group["relative_to_dense"],
            marker="o",
            label=f"{task} {METHOD_LABELS.get(method, method)} {pattern}",
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


def plot_metric_vs_block(frame: pd.DataFrame, sparsity: float | None = None, ax: Any = None) -> Any:
    """Relative metric against block side (unstructured = 1) at one sparsity."""
    ax = _axes(ax)
    data = frame[frame["method"] != "dense"].copy()
    if sparsity is None and not data.empty:
        sparsity = float(data["sparsity"].max())
    data = data[(data["sparsity"] - (sparsity or 0.0)).abs() < 1e-9]
    data["block_side"] = data["pattern"].map(_block_side)
    data = data.dropna(subset=["block_side", "relative_to_dense"])
    for (task, method), group in data.groupby(["task", "method"]):
        group = group.sort_values("block_side")
        ax.plot(
            group["block_side"],
            group["relative_to_dense"],
            marker="o",
            label=f"{task} {METHOD_LABELS.get(method, method)}",
        )
    if not data.empty:
        ax.set_xscale("log", base=2)
    return _finish(
        ax,
        data,
        "block side (sqrt of block area; 1 = unstructured)",
        f"Accuracy retention vs block size at {100 * (sparsity or 0):.0f}% sparsity",
    )


def plot_pareto_speedup(frame: pd.DataFrame, ax: Any = None) -> Any:
    """Relative metric against simulated speedup; the Pareto front per task drawn as a line."""
    ax = _axes(ax)
    for (task, method), group in frame.groupby(["task", "method"]):
        ax.scatter(
            group["speedup"],
            group["relative_to_dense"],
            label=f"{task} {METHOD_LABELS.get(method, method)}",
        )
    for _task, group in frame.dropna(subset=["speedup", "relative_to_dense"]).groupby("task"):
        ordered = group.sort_values("speedup", ascending=False)
        best, front = -math.inf, []
        for _, row in ordered.iterrows():
            if row["relative_to_dense"] > best:
                best = row["relative_to_dense"]
                front.append((row["speedup"], best))
        if len(front) > 1:
            xs, ys = zip(*sorted(front), strict=True)
            ax.plot(xs, ys, color="grey", linewidth=0.8)
    return _finish(
        ax,
        frame,
        "simulated speedup vs dense (same hardware)",
        "Accuracy vs throughput (co-design join)",
    )


def save_plots(frame: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """Write the three plots as PNG under ``out_dir`` (each atomically); returns the paths."""
    import matplotlib

    from safeio.atomic import atomic_write_with

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for stem, draw in (
        ("metric_vs_compression", plot_metric_vs_compression),
        ("metric_vs_block_size", plot_metric_vs_block),
        ("accuracy_vs_speedup", plot_pareto_speedup),
    ):
        ax = draw(frame)
        path = out / f"{stem}.png"
        ax.figure.tight_layout()
        try:
            atomic_write_with(path, functools.partial(ax.figure.savefig, format="png", dpi=110))
        finally:
            plt.close(ax.figure)
        written.append(path)
    return written
