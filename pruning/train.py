"""Fine-tuning and evaluation of BERT-family sequence classifiers, with pruning hooks.

One loop serves dense fine-tuning, masked retraining and every pruning method: a method is a
:class:`TrainHook` that may add a loss term (group lasso, ADMM's proximal term), mask
gradients before the optimizer step, and fold masks in or recompute them after it (gradual
magnitude). Seeds are fixed (``TrainConfig.seed`` drives initialisation order, shuffling and
dropout), so the same inputs give the same run.
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

if TYPE_CHECKING:
    from pruning.checkpoint import CheckpointConfig

__all__ = [
    "EncodedData",
    "Scores",
    "TrainConfig",
    "TrainHook",
    "TrainLog",
    "epoch_order",
    "evaluate",
    "example_lengths",
    "lr_factor",
    "n_examples",
    "predict",
    "score",
    "train",
]

EncodedData = Mapping[str, Tensor]  # input_ids, attention_mask, token_type_ids, labels
LossFn = Callable[[nn.Module, dict[str, Tensor]], Tensor]


LR_SCHEDULES = ("linear", "constant")
# Parameter names that take no weight decay under the BERT convention (Devlin et al.'s
# optimiser, TinyBERT/SparseBERT's BertAdam groups): every bias and every LayerNorm.
NO_DECAY_MARKERS = ("bias", "LayerNorm.weight", "layer_norm.weight", "LayerNorm.bias")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings. Defaults: BSP's fine-tuning (lr 2e-5, batch 32, wd 0.01;
    pruning-algorithms.md section 2) with the BERT recipe around it: a linear warm-up over
    the first ``warmup_ratio`` of the steps, then ``lr_schedule`` (linear decay to 0, or
    constant as in SparseBERT's code), and no weight decay on biases and LayerNorm
    (``decay_bias_and_norm=True`` decays every parameter, as this loop did before)."""

    epochs: float = 3.0
    batch_size: int = 32
    lr: float = 2e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    lr_schedule: str = "linear"
    decay_bias_and_norm: bool = False
    max_grad_norm: float | None = 1.0
    group_by_length: bool = True
    seed: int = 0
    progress: bool = True
    description: str = "train"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.epochs) and self.epochs > 0):
            raise ValueError(f"epochs must be a positive number, got {self.epochs!r}")
        if isinstance(self.batch_size, bool) or self.batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {self.batch_size!r}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(
                f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}"
            )
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(
                f"weight_decay must be a non-negative number, got {self.weight_decay!r}"
            )

    def total_steps(self, examples: int) -> int:
        """Optimizer steps for ``epochs`` passes over ``examples`` (at least one)."""
        return max(1, math.ceil(self.epochs * math.ceil(examples / self.batch_size)))


class TrainHook:
    """Callbacks of :func:`train`; every method is optional. ``step`` counts optimizer steps
    completed."""

    def on_train_begin(self, model: nn.Module, total_steps: int) -> None:
        """Called once before the first step (e.g. to prune at ``t0 = 0``)."""

    def loss_term(self, model: nn.Module, step: int) -> Tensor | None:
        """An extra, differentiable term added to the task loss."""
        return None

    def before_optimizer_step(self, model: nn.Module, step: int) -> None:
        """After ``backward``, before the optimizer: e.g. mask gradients."""

    def after_optimizer_step(self, model: nn.Module, step: int) -> None:
        """After the optimizer has taken step ``step``: e.g. fold masks in, update masks."""

    def on_train_end(self, model: nn.Module) -> None:
        """Called once after the last step."""

    def postfix(self) -> dict[str, str]:
        """Short status for the progress bar."""
        return {}

    def state_dict(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        """What a checkpoint must hold to resume this hook: tensors and JSON-ready values."""
        return {}, {}

    def load_state_dict(self, tensors: Mapping[str, Tensor], state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` (called after :meth:`on_train_begin` on resume)."""


@dataclass
class TrainLog:
    """What a training run did: steps taken, the loss per step, wall time."""

    steps: int = 0
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    resumed_from: int = 0  # the checkpoint step a resumed run started after

    def to_dict(self) -> dict[str, Any]:
        tail = self.losses[-10:]
        return {
            "steps": self.steps,
            "first_loss": self.losses[0] if self.losses else None,
            "final_loss_mean_last_10": float(np.mean(tail)) if tail else None,
            "seconds": round(self.seconds, 3),
            **({"resumed_from_step": self.resumed_from} if self.resumed_from else {}),
        }


def n_examples(data: EncodedData) -> int:
    return int(data["input_ids"].shape[0])


TEXT_KEYS = ("input_ids", "attention_mask", "token_type_ids")
# A bi-encoder's second sentence: the same three inputs with this suffix.
SECOND = "_b"


def _forward_keys(model: nn.Module) -> set[str]:
    """Inputs this model's forward accepts; RoBERTa-style models with one token type get no
    ``token_type_ids`` (a pair's second segment would index past its embedding)."""
    accepted = set(inspect.signature(model.forward).parameters)
    keys = {k + s for k in TEXT_KEYS for s in ("", SECOND)} & accepted
    if getattr(model.config, "type_vocab_size", 2) < 2:
        keys -= {"token_type_ids", "token_type_ids" + SECOND}
    return keys


def _batch(
    data: EncodedData, index: Tensor, keys: set[str], with_index: bool = False
) -> dict[str, Tensor]:
    """The rows ``index`` of ``data``, padded only to the longest member (dynamic padding):
    columns that are padding in every row of the batch are cut off. With ``with_index`` the
    batch also carries ``example_index`` (for losses that look up cached teacher outputs)."""
    batch: dict[str, Tensor] = {}
    for suffix in ("", SECOND):
        mask = data.get("attention_mask" + suffix)
        if mask is None:
            continue
        used = torch.nonzero(mask[index].any(dim=0)).flatten()
        lo, hi = (int(used[0]), int(used[-1]) + 1) if len(used) else (0, 1)
        for key in TEXT_KEYS:
            name = key + suffix
            if name in keys and name in data:
                batch[name] = data[name][index, lo:hi]
    if "labels" in keys and "labels" in data:
        batch["labels"] = data["labels"][index]
    if with_index:
        batch["example_index"] = index
    return batch


def task_loss(model: nn.Module, batch: dict[str, Tensor]) -> Tensor:
    """The model's own loss: cross-entropy, or MSE for a one-label (regression) head."""
    return model(**batch).loss


def lr_factor(schedule: str, warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    """The learning-rate multiplier before step ``step + 1``: linear warm-up from
    ``1/warmup_steps`` to 1, then 1 (``constant``) or a linear decay to 0 at ``total_steps``."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        if schedule == "constant":
            return 1.0
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return factor


MEGABATCH = 50  # batches sorted together by length (Hugging Face's group_by_length)


def epoch_order(lengths: Tensor, batch_size: int, generator: torch.Generator) -> Tensor:
    """One epoch's example order with length grouping (Hugging Face's ``group_by_length``):
    a random permutation cut into megabatches of ``MEGABATCH`` batches, each sorted by
    length so a batch holds examples of similar length and dynamic padding wastes little;
    then the full batches shuffled, a short last batch kept last (the loop takes
    ``batch_size`` examples at a time, so batches stay whole)."""
    order = torch.randperm(len(lengths), generator=generator)
    size = MEGABATCH * batch_size
    chunks = [order[i : i + size] for i in range(0, len(order), size)]
    grouped = torch.cat(
        [c[torch.argsort(lengths[c], descending=True, stable=True)] for c in chunks]
    )
    batches = list(grouped.split(batch_size))
    tail = [batches.pop()] if len(batches[-1]) < batch_size else []
    shuffle = torch.randperm(len(batches), generator=generator).tolist()
    return torch.cat([batches[i] for i in shuffle] + tail)


def example_lengths(data: EncodedData) -> Tensor:
    """Tokens per example (both sentences of a bi-encoder pair)."""
    lengths = data["attention_mask"].sum(dim=1)
    if "attention_mask" + SECOND in data:
        lengths = lengths + data["attention_mask" + SECOND].sum(dim=1)
    return lengths


def _decays(name: str) -> bool:
    return not any(marker in name for marker in NO_DECAY_MARKERS)


def _param_groups(
    named: list[tuple[str, nn.Parameter]], config: TrainConfig
) -> list[dict[str, Any]]:
    """AdamW parameter groups: all together, or biases/LayerNorm apart with no decay."""
    if config.decay_bias_and_norm or config.weight_decay == 0:
        return [{"params": [p for _, p in named], "weight_decay": config.weight_decay}]
    decay = [p for n, p in named if _decays(n)]
    rest = [p for n, p in named if not _decays(n)]
    groups = [{"params": decay, "weight_decay": config.weight_decay}]
    if rest:
        groups.append({"params": rest, "weight_decay": 0.0})
    return groups


def _trainable(model: nn.Module, loss_fn: LossFn) -> list[tuple[str, nn.Parameter]]:
    """The model's trainable parameters by name, then those of a loss that is itself a
    module (e.g. the distillation loss's hidden-state projections, named ``loss.*``)."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if isinstance(loss_fn, nn.Module):
        named += [(f"loss.{n}", p) for n, p in loss_fn.named_parameters() if p.requires_grad]
    return named


@dataclass
class _Loop:
    """Everything a checkpoint captures besides the hooks."""

    model: nn.Module
    loss_fn: LossFn
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    generator: torch.Generator
    order: Tensor
    cursor: int
    log: TrainLog
    fingerprint: dict[str, Any]

    def save(self, checkpoint: CheckpointConfig, step: int, hooks: Sequence[TrainHook]) -> None:
        from pruning.checkpoint import optimizer_to_flat, rng_to_flat, save_checkpoint, with_prefix

        opt_tensors, opt_state = optimizer_to_flat(self.optimizer)
        rng_tensors, rng_state = rng_to_flat()
        tensors = {
            **with_prefix("model.", self.model.state_dict()),
            **with_prefix("optimizer.", opt_tensors),
            **with_prefix("rng.", rng_tensors),
            "data.generator": self.generator.get_state(),
            "data.order": self.order,
        }
        if isinstance(self.loss_fn, nn.Module):
            tensors.update(with_prefix("loss.", self.loss_fn.state_dict()))
        hook_states = []
        for index, hook in enumerate(hooks):
            hook_tensors, hook_state = hook.state_dict()
            tensors.update(with_prefix(f"hook{index}.", hook_tensors))
            hook_states.append(hook_state)
        scheduler_state = {
            k: v for k, v in self.scheduler.state_dict().items() if k != "lr_lambdas"
        }
        state = {
            "fingerprint": self.fingerprint,
            "optimizer": opt_state,
            "scheduler": scheduler_state,
            "rng": rng_state,
            "cursor": self.cursor,
            "losses": self.log.losses,
            "hooks": hook_states,
        }
        save_checkpoint(checkpoint.directory, step, tensors, state, checkpoint.keep)

    def resume(self, checkpoint: CheckpointConfig, hooks: Sequence[TrainHook]) -> int:
        """Load the newest checkpoint, if any; returns the step it was taken after (0: none)."""
        from pruning.checkpoint import (
            CheckpointError,
            latest_checkpoint,
            load_checkpoint,
            optimizer_from_flat,
            restore_rng,
            strip_prefix,
        )

        path = latest_checkpoint(checkpoint.directory)
        if path is None:
            return 0
        tensors, state = load_checkpoint(path)
        if state.get("fingerprint") != self.fingerprint:
            raise CheckpointError(
                f"{path} was written by a different run ({state.get('fingerprint')} vs "
                f"{self.fingerprint}): use another checkpoint directory or drop --resume"
            )
        if len(state["hooks"]) != len(hooks):
            raise CheckpointError(
                f"{path} holds {len(state['hooks'])} hook states, expected {len(hooks)}"
            )
        self.model.load_state_dict(strip_prefix("model.", tensors))
        if isinstance(self.loss_fn, nn.Module):
            self.loss_fn.load_state_dict(strip_prefix("loss.", tensors))
        optimizer_from_flat(self.optimizer, strip_prefix("optimizer.", tensors), state["optimizer"])
        self.scheduler.load_state_dict({**state["scheduler"], "lr_lambdas": [None]})
        self.generator.set_state(tensors["data.generator"])
        self.order = tensors["data.order"]
        self.cursor = int(state["cursor"])
        self.log.losses = [float(v) for v in state["losses"]]
        for index, hook in enumerate(hooks):
            hook.load_state_dict(strip_prefix(f"hook{index}.", tensors), state["hooks"][index])
        restore_rng(strip_prefix("rng.", tensors), state["rng"])
        return int(state["step"])


def train(
    model: nn.Module,
    data: EncodedData,
    config: TrainConfig,
    hooks: Sequence[TrainHook] = (),
    loss_fn: LossFn = task_loss,
    checkpoint: CheckpointConfig | None = None,
) -> TrainLog:
    """Train ``model`` in place on ``data`` with AdamW, calling ``hooks`` around each step.

    With ``checkpoint``, the whole loop state (model, optimizer, LR schedule, RNGs, data
    order, hooks, losses) is saved every ``checkpoint.every`` steps and at the end; with
    ``checkpoint.resume`` the run continues from the newest checkpoint and ends exactly as
    an uninterrupted run with the same seed would (bit for bit on one CPU thread).
    """
    examples = n_examples(data)
    if examples == 0:
        raise ValueError("no training examples")
    total_steps = config.total_steps(examples)
    keys = _forward_keys(model) | {"labels"}
    with_index = bool(getattr(loss_fn, "needs_example_index", False))
    generator = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    named = _trainable(model, loss_fn)
    params = [p for _, p in named]
    optimizer = torch.optim.AdamW(_param_groups(named, config), lr=config.lr)
    warmup = math.floor(config.warmup_ratio * total_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_factor(config.lr_schedule, warmup, total_steps)
    )

    log = TrainLog()
    started = time.perf_counter()
    model.train()
    if isinstance(loss_fn, nn.Module):
        loss_fn.train()
    for hook in hooks:
        hook.on_train_begin(model, total_steps)
    lengths = example_lengths(data) if config.group_by_length else None
    if lengths is None:
        order = torch.randperm(examples, generator=generator)
    else:
        order = epoch_order(lengths, config.batch_size, generator)
    fingerprint = {
        **config_dict(config),
        "examples": examples,
        "total_steps": total_steps,
        "hooks": [type(hook).__name__ for hook in hooks],
        "loss": getattr(loss_fn, "__name__", type(loss_fn).__name__),
    }
    loop = _Loop(model, loss_fn, optimizer, scheduler, generator, order, 0, log, fingerprint)
    done = 0
    if checkpoint is not None and checkpoint.resume:
        done = log.resumed_from = loop.resume(checkpoint, hooks)
    bar = tqdm(
        total=total_steps,
        initial=done,
        desc=config.description,
        disable=None if config.progress else True,  # None: on a terminal only
        leave=False,
    )
    for step in range(done + 1, total_steps + 1):
        order, cursor = loop.order, loop.cursor
        if cursor >= examples:
            if lengths is None:
                order = torch.randperm(examples, generator=generator)
            else:
                order = epoch_order(lengths, config.batch_size, generator)
            cursor = 0
        index = order[cursor : cursor + config.batch_size]
        cursor += config.batch_size
        loop.order, loop.cursor = order, cursor
        loss = loss_fn(model, _batch(data, index, keys, with_index))
        for hook in hooks:
            term = hook.loss_term(model, step)
            if term is not None:
                loss = loss + term
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        for hook in hooks:
            hook.before_optimizer_step(model, step)
        if config.max_grad_norm is not None:
            nn.utils.clip_grad_norm_(params, config.max_grad_norm)
        optimizer.step()
        scheduler.step()
        for hook in hooks:
            hook.after_optimizer_step(model, step)
        value = float(loss.detach())
        if not math.isfinite(value):
            bar.close()
            raise FloatingPointError(
                f"training loss became {value} at step {step}: lower the learning rate "
                "(or the group-lasso / ADMM penalty)"
            )
        log.losses.append(value)
        log.steps = step
        postfix = {"loss": f"{value:.4f}"}
        for hook in hooks:
            postfix.update(hook.postfix())
        bar.set_postfix(postfix, refresh=False)
        bar.update()
        if checkpoint is not None and checkpoint.is_due(step, total_steps):
            loop.save(checkpoint, step, hooks)
    bar.close()
    for hook in hooks:
        hook.on_train_end(model)
    model.eval()
    log.steps = total_steps
    log.seconds = time.perf_counter() - started
    return log


@torch.no_grad()
def predict(model: nn.Module, data: EncodedData, batch_size: int = 64) -> np.ndarray:
    """Logits ``[examples, num_labels]`` in eval mode, each batch padded to its longest."""
    model.eval()
    keys = _forward_keys(model)
    outputs = []
    for start in range(0, n_examples(data), batch_size):
        index = torch.arange(start, min(start + batch_size, n_examples(data)))
        outputs.append(model(**_batch(data, index, keys)).logits.float().cpu())
    return torch.cat(outputs).numpy() if outputs else np.zeros((0, 0), dtype=np.float32)


@dataclass(frozen=True)
class Scores:
    """A model's dev metrics, their bootstrap standard errors over the dev examples, and
    what its predictions look like (class counts, or mean and spread)."""

    metrics: dict[str, float]
    predictions: dict[str, Any]
    standard_errors: dict[str, float] = field(default_factory=dict)


def score(model: nn.Module, data: EncodedData, task: Any, batch_size: int = 64) -> Scores:
    """The task's GLUE metrics (:func:`pruning.glue.compute_metrics`) on ``data``, their
    :func:`pruning.glue.bootstrap_se` and :func:`pruning.glue.prediction_summary` of the
    same predictions."""
    from pruning.glue import bootstrap_se, compute_metrics, prediction_summary

    logits = predict(model, data, batch_size)
    labels = data["labels"].cpu().numpy()
    predictions = logits[:, 0] if task.is_regression else logits.argmax(axis=1)
    return Scores(
        compute_metrics(task, predictions, labels),
        prediction_summary(task, predictions),
        bootstrap_se(task, predictions, labels),
    )


def evaluate(model: nn.Module, data: EncodedData, task: Any, batch_size: int = 64) -> dict:
    """The task's GLUE metrics (:func:`pruning.glue.compute_metrics`) on ``data``."""
    return score(model, data, task, batch_size).metrics


def config_dict(config: TrainConfig) -> dict[str, Any]:
    """The settings worth recording in a manifest (no UI fields)."""
    settings = asdict(config)
    settings.pop("progress")
    settings.pop("description")
    return settings
