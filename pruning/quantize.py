"""Weights on crossbar conductance levels: the quantization projection and its training hook.

A weight matrix ``W`` goes onto a crossbar as integers ``k`` on ``weight_bits = B`` bits,
``W_q = s * k`` with ``k`` in ``[-(2**(B-1) - 1), 2**(B-1) - 1]`` (symmetric, so zero stays
exactly zero and pruned weights need no cells) and one scale ``s`` per matrix. The signed
``k`` is stored offset, ``u = k + 2**(B-1)`` in ``[1, 2**B - 1]``, as ISAAC stores its
weights (the chip's ``signed_weights: offset``); ``u`` is split into ``ceil(B / c)`` digits of
``cell_bits = c`` bits, least significant first, one per cell (``2**c`` levels per cell: the
bit slices of :mod:`accel_sim.datapaths.crossbar`).

A cell holding digit ``d`` is programmed to the conductance
``G(d) = G_min + d * (G_max - G_min) / (2**c - 1)`` with ``G_max / G_min`` the device's on/off
ratio (``G_max`` = 1, so conductances are fractions of the on state); reading subtracts
``G_min`` (a reference column), so ideal cells give ``d`` back. The on/off ratio is what makes
a digit-0 cell still carry current, and so variation (:mod:`pruning.variation`) on it.

The weight range a crossbar can hold is fixed when the scale is chosen: ``s = max|W_0| /
(2**(B-1) - 1)`` from the weights at the start (:func:`level_scales`), after which larger
values clip to ``+-(2**(B-1) - 1) * s``. :func:`quantize` is the Euclidean projection onto
those levels (round to the nearest, clip): idempotent, and it maps 0 to 0, so applied after
the crossbar-block sparsity projection the result keeps the sparsity.

Default on/off ratio: 17, DNN+NeuroSim's RRAM device (Peng, Huang, Chen, Yu, "DNN+NeuroSim",
IEDM 2019): ``Inference_pytorch/NeuroSIM/Param.cpp`` of github.com/neurosim/DNN_NeuroSim_V1.4
sets ``resistanceOn = 100e3`` and ``resistanceOff = 100e3*17`` (its comments keep the older
``6e3`` and ``6e3*17``: the same ratio). The memristor-ADMM paper's own G_min/G_max were not
available (``../shared/reference/pruning-algorithms.md`` section 4).

Masked and quantized retraining (:class:`QuantizedMasks`) is straight-through: the model
holds ``Q(latent) * M``; each optimizer step's change to those weights (computed from the
gradient at the quantized weights) is added to the float ``latent`` copy, which is quantized
again (Bengio et al. 2013's straight-through estimator, as in Courbariaux et al.'s
BinaryConnect: the gradient of ``Q`` taken as the identity). :func:`ste_quantize` is the same
estimator as an autograd expression.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from pruning.checkpoint import tensors_like
from pruning.masking import FixedMasks, MaskSet

__all__ = [
    "DEFAULT_CELL_BITS",
    "DEFAULT_ON_OFF_RATIO",
    "Quantization",
    "QuantizedMasks",
    "cell_digits",
    "cells_per_weight",
    "level_scales",
    "max_level",
    "quantize",
    "quantize_all",
    "ste_quantize",
]

DEFAULT_CELL_BITS = 2  # ISAAC's 2-bit cells (accel_sim/presets/isaac-crossbar.yaml)
DEFAULT_ON_OFF_RATIO = 17.0  # DNN+NeuroSim's RRAM (module docstring)
MAX_WEIGHT_BITS = 16
MAX_CELL_BITS = 8


def max_level(weight_bits: int) -> int:
    """Largest integer level: ``2**(B-1) - 1`` (symmetric signed)."""
    return 2 ** (weight_bits - 1) - 1


def cells_per_weight(weight_bits: int, cell_bits: int) -> int:
    """Cells (bit slices) per weight: ``ceil(B / c)``."""
    return math.ceil(weight_bits / cell_bits)


def check_bits(weight_bits: int, cell_bits: int) -> None:
    if not 2 <= weight_bits <= MAX_WEIGHT_BITS:
        raise ValueError(f"weight_bits must be in [2, {MAX_WEIGHT_BITS}], got {weight_bits}")
    if not 1 <= cell_bits <= MAX_CELL_BITS:
        raise ValueError(f"cell_bits must be in [1, {MAX_CELL_BITS}], got {cell_bits}")
    if cell_bits > weight_bits:
        raise ValueError(f"cell_bits ({cell_bits}) must not exceed weight_bits ({weight_bits})")


def level_scales(weights: Mapping[str, Tensor], weight_bits: int) -> dict[str, float]:
    """Per matrix ``s = max|W| / (2**(B-1) - 1)`` (1.0 for an all-zero matrix)."""
    top = max_level(weight_bits)
    scales = {}
    for name, w in weights.items():
        peak = float(w.detach().abs().max()) if w.numel() else 0.0
        scales[name] = peak / top if peak > 0 else 1.0
    return scales


def quantize(weight: Tensor, scale: float, weight_bits: int) -> Tensor:
    """The nearest level ``s * k``, ``|k| <= 2**(B-1) - 1`` (values beyond clip)."""
    top = max_level(weight_bits)
    return torch.round(weight / scale).clamp_(-top, top) * scale


def quantize_all(
    weights: Mapping[str, Tensor], scales: Mapping[str, float], weight_bits: int
) -> dict[str, Tensor]:
    return {n: quantize(w.detach(), scales[n], weight_bits) for n, w in weights.items()}


def ste_quantize(weight: Tensor, scale: float, weight_bits: int) -> Tensor:
    """``Q(W)`` forward, identity backward (straight-through)."""
    return weight + (quantize(weight.detach(), scale, weight_bits) - weight).detach()


def cell_digits(levels: Tensor, weight_bits: int, cell_bits: int) -> Tensor:
    """Offset codes ``u = k + 2**(B-1)`` of integer levels ``k`` as cell digits:
    ``[..., cells]``, least significant first, each in ``[0, 2**c - 1]``."""
    code = levels.to(torch.int64) + 2 ** (weight_bits - 1)
    base = 2**cell_bits
    cells = cells_per_weight(weight_bits, cell_bits)
    return torch.stack([(code // base**j) % base for j in range(cells)], dim=-1)


class Quantization:
    """A quantization setting: bits, cell bits, on/off ratio and the per-matrix scales."""

    def __init__(
        self,
        weight_bits: int,
        cell_bits: int = DEFAULT_CELL_BITS,
        on_off_ratio: float = DEFAULT_ON_OFF_RATIO,
        scales: Mapping[str, float] | None = None,
    ) -> None:
        check_bits(weight_bits, cell_bits)
        if not (math.isfinite(on_off_ratio) and on_off_ratio > 1):
            raise ValueError(f"on_off_ratio must be a finite number > 1, got {on_off_ratio}")
        self.weight_bits = weight_bits
        self.cell_bits = cell_bits
        self.on_off_ratio = float(on_off_ratio)
        self.scales: dict[str, float] = dict(scales or {})

    def fit(self, weights: Mapping[str, Tensor]) -> Quantization:
        """Scales from ``weights`` (their current range becomes the device range)."""
        self.scales = level_scales(weights, self.weight_bits)
        return self

    def project(self, weights: Mapping[str, Tensor]) -> dict[str, Tensor]:
        return quantize_all(weights, self.scales, self.weight_bits)

    def record(self) -> dict[str, Any]:
        """The manifest's ``quantization`` block."""
        return {
            "weight_bits": self.weight_bits,
            "cell_bits": self.cell_bits,
            "cells_per_weight": cells_per_weight(self.weight_bits, self.cell_bits),
            "on_off_ratio": self.on_off_ratio,
            "levels": f"s * k, |k| <= {max_level(self.weight_bits)}, per-matrix scale s",
            "encoding": "offset: u = k + 2**(weight_bits - 1), cell digits least significant "
            "first",
            "scales": dict(self.scales),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Quantization:
        return cls(
            int(record["weight_bits"]),
            int(record["cell_bits"]),
            float(record["on_off_ratio"]),
            {str(k): float(v) for k, v in record["scales"].items()},
        )


class QuantizedMasks(FixedMasks):
    """Masked and quantized retraining, straight-through (module docstring)."""

    def __init__(self, masks: MaskSet, weights: Mapping[str, Tensor], quant: Quantization):
        super().__init__(masks)
        self.weights = dict(weights)
        self.quant = quant
        self.latent: dict[str, Tensor] = {}
        self._held: dict[str, Tensor] = {}

    def _requantize(self) -> None:
        with torch.no_grad():
            for name, w in self.weights.items():
                mask = self.masks.masks.get(name)
                if mask is not None:
                    self.latent[name].mul_(mask)
                scale = self.quant.scales[name]
                w.copy_(quantize(self.latent[name], scale, self.quant.weight_bits))
                self._held[name] = w.detach().clone()

    def on_train_begin(self, model: nn.Module, total_steps: int) -> None:
        super().on_train_begin(model, total_steps)
        self.latent = {n: w.detach().clone() for n, w in self.weights.items()}
        self._requantize()

    def after_optimizer_step(self, model: nn.Module, step: int) -> None:
        with torch.no_grad():
            for name, w in self.weights.items():
                self.latent[name] += w.detach() - self._held[name]
        super().after_optimizer_step(model, step)
        self._requantize()

    def on_train_end(self, model: nn.Module) -> None:
        self._requantize()

    def state_dict(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        return {f"latent.{n}": t for n, t in self.latent.items()}, {}

    def load_state_dict(self, tensors: Mapping[str, Tensor], state: Mapping[str, Any]) -> None:
        self.latent = tensors_like("latent", tensors, self.weights)
        self._requantize()
