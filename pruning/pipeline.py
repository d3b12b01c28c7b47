"""Run a :class:`~pruning.job.PruneJob` end to end and write the SparseModel artifact.

Phases (each optional, each evaluated on the task's dev split when a task is given):

1. ``dense_epochs`` of ordinary fine-tuning (so one-shot methods can start from a
   fine-tuned model, as BSP does);
2. the method: one-shot magnitude; post-training Wanda or SparseGPT from calibration
   examples of the train split (:mod:`pruning.posttraining`, no training); the Fisher-based
   head and neuron mask search to a FLOPs budget, after which the pruned heads and neurons
   are removed (:mod:`pruning.fisher_prune`, :mod:`pruning.shrink`); gradual magnitude
   on the cubic or geometric schedule (or ``cycles`` cyclic ramps); training with the
   reweighted group-lasso penalty then a per-matrix hard prune; ADMM training then the final
   projection; movement pruning (learned scores, hard TopK or soft threshold); MLPruning's
   two steps (:mod:`pruning.mlpruning_run`: learnable top-k heads and FFN rows, the model
   shrunk, then blocks, each distilled from the step before); or pruning at
   distilling (SparseBERT): the dense model fine-tuned in phase 1
   (or ``teacher``) is the teacher, and a fresh copy of the pre-trained model
   (``student_init`` pre-trained) or of the teacher itself (fine-tuned) is pruned gradually
   while it is distilled, from the teacher's cached outputs where the loss allows
   (:mod:`pruning.teacher_cache`);
3. fixed-mask retraining (``PruneJob.retraining_epochs``); for quantized ADMM
   (``weight_bits``) masked and quantized, straight-through (:class:`~pruning.quantize.
   QuantizedMasks`), and the saved weights lie on the levels, their scales and bits in the
   manifest's ``quantization`` block;
4. with ``shrink``, the heads and FFN neurons the final masks leave without effect are
   removed (:func:`pruning.shrink_masks.shrink_from_masks`): the artifact holds the smaller
   model, its masks at the new shapes and the manifest's ``structure`` block.

The model carries the job's head (:mod:`pruning.heads`); a bi-encoder's pairs are encoded
as two sentences. Batches are padded to their longest example only. The manifest records
the job, the head, the data (files, subset sizes, truncated examples, notes such as QNLI's
split), the tokenizer, whether the weights are synthetic, the schedule or method state, and
after every phase the metrics, their bootstrap standard errors and the predicted-class
counts.

With ``checkpoint_every`` (or ``resume``) every training phase checkpoints under
``<checkpoint root>/<phase>/`` (:mod:`pruning.checkpoint`); a resumed job skips finished
phases (their final checkpoint restores the model) and continues the interrupted one, ending
with the same artifact as an uninterrupted run. Group lasso's hard prune and ADMM's final
projection are a phase of their own, ``hard-prune/``: one checkpoint of the masks, which a
resumed job loads instead of recomputing, so retraining continues under exactly those masks.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from pruning.admm import AdmmPruning, constraint_pattern, project
from pruning.artifact import save_artifact
from pruning.checkpoint import (
    CheckpointConfig,
    CheckpointError,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
    tensors_like,
    with_prefix,
)
from pruning.gradual import CyclicMagnitude, GradualMagnitude
from pruning.group_lasso import GroupLassoPenalty
from pruning.heads import head_of
from pruning.job import PruneJob
from pruning.masking import FixedMasks, MaskSet
from pruning.masks import compute_masks
from pruning.models import LoadedModel, load_model
from pruning.movement import MovementPruning
from pruning.patterns import check_fits
from pruning.quantize import Quantization, QuantizedMasks
from pruning.targets import prunable_weights
from pruning.train import (
    EncodedData,
    LossFn,
    TrainConfig,
    TrainHook,
    config_dict,
    score,
    task_loss,
    train,
)

__all__ = ["PruneOutcome", "TaskData", "load_task_data", "run_prune"]

Report = Callable[[str], None]
HARD_PRUNE_PHASE = "hard-prune"


@dataclass
class TaskData:
    """A GLUE task's encoded train and dev splits and where they came from."""

    task: Any  # pruning.glue.GlueTask
    train: EncodedData
    dev: EncodedData
    record: dict[str, Any]
    tokenizer: Any


@dataclass
class PruneOutcome:
    """What a run produced: the artifact, its manifest and the metrics per phase."""

    artifact: Path
    manifest: dict[str, Any]
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)


def load_task_data(job: PruneJob, loaded: LoadedModel) -> TaskData:
    """Read, subset and tokenize the job's task (train and dev); a bi-encoder's pairs are
    tokenized as two separate sentences. The record counts the examples truncation cuts."""
    from pruning.glue import get_task, load_split
    from pruning.tokenize import count_truncated, encode, load_tokenizer

    task = get_task(job.task)
    separate = loaded.head == "bi-encoder"
    if separate and task.text_b is None:
        raise ValueError(
            f"head bi-encoder encodes the two sentences of a pair separately; {task.name} has "
            "one sentence per example: use head mean or cls"
        )
    train_split = load_split(task, "train", job.data_dir, job.max_train_examples, job.seed)
    dev_split = load_split(task, "dev", job.data_dir, job.max_eval_examples, job.seed)
    tokenizer, tokenizer_note = load_tokenizer(loaded.weights_dir, loaded.model.config.vocab_size)
    splits = {"train": train_split, "dev": dev_split}
    record = {
        "task": task.name,
        **{
            name: {
                "source": split.source,
                "examples": len(split.labels),
                "truncated": count_truncated(split, tokenizer, job.max_seq_len, separate),
            }
            for name, split in splits.items()
        },
        "notes": sorted({n for n in (train_split.note, dev_split.note) if n}),
        "tokenizer": tokenizer_note,
        "max_seq_len": job.max_seq_len,
        "tokens": (
            f"each sentence of a pair within max_seq_len // 2 = {job.max_seq_len // 2}"
            if separate
            else "the example (a pair as one sequence) within max_seq_len"
        ),
        "padding": "dynamic: each batch padded to its longest example",
    }
    return TaskData(
        task,
        encode(train_split, tokenizer, job.max_seq_len, separate),
        encode(dev_split, tokenizer, job.max_seq_len, separate),
        record,
        tokenizer,
    )


def _train_config(job: PruneJob, epochs: float, description: str) -> TrainConfig:
    return TrainConfig(
        epochs=epochs,
        batch_size=job.batch_size,
        lr=job.lr,
        weight_decay=job.weight_decay,
        warmup_ratio=job.warmup_ratio,
        lr_schedule=job.lr_schedule,
        decay_bias_and_norm=job.decay_bias_and_norm,
        group_by_length=job.group_by_length,
        seed=job.seed,
        progress=job.progress,
        description=description,
    )


def _load(job: PruneJob, source: str | Path, num_labels: int, head: str | None) -> LoadedModel:
    """``source`` as a model for ``job`` under ``head`` (None: the source's own default)."""
    score_scale = None
    if job.task is not None:
        from pruning.glue import get_task

        score_scale = get_task(job.task).max_score
    return load_model(source, num_labels, seed=job.seed, head=head, score_scale=score_scale)


class _Run:
    """State shared by the phases of one job."""

    def __init__(self, job: PruneJob, report: Report, checkpoint: CheckpointConfig | None) -> None:
        self.job = job
        self.report = report
        self.checkpoint = checkpoint
        self.loaded = _load(job, job.model, self._num_labels(), job.head)
        self.model: nn.Module = self.loaded.model
        self.data = load_task_data(job, self.loaded) if job.task else None
        self.head_init: dict[str, Any] | None = None
        if self.loaded.new_pair_classifier and self.data is not None:
            self.head_init = _cosine_start(self)
        # read and checked before any training or evaluation: a bad file fails at once
        self.calibration = _calibration_text(self) if job.calibration_text else None
        self.weights = prunable_weights(self.model, job.include)
        shapes = {n: tuple(w.shape) for n, w in self.weights.items()}
        check_fits(job.parsed_pattern, shapes, job.scope)
        self.metrics: dict[str, dict[str, float]] = {}
        self.predictions: dict[str, dict[str, Any]] = {}
        self.standard_errors: dict[str, dict[str, float]] = {}
        self.phases: list[dict[str, Any]] = []
        self.teacher: nn.Module | None = None
        self.teacher_source: str | None = None
        self.method_record: dict[str, Any] = {}
        settings = job.quantization_settings
        self.quantization = Quantization(**settings) if settings else None

    def _num_labels(self) -> int:
        if self.job.task is None:
            return 2
        from pruning.glue import get_task

        return get_task(self.job.task).num_labels

    def evaluate(self, phase: str) -> None:
        if self.data is None:
            return
        scores = score(self.model, self.data.dev, self.data.task)
        self.metrics[phase] = scores.metrics
        self.predictions[phase] = scores.predictions
        self.standard_errors[phase] = scores.standard_errors
        shown = ", ".join(f"{k} {v:.4f}" for k, v in scores.metrics.items())
        self.report(f"{phase}: {shown}; {_shown_predictions(scores.predictions)}")

    def train(
        self, epochs: float, phase: str, hooks: list[TrainHook], loss_fn: LossFn = task_loss
    ) -> None:
        if self.data is None or epochs <= 0:
            return
        config = _train_config(self.job, epochs, phase)
        checkpoint = None if self.checkpoint is None else self.checkpoint.sub(phase)
        log = train(self.model, self.data.train, config, hooks, loss_fn, checkpoint)
        self.phases.append({"phase": phase, **config_dict(config), **log.to_dict()})
        self.evaluate(phase)


def _cosine_start(run: _Run) -> dict[str, Any]:
    """A new bi-encoder classifier starts as the cosine rule fitted on train."""
    from pruning.cosine_head import init_from_cosine

    assert run.data is not None
    record = init_from_cosine(run.model, run.data.train, run.job.seed)
    rule = f", threshold {record['threshold']:.4f}" if "threshold" in record else ""
    run.report(
        f"bi-encoder classifier starts from the cosine rule fitted on {record['examples']} "
        f"training pairs{rule} (train accuracy {record['train_accuracy']:.4f})"
    )
    return record


def _shown_predictions(predictions: dict[str, Any]) -> str:
    counts = predictions.get("predicted_counts")
    if counts is not None:
        return "predicted " + ", ".join(f"{label}: {n}" for label, n in counts.items())
    return f"predictions mean {predictions['prediction_mean']:.3f}, std " + (
        f"{predictions['prediction_std']:.3f}"
    )


def _one_shot(run: _Run) -> MaskSet:
    job = run.job
    masks = compute_masks(run.weights, job.parsed_pattern, job.sparsity, job.scope)
    mask_set = MaskSet(run.model, masks)
    mask_set.apply()
    return mask_set


def _hard_prune(run: _Run, compute: Callable[[], dict[str, Tensor]]) -> MaskSet:
    """Group lasso's hard prune or ADMM's final projection: ``compute()``'s masks, applied.

    With checkpoints the masks are saved as phase ``hard-prune`` (tensors ``mask.<name>``,
    JSON phase and method); a resumed job that got past it loads them instead of recomputing.
    """
    job = run.job
    directory = None if run.checkpoint is None else run.checkpoint.sub(HARD_PRUNE_PHASE).directory
    path = latest_checkpoint(directory) if directory is not None and job.resume else None
    if path is not None:
        tensors, state = load_checkpoint(path)
        if state.get("phase") != HARD_PRUNE_PHASE or state.get("method") != job.method:
            raise CheckpointError(
                f"{path} holds the {state.get('phase')!r} phase of method "
                f"{state.get('method')!r}, not the hard prune of {job.method!r}: use another "
                "--checkpoint-dir or drop --resume"
            )
        masks = tensors_like("mask", tensors, run.weights)
    else:
        masks = compute()
        if directory is not None:
            state = {"phase": HARD_PRUNE_PHASE, "method": job.method}
            save_checkpoint(directory, 1, with_prefix("mask.", masks), state)
    mask_set = MaskSet(run.model, masks)
    mask_set.apply()
    return mask_set


def _gradual_hook(run: _Run) -> GradualMagnitude:
    job = run.job
    if job.cycles > 1:
        return CyclicMagnitude(
            run.weights,
            job.parsed_pattern,
            job.target_sparsity,
            cycles=job.cycles,
            targets=job.cycle_targets,
            ramp_fraction=job.ramp_fraction,
            update_every=job.update_every,
            scope=job.scope,
            shape=job.schedule_shape,
        )
    return GradualMagnitude(
        run.weights,
        job.parsed_pattern,
        job.target_sparsity,
        ramp_fraction=job.ramp_fraction,
        update_every=job.update_every,
        scope=job.scope,
        regrow=job.regrow,
        shape=job.schedule_shape,
    )


def _teacher_cache(run: _Run, teacher: nn.Module) -> Any:
    """The teacher's outputs on every training example (``job.kd_cache``), loaded from the
    cache file when an earlier invocation of this job wrote one, else computed and saved
    (to ``job.teacher_cache``, else ``<checkpoint root>/teacher-cache.safetensors`` when the
    job checkpoints; else kept in memory only). None when nothing is cached, or when the
    attention term needs a live teacher forward on every batch anyway."""
    from pruning.teacher_cache import build_cache, cache_fingerprint, load_cache, save_cache

    job = run.job
    live_attention = job.kd_mode == "full" and job.kd_attention_weight > 0
    if job.kd_cache == "off" or run.data is None or live_attention:
        return None
    hidden = job.kd_cache == "hidden"
    path = job.teacher_cache
    if path is None and run.checkpoint is not None:
        path = run.checkpoint.directory / "teacher-cache.safetensors"
    expected = cache_fingerprint(teacher, run.data.train, hidden, torch.float16)
    cache = None if path is None else load_cache(path, expected)
    if cache is None:
        cache = build_cache(teacher, run.data.train, hidden=hidden, progress=job.progress)
        if path is not None:
            save_cache(cache, path)
    return cache


def _distill(run: _Run, hook: GradualMagnitude) -> None:
    """Pruning at distilling: ``run.model`` (the student: pre-trained weights, or the
    fine-tuned model with ``student_init`` fine-tuned) is pruned by ``hook`` while
    :class:`~pruning.distill.DistillationLoss` distils ``run.teacher``."""
    from pruning.distill import DistillationLoss, DistillConfig

    job = run.job
    config = DistillConfig(
        mode=job.kd_mode,
        temperature=job.kd_temperature,
        attention_weight=job.kd_attention_weight,
        hidden_weight=job.kd_hidden_weight,
        logit_weight=job.kd_logit_weight,
        alpha=job.kd_alpha,
        mixkd_weight=job.mixkd_weight,
        mixkd_alpha=job.mixkd_alpha,
    )
    assert run.teacher is not None
    cache = _teacher_cache(run, run.teacher)
    loss = DistillationLoss(run.teacher, run.model, config, cache)
    run.method_record = {
        "distillation": config.to_dict(),
        "teacher": run.teacher_source,
        "student_init": job.student_init,
        "teacher_cache": job.kd_cache,
    }
    run.train(job.epochs, "distill", [hook], loss)


def _prepare_distillation(run: _Run) -> None:
    """Set up teacher and student: the teacher is the dense model just fine-tuned (phase 1)
    or loaded from ``job.teacher``; the student is a fresh load of the pre-trained model
    (``student_init`` pre-trained, SparseBERT) or a copy of the teacher (fine-tuned, as BSP
    and gradual pruning start)."""
    job = run.job
    if job.teacher is not None:
        run.teacher = _load(job, job.teacher, run._num_labels(), None).model
        run.teacher_source = str(job.teacher)
        scores = score(run.teacher, run.data.dev, run.data.task) if run.data else None
        if scores is not None:
            run.metrics["teacher"] = scores.metrics
            run.predictions["teacher"] = scores.predictions
            run.standard_errors["teacher"] = scores.standard_errors
            shown = ", ".join(f"{k} {v:.4f}" for k, v in scores.metrics.items())
            run.report(f"teacher: {shown}; {_shown_predictions(scores.predictions)}")
    else:
        run.teacher = copy.deepcopy(run.model)
        run.teacher_source = f"{run.loaded.source} fine-tuned for {job.dense_epochs} epochs"
    if job.student_init == "fine-tuned":
        run.model = copy.deepcopy(run.teacher)
        source = run.loaded.source if job.teacher is None else str(job.teacher)
        run.loaded = LoadedModel(
            run.model, source, run.loaded.synthetic_weights, run.loaded.weights_dir,
            head_of(run.model),
        )  # fmt: skip
    else:
        run.loaded = _load(job, job.model, run._num_labels(), job.head)
        run.model = run.loaded.model
    run.weights = prunable_weights(run.model, job.include)


def _calibration_text(run: _Run) -> tuple[Any, dict[str, Any]]:
    """The job's calibration text file, tokenized as the task's examples are (a bi-encoder's
    pairs as two sentences), and its record: path, digest, examples, form, truncations."""
    from pruning.calibration_text import read_calibration_text
    from pruning.tokenize import count_truncated, encode

    assert run.data is not None and run.job.calibration_text is not None
    separate = run.loaded.head == "bi-encoder"
    text = read_calibration_text(run.job.calibration_text, pairs_required=separate)
    split = text.as_split(run.data.task)
    tokenizer, max_seq_len = run.data.tokenizer, run.job.max_seq_len
    record = {
        "split": "calibration text",
        **text.record(),
        "truncated": count_truncated(split, tokenizer, max_seq_len, separate),
    }
    return encode(split, tokenizer, max_seq_len, separate), record


def _post_training(run: _Run) -> tuple[MaskSet, dict[str, Any]]:
    """Wanda or SparseGPT (:mod:`pruning.posttraining`) from ``calibration_examples`` of the
    task's train split, batched and padded as in training, read by the model's own head."""
    from pruning.posttraining import calibration_batches, post_training_prune

    job = run.job
    assert run.data is not None
    examples, source = run.data.train, {"split": "train"}
    if run.calibration is not None:
        examples, source = run.calibration
    batches, chosen = calibration_batches(
        examples, job.calibration_examples, run.model, job.batch_size, job.seed
    )
    if len(chosen) < job.calibration_examples:
        run.report(
            f"{job.method}: the {'calibration text' if job.calibration_text else 'train split'}"
            f" holds {len(chosen)} examples, fewer than the {job.calibration_examples} asked "
            "for calibration: using all of them"
        )
    masks, record = post_training_prune(
        run.model,
        run.weights,
        batches,
        job.method,
        job.parsed_pattern,
        job.sparsity,
        damping=job.damping,
        blocksize=job.blocksize,
    )
    mask_set = MaskSet(run.model, masks)
    mask_set.apply()
    calibration = {
        **source,
        "examples_requested": job.calibration_examples,
        "examples": len(chosen),
        "choice": f"torch.randperm(examples, seed {job.seed}), first examples; "
        "batches of similar length, each padded to its longest",
        "batch_size": job.batch_size,
        "head": run.loaded.head,
    }
    return mask_set, {**record, "method": job.method, "calibration": calibration}


def _fisher_mask(run: _Run) -> tuple[MaskSet, dict[str, Any]]:
    """Fisher-based mask search (:mod:`pruning.fisher_prune`) from ``calibration_examples``
    labelled examples of the train split, then the pruned heads and neurons removed
    (:func:`pruning.shrink.shrink_model`); the smaller model's weights are dense, so its
    masks are all ones."""
    from pruning.fisher_prune import fisher_mask_prune
    from pruning.posttraining import calibration_batches
    from pruning.shrink import StructuredKeep, shrink_model

    job = run.job
    assert run.data is not None and job.flops_fraction is not None
    batches, chosen = calibration_batches(
        run.data.train,
        job.calibration_examples,
        run.model,
        job.batch_size,
        job.seed,
        with_labels=True,
    )
    result = fisher_mask_prune(
        run.model, batches, job.flops_fraction, cls_head=run.loaded.head == "cls"
    )
    shrink_model(run.model, StructuredKeep(result.kept_heads, result.kept_neurons))
    run.weights = prunable_weights(run.model, job.include)
    masks = {name: torch.ones_like(w, dtype=torch.bool) for name, w in run.weights.items()}
    calibration = {
        "split": "train",
        "examples_requested": job.calibration_examples,
        "examples": len(chosen),
        "choice": f"torch.randperm(train examples, seed {job.seed}), first examples; "
        "batches of similar length, each padded to its longest; one mask gradient per batch",
        "batch_size": job.batch_size,
        "head": run.loaded.head,
        "loss": "the head's task loss on the examples' labels",
    }
    record = {**result.record, "method": job.method, "calibration": calibration}
    return MaskSet(run.model, masks), record


def _method(run: _Run) -> tuple[MaskSet, dict[str, Any]]:
    """Phase 2: prune with the job's method; returns the masks and what to record."""
    job = run.job
    pattern, sparsity = job.parsed_pattern, job.sparsity
    if job.method == "magnitude":
        return _one_shot(run), {"kind": "one-shot"}
    if job.method in {"wanda", "sparsegpt"}:
        return _post_training(run)
    if job.method == "fisher-mask":
        return _fisher_mask(run)
    if job.method in {"gradual", "distill"}:
        hook = _gradual_hook(run)
        if job.method == "gradual":
            run.train(job.epochs, "gradual", [hook])
        else:
            _distill(run, hook)
        assert hook.masks is not None
        return hook.masks, {**hook.describe(), **run.method_record}
    if job.method == "movement":
        settings = job.movement_settings
        movement = MovementPruning(
            run.weights,
            pattern,
            sparsity,
            ramp_fraction=job.ramp_fraction,
            lr_schedule=job.lr_schedule,
            warmup_ratio=job.warmup_ratio,
            **settings,
        )
        run.train(job.epochs, "movement", [movement])
        assert movement.masks is not None
        return movement.masks, movement.describe()
    if job.method == "mlpruning":
        from pruning.mlpruning_run import run_mlpruning

        return run_mlpruning(run)
    if job.method == "group-lasso":
        lasso = GroupLassoPenalty(
            run.weights,
            pattern,
            lam=job.lasso_lambda,
            eps=job.lasso_eps,
            reweight_every=job.reweight_every,
        )
        run.train(job.epochs, "group-lasso", [lasso])
        masks = _hard_prune(run, lambda: compute_masks(run.weights, pattern, sparsity, job.scope))
        return masks, {"kind": "reweighted group lasso", **lasso.describe()}
    constraint = constraint_pattern(pattern, job.admm_granularity)
    admm = AdmmPruning(
        run.weights,
        constraint,
        sparsity,
        rho=job.admm_rho,
        rho_growth=job.admm_rho_growth,
        rho_max=job.admm_rho_max,
        update_every=job.admm_update_every,
        quantization=run.quantization,
    )
    if run.quantization is not None and run.data is None:
        run.quantization.fit(run.weights)  # no training: the scales from the weights as they are
    run.train(job.epochs, "admm", [admm])
    masks = _hard_prune(run, lambda: project(run.weights, constraint, sparsity))
    _quantize_weights(run)
    kind = "admm" if run.quantization is None else "quantized admm"
    return masks, {"kind": kind, "granularity": job.admm_granularity, **admm.describe()}


def _quantize_weights(run: _Run) -> None:
    """Put the (masked) pruned weights on the levels, when the job quantizes."""
    if run.quantization is None:
        return
    with torch.no_grad():
        for name, q in run.quantization.project(run.weights).items():
            run.weights[name].copy_(q)


def _check_checkpoint_job(job: PruneJob, checkpoint: CheckpointConfig) -> None:
    """Record the job beside its checkpoints; refuse to resume a different job's."""
    import json

    from pruning.checkpoint import CheckpointError
    from safeio.atomic import atomic_write_text

    record = json.loads(json.dumps(job.record()))
    path = checkpoint.directory / "job.json"
    if job.resume and path.is_file():
        from safeio.documents import DocumentError, read_json

        try:
            saved = read_json(path)
        except DocumentError as error:
            raise CheckpointError(f"{path} {error}") from None
        if saved != record:
            changed = sorted(
                k for k in record.keys() | saved.keys() if saved.get(k) != record.get(k)
            )
            raise CheckpointError(
                f"{checkpoint.directory} holds checkpoints of a different job (changed: "
                f"{', '.join(changed)}): use another --checkpoint-dir or drop --resume"
            )
    checkpoint.directory.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(record, indent=1, allow_nan=False) + "\n")


def run_prune(job: PruneJob, out_dir: str | Path, report: Report | None = None) -> PruneOutcome:
    """Run ``job`` and write its artifact to ``out_dir`` (replaced atomically)."""
    report = report or (lambda message: None)
    started = time.perf_counter()
    checkpoint = None
    if job.checkpointing:
        checkpoint = CheckpointConfig(
            job.checkpoint_root(out_dir), every=job.checkpoint_every, resume=job.resume
        )
        _check_checkpoint_job(job, checkpoint)
    run = _Run(job, report, checkpoint)
    if job.shrink or job.structured:  # refuse a model that cannot shrink before any work
        from pruning.shrink import check_family

        check_family(run.model.config)
    if job.dense_epochs > 0:
        run.train(job.dense_epochs, "dense", [])
    elif run.data is not None and job.teacher is None:
        run.evaluate("before")
    if job.method == "distill":
        _prepare_distillation(run)
    masks, method_record = _method(run)
    if job.method in {"magnitude", "group-lasso", "admm", "wanda", "sparsegpt", "fisher-mask"}:
        run.evaluate("after-prune")
    if run.quantization is None:
        retrain: TrainHook = FixedMasks(masks)
    else:
        retrain = QuantizedMasks(masks, run.weights, run.quantization)
    run.train(job.retraining_epochs, "retrain", [retrain])
    masks.apply()
    _quantize_weights(run)
    saved_masks = masks.as_dict()
    if job.shrink:
        from pruning.shrink_masks import shrink_from_masks

        keep, saved_masks = shrink_from_masks(run.model, saved_masks)
        report(
            f"shrunk: heads per layer {list(keep.head_counts())}, FFN width per layer "
            f"{list(keep.intermediate_sizes())}"
        )
    schedule = {
        **method_record,
        **({} if run.head_init is None else {"head_init": run.head_init}),
        "job": job.record(),
        "phases": run.phases,
        "seconds": round(time.perf_counter() - started, 3),
    }
    path = save_artifact(
        run.model,
        saved_masks,
        out_dir,
        source_model=run.loaded.source,
        pattern=job.parsed_pattern,
        method=job.method,
        sparsity=1 - masks.density()
        if job.soft_movement or job.method == "mlpruning"
        else job.target_sparsity,
        schedule=schedule,
        synthetic_weights=run.loaded.synthetic_weights,
        head={"kind": run.loaded.head, "num_labels": run._num_labels()},
        training=None
        if run.data is None
        else {
            **run.data.record,
            "metrics": run.metrics,
            "standard_errors": run.standard_errors,
            "predictions": run.predictions,
        },
        tokenizer=None if run.data is None else run.data.tokenizer,
        quantization=None if run.quantization is None else run.quantization.record(),
    )
    from pruning.artifact import load_artifact

    manifest = load_artifact(path).manifest
    return PruneOutcome(path, manifest, run.metrics)
