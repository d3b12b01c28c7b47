"""Device variation at inference: a quantized model's cells read back with lognormal noise
and stuck cells, and the task metric over seeds and sigmas.

A weight on crossbar levels (:mod:`pruning.quantize`) is ``W = s * k``, its offset code
``u = k + 2**(B-1)`` held as digits ``d_j`` (``c`` bits each) in ``ceil(B / c)`` cells, cell
``j`` programmed to ``G_j = G_min + d_j * dG`` with ``G_max = 1``, ``G_min = 1 / on_off_ratio``
and ``dG = (G_max - G_min) / (2**c - 1)``. Each programmed cell then conducts

- ``G'_j = G_j * exp(sigma * eps_j)``, ``eps_j ~ N(0, 1)`` independently per cell
  (lognormal device-to-device variation, as NeuroSim models conductance variation; sigma is
  the standard deviation of ``ln G``);
- or, a fraction ``stuck_on`` of cells, ``G_max``; a fraction ``stuck_off``, ``G_min``
  (stuck-at faults, drawn per cell, on before off).

The read digits are ``d'_j = (G'_j - G_min) / dG`` (the reference column removes ``G_min``)
and the weight comes back as ``W' = s * (sum_j d'_j 2**(c j) - 2**(B-1))``. It is computed as
``W + s * sum_j 2**(c j) (G'_j - G_j) / dG``, so with sigma 0 and no stuck cells ``W' = W``
exactly (a test). Only kept weights (mask True) have cells; pruned weights stay zero
(their crossbar blocks are unmapped, or their rows and columns not driven: an assumption
for pruned weights inside a mapped block). Weights not on crossbars (embeddings,
LayerNorm, the head) are left alone.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from pruning.quantize import Quantization, cell_digits, max_level

__all__ = ["DeviceVariation", "apply_variation", "levels_of", "sigma_sweep", "varied_weights"]

LEVEL_TOLERANCE = 1e-3  # |W / s - k| allowed for a weight read as level k (float32 rounding)


@dataclass(frozen=True)
class DeviceVariation:
    """Lognormal sigma of ``ln G`` per cell, stuck-at-on / stuck-at-off cell fractions."""

    sigma: float = 0.0
    stuck_on: float = 0.0
    stuck_off: float = 0.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.sigma) and self.sigma >= 0):
            raise ValueError(f"sigma must be a finite number >= 0, got {self.sigma}")
        for name in ("stuck_on", "stuck_off"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(f"{name} must be a fraction in [0, 1], got {value}")
        if self.stuck_on + self.stuck_off > 1:
            raise ValueError("stuck_on + stuck_off must not exceed 1")


def levels_of(weight: Tensor, scale: float, weight_bits: int, name: str = "weight") -> Tensor:
    """The integer levels ``k`` of a weight on the levels ``s * k``; an error if it is not."""
    ratio = weight.detach().double() / scale
    levels = torch.round(ratio)
    if weight.numel() == 0:
        return levels.to(torch.int64)
    off = float((ratio - levels).abs().max())
    if off > LEVEL_TOLERANCE or float(levels.abs().max()) > max_level(weight_bits):
        raise ValueError(
            f"{name} is not on its {weight_bits}-bit levels (scale {scale:.6g}): off by "
            f"{off:.3g} of a level; was the model quantized (cosim prune --weight-bits)?"
        )
    return levels.to(torch.int64)


def varied_weights(
    weight: Tensor,
    mask: Tensor | None,
    scale: float,
    quant: Quantization,
    variation: DeviceVariation,
    generator: torch.Generator,
) -> Tensor:
    """``weight`` as its cells read back under ``variation`` (module docstring)."""
    bits, c = quant.weight_bits, quant.cell_bits
    levels = levels_of(weight, scale, bits)
    digits = cell_digits(levels, bits, c).double()  # [..., cells]
    g_min = 1.0 / quant.on_off_ratio
    step = (1.0 - g_min) / (2**c - 1)
    g = g_min + digits * step
    shape = tuple(digits.shape)
    noisy = g * torch.exp(variation.sigma * torch.randn(shape, generator=generator, dtype=g.dtype))
    if variation.stuck_on or variation.stuck_off:
        draw = torch.rand(shape, generator=generator, dtype=g.dtype)
        noisy = torch.where(draw < variation.stuck_on, torch.ones_like(g), noisy)
        off = (draw >= variation.stuck_on) & (draw < variation.stuck_on + variation.stuck_off)
        noisy = torch.where(off, torch.full_like(g, g_min), noisy)
    place = torch.tensor([float(2 ** (c * j)) for j in range(shape[-1])], dtype=g.dtype)
    error = ((noisy - g) / step * place).sum(dim=-1) * scale
    if mask is not None:
        error = error * mask.to(error.dtype)
    return weight + error.to(weight.dtype)


def apply_variation(
    model: nn.Module,
    masks: Mapping[str, Tensor | np.ndarray] | None,
    quant: Quantization,
    variation: DeviceVariation,
    seed: int,
) -> nn.Module:
    """A copy of ``model`` whose quantized weights (``quant.scales``' names) are read back
    under ``variation`` with generator seed ``seed``; ``model`` is not changed."""
    varied = copy.deepcopy(model)
    params = dict(varied.named_parameters())
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name in sorted(quant.scales):
            if name not in params:
                raise KeyError(f"the quantization names {name!r}, which the model lacks")
            mask = None if masks is None or name not in masks else torch.as_tensor(masks[name])
            weight = params[name]
            weight.copy_(
                varied_weights(weight, mask, quant.scales[name], quant, variation, generator)
            )
    return varied


def sigma_sweep(
    model: nn.Module,
    masks: Mapping[str, Tensor | np.ndarray] | None,
    quant: Quantization,
    evaluate: Any,
    sigmas: Sequence[float],
    seeds: Sequence[int] = (0, 1, 2),
    *,
    stuck_on: float = 0.0,
    stuck_off: float = 0.0,
) -> Any:
    """The metrics ``evaluate(model) -> {metric: value}`` over ``seeds`` per sigma, as a tidy
    DataFrame: one row per sigma and metric with ``mean``, ``se`` (standard error over the
    seeds, ``std / sqrt(n)``, 0 for one seed) and ``seeds``. A sigma of 0 with no stuck cells
    is evaluated once (it is exact)."""
    import pandas as pd

    rows = []
    for sigma in sigmas:
        variation = DeviceVariation(sigma, stuck_on, stuck_off)
        exact = sigma == 0 and not (stuck_on or stuck_off)
        runs = [
            evaluate(apply_variation(model, masks, quant, variation, seed))
            for seed in (seeds[:1] if exact else seeds)
        ]
        for metric in runs[0]:
            values = np.array([float(r[metric]) for r in runs])
            se = float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else 0.0
            rows.append(
                {
                    "sigma": float(sigma),
                    "stuck_on": stuck_on,
                    "stuck_off": stuck_off,
                    "metric": metric,
                    "mean": float(values.mean()),
                    "se": se,
                    "seeds": len(values),
                }
            )
    return pd.DataFrame(rows)


def task_evaluator(data: Any, task: Any) -> Any:
    """``evaluate(model)`` on a task's encoded dev split (:func:`pruning.train.score`)."""
    from pruning.train import score

    def evaluate(model: nn.Module) -> dict[str, float]:
        return dict(score(model, data, task).metrics)

    return evaluate


def artifact_sigma_sweep(
    path: str | Any,
    sigmas: Sequence[float],
    seeds: Sequence[int] = (0, 1, 2),
    *,
    max_eval_examples: int | None = None,
    data_dir: str | Any = None,
    stuck_on: float = 0.0,
    stuck_off: float = 0.0,
    seed: int = 0,
) -> Any:
    """:func:`sigma_sweep` of a quantized artifact on the dev split of the task it was trained
    on (its manifest's ``training``: task, head, max_seq_len)."""
    from pruning.artifact import ArtifactError, load_artifact
    from pruning.glue import get_task, load_split
    from pruning.models import load_model
    from pruning.tokenize import encode, load_tokenizer

    artifact = load_artifact(path)
    manifest = artifact.manifest
    if "quantization" not in manifest:
        raise ArtifactError(
            f"{artifact.path} holds no quantized model (no quantization in its manifest): "
            "prune with --method admm --weight-bits B"
        )
    training = manifest.get("training") or {}
    if not isinstance(training.get("task"), str):
        raise ArtifactError(f"{artifact.path}: its manifest records no training task")
    task = get_task(training["task"])
    head = (manifest.get("head") or {}).get("kind")
    loaded = load_model(artifact.path, task.num_labels, seed=seed, head=head,
                        score_scale=task.max_score)  # fmt: skip
    split = load_split(task, "dev", data_dir, max_eval_examples, seed)
    tokenizer, _ = load_tokenizer(artifact.path, loaded.model.config.vocab_size)
    separate = loaded.head == "bi-encoder"
    data = encode(split, tokenizer, int(training.get("max_seq_len", 128)), separate)
    quant = Quantization.from_record(manifest["quantization"])
    masks = {name: torch.from_numpy(mask) for name, mask in artifact.masks.items()}
    return sigma_sweep(
        loaded.model.eval(), masks, quant, task_evaluator(data, task), sigmas, seeds,
        stuck_on=stuck_on, stuck_off=stuck_off,
    )  # fmt: skip
