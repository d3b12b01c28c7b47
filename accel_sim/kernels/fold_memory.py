"""The memory side of a fold schedule, shared by every systolic kernel (dense and compacted).

A GEMM runs as a sequence of folds. Each fold kernel decides, per fold, how many words the
array reads and writes in each buffer and how many bytes come from DRAM; this module does the
rest, once for all of them:

- ``record_fold``: adds a fold's SRAM words and DRAM loads to the statistics vector, notes the
  bytes that must arrive before the fold starts, and takes the fold's busy time as the longer
  of its compute cycles and its slowest SRAM port (``SRAM_LIMITED_CYCLES`` counts the
  difference);
- ``accumulate_psums``: partial sums of a column strip accumulated on chip over its folds:
  spilled to DRAM and read back when the strip's partial sums overflow the ofmap buffer,
  written back as outputs after the strip's last fold;
- ``fetch_bytes``: when an operand chunk is (re)fetched from DRAM;
- ``pipeline_elapsed`` / ``finish``: the schedule's elapsed cycles with DRAM transfers
  overlapped (double buffering) or serialised, and the stall cycles that makes.

``MemoryParams`` carries the hardware's memory figures into the kernels as one typed record
(``accel_sim.traffic.memory_params`` builds it from a spec).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from accel_sim.kernels._jit import JIT_OPTIONS, njit

# Indices of the statistics vector every fold kernel returns.
COMPUTE_CYCLES = 0
TOTAL_CYCLES = 1
FOLDS = 2
IFMAP_SRAM_READS = 3  # words read by the array
FILTER_SRAM_READS = 4
OFMAP_SRAM_WRITES = 5  # partial-sum / output words written by the array
OFMAP_SRAM_READS = 6  # partial sums read back for accumulation
IFMAP_DRAM_BYTES = 7
FILTER_DRAM_BYTES = 8
OFMAP_DRAM_READ_BYTES = 9  # spilled partial sums read back
OFMAP_DRAM_WRITE_BYTES = 10
SRAM_LIMITED_CYCLES = 11  # cycles added because an SRAM port could not keep up
N_STATS = 12


class MemoryParams(NamedTuple):
    """The memory figures a fold kernel needs (capacities already halved when double
    buffered; bandwidths per array cycle)."""

    word_bytes: int
    acc_bytes: int
    ifmap_capacity_bytes: float
    filter_capacity_bytes: float
    ofmap_capacity_bytes: float
    double_buffered: bool
    dram_bytes_per_cycle: float
    ifmap_sram_bytes_per_cycle: float
    filter_sram_bytes_per_cycle: float
    ofmap_sram_bytes_per_cycle: float
    # compressed / dense bytes of the weight: every filter DRAM load is scaled by it
    filter_dram_scale: float


class FoldLog(NamedTuple):
    """Per fold: DRAM bytes needed before it starts (one extra trailing entry), partial-sum
    spill bytes moved while it runs, bytes written back after it ends, and busy cycles."""

    prefetch: np.ndarray
    inflight: np.ndarray
    writeback: np.ndarray
    busy: np.ndarray


@njit(**JIT_OPTIONS)
def new_fold_log(n_folds):
    return FoldLog(
        np.zeros(n_folds + 1, dtype=np.float64),
        np.zeros(n_folds, dtype=np.float64),
        np.zeros(n_folds, dtype=np.float64),
        np.zeros(n_folds, dtype=np.float64),
    )


@njit(**JIT_OPTIONS)
def fetch_bytes(first_touch, operand_resident, chunk_changed, chunk_bytes, capacity_bytes):
    """DRAM bytes to bring an operand chunk in for this fold.

    A resident operand (it all fits its buffer) is fetched once, chunk by chunk, on first
    touch. Otherwise a chunk is fetched whenever it differs from the previous fold's, or
    every fold when the chunk alone overflows the buffer.
    """
    if operand_resident:
        return chunk_bytes if first_touch else 0.0
    if first_touch or chunk_changed or chunk_bytes > capacity_bytes:
        return chunk_bytes
    return 0.0


@njit(**JIT_OPTIONS)
def accumulate_psums(stats, log, f, psum_words, first, last, mem):
    """Partial sums ``psum_words`` of a strip at fold ``f`` (its ``first``/``last`` fold):
    read back unless first, spilled and read back through DRAM when the strip's partial sums
    overflow the ofmap buffer, written back as outputs after the last fold. Returns the
    partial-sum words read back from the buffer."""
    psum_reads = 0.0 if first else float(psum_words)
    fits = psum_words * mem.acc_bytes <= mem.ofmap_capacity_bytes
    if last:
        log.writeback[f] = psum_words * mem.word_bytes
    elif not fits:
        log.inflight[f] += psum_words * mem.acc_bytes
        stats[OFMAP_DRAM_WRITE_BYTES] += psum_words * mem.acc_bytes
    if not first and not fits:
        log.inflight[f] += psum_words * mem.acc_bytes
        stats[OFMAP_DRAM_READ_BYTES] += psum_words * mem.acc_bytes
    return psum_reads


@njit(**JIT_OPTIONS)
def record_fold(
    stats, log, f, ifmap_words, filter_words, psum_words, psum_reads, ifmap_load, filter_load,
    fold_cycles, mem,
):  # fmt: skip
    """Add fold ``f``'s SRAM words and DRAM loads to ``stats`` and fix its busy cycles: the
    longer of ``fold_cycles`` and its slowest SRAM port (``log.writeback[f]`` must be set)."""
    stats[IFMAP_SRAM_READS] += ifmap_words
    stats[FILTER_SRAM_READS] += filter_words
    stats[OFMAP_SRAM_WRITES] += psum_words
    stats[IFMAP_DRAM_BYTES] += ifmap_load
    stats[FILTER_DRAM_BYTES] += filter_load
    log.prefetch[f] = ifmap_load + filter_load
    stats[OFMAP_SRAM_READS] += psum_reads
    stats[OFMAP_DRAM_WRITE_BYTES] += log.writeback[f]
    sram_cycles = max(
        ifmap_words * mem.word_bytes / mem.ifmap_sram_bytes_per_cycle,
        filter_words * mem.word_bytes / mem.filter_sram_bytes_per_cycle,
        (psum_words + psum_reads) * mem.acc_bytes / mem.ofmap_sram_bytes_per_cycle,
    )
    log.busy[f] = max(float(fold_cycles), sram_cycles)
    stats[SRAM_LIMITED_CYCLES] += log.busy[f] - fold_cycles
    stats[COMPUTE_CYCLES] += fold_cycles


@njit(**JIT_OPTIONS)
def pipeline_elapsed(prefetch, inflight, writeback, busy, double_buffered, dram_bytes_per_cycle):
    """Cycles from the first DRAM load to the last write-back of a fold schedule."""
    n_folds = busy.shape[0]
    elapsed = 0.0
    if double_buffered:
        elapsed += prefetch[0] / dram_bytes_per_cycle
        for f in range(n_folds):
            moved = prefetch[f + 1] + inflight[f]
            if f > 0:
                moved += writeback[f - 1]
            elapsed += max(busy[f], moved / dram_bytes_per_cycle)
        elapsed += writeback[n_folds - 1] / dram_bytes_per_cycle
    else:
        for f in range(n_folds):
            elapsed += prefetch[f] / dram_bytes_per_cycle
            elapsed += max(busy[f], inflight[f] / dram_bytes_per_cycle)
            elapsed += writeback[f] / dram_bytes_per_cycle
    return elapsed


@njit(**JIT_OPTIONS)
def finish(stats, log, n_folds, dead_writeback, mem):
    """Close a schedule: FOLDS, COMPUTE_CYCLES (the folds' sum minus one, as SCALE-Sim
    counts) and TOTAL_CYCLES from ``pipeline_elapsed``; ``dead_writeback`` bytes (outputs no
    fold produced, zeros) are written after the last fold."""
    stats[FOLDS] = n_folds
    stats[COMPUTE_CYCLES] = max(stats[COMPUTE_CYCLES] - 1.0, 0.0)
    if n_folds == 0:
        elapsed = dead_writeback / mem.dram_bytes_per_cycle
        ideal_cycles = 0.0
    else:
        log.writeback[n_folds - 1] += dead_writeback
        elapsed = pipeline_elapsed(
            log.prefetch, log.inflight, log.writeback, log.busy, mem.double_buffered,
            mem.dram_bytes_per_cycle,
        )  # fmt: skip
        ideal_cycles = stats[COMPUTE_CYCLES] + 1
    stall = np.ceil(elapsed - ideal_cycles - 1e-9)
    stats[TOTAL_CYCLES] = stats[COMPUTE_CYCLES] + max(stall, 0.0)
    return stats
