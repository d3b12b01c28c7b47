"""The unstructured-sparse PE array as a datapath (``datapath: pe-array``).

Every linear GEMM runs on the FIFO-array model (``fifo_array.simulate_unstructured``) with
``pe_array.rows x pe_array.cols x cores`` PEs, ``sparse.fifo_depth`` FIFOs (counting the entry
in progress) and ``fifo_array.broadcast_width`` activations broadcast per cycle; the grid
shape is not used, only the PE count. Run-length-coded weights (``weight_format: rle``) cost a
PE cycle per padding entry, as EIE's do. Zero input activations are skipped when
``fifo_array.skip_zero_activations`` (EIE's leading non-zero detection; the positions come
from ``GemmOp.activation_density`` via ``accel_sim.activations``). Its memory model is a
roofline: the GEMM's compulsory DRAM traffic (compressed weights, inputs, outputs) overlaps
compute, and only the excess over the compute cycles stalls.

Energy: the filter SRAM is the PEs' weight banks (EIE: 64 x 128 KB), so a weight read is priced
at one bank's size, ``sram.filter.size_bytes / PEs``. With weight sharing
(``fifo_array.weight_bits``) weights are stored as indices of that width plus a per-matrix
codebook of ``2**bits`` words, and every MAC reads its weight from the PE's codebook (priced
as a register read of a word).

What it does with zeros (``sparse.zero_handling``):

- ``skipping`` (EIE): only kept weights are stored and multiplied; weights are read in
  ``sparse.weight_format`` (the array walks CSC/RLE), so an unmasked weight is stored as the
  all-ones mask in that format, and costs what an attached all-ones mask costs;
- ``none``: every weight is stored and multiplied (the all-ones mask), whatever the mask, and
  every activation broadcast: this is the array's dense baseline, the same PEs, FIFOs,
  broadcast and buffers running dense weights.

Attention GEMMs (both operands activations, produced at run time) run as a dense mask, their
operands read dense. Its dataflow is fixed by the design (tokens broadcast in order, output
rows interleaved over the PEs), so the mapper's loop orders and tiles do not apply; what stays
on chip between ops (``residency``) does. ``cores`` multiplies the PEs (the array of every
core works on the interleaved output rows as one array).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from accel_sim.activations import activation_mask
from accel_sim.area import word_bits
from accel_sim.datapaths.array import ArrayDatapath
from accel_sim.datapaths.base import register
from accel_sim.datapaths.pe_array.fifo_array import simulate_unstructured
from accel_sim.datapaths.systolic.dense import masked, operands_on_chip
from accel_sim.energy import ActionCounts, sram_j_per_byte
from accel_sim.kernels.sparse_pe import column_words, row_kept_from_columns
from accel_sim.mapping.residency import NONE, OpResidency
from accel_sim.op_cost import OpCost
from accel_sim.spec import HardwareConfig, SparseSupport, WeightFormat, ZeroHandling
from accel_sim.traffic import streamed_counts
from workloads.ops import GemmOp

__all__ = ["UnstructuredPEArray"]


@register
class UnstructuredPEArray(ArrayDatapath):
    """``datapath: pe-array``: EIE / SparTen-style array of PEs fed through FIFOs."""

    name = "pe-array"

    def __init__(self, hw: HardwareConfig) -> None:
        super().__init__(hw)
        self._ones_memos: dict[tuple[int, int], dict] = {}  # _mask_memo of all-ones masks
        table = hw.energy
        bank = sram_j_per_byte(hw.sram.filter.size_bytes / hw.pe_count)
        self.prices = replace(
            self.prices,
            filter_j=(
                bank if table.sram_read_j_per_byte is None else table.sram_read_j_per_byte,
                bank if table.sram_write_j_per_byte is None else table.sram_write_j_per_byte,
            ),
        )

    @classmethod
    def handles(cls, hw: Any) -> bool:
        return isinstance(hw, HardwareConfig) and hw.datapath == "pe-array"

    @property
    def skips_zero_activations(self) -> bool:  # type: ignore[override]
        hw = self.hw
        return hw.fifo_array.skip_zero_activations and hw.sparse.zero_handling != "none"

    def dense_spec(self) -> HardwareConfig:
        """The same array (FIFO depth, broadcast width and weight precision kept) storing and
        multiplying every weight and broadcasting every activation."""
        hw = self.hw
        plain = hw.fifo_array.model_copy(
            update={"skip_zero_activations": False, "filter_empty_columns": False}
        )
        return hw.model_copy(
            update={"sparse": SparseSupport(fifo_depth=hw.sparse.fifo_depth), "fifo_array": plain}
        )

    def sparse_area_um2(self) -> float:
        """Activation FIFOs (``fifo_depth`` entries of a word and an index per PE) and, with
        weight sharing, each PE's codebook (``2**bits`` words of registers): part of the array
        whatever it does with zeros."""
        hw = self.hw
        index_bits = hw.sparse.index_bits or 16
        bits = hw.sparse.fifo_depth * (word_bits(hw) + index_bits)
        if hw.fifo_array.weight_bits is not None:
            bits += 2**hw.fifo_array.weight_bits * word_bits(hw)
        return hw.pe_count * bits * hw.area.register_um2_per_bit

    def compulsory_dram_bytes(self, op: GemmOp) -> float:
        """Inputs (dense: zero activations are filtered on chip), the weight as this array
        stores it (its format, shared-weight indices and codebook) and outputs."""
        word = self.hw.word_bytes
        if op.weight_name is None:
            weight = op.k * op.n * word
        else:
            weight = self._storage_scale(op)[0] * op.k * op.n * word
        return op.count * (op.m * op.k * word + weight + op.m * op.n * word)

    def _storage_scale(self, op: GemmOp) -> tuple[float, str | None]:
        """Stored over dense bytes: the format at the shared-weight index width, plus the
        codebook, when weights are shared."""
        bits = self.hw.fifo_array.weight_bits
        if self._stores_own_mask(op):  # once per mask
            columns = None
            if self.hw.sparse.weight_format == WeightFormat.RLE:  # counted from the columns
                columns = lambda: self._column_words(op)  # noqa: E731
            scale, note = self.storage_scale(op, bits, columns)
        else:  # every weight: once per shape, no all-ones mask built
            scale, note = self.all_kept_storage_scale(op.n, op.k, bits)
        if bits is not None:
            scale += 2**bits / (op.n * op.k)  # the codebook: 2**bits words per matrix
        return scale, note

    def _stores_own_mask(self, op: GemmOp) -> bool:
        """Whether this array stores ``op``'s kept weights only (skipping, with a mask), not
        all of them."""
        return masked(op) is not None and self.hw.sparse.zero_handling == ZeroHandling.SKIPPING

    def _column_words(self, op: GemmOp) -> np.ndarray:
        """The op's own mask as ``sparse_pe.column_words`` (once per mask): the run-length
        size and the PE lists both read them, and building them costs more than either's
        count (a BERT-base point: 8 ms to build, 3 ms to size the run-length storage from
        them, 28 ms a cell at a time)."""
        return self.mask_fact(
            op, "column words", lambda: column_words(np.ascontiguousarray(op.mask))
        )

    def _column_bits(self, op: GemmOp) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``sparse_pe.column_bits`` of the op's own mask, for the PE lists: its column words
        and, counted from them only here (the run-length size does not read them), each
        row's kept weights and last kept column."""
        words = self._column_words(op)
        degree, last = self.mask_fact(
            op, "row kept", lambda: row_kept_from_columns(words, op.mask.shape[0])
        )
        return words, degree, last

    def _stored_mask(self, op: GemmOp) -> np.ndarray:
        """The op's own mask, or a broadcast all-ones view of its shape: with every weight
        kept on PEs owning equal rows the fast engine's schedule
        (``fifo_array._uniform_cost``) reads the shape alone, and the other paths read the
        view or a contiguous copy of it (allocating the masks took 3 ms of a BERT-base
        dense baseline)."""
        if self._stores_own_mask(op):
            return op.mask
        return np.broadcast_to(np.True_, (op.n, op.k))

    def _mask_memo(self, op: GemmOp, mask: np.ndarray) -> dict | None:
        """What ``simulate_unstructured`` keeps for ``mask`` (the op's own, once per mask;
        all ones, once per shape), so that a batch's micro-batch plans, each with its own
        number of tokens, reuse its schedule; None for a mask without a digest."""
        if mask is op.mask:
            return None if op.mask_digest is None else self.mask_fact(op, "fifo memo", dict)
        return self._ones_memos.setdefault(mask.shape, {})

    def gemm_cost(self, op: GemmOp, residency: OpResidency = NONE) -> OpCost:
        hw = self.hw
        array = hw.fifo_array
        mask = self._stored_mask(op)
        weighted = op.weight_name is not None
        if weighted:
            scale, note = self._storage_scale(op)
        else:
            scale, note = 1.0, None  # activations, read dense
        rle = weighted and hw.sparse.weight_format == WeightFormat.RLE
        stats = simulate_unstructured(
            mask,
            op.m,
            hw.pe_count,
            hw.sparse.fifo_depth,
            activations=activation_mask(op) if self.skips_zero_activations else None,
            min_cycles_per_entry=0 if array.filter_empty_columns else 1,
            broadcast_width=array.broadcast_width,
            run_bits=hw.sparse.run_bits if rle else 0,
            what=op.name,
            memo=self._mask_memo(op, mask),
            nnz=op.weight_nnz if mask is op.mask else mask.size,
            columns=(lambda: self._column_bits(op)) if mask is op.mask else None,
        )
        ifmap, weights = operands_on_chip(op, residency)
        on_chip = (ifmap, weights, residency.output_on_chip)
        counts, dram_bytes = streamed_counts(op, stats.macs, stats.entries, scale, hw, on_chip)
        _, everything = streamed_counts(op, stats.macs, stats.entries, scale, hw)
        if weighted and array.weight_bits is not None:  # a codebook read per MAC
            counts = ActionCounts(**{
                **counts.__dict__,
                "register_bytes": counts.register_bytes + stats.macs * hw.word_bytes,
            })  # fmt: skip
        stall = max(0, int(np.ceil(dram_bytes / hw.dram_bytes_per_cycle - stats.cycles - 1e-9)))
        return OpCost(
            compute_cycles=stats.cycles * op.count,
            stall_cycles=stall * op.count,
            counts=counts.scaled(op.count),
            mode="unstructured-pe" if hw.sparse.zero_handling == ZeroHandling.SKIPPING else "dense",
            useful_macs=self.useful_macs(op),
            load_imbalance=stats.load_imbalance,
            note=note,
            dram_bytes_avoided=(everything - dram_bytes) * op.count,
        )
