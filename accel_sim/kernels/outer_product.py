"""Timing of a dual-side sparse outer-product array (DSTC style): the fast engine.

The rules are stated in ``accel_sim.datapaths.outer_product.model``; in short, per output
tile (``tile_m x tile_n``) and per k, a gather stage decodes the two bitmaps and reads the
nonzero values (``g`` cycles), then a multiply/merge stage runs the outer product of the
condensed column (``a`` nonzeros, in chunks of ``rows``) and the condensed row (``b``
nonzeros, in chunks of ``cols``) and merges the ``a x b`` partial sums into the accumulation
buffer (``c`` cycles); when a tile's last k is merged, the tile drains to the ofmap buffer
(``d`` cycles). Gather and merge overlap through a two-slot buffer, the accumulation buffer
holds two tiles, and tiles go to the cores round-robin.

Two kernels: ``column_loads`` counts, per tile of one operand and per k, its nonzeros and
the largest number of them that share an accumulator bank (``dense_column_loads`` gives the
same counts of an operand without a mask from its shape); ``schedule`` evaluates the
max-plus recurrence of the three stages over every (tile, k) item, reading each item's port
and merge cycles from small tables of its counts. A cycle-stepping twin lives in
``tests/naive/outer_product.py``.
"""

from __future__ import annotations

import math

import numpy as np

from accel_sim.kernels._jit import JIT_OPTIONS, njit

# Indices of the statistics ``schedule`` returns.
CYCLES = 0
STEPS = 1  # outer-product steps issued (chunk pairs)
PAIRS = 2  # nonzero pairs multiplied
MERGE_CYCLES = 3  # sum over items of c
GATHER_CYCLES = 4  # sum over items of g
VALUES_A = 5  # activation values read from the ifmap buffer
VALUES_B = 6  # weight values read from the filter buffer
BITMAP_BITS = 7  # bitmap bits decoded
DRAIN_CYCLES = 8
BANK_LIMITED = 9  # items whose merge time the bank conflicts set
N_STATS = 10

# Largest (a, b) table of merge cycles ``schedule`` fills (entries; 512 KiB a table).
MERGE_TABLE_ENTRIES = 1 << 16


@njit(**JIT_OPTIONS)
def column_loads(mask, tile, banks):
    """Per tile of ``tile`` rows and per k: (nonzeros, most nonzeros in one bank).

    ``mask`` is the operand's keep-mask, ``[R, K]`` bool, C-contiguous; row ``i`` of a tile
    (local index) sits in bank ``i % banks``. Each row is added to its bank's counts of every
    k (read as bytes into 32-bit counts, so it vectorises); a bank's count only grows, so its
    peak is its count at the end of the tile, and the tile's nonzeros the banks' sum. With a
    bank per row (``banks >= tile``, the default) the peak is 1 where any row keeps k.
    Returns two int64 ``[ceil(R / tile), K]`` arrays.
    """
    n_rows, n_k = mask.shape
    n_tiles = (n_rows + tile - 1) // tile
    nnz = np.zeros((n_tiles, n_k), dtype=np.int64)
    most = np.zeros((n_tiles, n_k), dtype=np.int64)
    bits = mask.view(np.uint8)
    if banks >= tile:  # a bank per row (the default): the peak is whether any row keeps k
        total = np.zeros(n_k, dtype=np.int32)
        kept = np.zeros(n_k, dtype=np.uint8)
        for t in range(n_tiles):
            total[:] = 0
            kept[:] = 0
            for i in range(t * tile, min(t * tile + tile, n_rows)):
                row = bits[i]
                for k in range(n_k):
                    total[k] += row[k]
                    kept[k] |= row[k]
            nnz[t, :] = total
            most[t, :] = kept
        return nnz, most
    count = np.zeros((banks, n_k), dtype=np.int32)
    for t in range(n_tiles):
        start = t * tile
        stop = min(start + tile, n_rows)
        count[:] = 0
        for i in range(start, stop):
            row, in_bank = bits[i], count[(i - start) % banks]
            for k in range(n_k):
                in_bank[k] += row[k]
        total, peak = nnz[t], most[t]
        for b in range(min(banks, stop - start)):
            in_bank = count[b]
            for k in range(n_k):
                total[k] += in_bank[k]
                peak[k] = max(peak[k], in_bank[k])
    return nnz, most


def dense_column_loads(n_rows, n_k, tile, banks):
    """``column_loads`` of an all-ones ``[n_rows, n_k]`` mask without reading one: every k
    of a tile has its ``rows`` nonzeros, ``ceil(rows / banks)`` of them in the busiest bank."""
    n_tiles = (n_rows + tile - 1) // tile
    rows = np.minimum(tile, n_rows - tile * np.arange(n_tiles, dtype=np.int64))
    nnz = np.repeat(rows[:, None], n_k, axis=1)
    most = np.repeat(-(-rows // banks)[:, None], n_k, axis=1)
    return nnz, most


@njit(**JIT_OPTIONS)
def _cdiv(a, b):
    return (a + b - 1) // b


@njit(**JIT_OPTIONS)
def _merge_cycles(a, b, rows, cols, width):
    """Cycles the merge stage's width allows for an ``a x b`` outer product in chunk steps:
    every step of ``p`` partial sums takes ``ceil(p / width)`` cycles (at least one)."""
    ca = _cdiv(a, rows)
    cb = _cdiv(b, cols)
    last_a = a - (ca - 1) * rows
    last_b = b - (cb - 1) * cols
    return (
        (ca - 1) * (cb - 1) * _cdiv(rows * cols, width)
        + (ca - 1) * _cdiv(rows * last_b, width)
        + (cb - 1) * _cdiv(last_a * cols, width)
        + _cdiv(last_a * last_b, width)
    )


@njit(**JIT_OPTIONS)
def _port_cycles(n_bytes, bytes_per_cycle):
    return math.ceil(n_bytes / bytes_per_cycle)


@njit(**JIT_OPTIONS)
def _gather_table(nnz_max, tile_rows, word_bytes, bpc, bitmaps):
    """Port cycles of reading ``v`` values (``v`` in ``[0, nnz_max]``) and the bitmap of a
    tile of ``tile_rows`` rows: ``ceil((v * word_bytes + bitmap bytes) / bpc)``."""
    bitmap_bytes = _cdiv(tile_rows, 8) if bitmaps else 0
    table = np.empty(nnz_max + 1, dtype=np.int64)
    for v in range(nnz_max + 1):
        table[v] = _port_cycles(v * word_bytes + bitmap_bytes, bpc)
    return table


@njit(**JIT_OPTIONS)
def _lcm(a, b):
    x, y = a, b
    while y:
        x, y = y, x % y
    return a // x * b


@njit(**JIT_OPTIONS)
def _alike_rows(nnz, most, m, tile):
    """How many leading activation tiles (rows of ``column_loads``) equal the first: the same
    counts for every k and the same number of token rows (so the same port tables)."""
    n_rows, n_k = nnz.shape
    alike = 1 if n_rows else 0
    while alike < n_rows:
        if min(tile, m - alike * tile) != min(tile, m):
            break
        same = True
        for k in range(n_k):
            if nnz[alike, k] != nnz[0, k] or most[alike, k] != most[0, k]:
                same = False
                break
        if not same:
            break
        alike += 1
    return alike


@njit(**JIT_OPTIONS)
def _total(i, steps, pairs, merge, gather, values_a, values_b, bitmap_bits, drain, banked):
    """Statistic ``i`` of the running totals (``schedule``'s locals, by index)."""
    values = (0, steps, pairs, merge, gather, values_a, values_b, bitmap_bits, drain, banked)
    return values[i]


@njit(**JIT_OPTIONS)
def schedule(
    nnz_a,
    most_a,
    nnz_b,
    most_b,
    m,
    n,
    tile_m,
    tile_n,
    rows,
    cols,
    merge_width,
    gather_bits,
    bitmaps,
    word_bytes,
    ifmap_bpc,
    filter_bpc,
    ofmap_bpc,
    cores,
):
    """Statistics (``N_STATS`` int64, indices above) of one GEMM instance.

    ``nnz_a``/``most_a`` are ``column_loads`` of the activations (``[ceil(m / tile_m), K]``),
    ``nnz_b``/``most_b`` of the weights (``[ceil(n / tile_n), K]``). ``bitmaps``: operands are
    bitmap-coded (their bitmaps are read and decoded); otherwise ``gather_bits`` is unused.

    An item's counts take few values (at most ``tile_m + 1`` and ``tile_n + 1``), so its port
    cycles come from per-tile-edge tables and its merge cycles and steps from an ``(a, b)``
    table filled on first use; the divisions are done once per value, not once per item.

    Rows of activation tiles alike (every row of a dense operand; ``_alike_rows``) make a
    core's items repeat every ``lcm(tiles along n, cores)`` tiles. The recurrence is max-plus
    and shift invariant, so once a core ends such a period in the state (times relative to
    its last merge, each clamped where a smaller value can no longer matter) it ended the
    previous one in, every later period within the alike rows repeats it shifted by the same
    number of cycles and adds the same statistics: they are added in one step, exactly.
    """
    tiles_m = nnz_a.shape[0]
    tiles_n = nnz_b.shape[0]
    n_k = nnz_a.shape[1]
    n_tiles = tiles_m * tiles_n
    a_max = nnz_a.max() if nnz_a.size else 0
    b_max = nnz_b.max() if nnz_b.size else 0
    # Port cycles by count of values read, for a full tile and for the edge tile's rows.
    gather_a_full = _gather_table(a_max, tile_m, word_bytes, ifmap_bpc, bitmaps)
    gather_b_full = _gather_table(b_max, tile_n, word_bytes, filter_bpc, bitmaps)
    edge_m = m - (tiles_m - 1) * tile_m
    edge_n = n - (tiles_n - 1) * tile_n
    gather_a_edge = _gather_table(a_max, edge_m, word_bytes, ifmap_bpc, bitmaps)
    gather_b_edge = _gather_table(b_max, edge_n, word_bytes, filter_bpc, bitmaps)
    # (a, b) table of merge cycles and steps, where it is small (huge tiles: per item)
    tabled = (a_max + 1) * (b_max + 1) <= MERGE_TABLE_ENTRIES
    table_a, table_b = (a_max + 1, b_max + 1) if tabled else (1, 1)
    merge_table = np.full((table_a, table_b), -1, dtype=np.int64)
    steps_table = np.zeros((table_a, table_b), dtype=np.int64)
    steps = 0
    pairs_total = 0
    merge_total = 0
    gather_total = 0
    values_a = 0
    values_b = 0
    bitmap_bits = 0
    drain_total = 0
    bank_limited = 0
    end = 0
    alike_tiles = _alike_rows(nnz_a, most_a, m, tile_m) * tiles_n  # tiles [0, this) alike
    period = _lcm(tiles_n, cores) // cores  # a core's tiles between repeats of its items
    totals = np.zeros(N_STATS, dtype=np.int64)
    for core in range(cores):
        gather_done = 0  # when the gather stage finished its last item
        merge_done = 0  # when the merge stage finished its last item
        merge_done_before = 0  # ... and the item before it (frees a gather slot)
        drain_done = 0  # when the last tile drained
        drain_done_before = 0  # ... and the tile before it (frees an accumulation buffer)
        seen = -1  # the last period boundary's merge time (-1: none yet)
        seen_gather = seen_drain = seen_drain_before = 0  # its state, relative to that
        done = 0  # this core's tiles so far
        t = core
        while t < n_tiles:
            if done > 0 and done % period == 0 and t - cores < alike_tiles:
                # a period boundary after a period of alike tiles: the state (relative to the
                # last merge; gather by its slot's free time; drains by the last merge,
                # before which they cannot hold anything back)
                rel_gather = max(gather_done, merge_done_before) - merge_done
                rel_drain = max(drain_done, merge_done) - merge_done
                rel_drain_before = max(drain_done_before, merge_done) - merge_done
                if (seen >= 0 and rel_gather == seen_gather and rel_drain == seen_drain
                        and rel_drain_before == seen_drain_before):  # fmt: skip
                    # whole periods left whose tiles all lie within the alike rows
                    left = ((alike_tiles - 1 - t) // cores + 1) // period
                    if left > 0:
                        shift = (merge_done - seen) * left
                        for i in range(N_STATS):
                            totals[i] = (
                                _total(i, steps, pairs_total, merge_total, gather_total,
                                       values_a, values_b, bitmap_bits, drain_total,
                                       bank_limited) - totals[i]
                            ) * left  # fmt: skip
                        steps += totals[STEPS]
                        pairs_total += totals[PAIRS]
                        merge_total += totals[MERGE_CYCLES]
                        gather_total += totals[GATHER_CYCLES]
                        values_a += totals[VALUES_A]
                        values_b += totals[VALUES_B]
                        bitmap_bits += totals[BITMAP_BITS]
                        drain_total += totals[DRAIN_CYCLES]
                        bank_limited += totals[BANK_LIMITED]
                        merge_done += shift
                        gather_done = merge_done_before = merge_done + rel_gather
                        drain_done = merge_done + rel_drain
                        drain_done_before = merge_done + rel_drain_before
                        t += left * period * cores
                        done += left * period
                        seen = -1
                        continue
                seen = merge_done
                seen_gather, seen_drain, seen_drain_before = rel_gather, rel_drain, rel_drain_before
                for i in range(N_STATS):
                    totals[i] = _total(i, steps, pairs_total, merge_total, gather_total,
                                       values_a, values_b, bitmap_bits, drain_total,
                                       bank_limited)  # fmt: skip
            mt = t // tiles_n
            nt = t % tiles_n
            tm = min(tile_m, m - mt * tile_m)
            tn = min(tile_n, n - nt * tile_n)
            gather_a = gather_a_edge if mt == tiles_m - 1 else gather_a_full
            gather_b = gather_b_edge if nt == tiles_n - 1 else gather_b_full
            bits = tm + tn if bitmaps else 0
            gather_floor = max(1, _cdiv(bits, gather_bits)) if bitmaps else 1
            row_a = nnz_a[mt]
            row_b = nnz_b[nt]
            most_row_a = most_a[mt]
            most_row_b = most_b[nt]
            for k in range(n_k):
                a = row_a[k]
                b = row_b[k]
                merge = 0
                if a > 0 and b > 0:
                    if tabled:
                        width_cycles = merge_table[a, b]
                        if width_cycles < 0:
                            width_cycles = _merge_cycles(a, b, rows, cols, merge_width)
                            merge_table[a, b] = width_cycles
                            steps_table[a, b] = _cdiv(a, rows) * _cdiv(b, cols)
                        steps += steps_table[a, b]
                    else:
                        width_cycles = _merge_cycles(a, b, rows, cols, merge_width)
                        steps += _cdiv(a, rows) * _cdiv(b, cols)
                    bank_cycles = most_row_a[k] * most_row_b[k]
                    merge = max(width_cycles, bank_cycles)
                    if bank_cycles > width_cycles:
                        bank_limited += 1
                    pairs_total += a * b
                    values_a += a
                    values_b += b
                    gather = max(gather_floor, max(gather_a[a], gather_b[b]))
                else:
                    gather = max(gather_floor, max(gather_a[0], gather_b[0]))
                gather_total += gather
                merge_total += merge
                # gather: after its previous item, into a slot the merge of item-2 freed
                gather_done = max(gather_done, merge_done_before) + gather
                start = max(gather_done, merge_done)
                if k == 0:  # a new tile needs a free accumulation buffer
                    start = max(start, drain_done_before)
                merge_done_before = merge_done
                merge_done = start + merge
            bitmap_bits += bits * n_k
            out_bytes = tm * tn * word_bytes + (_cdiv(tm * tn, 8) if bitmaps else 0)
            drain = max(1, _port_cycles(out_bytes, ofmap_bpc))
            drain_total += drain
            drain_done_before = drain_done
            drain_done = max(merge_done, drain_done) + drain
            t += cores
            done += 1
        end = max(end, drain_done)
    stats = np.zeros(N_STATS, dtype=np.int64)
    stats[CYCLES] = end
    stats[STEPS] = steps
    stats[PAIRS] = pairs_total
    stats[MERGE_CYCLES] = merge_total
    stats[GATHER_CYCLES] = gather_total
    stats[VALUES_A] = values_a
    stats[VALUES_B] = values_b
    stats[BITMAP_BITS] = bitmap_bits
    stats[DRAIN_CYCLES] = drain_total
    stats[BANK_LIMITED] = bank_limited
    return stats
