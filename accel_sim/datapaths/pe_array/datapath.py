"""The unstructured-sparse PE array as a datapath (``datapath: pe-array``).

Every linear GEMM runs on the FIFO-array model (``fifo_array.simulate_unstructured``) with
``pe_array.rows x pe_array.cols`` PEs and ``sparse.fifo_depth`` FIFOs; the grid shape is not
used, only the PE count. Its memory model is a roofline: the GEMM's compulsory DRAM traffic
(compressed weights, inputs, outputs) overlaps compute, and only the excess over the compute
cycles stalls.

What it does with zeros (``sparse.zero_handling``):

- ``skipping`` (EIE): only kept weights are stored and multiplied; weights are read in
  ``sparse.weight_format`` (the array walks CSC/RLE), so an unmasked weight is stored as the
  all-ones mask in that format, and costs what an attached all-ones mask costs;
- ``none``: every weight is stored and multiplied (the all-ones mask), whatever the mask:
  this is the array's dense baseline, the same PEs, FIFOs and buffers running dense weights.

Attention GEMMs (both operands activations, produced at run time) run as a dense mask, their
operands read dense.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from accel_sim.area import word_bits
from accel_sim.datapaths.array import ArrayDatapath
from accel_sim.datapaths.base import register
from accel_sim.datapaths.pe_array.fifo_array import simulate_unstructured
from accel_sim.datapaths.systolic.dense import masked
from accel_sim.op_cost import OpCost
from accel_sim.spec import HardwareConfig, SparseSupport, ZeroHandling
from accel_sim.traffic import streamed_counts, weight_storage_scale
from workloads.ops import GemmOp

__all__ = ["UnstructuredPEArray"]


@register
class UnstructuredPEArray(ArrayDatapath):
    """``datapath: pe-array``: EIE / SparTen-style array of PEs fed through FIFOs."""

    name = "pe-array"

    @classmethod
    def handles(cls, hw: Any) -> bool:
        return isinstance(hw, HardwareConfig) and hw.datapath == "pe-array"

    def dense_spec(self) -> HardwareConfig:
        """The same array (its FIFO depth kept) storing and multiplying every weight."""
        return self.hw.model_copy(
            update={"sparse": SparseSupport(fifo_depth=self.hw.sparse.fifo_depth)}
        )

    def sparse_area_um2(self) -> float:
        """Activation FIFOs: ``fifo_depth`` entries of a word and an index per PE (part of the
        array whatever it does with zeros)."""
        hw = self.hw
        index_bits = hw.sparse.index_bits or 16
        fifo_bits = hw.sparse.fifo_depth * (word_bits(hw) + index_bits)
        return hw.pe_count * fifo_bits * hw.area.register_um2_per_bit

    def _stored_mask(self, op: GemmOp) -> np.ndarray:
        mask = masked(op)
        skipping = self.hw.sparse.zero_handling == ZeroHandling.SKIPPING
        if mask is None or not skipping:
            return np.ones((op.n, op.k), dtype=bool)
        return mask

    def gemm_cost(self, op: GemmOp) -> OpCost:
        hw = self.hw
        mask = self._stored_mask(op)
        if op.weight_name is None:
            scale, note = 1.0, None  # activations, read dense
        else:
            scale, note = weight_storage_scale(mask, hw)
        stats = simulate_unstructured(mask, op.m, hw.pe_count, hw.sparse.fifo_depth)
        counts, dram_bytes = streamed_counts(op, stats.macs, stats.entries, scale, hw)
        stall = max(0, int(np.ceil(dram_bytes / hw.dram_bytes_per_cycle - stats.cycles - 1e-9)))
        return OpCost(
            compute_cycles=stats.cycles * op.count,
            stall_cycles=stall * op.count,
            counts=counts.scaled(op.count),
            mode="unstructured-pe" if hw.sparse.zero_handling == ZeroHandling.SKIPPING else "dense",
            useful_macs=self.useful_macs(op),
            load_imbalance=stats.load_imbalance,
            note=note,
        )
