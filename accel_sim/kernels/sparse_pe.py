"""Timing of an unstructured-sparse PE array (EIE / SparTen style): two engines, same rules.

Both kernels take ``cost`` ``[P, in]`` (cycles PE p spends on an activation of column j;
0 means PE p's FIFO filters that column out and it takes no slot), ``entry_cols`` (the
columns broadcast for one pass of the stream), ``repeats`` (how many times that pass is
broadcast: the number of tokens when every token has the same nonzero activations, else 1
with the whole token-major stream in ``entry_cols``), ``fifo_depth`` and ``width``. They
return ``(cycles, broadcast_stall_cycles, busy_cycles[P])``.

Timing rules (cycle t = 0, 1, ...; each cycle runs three phases in this order):

1. *Pop.* Every PE that has no entry in progress starts the head of its FIFO, if any: it is
   busy for ``cost`` cycles starting this cycle. The entry stays in its FIFO slot until it is
   done (``fifo_depth`` counts the entry the PE works on, as EIE's activation queue does, so
   depth 1 is lockstep: the next activation waits until the PE has finished this one).
2. *Broadcast.* The broadcaster sends up to ``width`` entries, in stream order, each into
   every FIFO that accepts it (``cost[p, col] > 0``) provided each of those holds fewer than
   ``fifo_depth`` entries (counting those sent earlier this cycle); the first entry that
   does not fit ends this cycle's broadcast. An entry sent in cycle t starts in cycle t + 1
   at the earliest.
3. *Compute.* Every PE with an entry in progress does one cycle of it; an entry whose last
   cycle this was leaves its FIFO.

The layer ends at the start of the first cycle in which everything has been broadcast and
every FIFO is empty; ``cycles`` is that cycle's index. ``broadcast_stall_cycles`` is the
broadcast's length beyond its minimum: ``b_last + 1 - ceil(entries / width)``.

``fifo_cycle_stepping`` executes these phases literally, O(cycles x P). ``fifo_event_schedule``
is the equivalent event recurrence, O(entries x accepting PEs), and it adds the passes of a
repeated stream in one step once they have become periodic. With b_e the broadcast cycle of entry e,
and s/f the start and finish (first free) cycle of e at an accepting PE p, e' the previous
entry p accepted and e'' the one it accepted ``fifo_depth`` places before e:

    b_e = max(b_{e-1}, b_{e-width} + 1, max_p f_{p,e''})    (terms absent when e < index)
    s_{p,e} = max(b_e + 1, f_{p,e'})                        (f = 0 before the first entry)
    f_{p,e} = s_{p,e} + cost_{p,e}
    cycles = max(b_last + 1, max_p f_p)

The FIFO at p holds, when e is offered in cycle t, the accepted entries before e that have
not finished by t; they finish in order, so it has room iff e'' has (f_{p,e''} <= t).
``per_pe_entries`` counts each PE's entries per column, RLE padding entries included. When
each entry is a kept weight (no padding can occur and there is no minimum cost),
``fifo_event_periodic_kept`` runs the same recurrence from the mask's bit rows: its
``kept_weight_columns`` builds the recurrence's per-column PE lists from the set bits,
without the ``[P, in]`` table (three times faster on a 3,072-input layer on 769 PEs). With
several rows a PE on a multiple of 64 PEs, ``fifo_event_periodic_pe_words`` builds them
from each column's row bits (``column_bits``: ``pe_word_columns``); with one row a PE, or
many PEs with a few rows each, ``fifo_bitsliced`` steps 64 FIFOs a word instead. Each PE's
totals of a pass (cycles, entries, last entry), the same in every pass, are counted before
the passes, not in them (``_pass_totals``). When every entry costs a cycle at least,
every FIFO takes every column and the recurrence reads the table by column
(``fifo_event_periodic_columns``), built so in one pass (``entry_cost_columns``).
"""

from __future__ import annotations

import numpy as np

from accel_sim.kernels._jit import JIT_OPTIONS, njit
from accel_sim.kernels.bitops import highest_bit, lowest_bit, popcount

MAX_CHECKPOINTS = 15  # where ``_periodic`` compares a pass's state with its predecessor's


@njit(**JIT_OPTIONS)
def pads(out, n_pes, run_bits):
    """Whether run-length coding with ``run_bits`` can store a padding entry on ``n_pes``
    PEs sharing ``out`` rows: only when some PE's column holds a gap of ``2 ** run_bits``
    zeros, so more rows than that. Otherwise a PE's entries of a column are its kept
    weights there."""
    most_rows = (out + n_pes - 1) // n_pes if n_pes > 0 else 0
    return 0 < run_bits < 31 and most_rows - 1 >= (1 << run_bits)


@njit(**JIT_OPTIONS)
def per_pe_entries(mask, n_pes, run_bits):
    """``[n_pes, in]``: entries PE p stores for column j, its rows being ``i % n_pes == p``
    (local row ``i // n_pes``), run-length coded as EIE does: a kept weight after a run of L
    zeros of the PE's column takes ``1 + (L >> run_bits)`` entries (``L >> run_bits`` padding
    entries, each a stored zero the PE spends a cycle on); zeros after the last kept weight
    are not stored. ``run_bits = 0`` counts kept weights only (no padding).

    Counted and returned in int32 (twice the vector lanes of int64, and half the table the
    recurrence then reads: 9 MB instead of 19 for a 3072-input layer on 769 PEs): a column's
    gap is at most the PE's rows, and its count at most twice that. When no PE has more
    than ``2 ** run_bits`` rows no gap reaches a padding entry, and only kept weights are
    counted (three times faster)."""
    out, n_in = mask.shape
    entries = np.zeros((n_pes, n_in), dtype=np.int32)
    gap = np.zeros(n_in, dtype=np.int32)  # zeros since the PE's last kept weight
    padded = pads(out, n_pes, run_bits)
    for p in range(min(n_pes, out)):  # PE by PE: one run vector, reused
        _add_pe_entries(entries[p], gap, mask, p, n_pes, np.int32(run_bits), padded)
    return entries


@njit(inline="always", **JIT_OPTIONS)
def _add_pe_entries(count, gap, mask, p, n_pes, shift, padded):
    """Add PE ``p``'s entries of each column (its rows ``p``, ``p + n_pes``, ...) to
    ``count``, run-length padding included when ``padded`` (``pads``), in ``count``'s type:
    ``gap`` is scratch of that type, ``shift`` the run bits in it. The run is shifted by
    ``np.right_shift`` of two values of the type, which stays in it (``>>`` widens to 64
    bits, and a shift by a variable then kept the loop from narrowing to 8-bit lanes:
    ``entry_cost_columns`` took 0.47 ms instead of 0.25 on a 3,072 x 768 layer on 64 PEs);
    a padded table's shift is below the type's width, as padding needs a PE with more than
    ``2 ** run_bits`` rows."""
    out, n_in = mask.shape
    one = count.dtype.type(1)
    if padded:
        gap[:] = 0
        for i in range(p, out, n_pes):
            row = mask[i]
            for j in range(n_in):  # branch-free, so it vectorises
                kept = count.dtype.type(row[j])
                count[j] += kept * (one + np.right_shift(gap[j], shift))
                gap[j] = (gap[j] + one) * (one - kept)
    else:
        for i in range(p, out, n_pes):
            row = mask[i]
            for j in range(n_in):
                count[j] += count.dtype.type(row[j])


# PEs whose costs ``entry_cost_columns`` writes together: sixteen int32 costs are one
# 64-byte line of a column's row of the table
PE_BLOCK = 16


def entry_cost_columns(mask, n_pes, run_bits, min_cycles):
    """``per_pe_entries`` at least ``min_cycles``, transposed: ``[in, n_pes]`` int32, each
    column's row the costs of its entry at every PE, as the every-PE recurrence reads them
    (``fifo_event_periodic_columns``). One kernel builds it (``_entry_cost_columns``)
    instead of the ``[n_pes, in]`` table, its clamped copy, its column count and its
    transpose (0.77 ms -> 0.23 on a 768 x 3,072 layer on 64 PEs), counting in the
    narrowest unsigned type that holds a PE's rows: a PE's entries of a column and its run
    of zeros are at most its rows (a padding entry stands for ``2 ** run_bits`` zeros), and
    eight-bit lanes do twice the cells of sixteen-bit ones a step. ``n_pes`` is at least 1
    and ``min_cycles`` within int32 (the table's type), else ValueError."""
    if n_pes < 1 or run_bits < 0 or not 0 <= min_cycles <= np.iinfo(np.int32).max:
        raise ValueError(
            f"entry_cost_columns needs n_pes >= 1, run_bits >= 0 and 0 <= min_cycles <= "
            f"{np.iinfo(np.int32).max:,}; got {n_pes}, {run_bits}, {min_cycles}"
        )
    most_rows = -(-mask.shape[0] // n_pes)
    if most_rows < 1 << 8:
        count_type = np.uint8
    elif most_rows < 1 << 16:
        count_type = np.uint16
    else:
        count_type = np.uint32
    counts = np.zeros((min(PE_BLOCK, n_pes), mask.shape[1]), dtype=count_type)
    return _entry_cost_columns(mask, n_pes, run_bits, min_cycles, counts)


@njit(**JIT_OPTIONS)
def _entry_cost_columns(mask, n_pes, run_bits, min_cycles, counts):
    """``entry_cost_columns`` with ``counts`` ``[min(PE_BLOCK, n_pes), in]`` (zeros, in the
    count type) to count in: ``PE_BLOCK`` PEs' entries counted as ``per_pe_entries``
    counts them (``_add_pe_entries``), then clamped and written down the table's column
    rows."""
    out, n_in = mask.shape
    table = np.empty((n_in, n_pes), dtype=np.int32)
    gap = np.zeros(n_in, dtype=counts.dtype)  # zeros since the PE's last kept weight
    shift = counts.dtype.type(run_bits)
    floor = np.int32(min_cycles)
    padded = pads(out, n_pes, run_bits)
    for p0 in range(0, n_pes, PE_BLOCK):
        p1 = min(n_pes, p0 + PE_BLOCK)
        for p in range(p0, p1):
            count = counts[p - p0]
            count[:] = 0
            _add_pe_entries(count, gap, mask, p, n_pes, shift, padded)
        for j in range(n_in):
            column = table[j]
            for p in range(p0, p1):
                column[p] = max(np.int32(counts[p - p0, j]), floor)
    return table


@njit(**JIT_OPTIONS)
def _finish_times(last_broadcast, free_at, n_entries, width):
    """(cycles, broadcast stall): the last PE finish or broadcast, and the broadcast cycles
    beyond ``ceil(entries / width)``."""
    cycles = last_broadcast + 1
    for p in range(free_at.shape[0]):
        cycles = max(cycles, free_at[p])
    return cycles, last_broadcast + 1 - (n_entries + width - 1) // width


@njit(**JIT_OPTIONS)
def _pointers(count):
    """Column pointers from each column's entry count: the counts cumulated, from 0."""
    ptr = np.zeros(count.shape[0] + 1, dtype=np.int64)
    for j in range(count.shape[0]):
        ptr[j + 1] = ptr[j] + count[j]
    return ptr


@njit(**JIT_OPTIONS)
def _column_pointers(cost):
    """Column pointers of the CSC of ``cost [P, in]``: how many PEs' FIFOs take each column,
    cumulated (read row by row, in memory order, branch-free)."""
    n_pes, n_cols = cost.shape
    count = np.zeros(n_cols, dtype=np.int64)
    for p in range(n_pes):
        row = cost[p]
        for j in range(n_cols):
            count[j] += np.int64(row[j] > 0)
    return _pointers(count)


@njit(**JIT_OPTIONS)
def _accepting_pes(cost, ptr):
    """The CSC of ``cost [P, in]`` under its ``_column_pointers``: (PEs, costs) of the PEs
    whose FIFO takes each column, PEs ascending."""
    n_pes, n_cols = cost.shape
    fill = ptr[:-1].copy()
    pes = np.empty(ptr[n_cols], dtype=np.uint32)  # unsigned: see _periodic
    costs = np.empty(ptr[n_cols], dtype=np.int64)
    for p in range(n_pes):
        row = cost[p]
        for j in range(n_cols):
            c = row[j]
            if c > 0:
                q = fill[j]
                pes[q] = np.uint32(p)
                costs[q] = c
                fill[j] = q + 1
    return pes, costs


@njit(**JIT_OPTIONS)
def _by_column(cost):
    """``cost [P, in]`` transposed to ``[in, P]``, PE row by PE row: each row is read in
    order and its values stored down a column. ``np.ascontiguousarray(cost.T)`` read down
    the columns instead, and with rows a multiple of 4 KiB apart (BERT's widths) every read
    evicted a line the next column needed: four times slower on a 3,072-input layer."""
    n_pes, n_cols = cost.shape
    out = np.empty((n_cols, n_pes), dtype=cost.dtype)
    for p in range(n_pes):
        row = cost[p]
        for j in range(n_cols):
            out[j, p] = row[j]
    return out


@njit(**JIT_OPTIONS)
def _state(free_at, finishes, slot, sent_ring, e, width, origin):
    """The schedule's state after a pass, as it bears on what follows: times relative to the
    last broadcast ``origin``, rings read from their oldest entry, and every time that can no
    longer matter clamped (a later broadcast is at ``origin`` or after, so a PE free by
    ``origin + 1`` or a FIFO slot free by ``origin`` is simply free). Two passes that leave
    equal states evolve identically, shifted in time."""
    depth, n_pes = finishes.shape
    out = np.empty(n_pes + depth * n_pes + width, dtype=np.int64)
    for p in range(n_pes):
        out[p] = max(free_at[p] - origin, 1)
        for i in range(depth):
            out[n_pes + p * depth + i] = max(finishes[(slot[p] + i) % depth, p] - origin, 0)
    for i in range(width):
        out[n_pes + depth * n_pes + i] = max(sent_ring[(e + i) % width] - origin, -1)
    return out


@njit(**JIT_OPTIONS)
def fifo_event_schedule(cost, entry_cols, repeats, fifo_depth, width):
    """Exact event recurrence of the broadcast/FIFO/PE timing (see the module docstring).

    Each entry visits only the PEs that accept its column. The recurrence is max-plus and
    shift invariant, so once a pass of the stream leaves the state (times relative to the
    last broadcast) as the previous pass did, every later pass repeats it shifted by the same
    number of cycles: the remaining passes are then added in one step, exactly."""
    cycles, stall, busy, _ = fifo_event_periodic(cost, entry_cols, repeats, fifo_depth, width,
                                                 repeats)  # fmt: skip
    return cycles, stall, busy


@njit(**JIT_OPTIONS)
def repeated_finish(periodic, n_cols, repeats, width):
    """``fifo_event_schedule``'s (cycles, stall, busy) for ``repeats`` passes from the
    ``periodic`` summary of a run that became periodic after ``passes < repeats`` passes:
    those passes are the same whatever the number of repeats, and every later one shifts
    the schedule by ``period`` cycles, as the recurrence adds them."""
    passes, last_broadcast, period, free_at, pass_busy = periodic
    shift = period * (repeats - passes)
    finish = np.empty(free_at.shape[0], dtype=np.int64)
    busy = np.empty(free_at.shape[0], dtype=np.int64)
    for p in range(free_at.shape[0]):
        finish[p] = max(free_at[p], last_broadcast + 1) + shift
        busy[p] = pass_busy[p] * repeats
    cycles, stall = _finish_times(last_broadcast + shift, finish, n_cols * repeats, width)
    return cycles, stall, busy


@njit(**JIT_OPTIONS)
def fifo_event_periodic(cost, entry_cols, repeats, fifo_depth, width, max_passes):
    """``fifo_event_schedule``'s (cycles, stall, busy) and its periodic summary: (passes
    before the state repeated, the last broadcast then, the cycles each later pass adds, the
    PEs' free times then, each PE's busy cycles a pass), with ``passes = -1`` when the
    repeats ran out first. ``repeated_finish`` gives any larger number of repeats from it.
    At most ``max_passes`` passes are run: when the schedule has not repeated by then (and
    repeats remain), ``cycles`` is -1 and nothing else is meaningful (the caller's bound on
    the kernel's work, which a periodic stream seldom needs: it repeats after a few passes)."""
    n_pes = cost.shape[0]
    ptr = _column_pointers(cost)
    every_pe = cost.size > 0 and ptr[-1] == cost.size  # every FIFO takes every column
    if every_pe:  # the table by column, [in, P]
        return fifo_event_periodic_columns(_by_column(cost), entry_cols, repeats, fifo_depth,
                                           width, max_passes)  # fmt: skip
    pes, costs = _accepting_pes(cost, ptr)
    empty = np.empty((0, n_pes), dtype=cost.dtype)
    cycles, stall, busy, periodic, _ = _periodic(n_pes, False, empty, ptr, pes, costs,
                                                 entry_cols, repeats, fifo_depth, width,
                                                 max_passes, -1)  # fmt: skip
    return cycles, stall, busy, periodic


@njit(**JIT_OPTIONS)
def fifo_event_periodic_columns(by_col, entry_cols, repeats, fifo_depth, width, max_passes):
    """``fifo_event_periodic`` of the table given as ``[in, P]`` when every cost is positive
    (every FIFO takes every column): the every-PE recurrence, which ``fifo_event_periodic``
    and ``_csc_periodic`` take once they find it so, and the PE array takes directly when
    each entry costs a cycle at least (``entry_cost_columns``), without the column count
    and the transpose."""
    n_pes = by_col.shape[1]
    ptr = np.empty(0, dtype=np.int64)  # unread on the every-PE path
    pes = np.empty(0, dtype=np.uint32)
    costs = np.empty(0, dtype=np.int64)
    cycles, stall, busy, periodic, _ = _periodic(n_pes, True, by_col, ptr, pes, costs,
                                                 entry_cols, repeats, fifo_depth, width,
                                                 max_passes, -1)  # fmt: skip
    return cycles, stall, busy, periodic


@njit(**JIT_OPTIONS)
def _owned(row, p, n_pes, out):
    """The OR of PE ``p``'s rows (``p``, ``p + n_pes``, ...) in one 64-column word ``row``:
    the columns it keeps a weight in (a while loop: a stepped range divides for its
    length)."""
    kept = row[p]
    i = p + n_pes
    while i < out:
        kept |= row[i]
        i += n_pes
    return kept


@njit(**JIT_OPTIONS)
def kept_weight_columns(bits, n_pes, n_in, pe_type, cost_type):
    """(column pointers, PEs, costs) as ``_column_pointers`` and ``_accepting_pes`` give them
    for the table of kept weights per PE and column (row i on PE ``i % n_pes``), read from
    the mask's word-major bit rows (``bitops.pack_rows``) without building the table: 64
    columns at a time, PE by PE, each set bit of the OR of the PE's rows is one entry, its
    cost the PE's rows that keep it. The table's build read every cell with a branch and
    scattered its entries over the whole CSC; here only kept weights are visited, and the
    writes go to the 64 columns of one word. PEs and costs are stored as ``pe_type`` and
    ``cost_type`` (``csc_types``): at 2 and 1 bytes the CSC of a 3,072-input layer on 769
    PEs stays in the core's cache while it is written, twice as fast as at 4 and 8."""
    n_words, out = bits.shape
    owners = min(n_pes, out)
    one = np.uint64(1)
    count = np.zeros(n_in, dtype=np.int64)
    for w in range(n_words):
        row = bits[w]
        for p in range(owners):
            kept = _owned(row, p, n_pes, out)
            while kept:
                count[64 * w + lowest_bit(kept)] += 1
                kept &= kept - one
    ptr = _pointers(count)
    fill = ptr[:-1].copy()
    pes = np.empty(ptr[n_in], dtype=pe_type)
    costs = np.empty(ptr[n_in], dtype=cost_type)
    for w in range(n_words):
        row = bits[w]
        for p in range(owners):
            kept = _owned(row, p, n_pes, out)
            while kept:
                bit = lowest_bit(kept)
                rows = np.int64((row[p] >> np.uint64(bit)) & one)
                i = p + n_pes
                while i < out:
                    rows += np.int64((row[i] >> np.uint64(bit)) & one)
                    i += n_pes
                j = 64 * w + bit
                q = fill[j]
                pes[q] = p
                costs[q] = rows
                fill[j] = q + 1
                kept &= kept - one
    return ptr, pes, costs


@njit(**JIT_OPTIONS)
def column_bits(mask):
    """A bool mask ``[out, in]`` as each column's rows in 64-row words (``column_words``),
    with each row's kept weights and its last kept column (``row_kept_from_columns``)."""
    out, n_in = mask.shape
    if out == 0 or n_in % 8 != 0:
        return _column_bits_cells(mask)  # one pass gives all three
    col = column_words(mask)
    degree, last = row_kept_from_columns(col, out)
    return col, degree, last


@njit(**JIT_OPTIONS)
def column_words(mask):
    """A bool mask ``[out, in]`` as each column's rows in 64-row words, ``[ceil(out / 64),
    in]`` uint64 (bit ``i % 64`` of word ``[i // 64, j]`` is ``mask[i, j]``). With ``in`` a
    multiple of 8 the mask is read as words of eight cells, 64 rows at a time
    (``_column_octets``, then an 8 x 8 byte transpose per eight columns: ``_byte_transpose``;
    1.2 times the mask-scan floor over BERT-base's masks, where building each 8-row byte
    first and shifting it into its word took 1.4), the rows past the last 64 cell by cell;
    otherwise cell by cell (``_column_bits_cells``)."""
    out, n_in = mask.shape
    if out == 0 or n_in % 8 != 0:
        return _column_bits_cells(mask)[0]
    per_row = n_in // 8
    cells = mask.reshape(out * n_in).view(np.uint64).reshape(out, per_row)
    col = np.empty(((out + 63) // 64, n_in), dtype=np.uint64)
    octets = np.empty((8, per_row), dtype=np.uint64)
    full = out // 64
    for g in range(full):
        for r in range(8):
            _column_octets(cells, 64 * g + 8 * r, octets[r])
        words = col[g]
        o0, o1, o2, o3 = octets[0], octets[1], octets[2], octets[3]
        o4, o5, o6, o7 = octets[4], octets[5], octets[6], octets[7]
        for c in range(per_row):  # byte b of octets[r][c] becomes byte r of word 8c + b
            x0, x1, x2, x3, x4, x5, x6, x7 = _byte_transpose(
                o0[c], o1[c], o2[c], o3[c], o4[c], o5[c], o6[c], o7[c]
            )
            j = 8 * c
            words[j], words[j + 1], words[j + 2], words[j + 3] = x0, x1, x2, x3
            words[j + 4], words[j + 5], words[j + 6], words[j + 7] = x4, x5, x6, x7
    if full * 64 < out:  # fewer than 64 rows left
        col[full] = _column_bits_cells(mask[64 * full :])[0][0]
    return col


@njit(inline="always", **JIT_OPTIONS)
def _column_octets(cells, r0, octets):
    """Rows ``r0 .. r0 + 7`` of a bool mask read as ``cells [out, in / 8]`` uint64 (eight
    cells of 0 or 1 a word) into ``octets [in / 8]``: bit ``r`` of byte ``c`` of word ``w``
    is ``mask[r0 + r, 8 w + c]``. Eight rows' words are shifted into one: one operation
    moves 64 cells."""
    a0, a1, a2, a3 = cells[r0], cells[r0 + 1], cells[r0 + 2], cells[r0 + 3]
    a4, a5, a6, a7 = cells[r0 + 4], cells[r0 + 5], cells[r0 + 6], cells[r0 + 7]
    for c in range(octets.shape[0]):
        octets[c] = (a0[c] | (a1[c] << np.uint64(1)) | (a2[c] << np.uint64(2))
                     | (a3[c] << np.uint64(3)) | (a4[c] << np.uint64(4))
                     | (a5[c] << np.uint64(5)) | (a6[c] << np.uint64(6))
                     | (a7[c] << np.uint64(7)))  # fmt: skip


_LOW32 = np.uint64(0x00000000FFFFFFFF)
_LOW16 = np.uint64(0x0000FFFF0000FFFF)
_LOW8 = np.uint64(0x00FF00FF00FF00FF)


@njit(inline="always", **JIT_OPTIONS)
def _swap_fields(a, b, low, shift):
    """``a``'s high ``shift``-bit fields (of each pair selected by ``low``) swapped with
    ``b``'s low ones."""
    t = ((a >> shift) ^ b) & low
    return a ^ (t << shift), b ^ t


@njit(inline="always", **JIT_OPTIONS)
def _byte_transpose(x0, x1, x2, x3, x4, x5, x6, x7):
    """Eight uint64 as an 8 x 8 byte matrix (row ``r`` the ``r``-th word, column ``b`` its
    byte ``b``), transposed: halves, then quarters, then bytes swapped across words."""
    x0, x4 = _swap_fields(x0, x4, _LOW32, np.uint64(32))
    x1, x5 = _swap_fields(x1, x5, _LOW32, np.uint64(32))
    x2, x6 = _swap_fields(x2, x6, _LOW32, np.uint64(32))
    x3, x7 = _swap_fields(x3, x7, _LOW32, np.uint64(32))
    x0, x2 = _swap_fields(x0, x2, _LOW16, np.uint64(16))
    x1, x3 = _swap_fields(x1, x3, _LOW16, np.uint64(16))
    x4, x6 = _swap_fields(x4, x6, _LOW16, np.uint64(16))
    x5, x7 = _swap_fields(x5, x7, _LOW16, np.uint64(16))
    x0, x1 = _swap_fields(x0, x1, _LOW8, np.uint64(8))
    x2, x3 = _swap_fields(x2, x3, _LOW8, np.uint64(8))
    x4, x5 = _swap_fields(x4, x5, _LOW8, np.uint64(8))
    x6, x7 = _swap_fields(x6, x7, _LOW8, np.uint64(8))
    return x0, x1, x2, x3, x4, x5, x6, x7


_ONE = np.uint64(1)


@njit(inline="always", **JIT_OPTIONS)
def _carry_save(a, b, c):
    """A carry-save adder over 64 bit positions: (the carries, the sums) of ``a + b + c``."""
    u = a ^ b
    return (a & b) | (u & c), u ^ c


@njit(inline="always", **JIT_OPTIONS)
def _add_eight(words, j, ones, twos, fours):
    """``words[j : j + 8]`` added into the running ones, twos and fours by carry-save
    adders: (the eights carried out, ones, twos, fours)."""
    t0, ones = _carry_save(ones, words[j], words[j + 1])
    t1, ones = _carry_save(ones, words[j + 2], words[j + 3])
    f0, twos = _carry_save(twos, t0, t1)
    t0, ones = _carry_save(ones, words[j + 4], words[j + 5])
    t1, ones = _carry_save(ones, words[j + 6], words[j + 7])
    f1, twos = _carry_save(twos, t0, t1)
    eights, fours = _carry_save(fours, f0, f1)
    return eights, ones, twos, fours


@njit(**JIT_OPTIONS)
def row_kept_from_columns(col, out):
    """Each row's kept weights and its last kept column (-1: none) of an ``out``-row mask
    given as its ``column_words``: the PE lists' totals read them, the run-length size does
    not. Per 64-row word the columns' words are summed bit by bit, sixteen at a time through
    a tree of carry-save adders into running ones, twos, fours and eights (Harley and Seal's
    population count), the sixteens rippled into higher planes; the last kept column is
    found walking the columns back until every row with a kept weight has been seen. On
    BERT-base's masks half the time of a second pass over the mask's cells, which the
    column words are an eighth of."""
    n_words, n_in = col.shape
    planes = 1  # bits of the largest count, n_in
    while (1 << planes) <= n_in:
        planes += 1
    degree = np.zeros(out, dtype=np.int64)
    last = np.full(out, -1, dtype=np.int64)
    high = np.zeros(max(planes - 3, 1), dtype=np.uint64)  # eights, sixteens, ...
    for g in range(n_words):
        words = col[g]
        ones = twos = fours = eights = np.uint64(0)
        high[:] = 0
        j = 0
        while j + 16 <= n_in:
            e0, ones, twos, fours = _add_eight(words, j, ones, twos, fours)
            e1, ones, twos, fours = _add_eight(words, j + 8, ones, twos, fours)
            carry, eights = _carry_save(eights, e0, e1)
            for t in range(1, high.shape[0]):  # the sixteens, rippled up
                before = high[t]
                high[t] = before ^ carry
                carry = before & carry
            j += 16
        high[0] = eights
        rows = min(64, out - 64 * g)
        for i in range(rows):
            bit = np.uint64(i)
            count = np.int64((ones >> bit) & _ONE) + 2 * np.int64((twos >> bit) & _ONE)
            count += 4 * np.int64((fours >> bit) & _ONE)
            for t in range(high.shape[0]):
                count += np.int64((high[t] >> bit) & _ONE) << (t + 3)
            degree[64 * g + i] = count
        for c in range(j, n_in):  # the last columns, fewer than sixteen
            x = words[c]
            while x:
                degree[64 * g + lowest_bit(x)] += 1
                x &= x - _ONE
        kept = np.uint64(0)  # rows with a kept weight
        for i in range(rows):
            if degree[64 * g + i]:
                kept |= _ONE << np.uint64(i)
        seen = np.uint64(0)
        c = n_in - 1
        while seen != kept and c >= 0:  # every kept row is seen before c < 0: a guard
            new = words[c] & ~seen
            seen |= new
            while new:
                last[64 * g + lowest_bit(new)] = c
                new &= new - _ONE
            c -= 1
    return degree, last


@njit(**JIT_OPTIONS)
def _column_bits_cells(mask):
    """``column_bits`` a cell at a time (any width)."""
    out, n_in = mask.shape
    col = np.zeros(((out + 63) // 64, n_in), dtype=np.uint64)
    degree = np.zeros(out, dtype=np.int64)
    last = np.full(out, -1, dtype=np.int64)
    for i in range(out):
        shift = np.uint64(i & 63)
        words = col[i >> 6]
        row = mask[i]
        for j in range(n_in):
            words[j] |= np.uint64(row[j]) << shift
        degree[i], last[i] = _row_cells(row)
    return col, degree, last


@njit(inline="always", **JIT_OPTIONS)
def _row_cells(row):
    """A bool row's kept cells and its last kept index (-1: none), a cell at a time."""
    kept = 0
    for j in range(row.shape[0]):
        kept += row[j]
    j = row.shape[0] - 1
    while j >= 0 and not row[j]:
        j -= 1
    return kept, j


@njit(**JIT_OPTIONS)
def pe_word_columns(columns, n_pes, pe_type, cost_type):
    """(column pointers, PEs, costs, each PE's pass totals) as ``kept_weight_columns`` and
    ``_pass_totals`` give them, for PEs with several rows each when ``n_pes`` is a multiple
    of 64: PE p's rows p, p + P, p + 2P, ... then sit at the same bit (p % 64) of the column
    words (``column_bits``) p // 64, p // 64 + P / 64, ..., so for each column the OR of
    those words marks the PEs that take it (their bits emitted in order write the CSC front
    to back) and a bit-sliced sum of them (``planes`` binary digits, a ripple of ANDs and
    XORs per word) counts each PE's rows that keep it, its cost. A PE's totals are its rows'
    kept weights, the columns it takes and its rows' last kept column. On BERT-base's 3,072
    x 768 layer at 1,024 PEs, about 40 % less time than ``kept_weight_columns`` and its bit
    rows. ``columns``: the mask's ``column_bits``."""
    col, degree, last = columns
    out, n_in = degree.shape[0], col.shape[1]
    n_words = col.shape[0]
    pe_words = n_pes // 64
    most_rows = (out + n_pes - 1) // n_pes
    planes = 1
    while (1 << planes) <= most_rows:
        planes += 1
    taking = np.zeros((pe_words, n_in), dtype=np.uint64)  # the PEs that take each column
    digits = np.zeros((planes, pe_words, n_in), dtype=np.uint64)  # their rows, bit-sliced
    count = np.zeros(n_in, dtype=np.int64)
    for v in range(pe_words):
        any_row = taking[v]
        w = v
        while w < n_words:  # one of the 64 PEs' row-words
            words = col[w]
            for j in range(n_in):
                x = words[j]
                any_row[j] |= x
                carry = x
                for t in range(planes):
                    digit = digits[t, v]
                    before = digit[j]
                    digit[j] = before ^ carry
                    carry = before & carry
            w += pe_words
        for j in range(n_in):
            count[j] += popcount(any_row[j])
    ptr = _pointers(count)
    pes = np.empty(ptr[n_in], dtype=pe_type)
    costs = np.empty(ptr[n_in], dtype=cost_type)
    taken = np.zeros(n_pes, dtype=np.int64)
    held = np.empty(planes, dtype=np.uint64)  # one word's digits, read once for its PEs
    q = 0
    for j in range(n_in):
        for v in range(pe_words):
            x = taking[v, j]
            if not x:
                continue
            for t in range(planes):
                held[t] = digits[t, v, j]
            while x:
                bit = lowest_bit(x)
                p = 64 * v + bit
                rows = 0
                for t in range(planes):
                    rows += np.int64((held[t] >> np.uint64(bit)) & np.uint64(1)) << t
                pes[q] = p
                costs[q] = rows
                taken[p] += 1
                q += 1
                x &= x - np.uint64(1)
    pass_busy = np.zeros(n_pes, dtype=np.int64)
    last_taken = np.full(n_pes, -1, dtype=np.int64)
    for i in range(out):
        p = i % n_pes
        pass_busy[p] += degree[i]
        last_taken[p] = max(last_taken[p], last[i])
    return ptr, pes, costs, (pass_busy, taken, last_taken)


def csc_types(n_pes: int, out: int) -> tuple[np.dtype, np.dtype]:
    """The narrowest unsigned types (``kept_weight_columns``) holding a PE index below
    ``n_pes`` and a PE's kept weights of a column (at most its rows of ``out``), as dtype
    objects: Numba types a dtype argument in a fraction of a microsecond, a scalar class
    such as ``np.uint16`` in about 9."""
    pe_type = np.dtype(np.uint16 if n_pes <= 1 << 16 else np.uint32)
    most_rows = -(-out // n_pes)
    cost_type = np.dtype(np.uint8 if most_rows < 1 << 8 else np.uint32)
    return pe_type, cost_type


@njit(**JIT_OPTIONS)
def fifo_event_periodic_kept(bits, n_pes, n_in, pe_type, cost_type, entry_cols, repeats,
                             fifo_depth, width, max_passes):  # fmt: skip
    """``fifo_event_periodic`` of the table of kept weights per PE and column (no padding
    entries, no minimum cost: an empty column is filtered), from the mask's bit rows
    (``kept_weight_columns``, with ``csc_types``)."""
    ptr, pes, costs = kept_weight_columns(bits, n_pes, n_in, pe_type, cost_type)
    return _csc_periodic(n_pes, n_in, ptr, pes, costs, kept_pass_totals(bits, n_pes),
                         entry_cols, repeats, fifo_depth, width, max_passes)  # fmt: skip


@njit(**JIT_OPTIONS)
def fifo_event_periodic_pe_words(columns, n_pes, pe_type, cost_type, entry_cols, repeats,
                                 fifo_depth, width, max_passes):  # fmt: skip
    """``fifo_event_periodic_kept`` of a mask (given as its ``column_bits``) on ``n_pes``
    PEs, a multiple of 64 with several rows each: the CSC and each PE's pass from
    ``pe_word_columns``."""
    ptr, pes, costs, totals = pe_word_columns(columns, n_pes, pe_type, cost_type)
    return _csc_periodic(n_pes, columns[0].shape[1], ptr, pes, costs, totals, entry_cols,
                         repeats, fifo_depth, width, max_passes)  # fmt: skip


@njit(**JIT_OPTIONS)
def _csc_periodic(n_pes, n_in, ptr, pes, costs, totals, entry_cols, repeats, fifo_depth,
                  width, max_passes):  # fmt: skip
    """``fifo_event_periodic``'s four values from a CSC of kept weights, with each PE's
    ``totals`` of a pass (``_pass_totals``) for the stream of every column once, in order
    (counted from the CSC for any other stream)."""
    every_pe = n_pes * n_in > 0 and ptr[n_in] == n_pes * n_in
    if every_pe:  # each column lists every PE, in order: the CSC is the [in, P] table
        return fifo_event_periodic_columns(costs.reshape(n_in, n_pes), entry_cols, repeats,
                                           fifo_depth, width, max_passes)  # fmt: skip
    if not _identity(entry_cols, n_in):
        totals = _pass_totals(ptr, pes, costs, entry_cols, n_pes)
    empty = np.empty((0, n_pes), dtype=costs.dtype)
    cycles, stall, busy, periodic, _ = _periodic(n_pes, False, empty, ptr, pes, costs,
                                                 entry_cols, repeats, fifo_depth, width,
                                                 max_passes, -1, totals)  # fmt: skip
    return cycles, stall, busy, periodic


@njit(**JIT_OPTIONS)
def fifo_event_periodic_uniform(cost, owners, idle, n_in, entry_cols, repeats, fifo_depth,
                                width, max_passes):  # fmt: skip
    """``fifo_event_periodic`` of a table where each of ``owners`` PEs spends ``cost``
    cycles on every column and ``idle`` more PEs (0 or 1) take none (a dense layer whose PEs
    own equal rows): identical PEs keep identical FIFOs and times, so one is run and its
    numbers copied, the idle PE's being zeros. The dense baselines' tables were 19 MB at
    3,072 inputs, to be transposed and read once per pass."""
    by_col = np.full((n_in, 1), cost, dtype=np.int64)
    ptr = np.zeros(n_in + 1, dtype=np.int64)  # no per-column lists: one PE takes every column
    pes = np.empty(0, dtype=np.uint32)
    costs = np.empty(0, dtype=np.int64)
    cycles, stall, busy, periodic, _ = _periodic(1, True, by_col, ptr, pes, costs, entry_cols,
                                                 repeats, fifo_depth, width, max_passes,
                                                 -1)  # fmt: skip
    passes, last_broadcast, period, free_at, pass_busy = periodic
    n_pes = owners + idle
    every = np.zeros(n_pes, dtype=np.int64)
    every_free = np.zeros(n_pes, dtype=np.int64)
    every_pass = np.zeros(n_pes, dtype=np.int64)
    every[:owners] = busy[0]
    every_free[:owners] = free_at[0]
    every_pass[:owners] = pass_busy[0]
    return cycles, stall, every, (passes, last_broadcast, period, every_free, every_pass)


@njit(**JIT_OPTIONS)
def checkpoint_count(n_pes, fifo_depth, width, pass_entries, n_cols):
    """Checkpoints a pass of ``n_cols`` entries (``pass_entries`` PE visits) is cut at for
    ``_periodic``'s early repeat: at most ``MAX_CHECKPOINTS``, none at the pass's end, and
    few enough that copying the state at each (``n_pes`` slots and rings of ``fifo_depth``,
    ``width`` broadcasts) costs at most a quarter of the pass's visits (each costs several
    times a copied value)."""
    state_size = n_pes * (fifo_depth + 1) + width
    return max(0, min(MAX_CHECKPOINTS, n_cols - 1, pass_entries // (4 * state_size)))


@njit(**JIT_OPTIONS)
def _same_state(finishes, slot, sent_ring, e, origin, snap_finishes, snap_slot, snap_sent,
                snap_e, snap_origin):  # fmt: skip
    """Whether two schedules' states are equal as ``_state`` compares them (times relative
    to each one's last broadcast, clamped where they can no longer matter), without
    building either: stops at the first difference. A PE's free time is its ring's newest
    finish (0 in both before its first entry), clamped at 0 rather than 1 there: equal rings
    make equal free times, and only the rings are compared."""
    depth, n_pes = finishes.shape
    width = sent_ring.shape[0]
    for i in range(width):
        now = max(sent_ring[(e + i) % width] - origin, -1)
        if now != max(snap_sent[(snap_e + i) % width] - snap_origin, -1):
            return False
    for p in range(n_pes):
        for i in range(depth):
            now = max(finishes[(slot[p] + i) % depth, p] - origin, 0)
            if now != max(snap_finishes[(snap_slot[p] + i) % depth, p] - snap_origin, 0):
                return False
    return True


@njit(**JIT_OPTIONS)
def _pass_totals(ptr, pes, costs, entry_cols, n_pes):
    """Each of ``n_pes`` PEs' cycles, entries and last entry's position (-1: none) in one
    pass of ``entry_cols`` over the CSC."""
    pass_busy = np.zeros(n_pes, dtype=np.int64)
    taken = np.zeros(n_pes, dtype=np.int64)
    last_taken = np.full(n_pes, -1, dtype=np.int64)
    for k in range(entry_cols.shape[0]):
        col = entry_cols[k]
        for q in range(ptr[col], ptr[col + 1]):
            p = pes[q]
            pass_busy[p] += costs[q]
            taken[p] += 1
            last_taken[p] = k
    return pass_busy, taken, last_taken


@njit(**JIT_OPTIONS)
def kept_pass_totals(bits, n_pes):
    """``_pass_totals`` of ``kept_weight_columns``' CSC for the stream of every column once,
    in order, from the mask's bit rows, word by word: a PE's cycles are its rows' kept
    weights, its entries the columns its rows keep a weight in (the OR of its rows), its
    last one the highest of those. Far cheaper than a visit per entry."""
    n_words, out = bits.shape
    pass_busy = np.zeros(n_pes, dtype=np.int64)
    taken = np.zeros(n_pes, dtype=np.int64)
    last_taken = np.full(n_pes, -1, dtype=np.int64)
    for w in range(n_words):
        row = bits[w]
        for p in range(min(n_pes, out)):
            kept = row[p]
            weights = popcount(kept)
            i = p + n_pes
            while i < out:
                kept |= row[i]
                weights += popcount(row[i])
                i += n_pes
            pass_busy[p] += weights
            taken[p] += popcount(kept)
            if kept:
                last_taken[p] = 64 * w + highest_bit(kept)
    return pass_busy, taken, last_taken


@njit(**JIT_OPTIONS)
def _identity(entry_cols, n_cols):
    """Whether ``entry_cols`` is every one of ``n_cols`` columns once, in order."""
    if entry_cols.shape[0] != n_cols:
        return False
    in_order = True
    for k in range(n_cols):
        in_order = in_order and entry_cols[k] == k
    return in_order


@njit(**JIT_OPTIONS)
def _periodic(n_pes, every_pe, by_col, ptr, pes, costs, entry_cols, repeats, fifo_depth,
              width, max_passes, checkpoints, totals=None):  # fmt: skip
    """``fifo_event_periodic`` over the entry table as ``[in, P]`` (``by_col``, when every
    PE takes every column) or as its CSC (``ptr``, ``pes``, ``costs``), and the entries the
    recurrence ran (the work; ``checkpoints`` < 0 takes ``checkpoint_count``'s).
    ``totals``: each PE's (cycles, entries, last entry's position) in one pass
    (``_pass_totals``), when the caller has them; else they are counted here. Only for the
    CSC path: the every-PE path sums its own.

    Early repeat: a pass is cut at ``checkpoints`` positions and the state at each is kept.
    The next pass, once its predecessor ended settled, compares its state at each position
    with the one kept: when they are equal it goes on as its predecessor did, shifted by the
    difference of their last broadcasts, and so ends in the same state, shifted; the repeat
    the pass's end would find is taken there and then, the rest of the pass not run. A PE's
    finish at that end is its predecessor's shifted when it takes an entry after the
    position, else its own so far. On BERT-base at 1,024 PEs the 3,072-wide layers repeat
    within a sixth of the second pass, the 768 x 768 ones past half of it."""
    n_cols = entry_cols.shape[0]
    busy = np.zeros(n_pes, dtype=np.int64)
    pass_busy = np.zeros(n_pes, dtype=np.int64)
    free_at = np.zeros(n_pes, dtype=np.int64)
    # finish cycles of each PE's last ``fifo_depth`` accepted entries, as a ring; slot[p] is
    # the oldest (the one ``fifo_depth`` accepted entries back once the ring is full)
    finishes = np.zeros((fifo_depth, n_pes), dtype=np.int64)
    # The CSC's PEs are unsigned and the ring is indexed flat through an unsigned index: Numba
    # checks every signed index for a negative value to wrap, and in these scattered
    # accesses those checks took a quarter of the recurrence's time.
    ring_flat = finishes.reshape(-1)
    slot = np.zeros(n_pes, dtype=np.int64)
    accepted = np.zeros(n_pes, dtype=np.int64)
    taken = np.zeros(n_pes, dtype=np.int64)  # entries each PE takes a pass
    last_taken = np.full(n_pes, -1, dtype=np.int64)  # the position of each PE's last one
    # Every pass gives each PE the same entries: counted before the passes (given, or from
    # the CSC), not in the recurrence, where the three updates a visit took a quarter of its
    # time. The every-PE path sums its busy cycles in its first pass.
    if totals is not None:
        pass_busy[:] = totals[0]
        taken[:] = totals[1]
        last_taken[:] = totals[2]
    elif not every_pe:
        pass_busy, taken, last_taken = _pass_totals(ptr, pes, costs, entry_cols, n_pes)
    sent_ring = np.full(width, -1, dtype=np.int64)
    last_broadcast = -1
    e = 0
    previous = np.empty(0, dtype=np.int64)
    previous_broadcast = 0
    previous_free = np.zeros(n_pes, dtype=np.int64)
    if checkpoints < 0:
        pass_entries = n_cols * n_pes
        if not every_pe:
            pass_entries = 0
            for k in range(n_cols):
                pass_entries += ptr[entry_cols[k] + 1] - ptr[entry_cols[k]]
        checkpoints = checkpoint_count(n_pes, fifo_depth, width, pass_entries, n_cols)
    n_checks = max(0, min(checkpoints, n_cols - 1))
    ends = np.empty(n_checks + 1, dtype=np.int64)  # each segment's end; the last, the pass's
    for j in range(n_checks):
        ends[j] = (j + 1) * n_cols // (n_checks + 1)
    ends[n_checks] = n_cols
    snap_finishes = np.empty((n_checks, fifo_depth, n_pes), dtype=np.int64)
    snap_slot = np.empty((n_checks, n_pes), dtype=np.int64)
    snap_sent = np.empty((n_checks, width), dtype=np.int64)
    snap_origin = np.empty(n_checks, dtype=np.int64)
    snap_e = np.empty(n_checks, dtype=np.int64)
    # the periodic summary, kept in plain variables: a tuple of arrays carried through the
    # loop costs reference counting in its hot inner loops
    periodic_passes = -1
    periodic_broadcast = periodic_period = 0
    periodic_free = np.zeros(n_pes, dtype=np.int64)
    all_slot = all_accepted = 0  # slot and accepted of every PE when every PE takes every column
    r = 0
    while r < repeats:
        if r >= max_passes:  # not periodic within the caller's bound
            empty = np.zeros(n_pes, dtype=np.int64)
            return -1, -1, empty, (-1, 0, 0, empty, empty), e
        # this pass may repeat its predecessor's at a checkpoint when that one ended settled
        # (its end state kept) and the end of this one would be compared; it keeps its own
        # states for the next when that one may run and be compared
        compares = previous.shape[0] > 0 and r + 1 < repeats
        keeps = r + 2 < repeats and r + 1 < max_passes
        repeated_at = -1
        start = 0
        for j in range(n_checks + 1):
            for k in range(start, ends[j]):
                col = entry_cols[k]
                sent = max(last_broadcast, sent_ring[e % width] + 1)
                if every_pe:  # all rings advance together: contiguous, branch-free loops
                    if all_accepted >= fifo_depth:
                        oldest = finishes[all_slot]
                        for p in range(n_pes):
                            sent = max(sent, oldest[p])
                    ring, col_cost = finishes[all_slot], by_col[col]
                    for p in range(n_pes):
                        free_at[p] = max(sent + 1, free_at[p]) + col_cost[p]
                        ring[p] = free_at[p]
                    all_slot = all_slot + 1 if all_slot + 1 < fifo_depth else 0
                    all_accepted += 1
                    if r == 0:  # a loop: ``pass_busy += col_cost`` made a temporary per entry
                        for p in range(n_pes):
                            pass_busy[p] += col_cost[p]
                else:
                    for q in range(ptr[col], ptr[col + 1]):
                        p = pes[q]  # a ring not yet full holds zeros, and sent >= 0: no test
                        sent = max(sent, ring_flat[np.uint64(slot[p] * n_pes + p)])
                    for q in range(ptr[col], ptr[col + 1]):
                        p = pes[q]
                        free_at[p] = max(sent + 1, free_at[p]) + costs[q]
                        ring_flat[np.uint64(slot[p] * n_pes + p)] = free_at[p]
                        slot[p] = slot[p] + 1 if slot[p] + 1 < fifo_depth else 0
                sent_ring[e % width] = sent
                last_broadcast = sent
                e += 1
            start = ends[j]
            if j == n_checks:
                break
            if every_pe:
                slot[:] = all_slot
            if compares and _same_state(finishes, slot, sent_ring, e, last_broadcast,
                                        snap_finishes[j], snap_slot[j], snap_sent[j],
                                        snap_e[j], snap_origin[j]):  # fmt: skip
                repeated_at = j
                break
            if keeps:
                snap_finishes[j] = finishes
                snap_slot[j] = slot
                snap_sent[j] = sent_ring
                snap_origin[j] = last_broadcast
                snap_e[j] = e
        if every_pe:  # every PE's ring position and count, kept as one scalar in the pass
            slot[:] = all_slot
            accepted[:] = all_accepted
            if r == 0:
                last_taken[:] = n_cols - 1
        else:
            for p in range(n_pes):
                accepted[p] += taken[p]
        if repeated_at >= 0:  # this pass ends as its predecessor did, ``period`` later
            period = last_broadcast - snap_origin[repeated_at]
            for p in range(n_pes):
                if last_taken[p] >= start:
                    free_at[p] = previous_free[p] + period
            last_broadcast = previous_broadcast + period
        r += 1
        if r == repeats:
            break
        # every ring entry is a real event once each working PE has taken fifo_depth entries
        # and ``width`` entries have been broadcast
        settled = e >= width
        for p in range(n_pes):
            if pass_busy[p] > 0 and accepted[p] < fifo_depth:
                settled = False
        if not settled:
            continue
        repeats_now = repeated_at >= 0
        state = previous
        if not repeats_now:
            state = _state(free_at, finishes, slot, sent_ring, e, width, last_broadcast)
            repeats_now = previous.shape[0] == state.shape[0] and (previous == state).all()
        if repeats_now:
            # the passes left each end ``last_broadcast - previous_broadcast`` cycles after
            # the one before; only the finish times are still needed
            periodic_passes, periodic_broadcast = r, last_broadcast
            periodic_period = last_broadcast - previous_broadcast
            periodic_free[:] = free_at
            shift = (last_broadcast - previous_broadcast) * (repeats - r)
            for p in range(n_pes):
                free_at[p] = max(free_at[p], last_broadcast + 1) + shift
            last_broadcast += shift
            r = repeats
            break
        previous = state
        previous_broadcast = last_broadcast
        previous_free[:] = free_at
    for p in range(n_pes):
        busy[p] = pass_busy[p] * repeats
    cycles, stall = _finish_times(last_broadcast, free_at, n_cols * repeats, width)
    periodic = (periodic_passes, periodic_broadcast, periodic_period, periodic_free, pass_busy)
    return cycles, stall, busy, periodic, e


@njit(**JIT_OPTIONS)
def fifo_cycle_stepping(cost, entry_cols, repeats, fifo_depth, width):
    """Advance the broadcaster, every FIFO and every PE one cycle at a time."""
    n_pes = cost.shape[0]
    n_cols = entry_cols.shape[0]
    n_entries = n_cols * repeats
    fifo = np.zeros((n_pes, fifo_depth), dtype=np.int64)  # ring buffers of columns
    head = np.zeros(n_pes, dtype=np.int64)
    count = np.zeros(n_pes, dtype=np.int64)  # entries held, the one in progress included
    remaining = np.zeros(n_pes, dtype=np.int64)  # cycles left on the entry in progress
    working = np.zeros(n_pes, dtype=np.bool_)
    busy = np.zeros(n_pes, dtype=np.int64)
    next_entry = 0
    last_broadcast = -1
    cycle = 0
    while True:
        if next_entry == n_entries:
            drained = True
            for p in range(n_pes):
                if count[p] > 0:
                    drained = False
                    break
            if drained:
                return cycle, last_broadcast + 1 - (n_entries + width - 1) // width, busy
        # phase 1: pop (the entry stays in its slot until done)
        for p in range(n_pes):
            if not working[p] and count[p] > 0:
                remaining[p] = cost[p, fifo[p, head[p]]]
                working[p] = True
        # phase 2: broadcast up to ``width`` entries in order
        for _ in range(width):
            if next_entry == n_entries:
                break
            col = entry_cols[next_entry % n_cols]
            room = True
            for p in range(n_pes):
                if cost[p, col] > 0 and count[p] == fifo_depth:
                    room = False
                    break
            if not room:
                break
            for p in range(n_pes):
                if cost[p, col] > 0:
                    fifo[p, (head[p] + count[p]) % fifo_depth] = col
                    count[p] += 1
            next_entry += 1
            last_broadcast = cycle
        # phase 3: compute; a finished entry leaves its FIFO
        for p in range(n_pes):
            if working[p]:
                remaining[p] -= 1
                busy[p] += 1
                if remaining[p] == 0:
                    working[p] = False
                    head[p] = (head[p] + 1) % fifo_depth
                    count[p] -= 1
        cycle += 1
