"""The SIGMA-style flexible array as a datapath (``datapath: flexible``).

Qin et al., "SIGMA: A Sparse and Irregular GEMM Accelerator with Flexible Interconnects for
DNN Training", HPCA 2020: Flex-DPEs of multipliers behind a multicast (Benes) distribution
network and a forwarding adder network (FAN), composed into one Flex-DPU per GEMM. Every
GEMM keeps the weight stationary and streams the token rows (``model``,
``accel_sim.kernels.flexible``).

What it does with zeros (``sparse.zero_handling``):

- ``skipping``: only kept weights are stationary, packed densely across the multipliers
  whatever their positions (SIGMA's bitmap-driven mapping, Sec. IV-C/E); weights travel in
  ``sparse.weight_format`` (SIGMA uses a bitmap);
- ``none``: every weight is stationary (the all-ones mask), whatever the mask: the array's
  dense baseline, the same multipliers and networks with every weight mapped.

Zero input activations are streamed and multiplied (the paper maps a stationary nonzero
whenever any streaming value meets it, Sec. III-C), so ``GemmOp.activation_density`` is
noted as ignored. Attention GEMMs run as an all-ones mask, operands read dense.

Mapping: the mapper (``accel_sim.mapping``) searches M tiles and the split across cores, as
for the systolic arrays; the loop order is fixed (K strips outermost, ``model``) and so is
the preload: the stationary words come over the distribution network that streams, so a
fold's load never hides behind the previous fold (``mapping.preload`` does not apply).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from accel_sim.area import word_bits
from accel_sim.datapaths.base import register
from accel_sim.datapaths.flexible.model import (
    PackedWeight,
    distribution_bandwidth,
    flex_dpe_size,
    multipliers,
)
from accel_sim.datapaths.systolic.dense import SystolicArray, masked
from accel_sim.kernels import flexible as kf
from accel_sim.kernels import fold_memory as fm
from accel_sim.mapping.residency import NONE, OpResidency
from accel_sim.op_cost import OpCost
from accel_sim.spec import HardwareConfig, ZeroHandling
from workloads.ops import GemmOp

__all__ = ["FlexibleDatapath", "network_area_um2"]

# [P] Sec. V: the global controller (1024 AND and OR gates, 1024 counters, 128 SRC-DEST
# tables) of the 16,384-multiplier SIGMA is about 1.4 mm^2 at 28 nm. [A] It scales with the
# multipliers and by (45/28)^2 to the area table's 45 nm.
CONTROLLER_UM2_PER_MULTIPLIER = 1.4e6 / 16384 * (45 / 28) ** 2
# [P] Sec. IV-A2: a 512-multiplier FAN costs 10 % more area than a linear reduction of the
# same adders. [A] The PE area already holds one accumulator adder and its register per
# multiplier; the FAN's forwarding links, muxes and comparators add 10 % of that.
FAN_OVERHEAD = 0.10


def network_area_um2(hw: HardwareConfig) -> dict[str, float]:
    """Area of the distribution and reduction networks and the controller (all cores).

    - Benes, per Flex-DPE of D multipliers: 2 log2(D) + 1 levels of D 2x2 switches ([P] Sec.
      IV-A1), a switch being two 2-input word multiplexers ([A], the area table's mux price);
    - FAN: ``FAN_OVERHEAD`` of an accumulator adder and register per multiplier;
    - controller: ``CONTROLLER_UM2_PER_MULTIPLIER`` per multiplier.
    """
    table = hw.area
    per_core = multipliers(hw)
    dpe = flex_dpe_size(hw)
    dpes, rest = divmod(per_core, dpe)
    sizes = [dpe] * dpes + ([rest] if rest else [])
    switch_um2 = 2 * 2 * word_bits(hw) * table.mux_um2_per_input_bit
    benes = sum((2 * math.ceil(math.log2(d)) + 1) * d * switch_um2 for d in sizes if d > 1)
    add = table.accumulator_adder_um2 if table.accumulator_adder_um2 is not None else 137.0
    acc_register = 8 * hw.pe_array.accumulator_bytes * table.register_um2_per_bit
    fan = FAN_OVERHEAD * per_core * (add + acc_register)
    controller = CONTROLLER_UM2_PER_MULTIPLIER * per_core
    return {
        "distribution": benes * hw.cores,
        "reduction": fan * hw.cores,
        "controller": controller * hw.cores,
    }


@register
class FlexibleDatapath(SystolicArray):
    """``datapath: flexible``: a SIGMA-style array of Flex-DPEs."""

    name = "flexible"
    orders = (True,)  # K strips outermost
    preload_applies = False  # the stationary words come over the streaming network

    @classmethod
    def handles(cls, hw: Any) -> bool:
        return isinstance(hw, HardwareConfig) and hw.datapath == "flexible"

    def sparse_area_um2(self) -> float:
        """The distribution and reduction networks and the sparsity controller (part of the
        array whatever it does with zeros, so its dense baseline has them too)."""
        return sum(network_area_um2(self.hw).values())

    def piece(self, op: GemmOp, mask: np.ndarray | None):
        hw = self.hw
        weights: dict = {}  # this search's packed weights (``weight_model``)

        def packed(n_start, n_stop):
            part = None if mask is None else mask[n_start:n_stop]
            return self.weight_model(
                op, mask, n_start, n_stop,
                lambda: PackedWeight(part, hw, (n_stop - n_start, op.k)), weights,
            )  # fmt: skip

        def run(m_rows, n_start, n_stop, plan, mem):
            return packed(n_start, n_stop).best(m_rows, mem, plan)

        least: dict = {}  # the mapper asks once per candidate: kept per columns and memory

        def dram_bytes(n_start, n_stop, mem):
            key = (n_start, n_stop, mem)
            if key not in least:
                least[key] = packed(n_start, n_stop).dram_bytes(mem)
            return least[key]

        run.dram_bytes = dram_bytes  # the mapper's DRAM floor (``compose.dram_floor``)
        return run

    def _mapped_cost(self, op, composite, mapping):
        cost = super()._mapped_cost(op, composite, mapping)
        stats = composite.stats
        folds = stats[fm.FOLDS]
        detail = None  # appended to the chosen mapping's description (SystolicArray.mapped)
        if folds:
            width, block = stats[kf.STRIP_SUM] / folds, stats[kf.BLOCK_SUM] / folds
            detail = f", K strips of {width:.0f}, output blocks of {block:.0f}"
        return cost.with_mode(cost.mode, folds=int(folds) * op.count, mapping=detail)

    def gemm_cost(self, op: GemmOp, residency: OpResidency = NONE) -> OpCost:
        hw = self.hw
        skipping = hw.sparse.zero_handling == ZeroHandling.SKIPPING
        mask = masked(op) if skipping else None
        if op.weight_name is None:
            scale, note = 1.0, None  # activations, read dense
        elif mask is not None:
            scale, note = self.storage_scale(op)  # once per mask
        else:  # every weight stored in the format
            scale, note = self.all_kept_storage_scale(op.n, op.k)
        cost = self.mapped(op, mask, scale, residency)
        mode = "flexible" if mask is not None else "dense"
        return cost.with_mode(mode, note, useful_macs=self.useful_macs(op))

    def study_columns(self, result) -> dict[str, Any]:
        return {
            **super().study_columns(result),
            "datapath": self.name,
            "flex_dpe_size": flex_dpe_size(self.hw),
            "distribution_bandwidth_words": distribution_bandwidth(self.hw),
        }
