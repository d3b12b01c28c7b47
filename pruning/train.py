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
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

__all__ = [
    "EncodedData",
    "TrainConfig",
    "TrainHook",
    "TrainLog",
    "evaluate",
    "n_examples",
    "predict",
    "train",
]

EncodedData = Mapping[str, Tensor]  # input_ids, attention_mask, token_type_ids, labels
LossFn = Callable[[nn.Module, dict[str, Tensor]], Tensor]


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings. Defaults follow BSP's fine-tuning (lr 2e-5, batch 32, wd 0.01;
    pruning-algorithms.md section 2) with a linear decay after ``warmup_ratio`` warm-up."""

    epochs: float = 3.0
    batch_size: int = 32
    lr: float = 2e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.0
    max_grad_norm: float | None = 1.0
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


@dataclass
class TrainLog:
    """What a training run did: steps taken, the loss per step, wall time."""

    steps: int = 0
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        tail = self.losses[-10:]
        return {
            "steps": self.steps,
            "first_loss": self.losses[0] if self.losses else None,
            "final_loss_mean_last_10": float(np.mean(tail)) if tail else None,
            "seconds": round(self.seconds, 3),
        }


def n_examples(data: EncodedData) -> int:
    return int(data["input_ids"].shape[0])


def _forward_keys(model: nn.Module) -> set[str]:
    """Inputs this model's forward accepts; RoBERTa-style models with one token type get no
    ``token_type_ids`` (a pair's second segment would index past its embedding)."""
    accepted = set(inspect.signature(model.forward).parameters)
    keys = {"input_ids", "attention_mask", "token_type_ids"} & accepted
    if getattr(model.config, "type_vocab_size", 2) < 2:
        keys.discard("token_type_ids")
    return keys


def _batch(data: EncodedData, index: Tensor, keys: set[str]) -> dict[str, Tensor]:
    return {key: data[key][index] for key in keys if key in data}


def task_loss(model: nn.Module, batch: dict[str, Tensor]) -> Tensor:
    """The model's own loss: cross-entropy, or MSE for a one-label (regression) head."""
    return model(**batch).loss


def _linear_decay(warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return factor


def train(
    model: nn.Module,
    data: EncodedData,
    config: TrainConfig,
    hooks: Sequence[TrainHook] = (),
    loss_fn: LossFn = task_loss,
) -> TrainLog:
    """Train ``model`` in place on ``data`` with AdamW, calling ``hooks`` around each step."""
    examples = n_examples(data)
    if examples == 0:
        raise ValueError("no training examples")
    total_steps = config.total_steps(examples)
    keys = _forward_keys(model) | {"labels"}
    generator = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad],
        lr=config.lr,
        weight_decay=config.weight_decay,
    )
    warmup = math.floor(config.warmup_ratio * total_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _linear_decay(warmup, total_steps))

    log = TrainLog()
    started = time.perf_counter()
    model.train()
    for hook in hooks:
        hook.on_train_begin(model, total_steps)
    bar = tqdm(total=total_steps, desc=config.description, disable=not config.progress, leave=False)
    order = torch.randperm(examples, generator=generator)
    cursor = 0
    for step in range(1, total_steps + 1):
        if cursor >= examples:
            order, cursor = torch.randperm(examples, generator=generator), 0
        index = order[cursor : cursor + config.batch_size]
        cursor += config.batch_size
        loss = loss_fn(model, _batch(data, index, keys))
        for hook in hooks:
            term = hook.loss_term(model, step)
            if term is not None:
                loss = loss + term
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        for hook in hooks:
            hook.before_optimizer_step(model, step)
        if config.max_grad_norm is not None:
            nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
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
    bar.close()
    for hook in hooks:
        hook.on_train_end(model)
    model.eval()
    log.seconds = time.perf_counter() - started
    return log


@torch.no_grad()
def predict(model: nn.Module, data: EncodedData, batch_size: int = 64) -> np.ndarray:
    """Logits ``[examples, num_labels]`` in eval mode."""
    model.eval()
    keys = _forward_keys(model)
    outputs = []
    for start in range(0, n_examples(data), batch_size):
        index = torch.arange(start, min(start + batch_size, n_examples(data)))
        outputs.append(model(**_batch(data, index, keys)).logits.float().cpu())
    return torch.cat(outputs).numpy() if outputs else np.zeros((0, 0), dtype=np.float32)


def evaluate(model: nn.Module, data: EncodedData, task: Any, batch_size: int = 64) -> dict:
    """The task's GLUE metrics (:func:`pruning.glue.compute_metrics`) on ``data``."""
    from pruning.glue import compute_metrics

    logits = predict(model, data, batch_size)
    labels = data["labels"].cpu().numpy()
    predictions = logits[:, 0] if task.is_regression else logits.argmax(axis=1)
    return compute_metrics(task, predictions, labels)


def config_dict(config: TrainConfig) -> dict[str, Any]:
    """The settings worth recording in a manifest (no UI fields)."""
    settings = asdict(config)
    settings.pop("progress")
    settings.pop("description")
    return settings
