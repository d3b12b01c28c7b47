"""The dual-side sparse outer-product array as a datapath (``datapath: outer-product``).

Every GEMM runs on the timing model of ``model.py`` (DSTC style: bitmap-coded activations and
weights, outer products of their nonzeros, a merge stage into an accumulation buffer of two
output tiles). What it does with zeros (``sparse.zero_handling``):

- ``skipping`` (dual-side): weights are stored as a bitmap plus their nonzero values
  (``sparse.weight_format: bitmap``), input activations likewise, with their zeros where
  ``accel_sim.activations.activation_mask`` puts them (``GemmOp.activation_density``); only
  pairs of a nonzero activation and a nonzero weight are multiplied. Outputs are written
  bitmap-coded too (every value plus the bitmap: a GEMM's outputs are taken as nonzero);
- ``none``: the dense baseline, the same array, tiles, ports and accumulation buffer
  computing every pair from dense operands.

Attention GEMMs (two activations) run like any other, their right operand dense (its
activation density is not carried by the workload). The dataflow is fixed by the design
(outer products over k, output tiles in order), so the mapper's loop orders and tiles do
not apply; what stays on chip between ops (``residency``) does. Memory is a roofline, as on
the PE array: the op's single-pass DRAM traffic overlaps compute, and only its excess over
the compute cycles stalls. ``cores`` copies of the array share the output tiles
round-robin.

Energy: the chip's table prices MACs, operand registers, SRAM and DRAM; the accumulation
buffer's read-modify-write of every partial sum, the scatter of partial sums into it and
the bitmap decode are priced from ``outer_product`` and added to the ``register``
component. Area (``sparse_area_um2``): the accumulation buffer (both modes: it is part of
the array), and, when skipping, the gather unit and the gather/scatter networks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from accel_sim.activations import activation_mask, skips_activations_note
from accel_sim.datapaths.array import ArrayDatapath
from accel_sim.datapaths.base import register
from accel_sim.datapaths.outer_product.model import (
    OuterProductGeometry,
    OuterProductStats,
    simulate_outer_product,
)
from accel_sim.datapaths.systolic.dense import masked, operands_on_chip
from accel_sim.energy import ActionCounts
from accel_sim.mapping.residency import NONE, OpResidency
from accel_sim.op_cost import OpCost
from accel_sim.results import OpResult
from accel_sim.spec import HardwareConfig, ZeroHandling
from accel_sim.spec.outer_product import OuterProductSpec
from workloads.ops import GemmOp, VectorOp

__all__ = ["OuterProductArray", "OuterProductCost"]

# Horowitz ISSCC 2014 (45 nm): 8-bit adder 36 um^2, i.e. 4.5 um^2 per adder bit [D].
_ADDER_UM2_PER_BIT = 36.0 / 8


@dataclass(frozen=True)
class OuterProductCost(OpCost):
    """An ``OpCost`` with the actions the chip's energy table has no entry for."""

    accumulator_bytes: float = 0.0  # accumulation buffer bytes read and written
    merge_bytes: float = 0.0  # partial-sum bytes moved by the scatter network
    bitmap_bits: float = 0.0  # bitmap bits decoded by the gather unit


@register
class OuterProductArray(ArrayDatapath):
    """``datapath: outer-product``: DSTC-style dual-side sparse outer-product array."""

    name = "outer-product"
    skips_zero_activations = True

    @classmethod
    def handles(cls, hw: Any) -> bool:
        return isinstance(hw, HardwareConfig) and hw.datapath == "outer-product"

    @property
    def spec(self) -> OuterProductSpec:
        return self.hw.outer_product or OuterProductSpec()

    @property
    def skipping(self) -> bool:
        return self.hw.sparse.zero_handling == ZeroHandling.SKIPPING

    def geometry(self) -> OuterProductGeometry:
        hw, spec = self.hw, self.spec
        rows, cols = hw.pe_array.rows, hw.pe_array.cols
        tile_m, tile_n = spec.tile_steps[0] * rows, spec.tile_steps[1] * cols
        bank_rows, bank_cols = spec.accumulator_banks or (tile_m, tile_n)
        return OuterProductGeometry(
            rows=rows,
            cols=cols,
            tile_m=tile_m,
            tile_n=tile_n,
            merge_width=spec.merge_width or rows * cols,
            bank_rows=bank_rows,
            bank_cols=bank_cols,
            gather_bits=spec.gather_bits_per_cycle or tile_m + tile_n,
            bitmaps=self.skipping,
            word_bytes=hw.word_bytes,
            ifmap_bytes_per_cycle=hw.sram.ifmap.bytes_per_cycle,
            filter_bytes_per_cycle=hw.sram.filter.bytes_per_cycle,
            ofmap_bytes_per_cycle=hw.sram.ofmap.bytes_per_cycle,
            cores=hw.cores,
        )

    def sparse_area_um2(self) -> float:
        """The accumulation buffer (two output tiles at the accumulator width, priced at the
        chip's SRAM density [A: a banked buffer as dense as SRAM]) in both modes; when
        skipping, also the gather unit (a popcount/prefix-sum tree of ``gather_bits x
        log2(gather_bits)`` adder bits [D: Horowitz 8-bit adder area per bit], two slots of
        bitmap bits and condensed values in registers) and the gather and scatter networks
        between the buffer and the array (two log-depth networks of 2:1 multiplexers,
        ``rows x cols`` lanes of ``log2(tile_m) + log2(tile_n)`` stages, each at the
        accumulator width [A: a Benes-like network; the sources give no figure])."""
        hw, g = self.hw, self.geometry()
        area = hw.area
        acc_bits = 8 * hw.pe_array.accumulator_bytes
        buffer = 2 * g.tile_m * g.tile_n * hw.pe_array.accumulator_bytes * area.sram_um2_per_byte
        if not self.skipping:
            return buffer * hw.cores
        depth = max(1, math.ceil(math.log2(g.gather_bits)))
        gather = g.gather_bits * depth * _ADDER_UM2_PER_BIT
        slots = 2 * (g.tile_m + g.tile_n) * (8 * hw.word_bytes + 1) * area.register_um2_per_bit
        stages = math.ceil(math.log2(g.tile_m)) + math.ceil(math.log2(g.tile_n))
        networks = 2 * g.rows * g.cols * max(1, stages) * acc_bits * 2 * area.mux_um2_per_input_bit
        return (buffer + gather + slots + networks) * hw.cores

    def _activations(self, op: GemmOp) -> np.ndarray | None:
        """Where the nonzero inputs are (None: dense or not skipped)."""
        return activation_mask(op) if self.skipping else None

    def _operand_bytes(
        self, op: GemmOp, act: np.ndarray | None
    ) -> tuple[float, float, float, str | None]:
        """(inputs, right operand, outputs) bytes of one instance as stored, and a note;
        ``act``: ``_activations(op)``."""
        hw = self.hw
        word = hw.word_bytes
        coded = self.skipping
        nnz_inputs = op.m * op.k if act is None else int(np.count_nonzero(act))
        inputs = nnz_inputs * word + (math.ceil(op.m * op.k / 8) if coded else 0)
        note = None
        if op.weight_name is None:  # a second activation, bitmap-coded when skipping
            right = op.n * op.k * word + (math.ceil(op.n * op.k / 8) if coded else 0)
        else:
            if self.skipping and masked(op) is not None:  # its own mask: once per mask
                scale, note = self.storage_scale(op)
            else:  # stored whole (``_stored_mask``): once per shape, no all-ones mask built
                scale, note = self.all_kept_storage_scale(op.n, op.k)
            right = scale * op.n * op.k * word
        outputs = op.m * op.n * word + (math.ceil(op.m * op.n / 8) if coded else 0)
        return inputs, right, outputs, note

    def _stored_mask(self, op: GemmOp) -> np.ndarray:
        """The weight as stored and multiplied: its mask when skipping, else all of it."""
        mask = masked(op)
        if mask is None or not self.skipping:
            return self.all_ones(op.n, op.k)
        return mask

    def compulsory_dram_bytes(self, op: GemmOp) -> float:
        """Each operand once as this chip stores it (bitmap-coded when skipping), inputs
        only in columns that meet a kept weight, nothing for an all-pruned weight."""
        act = self._activations(op)
        inputs, right, outputs, _ = self._operand_bytes(op, act)
        mask = masked(op)
        if mask is not None and op.weight_name is not None:
            if not mask.any():
                right = 0.0
            live = np.flatnonzero(mask.any(axis=0))
            word = self.hw.word_bytes
            if self.skipping:
                kept = op.m * live.size if act is None else int(np.count_nonzero(act[:, live]))
                inputs = kept * word + math.ceil(op.m * op.k / 8)
            else:
                inputs = op.m * live.size * word
        return op.count * (inputs + right + outputs)

    def simulate(self, op: GemmOp, act: np.ndarray | None = None) -> OuterProductStats:
        """The timing model's statistics for one instance of ``op``; ``act``:
        ``_activations(op)`` when the caller has it."""
        weights = None
        if op.weight_name is not None and self.skipping:
            weights = self._stored_mask(op)
        if act is None:
            act = self._activations(op)
        return simulate_outer_product(act, weights, op.m, op.n, op.k, self.geometry())

    def gemm_cost(self, op: GemmOp, residency: OpResidency = NONE) -> OpCost:
        hw = self.hw
        g = self.geometry()
        word, acc = hw.word_bytes, hw.pe_array.accumulator_bytes
        act = self._activations(op)
        stats = self.simulate(op, act)
        inputs, right, outputs, note = self._operand_bytes(op, act)
        ifmap_on, right_on = operands_on_chip(op, residency)
        on_chip = (ifmap_on, right_on, residency.output_on_chip)
        dram_in, dram_right, dram_out = (
            0.0 if kept else size
            for kept, size in zip(on_chip, (inputs, right, outputs), strict=True)
        )
        bitmap_a = bitmap_b = 0
        if g.bitmaps:  # every item reads its two bitmaps, a byte per 8 rows of its tile
            tiles_m, tiles_n = -(-op.m // g.tile_m), -(-op.n // g.tile_n)
            column_a = sum(
                math.ceil(min(g.tile_m, op.m - i * g.tile_m) / 8) for i in range(tiles_m)
            )
            column_b = sum(
                math.ceil(min(g.tile_n, op.n - j * g.tile_n) / 8) for j in range(tiles_n)
            )
            bitmap_a, bitmap_b = tiles_n * op.k * column_a, tiles_m * op.k * column_b
        pairs = stats.pairs
        counts = ActionCounts(
            macs=pairs,
            register_bytes=pairs * 2 * word,  # operand registers of each multiplier
            sram_ifmap_read_bytes=stats.values_a * word + bitmap_a,
            sram_ifmap_write_bytes=dram_in,
            sram_filter_read_bytes=stats.values_b * word + bitmap_b,
            sram_filter_write_bytes=dram_right,
            sram_ofmap_read_bytes=dram_out,
            sram_ofmap_write_bytes=outputs,
            dram_read_bytes=dram_in + dram_right,
            dram_write_bytes=dram_out,
        )
        dram_bytes = dram_in + dram_right + dram_out
        stall = max(0, int(np.ceil(dram_bytes / hw.dram_bytes_per_cycle - stats.cycles - 1e-9)))
        if not self.skipping:
            ignored = skips_activations_note(op)
            if ignored:
                note = f"{note}; {ignored}" if note else ignored
        return OuterProductCost(
            compute_cycles=stats.cycles * op.count,
            stall_cycles=stall * op.count,
            counts=counts.scaled(op.count),
            folds=stats.tiles * op.count,
            mode="dual-side" if self.skipping else "dense",
            useful_macs=pairs * op.count if self.skipping else self.useful_macs(op),
            note=note,
            dram_bytes_avoided=(inputs + right + outputs - dram_bytes) * op.count,
            accumulator_bytes=2.0 * acc * pairs * op.count,
            merge_bytes=(acc * pairs if self.skipping else 0.0) * op.count,
            bitmap_bits=float(stats.bitmap_bits * op.count),
        )

    def _op_result(self, op: GemmOp | VectorOp, cost: OpCost) -> OpResult:
        """The chip's pricing, plus the accumulation buffer, scatter network and bitmap
        decode (``outer_product`` energies) in the ``register`` component."""
        result = super()._op_result(op, cost)
        if not isinstance(cost, OuterProductCost):
            return result
        spec = self.spec
        extra = (
            cost.accumulator_bytes * spec.accumulator_j_per_byte
            + cost.merge_bytes * spec.merge_j_per_byte
            + cost.bitmap_bits * spec.bitmap_j_per_bit
        )
        energy = dict(result.energy_breakdown_j)
        energy["register"] += extra
        return replace(result, energy_breakdown_j=energy)

    def study_columns(self, result) -> dict[str, Any]:
        """The array chip's columns, with the sparse mode named as this array runs it:
        ``dual-side`` (skipping zeros in both operands) or ``none``."""
        columns = super().study_columns(result)
        columns["zero_handling"] = "dual-side" if self.skipping else "none"
        return columns
