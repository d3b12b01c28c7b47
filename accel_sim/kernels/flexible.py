"""A SIGMA-style flexible array: stationary nonzeros packed into folds, fold timing, and the
fold memory schedule (the fast engine; its cycle-stepping twin is ``tests/naive/flexible.py``).

The GEMM is (m x K) @ (K x N) with the weight mask ``[N, K]`` (torch's ``[out, in]``). The
weight is the stationary matrix and the m token rows stream (SIGMA's KN-stationary,
MK-streaming dataflow, Qin et al. HPCA 2020 Sec. III-C, Fig. 4d). ``P`` multipliers sit in
Flex-DPEs of ``D`` (the last one maybe smaller).

*Packing* (``pack_folds``, reading the mask as 64-input bit rows from ``mask_bits``). The
outputs are cut into blocks of ``G`` and K into strips of ``S`` consecutive inputs. Block by
block, strip by strip, output by output, the kept weights of the (block, strip) group go onto
consecutive multipliers, whatever their positions (SIGMA maps only nonzeros, Sec. IV-E step v,
Fig. 5), ``P`` per fold; a new group starts a new fold. An output's kept weights on consecutive
multipliers of one Flex-DPE form a *segment*: the FAN reduces it to one partial sum per token
row. An output whose weights span several strips, folds or Flex-DPEs has several segments; all
but its first read back and accumulate the partial sum so far in the ofmap buffer, and its last
one finishes the output.

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

import math
from typing import NamedTuple

import numpy as np
from numba import types
from numba.typed import Dict

from accel_sim.kernels._jit import JIT_OPTIONS, njit
from accel_sim.kernels.bitops import lowest_bit, pack_rows
from accel_sim.kernels.bitops import popcount as _popcount
from accel_sim.kernels.fold_memory import (
    FOLDS,
    N_STATS,
    OFMAP_DRAM_WRITE_BYTES,
    TOTAL_CYCLES,
    FoldPlan,
    MemoryParams,
    finish,
    new_fold_log,
    no_totals,
    record_fold,
    store_totals,
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
    "FoldTimes",
    "MaskBits",
    "best_schedule",
    "compute_floor",
    "cycles_of",
    "dpe_starts",
    "dpe_starts_searched",
    "dpe_starts_walked",
    "fan_levels",
    "flexible_schedule",
    "fold_cycles",
    "fold_times",
    "group_floor",
    "live_inputs",
    "mask_bits",
    "new_packings",
    "pack_dense_folds",
    "pack_folds",
    "packing",
    "port_floor",
    "ranking_total",
    "schedule_at",
    "total_cycles",
    "traffic_cache",
    "traffic_floor",
    "whole_k_floor",
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


class MaskBits(NamedTuple):
    """A mask as ``pack_folds`` reads it (``mask_bits``)."""

    bits: np.ndarray  # [ceil(K / 64), N] uint64: bit i % 64 of bits[i // 64, j] is mask[j, i]
    degree: np.ndarray  # kept weights of each output
    lowest: np.ndarray  # each output's first kept input (K when it keeps none)
    highest: np.ndarray  # each output's last kept input (K when it keeps none)


def mask_bits(mask) -> MaskBits:
    """A bool ``mask [N, K]`` as 64-input bit rows, word-major so that a strip's outputs lie
    side by side in memory, with each output's kept weights and first and last kept input
    (what ``pack_folds`` reads)."""
    mask = np.asarray(mask, dtype=bool)
    bits = pack_rows(mask)
    # counted from the bits: numpy's count_nonzero along an axis sums a bool copy, five times
    # slower than packing the mask
    return MaskBits(bits, _degrees(bits), *_kept_range(bits, mask.shape[1]))


_ONE = np.uint64(1)
_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)
_FULL = np.full((1, 1), _ALL, dtype=np.uint64)  # one word of ones, cut to a strip's bits


@njit(**JIT_OPTIONS)
def _degrees(bits):
    """Set bits of each column of ``bits [words, N]``: each output's kept weights."""
    degree = np.zeros(bits.shape[1], dtype=np.int64)
    for w in range(bits.shape[0]):
        row = bits[w]
        for j in range(bits.shape[1]):
            degree[j] += _popcount(row[j])
    return degree


@njit(**JIT_OPTIONS)
def _strip_word(bits, j, w, i0, i1):
    """Word ``w`` of row ``j`` with the bits outside inputs ``[i0, i1)`` cleared."""
    x = bits[w, j]
    low = w * 64
    if i0 > low:
        x &= _ALL << np.uint64(i0 - low)
    if i1 < low + 64:
        x &= (_ONE << np.uint64(i1 - low)) - _ONE
    return x


@njit(**JIT_OPTIONS)
def _or_ranks(acc, bits, j, w0, w1, i0, i1, r0, r1):
    """OR into ``acc`` the kept inputs of row ``j`` in ``[i0, i1)`` of rank ``[r0, r1)``
    (the r-th kept weight of the strip, ascending)."""
    rank = 0
    for w in range(w0, w1 + 1):
        x = _strip_word(bits, j, w, i0, i1)
        count = _popcount(x)
        if rank + count > r0:
            for _ in range(max(r0 - rank, 0)):
                x &= x - _ONE  # drop the lowest kept input
            keep = r1 - max(rank, r0)
            if keep < count - max(r0 - rank, 0):
                kept = np.uint64(0)
                for _ in range(keep):
                    lowest = x & (~x + _ONE)
                    kept |= lowest
                    x ^= lowest
                x = kept
            acc[w] |= x
        rank += count
        if rank >= r1:
            return


@njit(**JIT_OPTIONS)
def _last_at_most(start, lo, hi, value):
    """The last index of ``start[lo:hi]`` (non-decreasing, ``start[lo] <= value``) whose
    entry is at most ``value``."""
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if start[mid] <= value:
            lo = mid
        else:
            hi = mid
    return lo


@njit(**JIT_OPTIONS)
def dpe_starts_searched(start, ia, ib, f0, f1, dpe):
    """``dpe_starts`` by a binary search of ``start`` per Flex-DPE boundary."""
    hits = 0
    boundary = f0 + dpe
    i = ia
    while boundary < f1:
        i = _last_at_most(start, i, ib + 1, boundary)
        if start[i] == boundary:
            hits += 1
        boundary += dpe
    return hits


@njit(**JIT_OPTIONS)
def dpe_starts_walked(start, ia, ib, f0, f1, dpe):
    """``dpe_starts`` by one walk over outputs and boundaries together."""
    hits = 0
    boundary = f0 + dpe
    i = ia + 1
    while boundary < f1 and i <= ib:
        if start[i] < boundary:
            i += 1
        else:
            if start[i] == boundary:
                hits += 1
            boundary += dpe
    return hits


@njit(**JIT_OPTIONS)
def dpe_starts(start, ia, ib, f0, f1, dpe, inner):
    """Of outputs ``ia..ib`` (first positions ``start``, non-decreasing), those beginning
    exactly on a Flex-DPE's first position inside the fold ``[f0, f1)`` after its first
    (``f0 + dpe``, ``f0 + 2 dpe``, ...; ``inner`` of them, ``(f1 - f0 - 1) // dpe``): each
    saves the segment that a DPE boundary inside a piece adds. A binary search per boundary
    when boundaries are few against the outputs, else one walk."""
    if inner * 8 < ib - ia:
        return dpe_starts_searched(start, ia, ib, f0, f1, dpe)
    return dpe_starts_walked(start, ia, ib, f0, f1, dpe)


@njit(**JIT_OPTIONS)
def _kept_range(bits, k):
    """Each output's first and last kept input (``k`` for both when it keeps none): a strip
    holds an output's first weights when it holds its first kept input (``pack_folds``'
    first and last segments)."""
    n = bits.shape[1]
    lowest = np.full(n, k, dtype=np.int64)
    highest = np.full(n, k, dtype=np.int64)
    for j in range(n):
        for w in range(bits.shape[0]):
            x = bits[w, j]
            if x:
                lowest[j] = 64 * w + lowest_bit(x)
                break
        for w in range(bits.shape[0] - 1, -1, -1):
            x = bits[w, j]
            if x:
                top = 63
                while not (x >> np.uint64(top)) & _ONE:
                    top -= 1
                highest[j] = 64 * w + top
                break
    return lowest, highest


@njit(**JIT_OPTIONS)
def _block_outputs(degree, n, block):
    """The most outputs with a kept weight in one block (``FlexFolds.block_outputs``)."""
    most = 0
    for b0 in range(0, n, block):
        live = 0
        for j in range(b0, min(n, b0 + block)):
            live += degree[j] > 0
        most = max(most, live)
    return most


@njit(**JIT_OPTIONS)
def _mask_totals(touched, degree, block):
    """What both packers report beside their folds: (inputs with a kept weight, from the
    OR of every group's inputs ``touched``; most outputs with a kept weight in one block of
    ``block``; outputs without any)."""
    live_inputs = 0
    for w in range(touched.shape[0]):
        live_inputs += _popcount(touched[w])
    n = degree.shape[0]
    block_outputs = _block_outputs(degree, n, block)
    empty = 0
    for j in range(n):
        empty += degree[j] == 0
    return live_inputs, block_outputs, empty


@njit(**JIT_OPTIONS)
def _piece_counts(count, lowest, highest, j0, ia, ib, i0, i1):
    """Of a group's outputs ``ia..ib`` (``count``: their kept weights in strip ``[i0, i1)``,
    indexed from the group's first output ``j0``): those with a weight there, and those
    whose first and last kept input lie there. Branch-free and unsigned: it vectorises."""
    pieces = first = last = 0
    for i in range(ia, ib + 1):
        u = np.uint64(i)
        v = np.uint64(j0 + i)
        pieces += count[u] > 0
        first += (lowest[v] >= i0) & (lowest[v] < i1)
        last += (highest[v] >= i0) & (highest[v] < i1)
    return pieces, first, last


@njit(**JIT_OPTIONS)
def pack_folds(bits, degree, lowest, highest, k, width, block, multipliers, dpe):
    """Folds of a mask given as ``mask_bits`` (N outputs, K inputs) with strips of
    ``width`` inputs and blocks of ``block`` outputs, on ``multipliers`` multipliers in
    Flex-DPEs of ``dpe`` (a ``FlexFolds`` record). Blocks run outermost, then strips; each
    (block, strip) group starts a new fold. When no group can need a second fold (each
    block's outputs hold at most ``multipliers`` weights of a strip's width), every group is
    one fold: ``_pack_one_fold_groups``; otherwise ``_pack_groups``."""
    n = degree.shape[0]
    for j0 in range(0, n, block):
        most = 0
        for j in range(j0, min(n, j0 + block)):
            most += min(degree[j], width)
        if most > multipliers:
            return _pack_groups(bits, degree, lowest, highest, k, width, block, multipliers,
                                dpe)  # fmt: skip
    return _pack_one_fold_groups(bits, degree, lowest, highest, k, width, block, dpe)


@njit(**JIT_OPTIONS)
def _pack_groups(bits, degree, lowest, highest, k, width, block, multipliers, dpe):
    """``pack_folds``, group by group.

    Per group a popcount pass per 64-input word gives each output's kept weights of the strip
    and the group's inputs (the OR of its outputs' bits), and a running sum each output's
    first position. A group of at most ``P`` weights is one fold of whole outputs, whose
    inputs are the group's. Otherwise the group's weights lie back to back, so fold q holds
    positions ``[qP, (q+1)P)``, and a binary search finds the outputs at its two ends. Over
    the outputs between them the fold counts its pieces (outputs with weights), first and last
    segments (outputs whose first or last kept input, ``lowest``/``highest``, lies in the
    strip, less the cut output at either end); its segments are its pieces plus the Flex-DPE
    boundaries inside pieces; its distinct inputs are the OR of its whole outputs' bit rows,
    the outputs cut by a fold boundary contributing their kept inputs of the ranks that fall
    in it. Indices into the bit rows and per-output arrays go through unsigned casts: Numba
    checks a signed index for a negative value to wrap, which kept these loops from
    vectorising."""
    n = degree.shape[0]
    n_words = bits.shape[0]
    n_strips = (k + width - 1) // width
    n_blocks = (n + block - 1) // block
    n_groups = n_blocks * n_strips
    max_folds = degree.sum() // multipliers + n_groups + 1
    f_group = np.zeros(max_folds, dtype=np.int64)
    f_nnz = np.zeros(max_folds, dtype=np.int64)
    f_unique = np.zeros(max_folds, dtype=np.int64)
    f_segments = np.zeros(max_folds, dtype=np.int64)
    f_first = np.zeros(max_folds, dtype=np.int64)
    f_last = np.zeros(max_folds, dtype=np.int64)
    group_live = np.zeros(n_groups, dtype=np.int64)
    group_new = np.zeros(n_groups, dtype=np.int64)
    touched = np.zeros(n_words, dtype=np.uint64)  # inputs of earlier groups
    fold_inputs = np.zeros(n_words, dtype=np.uint64)
    group_inputs = np.zeros(n_words, dtype=np.uint64)
    word_mask = np.zeros(n_words, dtype=np.uint64)  # the strip's inputs of each word
    span = min(block, n)
    count = np.zeros(span, dtype=np.int64)  # each output's kept weights in the strip
    start = np.zeros(span + 1, dtype=np.int64)  # ... their first position in the group
    full_inner = (multipliers - 1) // dpe  # Flex-DPE boundaries inside a full fold
    f = -1
    for b in range(n_blocks):
        j0 = b * block
        j1 = min(n, j0 + block)
        outs = j1 - j0
        for s in range(n_strips):
            g = b * n_strips + s
            i0 = s * width
            i1 = min(k, i0 + width)
            w0 = i0 // 64
            w1 = (i1 - 1) // 64
            count[:outs] = 0
            for w in range(w0, w1 + 1):
                cut = _strip_word(_FULL, 0, 0, max(i0 - 64 * w, 0), min(i1 - 64 * w, 64))
                word_mask[w] = cut
                row = bits[w]
                acc = np.uint64(0)
                for i in range(outs):
                    x = row[np.uint64(j0 + i)] & cut
                    count[i] += _popcount(x)
                    acc |= x
                group_inputs[w] = acc  # the union of its folds' inputs, however it folds
            total = 0
            for i in range(outs):
                start[i] = total
                total += count[i]
            start[outs] = total
            f0 = 0
            if 0 < total <= multipliers:  # one fold of whole outputs: its inputs are the group's
                inner = (total - 1) // dpe
                pieces, first, last = _piece_counts(count, lowest, highest, j0, 0, outs - 1,
                                                    i0, i1)  # fmt: skip
                unique = 0
                for w in range(w0, w1 + 1):
                    unique += _popcount(group_inputs[w])
                f += 1
                f_group[f] = g
                f_nnz[f] = total
                f_segments[f] = pieces + inner - dpe_starts(start, 0, outs - 1, 0, total, dpe,
                                                            inner)  # fmt: skip
                f_first[f] = first
                f_last[f] = last
                f_unique[f] = unique
                f0 = total  # no fold boundaries to search
            ia = 0
            while f0 < total:  # a stepped range divides for its length
                f1 = min(total, f0 + multipliers)
                inner = full_inner if f1 - f0 == multipliers else (f1 - f0 - 1) // dpe
                ia = _last_at_most(start, ia, outs, f0)  # the output holding position f0
                ib = _last_at_most(start, ia, outs, f1 - 1)  # ... and f1 - 1
                head = start[ia] < f0  # ia began in the previous fold
                tail = start[ib + 1] > f1  # ib goes on in the next fold
                pieces, first, last = _piece_counts(count, lowest, highest, j0, ia, ib, i0, i1)
                if head and lowest[j0 + ia] >= i0:
                    first -= 1  # its first weights were in the previous fold
                if tail and highest[j0 + ib] < i1:
                    last -= 1  # its last weights are in the next fold
                f += 1
                f_group[f] = g
                f_nnz[f] = f1 - f0
                f_segments[f] = pieces + inner - dpe_starts(start, ia, ib, f0, f1, dpe, inner)
                f_first[f] = first
                f_last[f] = last
                whole_lo = ia + 1 if head else ia
                whole_hi = ib if tail else ib + 1
                for w in range(w0, w1 + 1):
                    row = bits[w]
                    acc = np.uint64(0)
                    for j in range(j0 + whole_lo, j0 + whole_hi):
                        acc |= row[np.uint64(j)]
                    fold_inputs[w] |= acc & word_mask[w]
                if head:
                    r0 = f0 - start[ia]
                    r1 = min(start[ia + 1], f1) - start[ia]
                    _or_ranks(fold_inputs, bits, j0 + ia, w0, w1, i0, i1, r0, r1)
                if tail and not (head and ia == ib):
                    r1 = f1 - start[ib]
                    _or_ranks(fold_inputs, bits, j0 + ib, w0, w1, i0, i1, 0, r1)
                unique = 0
                for w in range(w0, w1 + 1):
                    unique += _popcount(fold_inputs[w])
                    fold_inputs[w] = np.uint64(0)
                f_unique[f] = unique
                f0 += multipliers
            live = 0
            new = 0
            for w in range(w0, w1 + 1):
                x = group_inputs[w]
                live += _popcount(x)
                new += _popcount(x & ~touched[w])
                touched[w] |= x
                group_inputs[w] = np.uint64(0)
            group_live[g] = live
            group_new[g] = new
    live_inputs, block_outputs, empty = _mask_totals(touched, degree, block)
    folds = f + 1
    return FlexFolds(
        f_group[:folds],  # views: a copy of each cost more than a pass of the packer
        f_nnz[:folds],
        f_unique[:folds],
        f_segments[:folds],
        f_first[:folds],
        f_last[:folds],
        group_live,
        group_new,
        live_inputs,
        block_outputs,
        empty,
        width,
        block,
    )


@njit(**JIT_OPTIONS)
def _pack_one_fold_groups(bits, degree, lowest, highest, k, width, block, dpe):
    """``pack_folds`` when every group is one fold (tiny output blocks: most groups at large
    m), strip by strip: per strip word, one pass over all outputs counts each one's weights
    and ORs each block's inputs, then one pass sums each block's weights, outputs with
    weights and first and last segments. No fold boundaries to search, no cut outputs to
    rank, no per-group buffers: twice as fast as ``_pack_groups`` on such groups. The
    groups' figures are written at their group index and the empty ones squeezed out at the
    end, so the folds come in ``pack_folds``' order (blocks outermost)."""
    n = degree.shape[0]
    n_words = bits.shape[0]
    n_strips = (k + width - 1) // width
    n_blocks = (n + block - 1) // block
    n_groups = n_blocks * n_strips
    f_group = np.empty(n_groups, dtype=np.int64)
    f_nnz = np.empty(n_groups, dtype=np.int64)
    f_unique = np.empty(n_groups, dtype=np.int64)
    f_segments = np.empty(n_groups, dtype=np.int64)
    f_first = np.empty(n_groups, dtype=np.int64)
    f_last = np.empty(n_groups, dtype=np.int64)
    group_live = np.empty(n_groups, dtype=np.int64)
    group_new = np.empty(n_groups, dtype=np.int64)
    touched = np.zeros(n_words, dtype=np.uint64)  # inputs of earlier groups
    count = np.empty(n, dtype=np.int64)  # each output's kept weights in the strip
    start = np.empty(min(block, n) + 1, dtype=np.int64)
    for s in range(n_strips):
        i0 = s * width
        i1 = min(k, i0 + width)
        w0 = i0 // 64
        for w in range(w0, (i1 - 1) // 64 + 1):
            cut = _strip_word(_FULL, 0, 0, max(i0 - 64 * w, 0), min(i1 - 64 * w, 64))
            row = bits[w]
            seen = touched[w]  # earlier blocks' inputs (a strip's bits: its blocks so far)
            for b in range(n_blocks):
                g = b * n_strips + s
                j0 = b * block
                j1 = min(n, j0 + block)
                acc = np.uint64(0)
                if w == w0:
                    for j in range(j0, j1):
                        x = row[np.uint64(j)] & cut
                        count[np.uint64(j)] = _popcount(x)
                        acc |= x
                    group_live[g] = _popcount(acc)
                    group_new[g] = _popcount(acc & ~seen)
                else:
                    for j in range(j0, j1):
                        x = row[np.uint64(j)] & cut
                        count[np.uint64(j)] += _popcount(x)
                        acc |= x
                    group_live[g] += _popcount(acc)
                    group_new[g] += _popcount(acc & ~seen)
                seen |= acc
            touched[w] = seen
        for b in range(n_blocks):
            g = b * n_strips + s
            j0 = b * block
            j1 = min(n, j0 + block)
            total = pieces = first = last = 0
            for j in range(j0, j1):  # branch-free and unsigned, as in _pack_groups
                v = np.uint64(j)
                total += count[v]
                pieces += count[v] > 0
                first += (lowest[v] >= i0) & (lowest[v] < i1)
                last += (highest[v] >= i0) & (highest[v] < i1)
            segments = pieces
            if total > dpe:  # Flex-DPE boundaries inside, less outputs starting on one
                outs = j1 - j0
                position = 0
                for i in range(outs):
                    start[i] = position
                    position += count[j0 + i]
                start[outs] = position
                inner = (total - 1) // dpe
                segments += inner - dpe_starts(start, 0, outs - 1, 0, total, dpe, inner)
            f_nnz[g] = total
            f_unique[g] = group_live[g]  # one fold: its inputs are the group's
            f_segments[g] = segments
            f_first[g] = first
            f_last[g] = last
    f = 0
    for g in range(n_groups):  # only groups with weights are folds
        if f_nnz[g] > 0:
            f_group[f] = g
            f_nnz[f] = f_nnz[g]
            f_unique[f] = f_unique[g]
            f_segments[f] = f_segments[g]
            f_first[f] = f_first[g]
            f_last[f] = f_last[g]
            f += 1
    live_inputs, block_outputs, empty = _mask_totals(touched, degree, block)
    return FlexFolds(
        f_group[:f], f_nnz[:f], f_unique[:f], f_segments[:f], f_first[:f], f_last[:f],
        group_live, group_new, live_inputs, block_outputs, empty, width, block,
    )  # fmt: skip


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


class FoldTimes(NamedTuple):
    """Each fold's cycles loading its stationary words and streaming one token row: fixed by
    its counts and the networks, so worked out once per packing (``fold_times``), not in
    every ranking of the schedule (a division by a run-time width costs tens of cycles)."""

    load: np.ndarray  # ceil(nnz / B_load)
    per_row: np.ndarray  # max(1, ceil(U / B))


@njit(**JIT_OPTIONS)
def fold_times(nnz, unique, bandwidth, load_bandwidth):
    """``FoldTimes`` of folds with ``nnz`` stationary words and ``unique`` distinct inputs."""
    load = np.empty(nnz.shape[0], dtype=np.int64)
    per_row = np.empty(nnz.shape[0], dtype=np.int64)
    for f in range(nnz.shape[0]):
        load[f] = (nnz[f] + load_bandwidth - 1) // load_bandwidth
        per_row[f] = max(1, (unique[f] + bandwidth - 1) // bandwidth)
    return FoldTimes(load, per_row)


@njit(**JIT_OPTIONS)
def cycles_of(times, m, levels):
    """Compute cycles of each fold: ``load + m per_row + 1 + L``."""
    out = np.empty(times.load.shape[0], dtype=np.int64)
    for f in range(out.shape[0]):
        out[f] = times.load[f] + m * times.per_row[f] + 1 + levels
    return out


@njit(**JIT_OPTIONS)
def fold_cycles(nnz, unique, m, bandwidth, load_bandwidth, levels):
    """Compute cycles of each fold: ``ceil(nnz / B_load) + m max(1, ceil(U / B)) + 1 + L``."""
    return cycles_of(fold_times(nnz, unique, bandwidth, load_bandwidth), m, levels)


@njit(**JIT_OPTIONS)
def flexible_schedule(folds, times, cycles, m, k, n, mem, plan):
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
    prefetch, inflight, writeback, busy = log
    group, group_live, group_new = folds.group, folds.group_live, folds.group_new
    nnz, unique, first, last = folds.nnz, folds.unique, folds.first, folds.last
    fold_segments = folds.segments
    totals = no_totals()
    stationary = segment_sum = load_sum = stream_sum = strip_sum = block_sum = 0.0
    for f in range(n_folds):
        g = group[f]
        group_start = f == 0 or group[f - 1] != g
        chunk = float(m * group_live[g] * word)
        if ifmap_fits:  # every input stays once fetched: fetch what this group adds
            ifmap_load = float(m * group_new[g] * word) if group_start else 0.0
        elif chunk <= mem.ifmap_capacity_bytes:  # the group's inputs stay for its folds
            ifmap_load = chunk if group_start else 0.0
        else:  # the share that fits stays; each fold fetches the rest of what it streams
            kept = mem.ifmap_capacity_bytes / chunk
            ifmap_load = (1.0 - kept) * m * unique[f] * word
            if group_start:
                ifmap_load += mem.ifmap_capacity_bytes
        filter_load = nnz[f] * word * ratio * mem.filter_dram_scale
        if plan.ifmap_on_chip:
            ifmap_load = 0.0
        if plan.filter_on_chip:
            filter_load = 0.0
        segments = fold_segments[f]
        psum_words = m * segments
        psum_reads = float(m * (segments - first[f]))
        if not plan.outputs_on_chip:
            writeback[f] = m * last[f] * word
        spill = back = 0.0
        if not psums_fit:
            spill = float(m * (segments - last[f]) * acc)
            back = float(m * (segments - first[f]) * acc)
            inflight[f] += spill + back
        stationary += nnz[f]
        segment_sum += segments
        load_sum += times.load[f]
        stream_sum += m * times.per_row[f]
        strip_sum += folds.width
        block_sum += min(folds.block, n)
        totals = record_fold(
            totals, prefetch, writeback, busy, f, m * unique[f], nnz[f], psum_words,
            psum_reads, spill, back, ifmap_load, filter_load, cycles[f], mem,
        )  # fmt: skip
    store_totals(stats, totals)
    stats[STATIONARY_WORDS] = stationary
    stats[SEGMENTS] = segment_sum
    stats[LOAD_CYCLES] = load_sum
    stats[STREAM_CYCLES] = stream_sum
    stats[STRIP_SUM] = strip_sum
    stats[BLOCK_SUM] = block_sum
    stats[FOLDS] = n_folds
    dead = 0.0
    if not plan.outputs_on_chip:
        dead = float(m * folds.empty_outputs * word)
    stats[OFMAP_DRAM_WRITE_BYTES] += dead
    return stats, log, n_folds, dead


@njit(**JIT_OPTIONS)
def total_cycles(folds, times, m, k, n, levels, mem, plan):
    """Cycles of ``folds``' schedule, stalls included: ``cycles_of``, ``flexible_schedule``
    and ``fold_memory.finish`` in one call. The reference the search's ``ranking_total`` is
    held to (the search ranks by that)."""
    cycles = cycles_of(times, m, levels)
    stats, log, n_folds, dead = flexible_schedule(folds, times, cycles, m, k, n, mem, plan)
    return finish(stats, log, n_folds, dead, mem)[TOTAL_CYCLES]


@njit(**JIT_OPTIONS)
def _reciprocal(divisor):
    """``1 / divisor`` when ``divisor`` is a power of two (then ``x * it`` is exactly ``x /
    divisor``), else 0 (divide)."""
    if divisor > 0.0 and math.frexp(divisor)[0] == 0.5 and 1.0 / divisor < math.inf:
        return 1.0 / divisor
    return 0.0


@njit(**JIT_OPTIONS)
def _over(x, divisor, reciprocal):
    """``x / divisor``, by ``_reciprocal``'s exact multiplication where it has one (a
    division takes several times as long, and a ranking makes four a fold)."""
    return x * reciprocal if reciprocal > 0.0 else x / divisor


@njit(**JIT_OPTIONS)
def ranking_total(folds, times, m, k, n, levels, mem, plan, bound=np.inf, compute_total=0.0):
    """``total_cycles`` in one pass over the folds, as the search ranks candidates: the same
    arithmetic in the same order as ``flexible_schedule``, ``record_fold``,
    ``pipeline_elapsed`` and ``finish``, but with only the compute sum and the elapsed time
    kept (no statistics, no fold log: each fold's pipeline term is added once the next
    fold's prefetch is known) and divisions by power-of-two widths done as multiplications.
    Equal to ``total_cycles`` (a test holds them to that) when that is below ``bound``;
    otherwise it may stop early and return ``bound``. The total is at least the elapsed
    time less one (and ``finish``'s 1e-9), and each fold adds at least its compute cycles
    to the elapsed time, so the part summed plus the compute cycles of the folds still to
    come (``compute_total``, the folds' summed cycles, less those seen; 0 weakens the bound
    but keeps it sound) bounds it from below: once that reaches ``bound + 2`` (and a
    millionth of it, far more than the rounding of the sums) the candidate cannot be faster
    than the one that set the bound. The test per fold is one subtraction and compare.

    Its per-fold traffic restates ``flexible_schedule``'s on purpose: taken out into a
    shared helper (inlined or not, the record's fields passed whole or one by one), both
    fold loops ran four times slower."""
    n_folds = folds.nnz.shape[0]
    word = mem.word_bytes
    acc = mem.acc_bytes
    bw = mem.dram_bytes_per_cycle
    per_bw = _reciprocal(bw)
    per_ifmap = _reciprocal(mem.ifmap_sram_bytes_per_cycle)
    per_filter = _reciprocal(mem.filter_sram_bytes_per_cycle)
    per_ofmap = _reciprocal(mem.ofmap_sram_bytes_per_cycle)
    nnz, unique, first, last = folds.nnz, folds.unique, folds.first, folds.last
    group, group_live, group_new = folds.group, folds.group_live, folds.group_new
    fold_segments = folds.segments
    total = float(nnz.sum())  # integers: the float running sum is the same
    ratio = (k * n) / total if total > 0 else 0.0
    psums_fit = m * folds.block_outputs * acc <= mem.ofmap_capacity_bytes
    ifmap_fits = m * folds.live_inputs * word <= mem.ifmap_capacity_bytes
    capacity = mem.ifmap_capacity_bytes
    compute = 0.0
    elapsed = 0.0
    # the previous fold's busy cycles and in-flight bytes, the write-backs of the two before
    busy_1 = inflight_1 = writeback_1 = writeback_2 = 0.0
    # stop once elapsed - compute so far + compute_total reaches bound + 2 + margin
    limit = bound + 2.0 + 1e-6 * bound - compute_total
    for f in range(n_folds):
        g = group[f]
        group_start = f == 0 or group[f - 1] != g
        chunk = float(m * group_live[g] * word)
        if ifmap_fits:
            ifmap_load = float(m * group_new[g] * word) if group_start else 0.0
        elif chunk <= capacity:
            ifmap_load = chunk if group_start else 0.0
        else:
            kept = capacity / chunk
            ifmap_load = (1.0 - kept) * m * unique[f] * word
            if group_start:
                ifmap_load += capacity
        filter_load = nnz[f] * word * ratio * mem.filter_dram_scale
        if plan.ifmap_on_chip:
            ifmap_load = 0.0
        if plan.filter_on_chip:
            filter_load = 0.0
        segments = fold_segments[f]
        psum_words = m * segments
        psum_reads = float(m * (segments - first[f]))
        writeback = 0.0 if plan.outputs_on_chip else float(m * last[f] * word)
        inflight = 0.0
        if not psums_fit:
            spill = float(m * (segments - last[f]) * acc)
            back = float(m * (segments - first[f]) * acc)
            inflight += spill + back
        sram_cycles = max(
            _over(m * unique[f] * word, mem.ifmap_sram_bytes_per_cycle, per_ifmap),
            _over(nnz[f] * word, mem.filter_sram_bytes_per_cycle, per_filter),
            _over((psum_words + psum_reads) * acc, mem.ofmap_sram_bytes_per_cycle, per_ofmap),
        )
        cycles = times.load[f] + m * times.per_row[f] + 1 + levels
        compute += cycles
        busy = max(float(cycles), sram_cycles)
        prefetch = ifmap_load + filter_load
        if mem.double_buffered:
            if f == 0:
                elapsed += _over(prefetch, bw, per_bw)
            else:  # the previous fold's term: its in-flight bytes, this prefetch, write-back
                moved = prefetch + inflight_1
                if f > 1:
                    moved += writeback_2
                elapsed += max(busy_1, _over(moved, bw, per_bw))
        else:
            elapsed += _over(prefetch, bw, per_bw)
            elapsed += max(busy, _over(inflight, bw, per_bw))
            if f < n_folds - 1:
                elapsed += _over(writeback, bw, per_bw)
        if elapsed - compute >= limit:
            return bound
        busy_1, inflight_1, writeback_2, writeback_1 = busy, inflight, writeback_1, writeback
    dead = 0.0 if plan.outputs_on_chip else float(m * folds.empty_outputs * word)
    compute = max(compute - 1.0, 0.0)
    if n_folds == 0:
        elapsed = dead / bw
        ideal = 0.0
    else:
        writeback_1 += dead
        if mem.double_buffered:  # the last fold's term (no prefetch after it), its write-back
            moved = 0.0 + inflight_1
            if n_folds > 1:
                moved += writeback_2
            elapsed += max(busy_1, _over(moved, bw, per_bw))
        elapsed += _over(writeback_1, bw, per_bw)
        ideal = compute + 1
    stall = np.ceil(elapsed - ideal - 1e-9)
    return compute + max(stall, 0.0)


BLOCK_COUNTS = 6  # counts ``traffic_cache`` keeps per output block


def traffic_cache(n_widths: int, n: int) -> np.ndarray:
    """The floors' cache of a weight's mask counts (``traffic_floor``, ``group_floor``,
    ``whole_k_floor``), -1 until counted: the (output, strip) pairs with a kept weight at
    each strip width (by its index in the widths tried), then the (block, strip) groups with
    a kept weight at each strip width and output block (``_block_slot``), then at each
    output block (``BLOCK_COUNTS`` of them): the summed live inputs of the blocks, the most
    outputs with a kept weight in one block, and at a strip of the whole of K the folds'
    loads, the folds, and their cycles a row beyond one, at most (``_whole_k_folds``) and at
    least (``_whole_k_beyond``)."""
    slots = n.bit_length() + 2
    return np.full(n_widths * (1 + slots) + BLOCK_COUNTS * slots, -1, dtype=np.int64)


@njit(**JIT_OPTIONS)
def _bit_length(x):
    """``int.bit_length`` of a count (Numba's integers have none)."""
    length = 0
    while x > 0:
        x >>= 1
        length += 1
    return length


@njit(**JIT_OPTIONS)
def _block_slot(block, n):
    """A block's place in the cache: its bit length for a power of two below N, past those
    for N (the two blocks a search tries; N's bit length may be a power of two's); -1 (not
    kept) for any other block, which would share a power of two's place."""
    if block >= n:
        return _bit_length(n) + 1
    return _bit_length(block) if block > 0 and block & (block - 1) == 0 else -1


@njit(**JIT_OPTIONS)
def _slot_at(first, block, n):
    """The cache index of ``block``'s count among those starting at ``first`` (-1: none)."""
    slot = _block_slot(block, n)
    return first + slot if slot >= 0 else -1


@njit(**JIT_OPTIONS)
def _block_inputs(bits, n, block):
    """Summed over the blocks of ``block`` outputs: the inputs with a kept weight in the
    block (a packing's ``group_live`` summed over its groups: strips cut a block's inputs
    into parts). ``block = N``: the live inputs."""
    total = 0
    for b0 in range(0, n, block):
        b1 = min(n, b0 + block)
        for w in range(bits.shape[0]):
            word = np.uint64(0)
            for j in range(b0, b1):
                word |= bits[w, j]
            total += _popcount(word)
    return total


@njit(**JIT_OPTIONS)
def _strip_outputs(bits, n, k, width):
    """(output, strip) pairs with a kept weight at strip ``width``: each has a segment in
    every packing, as all the output's kept weights of the strip belong to one group.
    Word-major, over all outputs at once (loops that vectorise) when strips are whole words
    or whole fractions of one; strip by strip otherwise."""
    n_words = bits.shape[0]
    pairs = 0
    if width % 64 == 0:  # a strip is width / 64 whole words
        per_strip = width // 64
        any_kept = np.zeros(n, dtype=np.uint64)
        for w0 in range(0, n_words, per_strip):
            any_kept[:] = 0
            for w in range(w0, min(n_words, w0 + per_strip)):
                row = bits[w]
                for j in range(n):
                    any_kept[j] |= row[j]
            for j in range(n):
                pairs += any_kept[j] != 0
        return pairs
    if 64 % width == 0:  # a word holds 64 / width strips
        field = (_ONE << np.uint64(width)) - _ONE
        for w in range(n_words):
            row = bits[w]
            for f in range(64 // width):
                shift = np.uint64(f * width)
                for j in range(n):
                    pairs += ((row[j] >> shift) & field) != 0
        return pairs
    for j in range(n):
        pairs += _kept_strips(bits, j, k, width)
    return pairs


@njit(inline="always", **JIT_OPTIONS)
def _kept_strips(bits, j, k, width):
    """Strips of ``width`` inputs with a kept bit in row ``j`` of ``bits [words, rows]``."""
    strips = 0
    for i0 in range(0, k, width):
        i1 = min(k, i0 + width)
        for w in range(i0 // 64, (i1 - 1) // 64 + 1):
            if _strip_word(bits, j, w, i0, i1):
                strips += 1
                break
    return strips


STRIP_OUTPUTS, BLOCK_INPUTS, BLOCK_OUTPUTS, GROUPS = 0, 1, 2, 3  # what ``_cached_count`` counts


@njit(**JIT_OPTIONS)
def _cached_count(cache, slot, what, bits, degree, n, k, width, block, dense):
    """``_strip_outputs`` at ``width``, ``_block_inputs`` or ``_block_outputs`` at
    ``block``, or ``_nonempty_groups`` at both (``what``), kept in ``cache[slot]`` (counted
    afresh for a negative ``slot``); closed forms for an all-ones weight."""
    if slot >= 0 and cache[slot] >= 0:
        return cache[slot]
    if what == STRIP_OUTPUTS:
        count = n * ((k + width - 1) // width) if dense else _strip_outputs(bits, n, k, width)
    elif what == GROUPS:
        strips = (k + width - 1) // width
        count = ((n + block - 1) // block) * strips if dense else _nonempty_groups(bits, n, k,
                                                                                   width, block)
    elif what == BLOCK_INPUTS:
        count = ((n + block - 1) // block) * k if dense else _block_inputs(bits, n, block)
    else:
        count = min(block, n) if dense else _block_outputs(degree, n, block)
    if slot >= 0:
        cache[slot] = count
    return count


@njit(**JIT_OPTIONS)
def _nonempty_groups(bits, n, k, width, block):
    """(block, strip) groups with a kept weight at strip ``width`` and output ``block``: each
    starts at least one fold of any packing. Each block's inputs are ORed into one bit row
    (its words read in order, all blocks at once), whose (row, strip) pairs with a kept bit
    are the groups (``_strip_outputs``, over all rows at once)."""
    n_words = bits.shape[0]
    n_blocks = (n + block - 1) // block
    inputs = np.zeros((n_words, n_blocks), dtype=np.uint64)  # each block's kept inputs
    for w in range(n_words):
        row = bits[w]
        for b in range(n_blocks):
            x = np.uint64(0)
            for j in range(b * block, min(n, (b + 1) * block)):
                x |= row[np.uint64(j)]
            inputs[w, b] = x
    return _strip_outputs(inputs, n_blocks, k, width)


@njit(**JIT_OPTIONS)
def _groups_at(cache, n, width_index, block):
    """The cache index of the groups count at the ``width_index``-th width and ``block``
    (-1: not kept, a block the search never tries)."""
    slots = _bit_length(n) + 2
    slot = _block_slot(block, n)
    if slot < 0:
        return -1
    n_widths = (cache.shape[0] - BLOCK_COUNTS * slots) // (1 + slots)
    return n_widths + width_index * slots + slot


@njit(**JIT_OPTIONS)
def _block_counts_at(cache, n):
    """Where ``traffic_cache`` keeps its counts by block: (the live inputs', the most
    outputs'); the counts by strip width come before."""
    slots = _bit_length(n) + 2
    inputs_at = cache.shape[0] - BLOCK_COUNTS * slots
    return inputs_at, inputs_at + slots


@njit(**JIT_OPTIONS)
def live_inputs(weight):
    """Inputs of ``weight`` (``packing``'s tuple) with a kept weight: the one block of all N
    outputs' live inputs, counted once and kept in its ``traffic_cache``."""
    bits, degree, _, _, dense, n, k = weight[:7]
    live_outputs, cache = weight[11], weight[12]
    if live_outputs == 0:
        return 0
    inputs_at, _ = _block_counts_at(cache, n)
    return _cached_count(cache, _slot_at(inputs_at, n, n), BLOCK_INPUTS, bits, degree, n, k,
                         k, n, dense)  # fmt: skip


@njit(**JIT_OPTIONS)
def traffic_floor(weight, width_index, width, block, m, mem, plan):
    """Cycles any packing of ``weight`` at strip ``width`` (``width_index``: its place in the
    widths the weight's search tries, where its count is kept) and output ``block`` takes at
    least, stalls included, without packing it: the DRAM bytes its schedule of ``m`` rows
    must move (``ranking_total``'s rules) over the bandwidth, less one (the total is at
    least the elapsed time less one, and every byte moved is in one of its terms, each at
    least those bytes over the bandwidth). The bytes: the weight, ``filter_dram_scale x K
    N`` words, unless on chip (none when nothing is kept); every output once a row, unless
    kept on chip; each live input once a row when all fit the ifmap buffer, else each
    group's live inputs once a row at least (a group loads its strip's, or more), unless on
    chip; and when the partial sums of the largest block overflow the ofmap buffer, every
    segment but an output's last spills and every one but its first comes back: at least
    one segment per (output, strip) with a kept weight."""
    bits, degree, _, _, dense, n, k = weight[:7]
    live_outputs, cache = weight[11], weight[12]
    inputs_at, outputs_at = _block_counts_at(cache, n)
    word = mem.word_bytes
    acc = mem.acc_bytes
    moved = 0.0
    if not plan.filter_on_chip and live_outputs > 0:
        moved += k * n * word * mem.filter_dram_scale
    if not plan.outputs_on_chip:
        moved += float(m * n * word)
    if not plan.ifmap_on_chip and live_outputs > 0:
        live = live_inputs(weight)
        if m * live * word > mem.ifmap_capacity_bytes:
            live = _cached_count(cache, _slot_at(inputs_at, block, n), BLOCK_INPUTS, bits,
                                 degree, n, k, width, block, dense)  # fmt: skip
        moved += float(m * live * word)
    most = _cached_count(cache, _slot_at(outputs_at, block, n), BLOCK_OUTPUTS, bits, degree,
                         n, k, width, block, dense)  # fmt: skip
    if m * most * acc > mem.ofmap_capacity_bytes:
        pairs = _cached_count(cache, width_index, STRIP_OUTPUTS, bits, degree, n, k, width,
                              block, dense)  # fmt: skip
        moved += float(2 * m * (pairs - live_outputs) * acc)
    return moved / mem.dram_bytes_per_cycle - 1.0


# A weight's packings by (strip width, output block): its folds, their times and the sums
# of their load and per-row cycles (``compute_floor``). A Numba dictionary, so that the
# ranking of a ``best_schedule`` call packs, looks up and ranks without returning to Python.
_INT_ARRAY = types.Array(types.int64, 1, "C")
_PACKING = types.Tuple((
    types.NamedTuple([_INT_ARRAY] * 8 + [types.int64] * 5, FlexFolds),
    types.NamedUniTuple(_INT_ARRAY, 2, FoldTimes),
    types.int64,
    types.int64,
))  # fmt: skip
_PACKING_KEY = types.UniTuple(types.int64, 2)


@njit(**JIT_OPTIONS)
def new_packings():
    """An empty store of packings for ``packing`` and ``best_schedule`` (made here: from
    Python a typed dictionary takes about 140 µs, from here 4)."""
    return Dict.empty(_PACKING_KEY, _PACKING)


@njit(**JIT_OPTIONS)
def packing(store, weight, width, block):
    """The folds of ``weight`` at strip ``width`` and output ``block``, their ``FoldTimes``
    and the sums of their load and per-row cycles, packed on first use and kept in ``store``
    (``new_packings``). ``weight``, read by position: the four fields of ``mask_bits`` (0-3),
    a ``dense`` flag (4; all weights kept: the mask fields are unread), N (5), K (6),
    multipliers (7), Flex-DPE size (8), B (9), B_load (10), and for the floors the outputs
    with a kept weight (11), its cache of mask counts (12, ``traffic_cache``) and its kept
    weights (13, N K when dense)."""
    key = (width, block)
    if key in store:
        return store[key]
    bits, degree, lowest, highest, dense, n, k = weight[:7]
    multipliers, dpe, bandwidth, load_bandwidth = weight[7:11]
    if dense:
        folds = pack_dense_folds(n, k, width, block, multipliers, dpe)
    else:
        folds = pack_folds(bits, degree, lowest, highest, k, width, block, multipliers, dpe)
    times = fold_times(folds.nnz, folds.unique, bandwidth, load_bandwidth)
    entry = (folds, times, times.load.sum(), times.per_row.sum())
    store[key] = entry
    return entry


@njit(**JIT_OPTIONS)
def compute_floor(entry, m, levels):
    """What a packing's schedule of ``m`` rows takes at least: its compute cycles (the folds'
    ``load + m per_row + 1 + L`` summed, less one as ``fold_memory.finish`` counts them);
    stalls only add to that."""
    folds, _, load_sum, per_row_sum = entry
    return load_sum + m * per_row_sum + folds.nnz.shape[0] * (1 + levels) - 1


@njit(**JIT_OPTIONS)
def _folds_floor(folds, nnz, m, levels, load_bandwidth):
    """``compute_floor`` of a packing with at least ``folds`` folds holding ``nnz`` weights:
    each fold loads at least a word (``ceil(nnz / B_load)`` in all at least) and streams a
    row in at least a cycle."""
    loads = max(folds, (nnz + load_bandwidth - 1) // load_bandwidth)
    return loads + m * folds + folds * (1 + levels) - 1


@njit(**JIT_OPTIONS)
def group_floor(weight, width_index, width, block, m, levels, best):
    """What ``compute_floor`` of ``weight``'s packing at strip ``width`` and output ``block``
    (``width_index``: its place in the widths tried, where its count is kept) is at least,
    without packing it: a packing has a fold per (block, strip) group with a kept weight and
    ``ceil(nnz / P)`` folds at least, each loading a word and streaming a row in a cycle at
    least (``_folds_floor``). The groups are counted (once per weight, width and block) only
    when ``best`` (the best total so far) is within reach of the floor with every group
    kept; otherwise the floor of ``ceil(nnz / P)`` folds is returned, below ``best``. Tiny
    output blocks at many token rows are where it tells: a fold per group and ``m`` cycles
    a fold make such a candidate slower than the best before it is packed."""
    bits, degree, _, _, dense, n, k = weight[:7]
    multipliers, load_bandwidth, cache, nnz = weight[7], weight[10], weight[12], weight[13]
    least = (nnz + multipliers - 1) // multipliers
    if _every_group_floor(weight, width, block, m, levels) < best:
        return _folds_floor(least, nnz, m, levels, load_bandwidth)
    groups = _cached_count(cache, _groups_at(cache, n, width_index, block), GROUPS, bits,
                           degree, n, k, width, block, dense)  # fmt: skip
    return _folds_floor(max(least, groups), nnz, m, levels, load_bandwidth)


@njit(**JIT_OPTIONS)
def _every_group_floor(weight, width, block, m, levels):
    """What ``group_floor`` gives when every (block, strip) group keeps a weight, without
    reading the mask: the most that floor can be (so whether counting the groups can tell
    against a best), and ``_block_order``'s estimate of the candidate's compute."""
    n, k, multipliers, load_bandwidth, nnz = weight[5], weight[6], weight[7], weight[10], weight[13]
    least = (nnz + multipliers - 1) // multipliers
    most = max(least, ((n + block - 1) // block) * ((k + width - 1) // width))
    return _folds_floor(most, nnz, m, levels, load_bandwidth)


@njit(**JIT_OPTIONS)
def _whole_k_slot(weight, block, count):
    """The cache index of ``block``'s ``count``-th whole-K count (``traffic_cache``; -1:
    not kept)."""
    n, cache = weight[5], weight[12]
    _, outputs_at = _block_counts_at(cache, n)
    slots = _bit_length(n) + 2
    return _slot_at(outputs_at + (1 + count) * slots, block, n)


@njit(**JIT_OPTIONS)
def _group_weights(weight, j0, j1):
    """Kept weights of outputs ``[j0, j1)`` (all K each for a dense weight)."""
    if weight[4]:
        return (j1 - j0) * weight[6]
    degree = weight[1]
    total = 0
    for j in range(j0, j1):
        total += degree[j]
    return total


@njit(**JIT_OPTIONS)
def _whole_k_folds(weight, block):
    """(loads, folds, cycles a row beyond one at most) of ``weight``'s folds at a strip of
    the whole of K and output ``block``, kept in its ``traffic_cache``: each output's weights
    of the one strip are all its weights, so the folds and their kept weights follow from
    the degrees alone, and a fold of ``nnz`` weights streams at most ``min(nnz, K)``
    inputs."""
    n, k, multipliers = weight[5], weight[6], weight[7]
    bandwidth, load_bandwidth, cache = weight[9], weight[10], weight[12]
    slot = _whole_k_slot(weight, block, 0)
    slots = _bit_length(n) + 2
    if slot >= 0 and cache[slot] >= 0:
        return cache[slot], cache[slot + slots], cache[slot + 2 * slots]
    loads = folds = most = 0
    for j0 in range(0, n, block):
        total = _group_weights(weight, j0, min(n, j0 + block))
        for f0 in range(0, total, multipliers):
            nnz = min(total, f0 + multipliers) - f0
            loads += (nnz + load_bandwidth - 1) // load_bandwidth
            folds += 1
            most += max(1, (min(nnz, k) + bandwidth - 1) // bandwidth) - 1
    if slot >= 0:
        cache[slot], cache[slot + slots], cache[slot + 2 * slots] = loads, folds, most
    return loads, folds, most


@njit(**JIT_OPTIONS)
def _whole_k_beyond(weight, block):
    """The cycles a row beyond one of ``weight``'s folds at a strip of the whole of K and
    output ``block``, at least, kept in its ``traffic_cache``: a fold streams at least the
    inputs of the outputs it holds whole (the OR of their bit rows; none counted for a dense
    weight, whose mask is unread). A fold's whole outputs are consecutive
    (``_whole_outputs``), so each of its words is the OR of a run of one bit row: read in
    memory order, a loop that vectorises."""
    bits, dense, bandwidth, cache = weight[0], weight[4], weight[9], weight[12]
    slot = _whole_k_slot(weight, block, 3)
    if slot >= 0 and cache[slot] >= 0:
        return cache[slot]
    beyond = 0
    if not dense:
        first, stop = _whole_outputs(weight, block)
        for f in range(first.shape[0]):
            unique = 0
            for w in range(bits.shape[0]):
                row = bits[w]
                acc = np.uint64(0)
                for j in range(first[f], stop[f]):
                    acc |= row[np.uint64(j)]
                unique += _popcount(acc)
            beyond += max(1, (unique + bandwidth - 1) // bandwidth) - 1
    if slot >= 0:
        cache[slot] = beyond
    return beyond


@njit(**JIT_OPTIONS)
def _whole_outputs(weight, block):
    """Per fold of ``weight`` at a strip of the whole of K and output ``block`` (folds in
    order over the blocks, ``P`` weights each, a block's weights back to back): the first
    output it holds whole and one past the last (equal when none). Outputs without weights
    between them hold no bits, so the run may include them."""
    degree, n, multipliers = weight[1], weight[5], weight[7]
    _, folds, _ = _whole_k_folds(weight, block)  # (counted before, kept in the cache)
    first = np.zeros(folds, dtype=np.int64)
    stop = np.zeros(folds, dtype=np.int64)
    base = 0  # folds of the blocks before
    for j0 in range(0, n, block):
        position = 0  # the block's weights before output j
        fold, end = base, multipliers  # the fold holding position ``start``, its end
        for j in range(j0, min(n, j0 + block)):
            start, position = position, position + degree[j]
            while start >= end:  # no division: the fold is found by stepping
                fold += 1
                end += multipliers
            if degree[j] == 0 or position > end:
                continue  # no weights, or cut by a fold boundary: whole in no fold
            if first[fold] == stop[fold]:
                first[fold] = j
            stop[fold] = j + 1
        base += (position + multipliers - 1) // multipliers
    return first, stop


@njit(**JIT_OPTIONS)
def whole_k_floor(weight, block, m, levels, best):
    """What ``compute_floor`` of ``weight``'s packing at a strip of the whole of K and output
    ``block`` is at least, without packing it: the loads and folds exact
    (``_whole_k_folds``), and the inputs a fold streams at least those of the outputs it
    holds whole (``_whole_k_beyond``). It is ``group_floor``'s at least, and the one that
    tells at K of hundreds: a fold of a few dozen outputs streams hundreds of inputs a row
    against a narrow strip's one cycle, which counting folds cannot see. The mask is read
    (once per block) only when the floor with every fold streaming ``min(nnz, K)`` inputs
    would reach ``best`` (the best total so far; 0 always reads it): otherwise the floor of
    one cycle a row is returned, below ``best`` as the full one would be."""
    loads, folds, most = _whole_k_folds(weight, block)
    floor = loads + folds * (m + 1 + levels) - 1
    if floor + m * most < best:
        return floor
    return floor + m * _whole_k_beyond(weight, block)


@njit(**JIT_OPTIONS)
def _slower(floor, best):
    """Whether a candidate whose total is at least ``floor`` (a ``traffic_floor`` or
    ``port_floor``, float sums of bytes over a bandwidth) is slower than ``best``, no tie: the
    floor is above it by a cycle and a millionth of it, beyond the rounding of those sums."""
    return floor >= best + 1.0 + 1e-6 * best


@njit(**JIT_OPTIONS)
def port_floor(weight, width_index, width, m, mem, best):
    """Cycles any packing of ``weight`` at strip ``width`` (``width_index``: its place in the
    widths tried, where its count is kept) takes at least, stalls included, from its partial
    sums over the ofmap SRAM port: each fold is busy at least as long as its port takes
    (``record_fold``), and the elapsed time adds every fold's busy time; each (output, strip)
    pair with a kept weight is a segment at least, written for each of ``m`` rows and, all
    but an output's first, read back. Less one, as ``traffic_floor``. The pairs are counted
    (once per width) only when the floor with as many pairs as there can be (a weight each,
    or every output in every strip) would reach ``best``; otherwise the floor of one pair per
    output is returned, below ``best`` as the counted one would be."""
    bits, degree, _, _, dense, n, k = weight[:7]
    live, cache, nnz = weight[11], weight[12], weight[13]
    per_pair = m * mem.acc_bytes / mem.ofmap_sram_bytes_per_cycle
    most = min(nnz, live * ((k + width - 1) // width))
    if not _slower(per_pair * (2 * most - live) - 1.0, best):
        return per_pair * live - 1.0
    pairs = _cached_count(cache, width_index, STRIP_OUTPUTS, bits, degree, n, k, width, n,
                          dense)  # fmt: skip
    return per_pair * (2 * pairs - live) - 1.0


@njit(**JIT_OPTIONS)
def best_schedule(store, weight, widths, blocks, m, levels, mem, plan):
    """The fastest (strip width, output block) schedule of ``m`` rows, stalls included, as
    ``flexible_schedule`` gives it: (width, block, stats, log, dead bytes). ``widths`` are
    tried in order until one improves on none of the earlier (only the last is tried after
    that), each with the output blocks in ``blocks`` (a pair, 0 for none: one signature to
    compile, not one per count); ties go to the earlier. A candidate whose
    ``traffic_floor`` or ``port_floor`` reaches the best total so far (a cycle and a
    millionth of it beyond, for the rounding of float sums) is neither packed nor ranked, nor
    is one not yet packed whose ``group_floor`` (``whole_k_floor`` at the whole of K)
    reaches it, and a packing whose ``compute_floor`` reaches it is not ranked: none can be
    faster (and a candidate that is not ranked improves on nothing).

    The order of trial is not the order above, and changes no choice. The second width goes
    before the first (when both are narrower than K): the narrowest strip's partial sums
    often make it slower than the next, and tried against that width's best its port floor
    skips it unpacked; tried first it would be packed with nothing to beat. The first width's
    candidates then keep a tie with the second's, and the second width has improved on the
    first when the best is still its. Within a width the block with the lower estimate is
    tried first (``_block_order``): all N at once comes first in the order above, but when
    its partial sums spill its traffic is often many times the smaller block's total, so
    tried second it is skipped unpacked. A candidate tried after one that comes later in the
    order above keeps a tie with it, so a floor that merely reaches the best does not skip it
    (``_ranked``). Totals are finite for memory parameters from a spec (bandwidths bounded
    above zero), so a width skipped unranked is one slower than the best. ``mem`` and
    ``plan`` come as plain tuples (Numba types a named tuple argument through Python, about
    3 µs a call)."""
    mem = MemoryParams(*mem)
    plan = FoldPlan(*plan)
    best_index = -1  # the best's width, by its place in ``widths``
    best_width = best_block = 0
    best_cycles = np.inf
    past_balance = False
    last = widths.shape[0] - 1
    second_first = last >= 2  # the second width before the first (both narrower than K)
    for step in range(widths.shape[0]):
        i = step
        if second_first and step < 2:
            i = 1 - step
        if past_balance and i != last:
            continue  # only the whole of K is left to try
        width = widths[i]
        before = best_cycles
        tried = _block_order(weight, i, width, blocks, m, levels, mem, plan)
        for block, traffic in tried:
            if block <= 0:
                continue  # no second block
            # a tie is its when it comes earlier in the order of trial than the best: at an
            # earlier width, or all N after its own width's other block
            keeps_tie = i < best_index or (i == best_index and block == blocks[0])
            cycles = _ranked(store, weight, i, width, block, traffic, m, levels, mem, plan,
                             best_cycles, keeps_tie)  # fmt: skip
            if cycles < best_cycles or (keeps_tie and cycles == best_cycles):
                best_index, best_width, best_block, best_cycles = i, width, block, cycles
        if second_first and step == 0:
            continue  # the second width's verdict waits for the first's
        if second_first and step == 1:
            past_balance = best_index != 1  # the second width improved on the first
        else:
            past_balance = past_balance or not best_cycles < before
    if best_width == 0:
        raise ValueError("no (strip width, output block) schedule has a finite cycle count")
    stats, log, dead = _schedule_at(store, weight, best_width, best_block, m, levels, mem, plan)
    return best_width, best_block, stats, log, dead


@njit(**JIT_OPTIONS)
def _schedule_at(store, weight, width, block, m, levels, mem, plan):
    """``flexible_schedule`` of ``m`` rows at strip ``width`` and output ``block``, packed on
    first use: (stats, log, dead bytes)."""
    folds, times, _, _ = packing(store, weight, width, block)
    stats, log, _, dead = flexible_schedule(
        folds, times, cycles_of(times, m, levels), m, weight[6], weight[5], mem, plan
    )
    return stats, log, dead


@njit(**JIT_OPTIONS)
def schedule_at(store, weight, width, block, m, levels, mem, plan):
    """``best_schedule``'s result for a (strip ``width``, output ``block``) given, not
    searched: any candidate's schedule in one kernel call (``mem`` and ``plan`` as plain
    tuples, as there)."""
    stats, log, dead = _schedule_at(store, weight, width, block, m, levels, MemoryParams(*mem),
                                    FoldPlan(*plan))  # fmt: skip
    return width, block, stats, log, dead


@njit(**JIT_OPTIONS)
def _block_order(weight, width_index, width, blocks, m, levels, mem, plan):
    """The pair of output ``blocks`` in the order ``best_schedule`` tries them at one width:
    as given, unless the second has the lower estimate, the larger of its ``traffic_floor``
    and ``_every_group_floor``. The traffic floor puts a block whose partial sums spill
    second; the group estimate keeps a tiny block at many token rows (thousands of one-fold
    groups, the dearest packs) from going first against all N, whose first width's
    spilling estimate is smaller. An order only: it changes which packs are made, never the
    choice. Each block comes with its traffic floor, which ``_ranked`` reads (the second
    block 0 and its floor infinite when there is none)."""
    first, second = blocks[0], blocks[1]
    traffic_first = traffic_floor(weight, width_index, width, first, m, mem, plan)
    if second <= 0:
        return (first, traffic_first), (second, np.inf)
    traffic_second = traffic_floor(weight, width_index, width, second, m, mem, plan)
    estimate_first = max(traffic_first, _every_group_floor(weight, width, first, m, levels))
    estimate_second = max(traffic_second, _every_group_floor(weight, width, second, m, levels))
    if estimate_second < estimate_first:
        return (second, traffic_second), (first, traffic_first)
    return (first, traffic_first), (second, traffic_second)


@njit(**JIT_OPTIONS)
def _ranked(store, weight, width_index, width, block, traffic, m, levels, mem, plan, best,
            keeps_tie):  # fmt: skip
    """The total of the candidate (``width``, ``block``; ``traffic``: its
    ``traffic_floor``) when it can beat ``best`` (or tie it, when it ``keeps_tie``), packing
    it on first use; otherwise a number it does not beat: ``best`` or more
    (``best_schedule``'s skips, by the floors)."""
    if best < np.inf:
        if _slower(traffic, best):
            return np.inf  # its DRAM traffic alone is slower (no tie): not even packed
        if _slower(port_floor(weight, width_index, width, m, mem, best), best):
            return np.inf  # its partial sums alone take the ofmap port longer: not packed
        if (width, block) not in store:
            if width == weight[6]:  # the whole of K: its inputs a row tell
                floor = whole_k_floor(weight, block, m, levels, best)
            else:
                floor = group_floor(weight, width_index, width, block, m, levels, best)
            if floor > best or (floor == best and not keeps_tie):
                return np.inf  # what its compute floor would conclude: not packed
    entry = packing(store, weight, width, block)
    floor = compute_floor(entry, m, levels)
    if floor > best or (floor == best and not keeps_tie):
        return np.inf
    # a total above ``best`` may come back as ``best``: half a cycle above, it cannot tie
    bound = best + 0.5 if keeps_tie else best
    return ranking_total(entry[0], entry[1], m, weight[6], weight[5], levels, mem, plan,
                         bound, floor + 1.0)  # fmt: skip
