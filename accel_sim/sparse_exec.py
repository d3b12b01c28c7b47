"""One GEMM's cost under the hardware's sparse support (``hw.sparse``), given its real mask.

What the hardware does with zeros (``zero_handling``) is separate from the mask:

- ``none``: the dense schedule; zeros are multiplied like any other value.
- ``gating``: the dense schedule (no time saved); MACs, register traffic and weight reads of
  zero weights are gated off, so only their energy goes.
- ``skipping`` / ``nm``: the compacting systolic engines (``accel_sim.sparse_systolic``). A
  mask that breaks the hardware's N:M constraint cannot use N:M mode: that GEMM runs dense
  and its ``mode`` says ``nm-fallback-dense``. Compaction packs rows whose inputs may share
  an ifmap bank, and on fine-grained masks the conflicts can cost more than the rows saved;
  such a GEMM runs the dense schedule instead (``skipping-off``), as a compiler would set
  a per-layer mode bit, so skipping never costs more cycles than dense.
- ``unstructured-pe``: the EIE/SparTen-style array (``accel_sim.sparse_pe_array``) with
  ``pe_array.rows x pe_array.cols`` PEs and ``sparse.fifo_depth`` FIFOs. Its memory model is a
  roofline: the GEMM's compulsory DRAM traffic (compressed weights, inputs, outputs) overlaps
  compute, and only the excess over the compute cycles stalls.

In every mode weights travel in ``sparse.weight_format``: DRAM and SRAM traffic for them is
the format's exact size (values plus metadata, ``accel_sim.formats``) scaled to how often
the dense schedule fetches the weight. Weightless GEMMs (attention) and unmasked weights run
the dense schedule on the systolic modes (mode ``dense``) and a dense mask on the EIE array;
there an unmasked weight is still stored in ``weight_format`` (the array reads nothing else),
so it costs what an attached all-ones mask costs, while attention operands (activations
produced at run time) are read dense.
"""

from __future__ import annotations

import numpy as np

from accel_sim.config import HardwareConfig, ZeroHandling
from accel_sim.energy import ActionCounts
from accel_sim.formats import WeightFormat, format_size
from accel_sim.op_cost import OpCost
from accel_sim.sparse_pe_array import simulate_unstructured
from accel_sim.systolic import dense_gemm_cost
from workloads.ops import GemmOp

__all__ = ["filter_dram_scale", "sparse_gemm_op_cost"]


def _dense_mask(op: GemmOp) -> np.ndarray:
    return np.ones((op.n, op.k), dtype=bool)


def filter_dram_scale(mask: np.ndarray | None, hw: HardwareConfig) -> tuple[float, str | None]:
    """Compressed over dense bytes of a weight in ``hw``'s format, and a note when the format
    cannot hold this mask (then the weight is stored dense, scale 1)."""
    fmt = hw.sparse.weight_format
    if mask is None or fmt == WeightFormat.DENSE:
        return 1.0, None
    spec = hw.sparse
    try:
        size = format_size(
            mask,
            fmt,
            value_bits=8 * hw.word_bytes,
            index_bits=spec.index_bits,
            pointer_bits=spec.pointer_bits,
            block=spec.format_block if fmt == WeightFormat.BSR else None,
            nm=spec.nm if fmt == WeightFormat.NM else None,
            run_bits=spec.run_bits,
        )
    except ValueError as error:
        return 1.0, f"{fmt} format cannot hold this mask ({error}); stored dense"
    dense_bytes = mask.size * hw.word_bytes
    return (size.total_bytes / dense_bytes if dense_bytes else 1.0), None


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


def _unstructured_pe(op: GemmOp, mask: np.ndarray, scale: float, hw: HardwareConfig) -> OpCost:
    """EIE-style array: cycles from the FIFO simulation, DRAM as a roofline overlap."""
    stats = simulate_unstructured(mask, op.m, hw.pe_count, hw.sparse.fifo_depth)
    word, acc = hw.word_bytes, hw.pe_array.accumulator_bytes
    weight_bytes = scale * op.n * op.k * word
    input_bytes, output_bytes = op.m * op.k * word, op.m * op.n * word
    counts = ActionCounts(
        macs=stats.macs,
        register_bytes=stats.macs * (2 * word + acc),
        sram_ifmap_read_bytes=stats.entries * word,  # each activation read once, broadcast
        sram_ifmap_write_bytes=input_bytes,
        sram_filter_read_bytes=weight_bytes * op.m,  # every token walks the compressed weights
        sram_filter_write_bytes=weight_bytes,
        sram_ofmap_read_bytes=output_bytes,
        sram_ofmap_write_bytes=op.m * op.n * acc,
        dram_read_bytes=weight_bytes + input_bytes,
        dram_write_bytes=output_bytes,
    ).scaled(op.count)
    dram_cycles = (weight_bytes + input_bytes + output_bytes) / hw.dram_bytes_per_cycle
    stall = max(0, int(np.ceil(dram_cycles - stats.cycles - 1e-9)))
    return OpCost(
        compute_cycles=stats.cycles * op.count,
        stall_cycles=stall * op.count,
        counts=counts,
        mode="unstructured-pe",
        useful_macs=stats.macs * op.count,
        load_imbalance=stats.load_imbalance,
    )


def sparse_gemm_op_cost(op: GemmOp, hw: HardwareConfig, params: tuple) -> OpCost:
    """Cost of ``op`` (all its instances) under ``hw.sparse``."""
    mask = op.mask if isinstance(op.mask, np.ndarray) else None
    handling = hw.sparse.zero_handling
    scale, note = filter_dram_scale(mask, hw)
    nnz = int(mask.sum()) if mask is not None else op.n * op.k
    useful_macs = nnz * op.m * op.count

    if handling == ZeroHandling.UNSTRUCTURED_PE:
        if mask is None:
            mask = _dense_mask(op)
            if op.weight_name is not None:
                # The array reads weights only in its own format (it walks CSC/RLE): an
                # unmasked weight is stored as the all-ones mask, exactly as an attached one.
                scale, note = filter_dram_scale(mask, hw)
        return _unstructured_pe(op, mask, scale, hw)
    if handling in (ZeroHandling.SKIPPING, ZeroHandling.NM) and mask is not None:
        from accel_sim import sparse_systolic

        nm_ok = handling != ZeroHandling.NM or sparse_systolic.satisfies_nm(mask, *hw.sparse.nm)
        dense = dense_gemm_cost(op.m, op.k, op.n, op.count, hw, params, filter_dram_scale=scale)
        if not nm_ok:
            return dense.with_mode("nm-fallback-dense", note, useful_macs=useful_macs)
        cost = sparse_systolic.sparse_gemm_cost(mask, op.m, op.count, hw, filter_dram_scale=scale)
        if handling == ZeroHandling.SKIPPING and dense.cycles < cost.cycles:
            # Compaction that packs bank-conflicting rows can be slower than the dense
            # schedule; the compiler then runs this layer dense (a per-layer mode bit).
            return dense.with_mode("skipping-off", note, useful_macs=useful_macs)
        return cost.with_mode(handling.value, note)
    dense = dense_gemm_cost(op.m, op.k, op.n, op.count, hw, params, filter_dram_scale=scale)
    if handling == ZeroHandling.GATING and mask is not None:
        return _gated(dense, nnz / mask.size if mask.size else 1.0, useful_macs, note)
    return dense.with_mode("dense", note, useful_macs=useful_macs)
