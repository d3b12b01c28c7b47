"""Accuracy study: task metric of pruned models joined with their simulated speedup and
energy on a hardware preset, one row per cell.

A cell is (task, head, seed, method, pattern, sparsity). Per (task, head, seed) the dense
model is fine-tuned once (the *teacher*, cached under ``<work_dir>/teachers/``); it is the
``dense`` cell, the reference every other cell of that seed is divided by, the starting
point of the methods that prune a fine-tuned model (one-shot magnitude, gradual magnitude,
reweighted group lasso) and the teacher of pruning at distilling (``distill``, and
``distill-mixkd`` with MixKD), whose student starts from the pre-trained weights as in
SparseBERT, or from the teacher itself with ``student_init`` fine-tuned. Every cell's
artifact is then simulated on ``hw`` (by default :data:`BLOCK_HW` for block patterns and
:data:`UNSTRUCTURED_HW` otherwise) against its own dense baseline, under the workload of its
head (a bi-encoder runs its pair as two sequences), so one table gives accuracy vs
compression and accuracy vs throughput.

Cells are evaluated by :func:`studies.runner.run_points` into a
:class:`~studies.store.ResultStore`: a killed study resumes per cell, and inside a cell every
training phase checkpoints (``checkpoint_every``), so a long cell continues where the last
invocation of the same command stopped. The teacher's outputs on the training set are cached
once per teacher and shared by its distillation cells. A cell's wall times
(:data:`WALL_TIME_FIELDS`) are stored beside its row, not in it, and its artifact path is
relative to the work directory, so the same options and seeds give a byte-identical table.
The table, its summary over seeds and the plots are :mod:`studies.accuracy_table` and
:mod:`studies.accuracy_plots`; ``studies/accuracy_cmd.py`` is the command line.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "AUTO_HEAD",
    "BLOCK_HW",
    "METHODS",
    "METHOD_LABELS",
    "UNSTRUCTURED_HW",
    "WALL_TIME_FIELDS",
    "AccuracySettings",
    "cell_points",
    "check_cells",
    "dense_fine_tune_seconds",
    "estimate_seconds",
    "evaluate_cell",
    "hardware_for",
    "prepare_teachers",
    "relative_artifact",
    "teacher_dir",
]

# study method name -> pruning.job method
METHODS: dict[str, str] = {
    "dense": "dense",
    "magnitude": "magnitude",
    "gradual": "gradual",
    "group-lasso": "group-lasso",
    "distill": "distill",
    "distill-mixkd": "distill",
}
METHOD_LABELS = {
    "dense": "dense fine-tune",
    "magnitude": "one-shot magnitude + fine-tune",
    "gradual": "gradual magnitude",
    "group-lasso": "reweighted group lasso",
    "distill": "pruning at distilling",
    "distill-mixkd": "pruning at distilling + MixKD",
}
AUTO_HEAD = "auto"  # the model's own default head (mean for sentence-transformers MiniLM)
BLOCK_HW = "systolic-32x32-ws-skip"
UNSTRUCTURED_HW = "eie-64pe"
DENSE_PATTERN = "dense"
# Seconds per training step of MiniLM-L6 at batch 32 on one thread with dynamic padding:
# a fixed part plus a part per token of the batch's longest example (0.61 s measured at SST-2's
# ~14 tokens and 2.3 s padded to 64; issue 19), and typical longest-in-batch lengths per task
# (MiniLM tokenizer, whole pair for cross-encoders).
STEP_S_FIXED = 0.25
STEP_S_PER_TOKEN = 0.03
TYPICAL_TOKENS = {"SST-2": 30, "CoLA": 20, "MRPC": 70, "STS-B": 45, "RTE": 140, "QNLI": 80}
# Training examples of each task on disk (shared/data/glue/SOURCES.md; QNLI: half of dev).
TRAIN_EXAMPLES = {
    "SST-2": 67349, "CoLA": 8551, "MRPC": 3668, "STS-B": 5749, "RTE": 2490, "QNLI": 2731,
}  # fmt: skip
# A new bi-encoder classifier starts as the cosine rule fitted on up to
# pruning.cosine_head.MAX_FIT_EXAMPLES training pairs: each sentence encoded on its own,
# forward only, about a third of a training step per batch of 32 sentences.
COSINE_FIT_PAIRS = 2048
FORWARD_STEP_FRACTION = 1 / 3
# Relative cost per training step: distillation also runs the teacher unless its outputs
# are cached; MixKD adds a teacher and a student forward (and backward) on the mixed batch.
STEP_FACTOR = {
    "dense": 1.0, "magnitude": 1.0, "gradual": 1.1, "group-lasso": 1.2,
    "distill": 1.1, "distill-mixkd": 2.3,
}  # fmt: skip
# Row fields of evaluate_cell that are wall times: the store keeps them beside the row
# (ResultStore(timing_fields=...)), run.json lists them; never in the table.
WALL_TIME_FIELDS = frozenset({"train_s", "seconds"})


@dataclass(frozen=True)
class AccuracySettings:
    """Training settings shared by every cell (all stated in ``run.json``). ``epochs`` is
    the dense fine-tune; ``prune_epochs`` the pruning phase of every method (default
    ``epochs``); ``distill_epochs`` that of the distillation cells (default
    ``prune_epochs``); ``prune_lr`` the learning rate of the pruning phases (default
    ``lr``). ``None`` train/eval limits mean the whole split."""

    model: str = "all-MiniLM-L6-v2"
    max_train_examples: int | None = 1000
    max_eval_examples: int | None = 1000
    seq_len: int = 128
    epochs: float = 3.0
    prune_epochs: float | None = None
    distill_epochs: float | None = None
    batch_size: int = 32
    lr: float = 5e-5
    prune_lr: float | None = None  # the pruning phases' learning rate (default lr)
    optimizer_preset: str | None = None
    warmup_ratio: float = 0.1
    lr_schedule: str = "linear"
    student_init: str = "pre-trained"
    kd_mode: str = "full"
    kd_cache: str = "logits"
    mixkd_weight: float = 1.0
    schedule_shape: str = "cubic"
    update_every: int | None = None
    checkpoint_every: int = 200
    hw: str | None = None  # None: BLOCK_HW for block patterns, UNSTRUCTURED_HW otherwise
    data_dir: str | None = None

    def record(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def pruning_epochs(self) -> float:
        return self.epochs if self.prune_epochs is None else self.prune_epochs

    @property
    def student_epochs(self) -> float:
        return self.pruning_epochs if self.distill_epochs is None else self.distill_epochs


def hardware_for(pattern: str, hw: str | None) -> str:
    """The preset a cell is simulated on: ``hw``, else skipping systolic for blocks."""
    if hw is not None:
        return hw
    return BLOCK_HW if pattern.startswith("block:") else UNSTRUCTURED_HW


def _pairs_only(head: str, task: str) -> bool:
    from pruning.glue import get_task

    return head == "bi-encoder" and get_task(task).text_b is None


def cell_points(
    tasks: Sequence[str],
    methods: Sequence[str],
    patterns: Sequence[str],
    sparsities: Sequence[float],
    settings: AccuracySettings,
    heads: Sequence[str] = (AUTO_HEAD,),
    seeds: Sequence[int] = (0,),
) -> list[dict[str, Any]]:
    """Every cell's full configuration, highest-priority first: the dense cells up front,
    then per sparsity (lowest first) task, head, seed, pattern, method. A bi-encoder is
    built for sentence pairs: (bi-encoder, single-sentence task) combinations are left out."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}: expected some of {sorted(METHODS)}")
    base = settings.record()
    combos = [
        (task, head, seed)
        for task in tasks
        for head in heads
        for seed in seeds
        if not _pairs_only(head, task)
    ]
    points: list[dict[str, Any]] = []
    if "dense" in methods:
        for task, head, seed in combos:
            points.append(_point(base, task, head, seed, "dense", DENSE_PATTERN, 0.0, settings))
    for sparsity in sorted(sparsities):
        for task, head, seed in combos:
            for pattern in patterns:
                for method in methods:
                    if method != "dense":
                        points.append(
                            _point(base, task, head, seed, method, pattern, sparsity, settings)
                        )
    return points


def _point(
    base: dict[str, Any],
    task: str,
    head: str,
    seed: int,
    method: str,
    pattern: str,
    sparsity: float,
    settings: AccuracySettings,
) -> dict[str, Any]:
    hw_pattern = "unstructured" if pattern == DENSE_PATTERN else pattern
    return {
        "study": "accuracy",
        "task": task,
        "head": head,
        "seed": int(seed),
        "method": method,
        "pattern": pattern,
        "sparsity": float(sparsity),
        "hw": hardware_for(hw_pattern, settings.hw),
        "settings": {k: v for k, v in base.items() if k != "hw"},
    }


# ----------------------------------------------------------------------------- teachers


def _recipe(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The training-recipe fields every job of the study shares."""
    return {
        "data_dir": settings["data_dir"],
        "max_train_examples": settings["max_train_examples"],
        "max_eval_examples": settings["max_eval_examples"],
        "max_seq_len": settings["seq_len"],
        "batch_size": settings["batch_size"],
        "lr": settings["lr"],
        "optimizer_preset": settings["optimizer_preset"],
        "warmup_ratio": settings["warmup_ratio"],
        "lr_schedule": settings["lr_schedule"],
    }


def _head_field(head: str) -> dict[str, Any]:
    return {} if head == AUTO_HEAD else {"head": head}


def _teacher_fields(point: Mapping[str, Any]) -> dict[str, Any]:
    s = point["settings"]
    return {
        "model": s["model"],
        "task": point["task"],
        **_head_field(point["head"]),
        **_recipe(s),
        "epochs": s["epochs"],
        "seed": point["seed"],
    }


def teacher_dir(work_dir: str | Path, point: Mapping[str, Any]) -> Path:
    """Where the dense fine-tuned model of ``point``'s task, head and seed is cached."""
    fields = _teacher_fields(point)
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:12]
    return Path(work_dir) / "teachers" / f"{point['task']}-{digest}"


def _has_artifact(path: Path) -> bool:
    return (path / "manifest.json").is_file() and (path / "model.safetensors").is_file()


def _checkpointing(path: Path, settings: Mapping[str, Any]) -> dict[str, Any]:
    """Checkpoint every training phase beside ``path`` and continue from the newest one: a
    long cell killed part-way resumes when the same command runs again."""
    return {
        "checkpoint_every": settings["checkpoint_every"],
        "checkpoint_dir": path.with_name(path.name + ".ckpt"),
        "resume": True,
    }


def _teacher_job(point: Mapping[str, Any], work_dir: str | Path | None, source: str):
    """The dense fine-tune: magnitude at sparsity 0 keeps every weight."""
    from pruning.job import prune_job

    fields = _teacher_fields(point)
    epochs = fields.pop("epochs")
    extra = {}
    if work_dir is not None:
        extra = _checkpointing(teacher_dir(work_dir, point), point["settings"])
    return prune_job(
        source,
        pattern="unstructured",
        sparsity=0.0,
        method="magnitude",
        epochs=epochs,
        progress=False,
        **fields,
        **extra,
    )


def _ensure_teacher(work_dir: str | Path, point: Mapping[str, Any]) -> Path:
    from pruning.pipeline import run_prune

    path = teacher_dir(work_dir, point)
    if not _has_artifact(path):
        # artifact written atomically by run_prune: a killed run leaves no half teacher
        run_prune(_teacher_job(point, work_dir, "<dense fine-tune>"), path)
    return path


def _teacher_key(point: Mapping[str, Any]) -> str:
    return json.dumps(_teacher_fields(point), sort_keys=True)


def prepare_teachers(
    points: Sequence[Mapping[str, Any]],
    work_dir: str | Path,
    report: Callable[[str], None] | None = None,
) -> dict[str, Path]:
    """Fine-tune (or find cached) the dense model of every (task, head, seed) the points
    need, in this process, before the cells run (so parallel workers never train the same
    teacher)."""
    report = report or (lambda message: None)
    done: dict[str, Path] = {}
    for point in points:
        key = _teacher_key(point)
        if key in done:
            continue
        path = teacher_dir(work_dir, point)
        cached = _has_artifact(path)
        started = time.perf_counter()
        done[key] = _ensure_teacher(work_dir, point)
        if not cached:
            report(
                f"dense fine-tune of {point['task']} (head {point['head']}, seed "
                f"{point['seed']}): {time.perf_counter() - started:.0f} s -> {path}"
            )
    return done


def dense_fine_tune_seconds(
    points: Sequence[Mapping[str, Any]], work_dir: str | Path
) -> dict[str, float | None]:
    """Per teacher (``task/head/seed``), the wall time of its dense fine-tune (from the
    cached teacher's manifest; None where the teacher is missing or does not record it)."""
    from pruning.artifact import ArtifactError, load_artifact

    seconds: dict[str, float | None] = {}
    for point in points:
        name = f"{point['task']}/{point['head']}/{point['seed']}"
        if name in seconds:
            continue
        try:
            manifest = load_artifact(teacher_dir(work_dir, point)).manifest
            value = manifest["schedule"].get("seconds")
        except (ArtifactError, OSError, KeyError, AttributeError):
            value = None
        seconds[name] = float(value) if isinstance(value, int | float) else None
    return seconds


# ----------------------------------------------------------------------------- checks


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
        task = point["task"]
        get_task(task)  # GlueDataError: unknown task
        cell = (
            f"of cell {task} {point['method']} {point['pattern']} {point['sparsity']:g} "
            f"(head {point['head']}, seed {point['seed']})"
        )
        job = None
        try:
            if ("teacher", _teacher_key(point)) not in checked:
                _teacher_job(point, None, f"{cell} (dense fine-tune)")
            if point["method"] != "dense":
                job = prune_job(cell, **_prune_fields(point, Path("teacher"), None))
        except PruneJobError as error:
            raise ValueError(f"{error} (see cosim study accuracy --help)") from None
        checked.add(("teacher", _teacher_key(point)))
        if ("hw", point["hw"]) not in checked:
            load_hardware(point["hw"])  # HardwareConfigError: unknown preset or bad file
            checked.add(("hw", point["hw"]))
        model = point["settings"]["model"]
        if model not in configs:
            configs[model] = load_config(model)  # WorkloadError: unknown or non-BERT model
        if job is not None:  # the pattern must prune the model, as the pipeline will check
            shapes = target_shapes(configs[model], job.include)
            try:
                check_fits(job.parsed_pattern, shapes, job.scope)
            except PatternError as error:
                raise ValueError(f"{error} ({cell}; see cosim study accuracy --help)") from None


# ----------------------------------------------------------------------------- cells


def _final_phase(metrics: Mapping[str, Any]) -> str | None:
    """The last phase recorded (phases are recorded in order; the teacher is not one)."""
    phases = [name for name in metrics if name != "teacher"]
    return phases[-1] if phases else None


def _prune_fields(
    point: Mapping[str, Any], teacher: Path, work_dir: str | Path | None
) -> dict[str, Any]:
    s = point["settings"]
    method = point["method"]
    fields = {
        "model": str(teacher),
        "task": point["task"],
        **_head_field(point["head"]),
        **_recipe(s),
        "pattern": point["pattern"],
        "sparsity": point["sparsity"],
        "method": METHODS[method],
        "epochs": s["prune_epochs"] if s["prune_epochs"] is not None else s["epochs"],
        "seed": point["seed"],
        "progress": False,
    }
    if s.get("prune_lr") is not None:
        fields["lr"] = s["prune_lr"]
    if METHODS[method] in {"gradual", "distill"}:
        fields["schedule_shape"] = s["schedule_shape"]
        if s["update_every"] is not None:
            fields["update_every"] = s["update_every"]
    if METHODS[method] == "distill":
        if s["student_init"] == "pre-trained":  # SparseBERT: the student is the pre-trained model
            fields["model"] = s["model"]
        fields |= {
            "teacher": teacher,
            "student_init": s["student_init"],
            "kd_mode": s["kd_mode"],
            "kd_cache": s["kd_cache"],
            "mixkd_weight": s["mixkd_weight"] if method == "distill-mixkd" else 0.0,
            # beside the teacher's own checkpoints: one cache shared by all its cells
            "teacher_cache": teacher.with_name(teacher.name + ".ckpt")
            / f"kd-cache-{s['kd_cache']}.safetensors",
        }
        if s["distill_epochs"] is not None:
            fields["epochs"] = s["distill_epochs"]
    if work_dir is not None:
        fields |= _checkpointing(Path(work_dir) / "cells" / _cell_name(point), s)
    return fields


def _simulate(artifact: Path, hw: str, seq_len: int) -> dict[str, Any]:
    from accel_sim import simulate
    from accel_sim.spec import load_hardware
    from pruning.artifact import load_artifact
    from workloads import artifact_workload

    workload = artifact_workload(load_artifact(artifact), 1, seq_len)
    result = simulate(workload, load_hardware(hw), baseline=True)
    return {
        "speedup": result.speedup,
        "energy_ratio": result.energy_ratio,
        "sequences_per_s": result.sequences_per_s,
        "latency_s": result.latency_s,
        "energy_j": result.energy_j,
    }


def _prediction_columns(predictions: Mapping[str, Any]) -> dict[str, Any]:
    """``predicted.<label>`` counts (classification) or the predictions' mean and std."""
    counts = predictions.get("predicted_counts")
    if counts is not None:
        return {f"predicted.{label}": int(n) for label, n in counts.items()}
    return {k: predictions.get(k) for k in ("prediction_mean", "prediction_std")}


def evaluate_cell(point: Mapping[str, Any], work_dir: str) -> dict[str, Any]:
    """Train/prune one cell, evaluate it on the dev split and simulate its artifact.

    Returns the cell's row: final dev metrics (``metric.<name>``) and their bootstrap
    standard errors over the dev examples (``se.<name>``), the main metric and its ratio to
    the same seed's dense model, what the predictions look like (``predicted.<label>``
    counts, or ``prediction_mean``/``prediction_std``), density and compression ratio from
    the manifest, the steps of the last training phase, the simulated speedup / energy
    ratio / sequences per second, the artifact path relative to ``work_dir``, and the wall
    times :data:`WALL_TIME_FIELDS` (``train_s`` up to the trained artifact, ``seconds`` in
    all; a dense cell's exclude the fine-tune), which the store keeps out of the table.
    """
    from pruning.artifact import load_artifact
    from pruning.glue import get_task
    from pruning.job import PruneJobError, prune_job
    from pruning.pipeline import run_prune

    started = time.perf_counter()
    s = point["settings"]
    task = get_task(point["task"])
    teacher = _ensure_teacher(work_dir, point)
    dense_manifest = load_artifact(teacher).manifest
    if point["method"] == "dense":
        artifact, manifest = teacher, dense_manifest
    else:
        out = Path(work_dir) / "cells" / _cell_name(point)
        try:
            job = prune_job(**_prune_fields(point, teacher, work_dir))
        except PruneJobError as error:
            raise ValueError(str(error)) from None
        outcome = run_prune(job, out)
        artifact, manifest = outcome.artifact, outcome.manifest
    training, dense_training = manifest["training"], dense_manifest["training"]
    phase = _final_phase(training["metrics"])
    metrics = dict(training["metrics"].get(phase, {}))
    errors = dict(training.get("standard_errors", {}).get(phase, {}))
    dense = dict(dense_training["metrics"].get(_final_phase(dense_training["metrics"]), {}))
    main = task.main_metric
    row: dict[str, Any] = {
        "metric_name": main,
        "metric": metrics.get(main),
        "metric_se": errors.get(main),
        "dense_metric": dense.get(main),
        "relative_to_dense": _ratio(metrics.get(main), dense.get(main)),
    }
    for name, value in sorted(metrics.items()):
        row[f"metric.{name}"] = value
        row[f"se.{name}"] = errors.get(name)
        row[f"relative.{name}"] = _ratio(value, dense.get(name))
    row.update(_prediction_columns(training.get("predictions", {}).get(phase, {})))
    row["head_kind"] = (manifest.get("head") or {}).get("kind", "cls")
    row["density"] = manifest["density"]
    row["compression_ratio"] = manifest["compression_ratio"]
    row["train_examples"] = training["train"]["examples"]
    row["train_truncated"] = training["train"].get("truncated")
    row["dev_examples"] = training["dev"]["examples"]
    phases = manifest["schedule"].get("phases", [])
    row["phase_steps"] = phases[-1]["steps"] if phases else 0
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


def _cosine_fit_s(point: Mapping[str, Any], examples: int, tokens: int) -> float:
    """Seconds of the cosine start of a new bi-encoder classifier (a classification task with
    two sentences): its pairs' sentences encoded one by one, half the pair's tokens each."""
    from pruning.glue import get_task

    task = get_task(point["task"])
    if point["head"] != "bi-encoder" or task.text_b is None or not task.labels:
        return 0.0
    batches = math.ceil(2 * min(COSINE_FIT_PAIRS, examples) / 32)
    return batches * (STEP_S_FIXED + STEP_S_PER_TOKEN * tokens / 2) * FORWARD_STEP_FRACTION


def estimate_seconds(points: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """A rough wall-time estimate from the step count, one thread, dynamic padding
    (``STEP_S_FIXED + STEP_S_PER_TOKEN x`` the task's typical longest example).

    Returns ``{"teachers": s, "cells": s, "total": s, "per_cell_max": s}``.
    """
    teachers: set[str] = set()
    teacher_s = cells_s = per_cell = 0.0
    for point in points:
        s = point["settings"]
        whole = TRAIN_EXAMPLES.get(point["task"], 10000)
        examples = min(s["max_train_examples"] or whole, whole)
        steps_per_epoch = math.ceil(examples / s["batch_size"])
        tokens = min(s["seq_len"], TYPICAL_TOKENS.get(point["task"], s["seq_len"]))
        step_s = (STEP_S_FIXED + STEP_S_PER_TOKEN * tokens) * s["batch_size"] / 32
        fit_s = _cosine_fit_s(point, examples, tokens)
        if _teacher_key(point) not in teachers:
            teachers.add(_teacher_key(point))
            teacher_s += steps_per_epoch * s["epochs"] * step_s + fit_s
        method = point["method"]
        if method == "dense":
            cell = 30.0
        else:
            epochs = s["prune_epochs"] if s["prune_epochs"] is not None else s["epochs"]
            if METHODS[method] == "distill" and s.get("distill_epochs") is not None:
                epochs = s["distill_epochs"]
            if method == "group-lasso":
                epochs *= 2  # penalised training, then as long again of fixed-mask retraining
            cell = steps_per_epoch * epochs * step_s * STEP_FACTOR[method] + 60.0
            if s.get("student_init", "pre-trained") == "pre-trained":
                cell += fit_s  # the student's classifier is new too
        cells_s += cell
        per_cell = max(per_cell, cell)
    return {
        "teachers": teacher_s,
        "cells": cells_s,
        "total": teacher_s + cells_s,
        "per_cell_max": per_cell,
    }
