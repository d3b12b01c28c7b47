"""A SIGMA-style flexible array: stationary nonzeros packed into folds, fold timing, and the
fold memory schedule (the fast engine; its cycle-stepping twin is ``tests/naive/flexible.py``).

The GEMM is (m x K) @ (K x N) with the weight mask ``[N, K]`` (torch's ``[out, in]``). The
weight is the stationary matrix and the m token rows stream (SIGMA's KN-stationary,
MK-streaming dataflow, Qin et al. HPCA 2020 Sec. III-C, Fig. 4d). ``P`` multipliers sit in
Flex-DPEs of ``D`` (the last one maybe smaller).

*Packing* (``pack_folds``). The outputs are cut into blocks of ``G`` and K into strips of
``S`` consecutive inputs. Block by block, strip by strip, output by output, the kept weights
of the (block, strip) group go onto consecutive multipliers, whatever their positions
(SIGMA maps only nonzeros, Sec. IV-E step v, Fig. 5), ``P`` per fold; a new group starts a
new fold. An output's kept weights on consecutive multipliers of one Flex-DPE form a
*segment*: the FAN reduces it to one partial sum per token row. An output whose weights span
several strips, folds or Flex-DPEs has several segments; all but its first read back and
accumulate the partial sum so far in the ofmap buffer, and its last one finishes the output.

*Timing* of fold f (``fold_cycles``), with ``B`` the distinct words the distribution network
delivers per cycle and ``B_load`` the stationary words it loads per cycle:

- load: the fold's ``nnz`` stationary words cross the same network first, ``ceil(nnz /
  B_load)`` cycles (Sec. IV-E step iv; the RTL's multiplier switches take the stationary
  value off the one data bus, vmod/flexdpe.v ``i_stationary``);
- stream: each token row needs the fold's ``U`` distinct inputs, multicast to every
  multiplier holding a weight of that input: ``t = max(1, ceil(U / B))`` cycles a row (a
  multiplier does one MAC a cycle), rows back to back;
- drain: after the last delivery, one cycle of multiplication and ``L = ceil(log2 D)`` FAN
  levels (Sec. V: "1-cycle distribution, 1-cycle multiplication, and 1-cycle for each level
  of reduction"). A segment's products may arrive over several cycles; its adders wait for
  both operands, as STONNE's adder switches do (stonne/src/ASwitch.cpp), so it still leaves
  as one partial sum, L cycles after its last product.

So a fold lasts ``ceil(nnz / B_load) + m t + 1 + L`` cycles, serially: loading shares the
network with streaming, and the paper pays the reduction before the next fold (Sec. IV-A2,
Fig. 6b). With ``S = B`` every row takes one cycle; wider strips give longer segments (fewer
partial sums) at ``ceil(S / B)`` cycles a row. The datapath tries strip widths and keeps the
fastest.

*Memory* (``flexible_schedule``) is ``fold_memory``'s per-fold model: a fold reads ``m U``
ifmap words, loads ``nnz`` filter words and writes ``m x segments`` partial sums, reading
back ``m x (segments - first)``; each SRAM port's time bounds the fold (``record_fold``), so
a narrow ofmap port is what many short segments run into. Inputs: when all the live inputs
(m x inputs with a kept weight) fit the ifmap buffer each is fetched once, when a group
first needs it; otherwise a group fetches its strip's live inputs when it starts, or, when
those overflow the buffer, the share that fits stays for the group and each fold fetches
the rest of the inputs it streams. The weight travels compressed, ``filter_dram_scale x K N
x word`` bytes in all, shared among folds by their words. Finished outputs are written back
after their last fold. A block's outputs are live while its strips go by: when ``m x`` a
block's live outputs overflow the ofmap buffer, unfinished partial sums spill to DRAM and
come back. Outputs without a kept weight are zeros written after the last fold.

``pack_dense_folds`` gives ``pack_folds``'s result for an all-ones mask without building it
(dense baselines and attention GEMMs of any size).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from accel_sim.kernels._jit import JIT_OPTIONS, njit
from accel_sim.kernels.fold_memory import (
    FOLDS,
    N_STATS,
    OFMAP_DRAM_READ_BYTES,
    OFMAP_DRAM_WRITE_BYTES,
    new_fold_log,
    record_fold,
)

__all__ = [
    "BLOCK_SUM",
    "LOAD_CYCLES",
    "N_FLEX_STATS",
    "SEGMENTS",
    "STATIONARY_WORDS",
    "STREAM_CYCLES",
    "STRIP_SUM",
    "FlexFolds",
    "fan_levels",
    "flexible_schedule",
    "fold_cycles",
    "mask_rows",
    "pack_dense_folds",
    "pack_folds",
]

# Statistics beyond fold_memory's (indices into the same vector).
STATIONARY_WORDS = N_STATS  # kept weights mapped, all folds: performed MACs = this x m
SEGMENTS = N_STATS + 1  # segments, all folds: partial sums per token row
LOAD_CYCLES = N_STATS + 2  # cycles loading stationary words
STREAM_CYCLES = N_STATS + 3  # cycles streaming token rows
STRIP_SUM = N_STATS + 4  # strip width x folds (mean strip width = this / folds)
BLOCK_SUM = N_STATS + 5  # output block x folds
N_FLEX_STATS = N_STATS + 6


class FlexFolds(NamedTuple):
    """The folds of one mask at one strip width and output block."""

    group: np.ndarray  # (block, strip) group of each fold
    nnz: np.ndarray  # stationary words (kept weights) of each fold
    unique: np.ndarray  # distinct inputs of each fold: streamed words per token row
    segments: np.ndarray  # (output, Flex-DPE) runs of each fold: partial sums per token row
    first: np.ndarray  # segments that start their output
    last: np.ndarray  # segments that finish their output
    group_live: np.ndarray  # inputs of each group's strip with a kept weight in its block
    group_new: np.ndarray  # of those, the ones no earlier group had
    live_inputs: int  # inputs with any kept weight
    block_outputs: int  # most outputs with a kept weight in one block
    empty_outputs: int  # outputs without any kept weight
    width: int  # the strip width S
    block: int  # outputs per block


def fan_levels(dpe: int) -> int:
    """Adder levels of a FAN over ``dpe`` multipliers: ``ceil(log2 dpe)``."""
    return max(dpe - 1, 0).bit_length()


def mask_rows(mask) -> tuple[np.ndarray, np.ndarray]:
    """(row pointers, input indices) of a bool ``mask [N, K]``: the kept weights of output j
    are inputs ``idx[ptr[j]:ptr[j + 1]]``, ascending (what ``pack_folds`` walks)."""
    mask = np.asarray(mask, dtype=bool)
    rows, cols = np.nonzero(mask)
    ptr = np.zeros(mask.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=mask.shape[0]), out=ptr[1:])
    return ptr, cols.astype(np.int64)


@njit(**JIT_OPTIONS)
def pack_folds(ptr, idx, k, width, block, multipliers, dpe):
    """Folds of a mask given as rows (``mask_rows``: N outputs, K inputs) with strips of
    ``width`` inputs and blocks of ``block`` outputs, on ``multipliers`` multipliers in
    Flex-DPEs of ``dpe`` (a ``FlexFolds`` record). Blocks run outermost, then strips; each
    (block, strip) group starts a new fold."""
    n = ptr.shape[0] - 1
    n_strips = (k + width - 1) // width
    n_blocks = (n + block - 1) // block
    n_groups = n_blocks * n_strips
    total = idx.shape[0]
    max_folds = total // multipliers + n_groups + 1
    f_group = np.zeros(max_folds, dtype=np.int64)
    f_nnz = np.zeros(max_folds, dtype=np.int64)
    f_unique = np.zeros(max_folds, dtype=np.int64)
    f_segments = np.zeros(max_folds, dtype=np.int64)
    f_first = np.zeros(max_folds, dtype=np.int64)
    f_last = np.zeros(max_folds, dtype=np.int64)
    group_live = np.zeros(n_groups, dtype=np.int64)
    group_new = np.zeros(n_groups, dtype=np.int64)
    cursor = ptr[:-1].copy()  # each output's next kept weight
    touched = np.zeros(k, dtype=np.bool_)  # inputs of earlier groups
    stamp = np.full(k, -1, dtype=np.int64)  # last fold that streamed input i
    in_group = np.full(k, -1, dtype=np.int64)  # last group that had input i
    block_outputs = 0
    f = -1
    for b in range(n_blocks):
        j0 = b * block
        j1 = min(n, j0 + block)
        outputs = 0
        for j in range(j0, j1):
            if ptr[j + 1] > ptr[j]:
                outputs += 1
        block_outputs = max(block_outputs, outputs)
        for s in range(n_strips):
            g = b * n_strips + s
            i1 = min(k, s * width + width)
            pos = multipliers  # a group starts a new fold
            for j in range(j0, j1):
                seg_fold = -1
                seg_dpe = -1
                c = cursor[j]
                end = ptr[j + 1]
                while c < end and idx[c] < i1:
                    i = idx[c]
                    if pos == multipliers:
                        f += 1
                        f_group[f] = g
                        pos = 0
                    d = pos // dpe
                    if seg_fold != f or seg_dpe != d:
                        f_segments[f] += 1
                        if c == ptr[j]:
                            f_first[f] += 1
                        seg_fold = f
                        seg_dpe = d
                    f_nnz[f] += 1
                    if stamp[i] != f:
                        stamp[i] = f
                        f_unique[f] += 1
                    if in_group[i] != g:
                        in_group[i] = g
                        group_live[g] += 1
                        if not touched[i]:
                            touched[i] = True
                            group_new[g] += 1
                    pos += 1
                    c += 1
                cursor[j] = c
                if seg_fold >= 0 and c == end:
                    f_last[seg_fold] += 1
    live_inputs = 0
    for i in range(k):
        if touched[i]:
            live_inputs += 1
    empty = 0
    for j in range(n):
        if ptr[j + 1] == ptr[j]:
            empty += 1
    folds = f + 1
    return FlexFolds(
        f_group[:folds].copy(),
        f_nnz[:folds].copy(),
        f_unique[:folds].copy(),
        f_segments[:folds].copy(),
        f_first[:folds].copy(),
        f_last[:folds].copy(),
        group_live,
        group_new,
        live_inputs,
        block_outputs,
        empty,
        width,
        block,
    )


@njit(**JIT_OPTIONS)
def _segments(p0, p1, dpe):
    """Flex-DPEs that fold positions ``[p0, p1)`` touch."""
    return (p1 - 1) // dpe - p0 // dpe + 1


@njit(**JIT_OPTIONS)
def pack_dense_folds(n, k, width, block, multipliers, dpe):
    """``pack_folds`` of an all-ones ``[n, k]`` mask without the mask: each group's outputs
    lie back to back, a strip's ``w`` inputs each, so every count is arithmetic."""
    n_strips = (k + width - 1) // width
    n_blocks = (n + block - 1) // block
    n_groups = n_blocks * n_strips
    max_folds = 0
    for b in range(n_blocks):
        outputs = min(n, b * block + block) - b * block
        for s in range(n_strips):
            w = min(k, s * width + width) - s * width
            max_folds += (outputs * w + multipliers - 1) // multipliers
    f_group = np.zeros(max_folds, dtype=np.int64)
    f_nnz = np.zeros(max_folds, dtype=np.int64)
    f_unique = np.zeros(max_folds, dtype=np.int64)
    f_segments = np.zeros(max_folds, dtype=np.int64)
    f_first = np.zeros(max_folds, dtype=np.int64)
    f_last = np.zeros(max_folds, dtype=np.int64)
    group_live = np.zeros(n_groups, dtype=np.int64)
    group_new = np.zeros(n_groups, dtype=np.int64)
    f = 0
    for b in range(n_blocks):
        outputs = min(n, b * block + block) - b * block
        for s in range(n_strips):
            g = b * n_strips + s
            w = min(k, s * width + width) - s * width
            group_live[g] = w
            if b == 0:
                group_new[g] = w
            words = outputs * w
            for start in range(0, words, multipliers):
                stop = min(words, start + multipliers)
                f_group[f] = g
                f_nnz[f] = stop - start
                j_first, j_last = start // w, (stop - 1) // w
                tail, head = start % w, (stop - 1) % w + 1
                if j_first == j_last:
                    f_unique[f] = head - tail
                elif j_last == j_first + 1 and head < tail:
                    f_unique[f] = w - tail + head
                else:
                    f_unique[f] = w
                for j in range(j_first, j_last + 1):
                    p0 = max(start, j * w) - start
                    p1 = min(stop, j * w + w) - start
                    f_segments[f] += _segments(p0, p1, dpe)
                    if s == 0 and j * w >= start:
                        f_first[f] += 1
                    if s == n_strips - 1 and j * w + w <= stop:
                        f_last[f] += 1
                f += 1
    return FlexFolds(
        f_group,
        f_nnz,
        f_unique,
        f_segments,
        f_first,
        f_last,
        group_live,
        group_new,
        k,
        min(block, n),
        0,
        width,
        block,
    )


@njit(**JIT_OPTIONS)
def fold_cycles(nnz, unique, m, bandwidth, load_bandwidth, levels):
    """Compute cycles of each fold: ``ceil(nnz / B_load) + m max(1, ceil(U / B)) + 1 + L``."""
    out = np.empty(nnz.shape[0], dtype=np.int64)
    for f in range(nnz.shape[0]):
        load = (nnz[f] + load_bandwidth - 1) // load_bandwidth
        per_row = max(1, (unique[f] + bandwidth - 1) // bandwidth)
        out[f] = load + m * per_row + 1 + levels
    return out


@njit(**JIT_OPTIONS)
def flexible_schedule(folds, cycles, m, k, n, bandwidth, load_bandwidth, mem, plan):
    """Per-fold memory schedule (module docstring). Returns (stats ``N_FLEX_STATS`` long,
    ``FoldLog``, folds, dead write-back bytes: the zero outputs, written after the last
    fold)."""
    n_folds = folds.nnz.shape[0]
    stats = np.zeros(N_FLEX_STATS, dtype=np.float64)
    word = mem.word_bytes
    acc = mem.acc_bytes
    total = 0.0
    for f in range(n_folds):
        total += folds.nnz[f]
    ratio = (k * n) / total if total > 0 else 0.0
    psums_fit = m * folds.block_outputs * acc <= mem.ofmap_capacity_bytes
    ifmap_fits = m * folds.live_inputs * word <= mem.ifmap_capacity_bytes
    log = new_fold_log(n_folds)
    for f in range(n_folds):
        g = folds.group[f]
        group_start = f == 0 or folds.group[f - 1] != g
        chunk = float(m * folds.group_live[g] * word)
        if ifmap_fits:  # every input stays once fetched: fetch what this group adds
            ifmap_load = float(m * folds.group_new[g] * word) if group_start else 0.0
        elif chunk <= mem.ifmap_capacity_bytes:  # the group's inputs stay for its folds
            ifmap_load = chunk if group_start else 0.0
        else:  # the share that fits stays; each fold fetches the rest of what it streams
            kept = mem.ifmap_capacity_bytes / chunk
            ifmap_load = (1.0 - kept) * m * folds.unique[f] * word
            if group_start:
                ifmap_load += mem.ifmap_capacity_bytes
        filter_load = folds.nnz[f] * word * ratio * mem.filter_dram_scale
        if plan.ifmap_on_chip:
            ifmap_load = 0.0
        if plan.filter_on_chip:
            filter_load = 0.0
        segments = folds.segments[f]
        psum_words = m * segments
        psum_reads = float(m * (segments - folds.first[f]))
        if not plan.outputs_on_chip:
            log.writeback[f] = m * folds.last[f] * word
        if not psums_fit:
            spill = m * (segments - folds.last[f]) * acc
            back = m * (segments - folds.first[f]) * acc
            log.inflight[f] += spill + back
            stats[OFMAP_DRAM_WRITE_BYTES] += spill
            stats[OFMAP_DRAM_READ_BYTES] += back
        stats[STATIONARY_WORDS] += folds.nnz[f]
        stats[SEGMENTS] += segments
        stats[LOAD_CYCLES] += (folds.nnz[f] + load_bandwidth - 1) // load_bandwidth
        stats[STREAM_CYCLES] += m * max(1, (folds.unique[f] + bandwidth - 1) // bandwidth)
        stats[STRIP_SUM] += folds.width
        stats[BLOCK_SUM] += min(folds.block, n)
        record_fold(
            stats, log, f, m * folds.unique[f], folds.nnz[f], psum_words, psum_reads,
            ifmap_load, filter_load, cycles[f], mem,
        )  # fmt: skip
    stats[FOLDS] = n_folds
    dead = 0.0
    if not plan.outputs_on_chip:
        dead = float(m * folds.empty_outputs * word)
    stats[OFMAP_DRAM_WRITE_BYTES] += dead
    return stats, log, n_folds, dead
