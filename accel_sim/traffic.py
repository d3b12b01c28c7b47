"""Where DRAM and SRAM traffic is computed: one module for every array datapath.

- ``memory_params``: the hardware's buffers and bandwidths as the fold kernels take them
  (``accel_sim.kernels.fold_memory`` runs the per-fold schedule: when each operand chunk is
  fetched, when partial sums spill, how DRAM transfers overlap compute);
- ``fold_counts``: a fold kernel's statistics as action counts (bytes per buffer and DRAM);
- ``weight_storage_scale``: compressed over dense bytes of a weight in the spec's format;
- ``streamed_counts``: traffic of a datapath that reads every operand once (the PE array);
- ``vector_bytes``: what a vector op reads and writes;
- ``compulsory_dram_bytes``: the least DRAM traffic any schedule of a GEMM can have (each
  operand once, weights compressed): the bound the contract tests check every datapath
  against.
"""

from __future__ import annotations

import numpy as np

from accel_sim.energy import ActionCounts
from accel_sim.formats import format_size
from accel_sim.kernels import fold_memory as fm
from accel_sim.spec import HardwareConfig, WeightFormat
from workloads.ops import GemmOp, VectorKind, VectorOp

__all__ = [
    "compulsory_dram_bytes",
    "fold_counts",
    "memory_params",
    "streamed_counts",
    "vector_bytes",
    "weight_storage_scale",
]

# Input tensors read per element (a residual add reads two; a cosine or the pair features u and v).
INPUTS_PER_ELEMENT = {
    VectorKind.RESIDUAL_ADD: 2,
    VectorKind.COSINE: 2,  # u and v
    VectorKind.PAIR_FEATURES: 2,  # u and v
}


def memory_params(
    hw: HardwareConfig, filter_dram_scale: float = 1.0, cores_sharing_dram: int = 1
) -> fm.MemoryParams:
    """The fold kernels' memory record for one core: double buffering halves each buffer's
    capacity, and cores running at once share the DRAM bandwidth evenly."""
    share = 0.5 if hw.sram.double_buffered else 1.0
    return fm.MemoryParams(
        word_bytes=hw.word_bytes,
        acc_bytes=hw.pe_array.accumulator_bytes,
        ifmap_capacity_bytes=hw.sram.ifmap.size_bytes * share,
        filter_capacity_bytes=hw.sram.filter.size_bytes * share,
        ofmap_capacity_bytes=hw.sram.ofmap.size_bytes * share,
        double_buffered=hw.sram.double_buffered,
        dram_bytes_per_cycle=hw.dram_bytes_per_cycle / cores_sharing_dram,
        ifmap_sram_bytes_per_cycle=float(hw.sram.ifmap.bytes_per_cycle),
        filter_sram_bytes_per_cycle=float(hw.sram.filter.bytes_per_cycle),
        ofmap_sram_bytes_per_cycle=float(hw.sram.ofmap.bytes_per_cycle),
        filter_dram_scale=float(filter_dram_scale),
    )


def fold_counts(stats: list[float], macs: float, hw: HardwareConfig) -> ActionCounts:
    """Action counts of one GEMM instance from its fold statistics (``fold_memory`` indices):
    ``macs`` performed, each reading a weight and an activation and updating a partial sum;
    array-side SRAM words, plus the buffer side of every DRAM transfer (loads written into
    the buffers, spills and write-backs read out of the ofmap buffer)."""
    word, acc = hw.word_bytes, hw.pe_array.accumulator_bytes
    ofmap_dram_read = stats[fm.OFMAP_DRAM_READ_BYTES]
    ofmap_dram_write = stats[fm.OFMAP_DRAM_WRITE_BYTES]
    return ActionCounts(
        macs=macs,
        register_bytes=macs * (2 * word + acc),
        sram_ifmap_read_bytes=stats[fm.IFMAP_SRAM_READS] * word,
        sram_ifmap_write_bytes=stats[fm.IFMAP_DRAM_BYTES],
        sram_filter_read_bytes=stats[fm.FILTER_SRAM_READS] * word,
        sram_filter_write_bytes=stats[fm.FILTER_DRAM_BYTES],
        sram_ofmap_read_bytes=stats[fm.OFMAP_SRAM_READS] * acc + ofmap_dram_write,
        sram_ofmap_write_bytes=stats[fm.OFMAP_SRAM_WRITES] * acc + ofmap_dram_read,
        dram_read_bytes=stats[fm.IFMAP_DRAM_BYTES] + stats[fm.FILTER_DRAM_BYTES] + ofmap_dram_read,
        dram_write_bytes=ofmap_dram_write,
    )


def weight_storage_scale(
    mask: np.ndarray | None,
    hw: HardwareConfig,
    value_bits: int | None = None,
    nnz: int | None = None,
    column_bits: np.ndarray | None = None,
) -> tuple[float, str | None]:
    """Stored over dense bytes of a weight in ``hw``'s format, and a note when the format
    cannot hold this mask (then the weight is stored dense, scale 1). ``value_bits``: the
    width each stored value takes (default the array's precision; a shared-weight index);
    ``nnz``: the mask's True count, when already counted (``GemmOp.weight_nnz``);
    ``column_bits``: its column words, when already built (``formats.format_size``)."""
    fmt = hw.sparse.weight_format
    dense_bits = 8 * hw.word_bytes
    bits = dense_bits if value_bits is None else value_bits
    if mask is None or fmt == WeightFormat.DENSE:
        return bits / dense_bits, None
    spec = hw.sparse
    try:
        size = format_size(
            mask,
            fmt,
            value_bits=bits,
            index_bits=spec.index_bits,
            pointer_bits=spec.pointer_bits,
            block=spec.format_block if fmt == WeightFormat.BSR else None,
            nm=spec.nm if fmt == WeightFormat.NM else None,
            run_bits=spec.run_bits,
            nnz=nnz,
            column_bits=column_bits,
        )
    except ValueError as error:
        return 1.0, f"{fmt} format cannot hold this mask ({error}); stored dense"
    dense_bytes = mask.size * hw.word_bytes
    return (size.total_bytes / dense_bytes if dense_bytes else 1.0), None


def streamed_counts(
    op: GemmOp,
    macs: int,
    entries: int,
    weight_scale: float,
    hw: HardwareConfig,
    on_chip: tuple[bool, bool, bool] = (False, False, False),
) -> tuple[ActionCounts, float]:
    """(action counts, DRAM bytes) of one instance of ``op`` on a datapath that streams
    ``entries`` activations once each, walks the compressed weights' column of each (all of
    them once per token when the input is dense) and moves every operand through DRAM
    exactly once (its compulsory traffic), except those ``on_chip`` (inputs, weights,
    outputs) already are or stay on chip."""
    word, acc = hw.word_bytes, hw.pe_array.accumulator_bytes
    weight_bytes = weight_scale * op.n * op.k * word
    input_bytes, output_bytes = op.m * op.k * word, op.m * op.n * word
    dram_inputs, dram_weights, dram_outputs = (
        0.0 if kept else size
        for kept, size in zip(on_chip, (input_bytes, weight_bytes, output_bytes), strict=True)
    )
    counts = ActionCounts(
        macs=macs,
        register_bytes=macs * (2 * word + acc),
        sram_ifmap_read_bytes=entries * word,  # each activation read once, broadcast
        sram_ifmap_write_bytes=dram_inputs,
        # every broadcast activation walks its column of the compressed weights
        sram_filter_read_bytes=weight_bytes * entries / op.k,
        sram_filter_write_bytes=dram_weights,
        sram_ofmap_read_bytes=dram_outputs,
        sram_ofmap_write_bytes=op.m * op.n * acc,
        dram_read_bytes=dram_weights + dram_inputs,
        dram_write_bytes=dram_outputs,
    )
    return counts, dram_weights + dram_inputs + dram_outputs


def vector_bytes(op: VectorOp, word_bytes: float) -> tuple[float, float]:
    """(bytes read, bytes written) of a vector op: its inputs in, its outputs out (a
    reduction such as mean pooling writes fewer values than it reads: ``op.outputs``)."""
    return op.elements * INPUTS_PER_ELEMENT.get(op.kind, 1) * word_bytes, op.outputs * word_bytes


def compulsory_dram_bytes(op: GemmOp, hw: HardwareConfig) -> float:
    """DRAM bytes every schedule of ``op`` moves at least, once per instance: the inputs that
    meet a kept weight (an input column whose weights are all pruned need not be read), the
    weight in ``hw``'s format (nothing when no weight is kept; operands of a weightless GEMM
    dense) and the outputs."""
    word = hw.word_bytes
    mask = op.mask if isinstance(op.mask, np.ndarray) else None
    live_inputs = op.k if mask is None else int(np.count_nonzero(mask.any(axis=0)))
    if op.weight_name is None:
        weight_bytes = op.k * op.n * word
    elif mask is not None and not mask.any():
        weight_bytes = 0.0
    else:
        weight_bytes = weight_storage_scale(mask, hw, nnz=op.weight_nnz)[0] * op.k * op.n * word
    return op.count * (op.m * live_inputs * word + weight_bytes + op.m * op.n * word)
