"""The dense systolic array (SCALE-Sim's model), and zero gating on it.

A GEMM runs as ``ceil(Sr/R) x ceil(Sc/C)`` folds (``accel_sim.kernels.dense_folds``), and
instances of a GEMM (``count``, e.g. batch x heads of attention) run back to back, so their
cycles and traffic add up. Activations and weights start in DRAM and outputs end there
(layer-by-layer execution), which makes each GEMM's compulsory traffic its operands once.

What this datapath does with zeros (``sparse.zero_handling``):

- ``none``: nothing; zeros are multiplied like any other value;
- ``gating``: the dense schedule (no time saved); MACs, register traffic and weight reads of
  zero weights are gated off, so only their energy goes.

In both, weights travel in ``sparse.weight_format``: DRAM and SRAM traffic for them is the
format's exact size (values plus metadata, ``accel_sim.formats``) scaled to how often the
dense schedule fetches the weight.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from accel_sim.datapaths.array import ArrayDatapath
from accel_sim.datapaths.base import register
from accel_sim.energy import ActionCounts
from accel_sim.kernels import dense_folds as k
from accel_sim.kernels import fold_memory as fm
from accel_sim.op_cost import OpCost
from accel_sim.spec import Dataflow, HardwareConfig, ZeroHandling
from accel_sim.traffic import fold_counts, memory_params, weight_storage_scale
from workloads.ops import GemmOp

__all__ = ["DenseSystolicArray", "dense_gemm_cost", "gemm_stats", "warm_up"]

DATAFLOW_CODE = {
    Dataflow.WEIGHT_STATIONARY: k.WS,
    Dataflow.OUTPUT_STATIONARY: k.OS,
    Dataflow.INPUT_STATIONARY: k.IS,
}


def gemm_stats(m: int, kdim: int, n: int, hw: HardwareConfig, filter_dram_scale: float = 1.0):
    """Raw kernel statistics for one instance of (m x kdim) @ (kdim x n) (``fold_memory``
    indices). ``filter_dram_scale``: compressed / dense bytes of the weight."""
    return k.dense_gemm_folds(
        DATAFLOW_CODE[hw.pe_array.dataflow],
        hw.pe_array.rows,
        hw.pe_array.cols,
        m,
        kdim,
        n,
        memory_params(hw, filter_dram_scale),
    )


def dense_gemm_cost(
    m: int, kdim: int, n: int, count: int, hw: HardwareConfig, *, filter_dram_scale: float = 1.0
) -> OpCost:
    """Cycles and action counts of ``count`` dense GEMMs (m x kdim) @ (kdim x n)."""
    s = gemm_stats(m, kdim, n, hw, filter_dram_scale).tolist()  # plain floats
    compute = int(s[fm.COMPUTE_CYCLES])
    stall = int(s[fm.TOTAL_CYCLES]) - compute
    return OpCost(
        compute_cycles=compute * count,
        stall_cycles=stall * count,
        counts=fold_counts(s, m * kdim * n, hw).scaled(count),
        folds=int(s[fm.FOLDS]) * count,
        sram_limited_cycles=int(s[fm.SRAM_LIMITED_CYCLES]) * count,
    )


def _gated(cost: OpCost, density: float, useful_macs: int, note: str | None) -> OpCost:
    """Zero weights gated: their MACs, register traffic and filter reads cost no energy."""
    counts = cost.counts
    gated = ActionCounts(
        **{
            **counts.__dict__,
            "macs": useful_macs,
            "register_bytes": counts.register_bytes * density,
            "sram_filter_read_bytes": counts.sram_filter_read_bytes * density,
        }
    )
    return OpCost(
        compute_cycles=cost.compute_cycles,
        stall_cycles=cost.stall_cycles,
        counts=gated,
        folds=cost.folds,
        sram_limited_cycles=cost.sram_limited_cycles,
        mode="gating",
        useful_macs=useful_macs,
        note=note,
    )


def masked(op: GemmOp) -> np.ndarray | None:
    """The op's keep-mask as an array, or None when it has none."""
    return op.mask if isinstance(op.mask, np.ndarray) else None


@register
class DenseSystolicArray(ArrayDatapath):
    """``datapath: systolic`` with ``zero_handling`` none or gating."""

    name = "dense-systolic"

    @classmethod
    def handles(cls, hw: Any) -> bool:
        return (
            isinstance(hw, HardwareConfig)
            and hw.datapath == "systolic"
            and hw.sparse.zero_handling in (ZeroHandling.NONE, ZeroHandling.GATING)
        )

    def dense_cost(self, op: GemmOp, scale: float) -> OpCost:
        return dense_gemm_cost(op.m, op.k, op.n, op.count, self.hw, filter_dram_scale=scale)

    def gemm_cost(self, op: GemmOp) -> OpCost:
        mask = masked(op)
        if mask is None and not self.exploits_sparsity:
            return self.dense_cost(op, 1.0)
        scale, note = weight_storage_scale(mask, self.hw)
        dense = self.dense_cost(op, scale)
        useful = self.useful_macs(op)
        if self.hw.sparse.zero_handling == ZeroHandling.GATING and mask is not None:
            return _gated(dense, op.weight_density, useful, note)
        return dense.with_mode("dense", note, useful_macs=useful)


def warm_up() -> None:
    """Compile (or load from the on-disk cache) the fold kernel, so timings exclude JIT."""
    mem = fm.MemoryParams(1, 4, 64.0, 64.0, 64.0, True, 1.0, 1.0, 1.0, 1.0, 1.0)
    k.dense_gemm_folds(k.WS, 2, 2, 2, 2, 2, mem)
