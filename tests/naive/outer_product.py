"""Slow, obvious twin of ``accel_sim.kernels.outer_product``: the outer-product array stepped
one cycle at a time.

Per (tile, k) item it lists the nonzero rows and columns, cuts them into chunks, counts every
partial sum into its accumulator bank, and lets the gather unit and the ports move bits and
bytes a cycle at a time; then it advances the gather, multiply/merge and drain stages cycle
by cycle, each starting work when the rules of ``accel_sim.datapaths.outer_product.model``
let it (a two-slot buffer between gather and merge, two accumulation buffers).
"""

from __future__ import annotations

from collections import Counter


def _cycles_to_move(amounts, per_cycle):
    """Cycles until every amount is moved, each at its own rate per cycle (at least 1)."""
    left = list(amounts)
    cycles = 0
    while cycles == 0 or any(x > 0 for x in left):
        left = [x - rate for x, rate in zip(left, per_cycle, strict=True)]
        cycles += 1
    return cycles


def _item(x, w, rows_a, rows_b, k, g):
    """(gather cycles, merge cycles, stats) of one (tile, k) item."""
    nz_a = [i for i in rows_a if x[i][k]]
    nz_b = [j for j in rows_b if w[j][k]]
    chunks_a = [nz_a[s : s + g.rows] for s in range(0, len(nz_a), g.rows)]
    chunks_b = [nz_b[s : s + g.cols] for s in range(0, len(nz_b), g.cols)]
    width_cycles = 0
    banks = Counter()
    for chunk_a in chunks_a:
        for chunk_b in chunks_b:
            products = len(chunk_a) * len(chunk_b)
            width_cycles += _cycles_to_move([products], [g.merge_width])
            for i in chunk_a:
                for j in chunk_b:
                    local = (i - rows_a[0], j - rows_b[0])
                    banks[(local[0] % g.bank_rows, local[1] % g.bank_cols)] += 1
    pairs = len(nz_a) * len(nz_b)
    merge = max(width_cycles, max(banks.values())) if pairs else 0
    bank_limited = pairs > 0 and max(banks.values()) > width_cycles
    word = g.word_bytes
    bitmap_a = -(-len(rows_a) // 8) if g.bitmaps else 0
    bitmap_b = -(-len(rows_b) // 8) if g.bitmaps else 0
    values_a = len(nz_a) if pairs else 0
    values_b = len(nz_b) if pairs else 0
    bits = len(rows_a) + len(rows_b) if g.bitmaps else 0
    gather = _cycles_to_move(
        [bits, values_a * word + bitmap_a, values_b * word + bitmap_b],
        [g.gather_bits if g.bitmaps else 1, g.ifmap_bytes_per_cycle, g.filter_bytes_per_cycle],
    )
    stats = {
        "steps": len(chunks_a) * len(chunks_b) if pairs else 0,
        "pairs": pairs,
        "values_a": values_a,
        "values_b": values_b,
        "bitmap_bits": bits,
        "bank_limited": int(bank_limited),
    }
    return gather, merge, stats


def _run_core(items, drains, last_k):
    """Cycle-step one core: ``items`` [(local tile, k, gather, merge)], ``drains`` per local
    tile, ``last_k`` the k of a tile's last item. Returns the cycle its last drain ends."""
    n_items, n_tiles = len(items), len(drains)
    next_gather = next_merge = next_drain = 0
    gathering = merging = draining = None  # (index, cycles left)
    gathered = set()
    merged_items = 0
    tiles_merged = 0
    drained = 0
    cycle = 0
    while drained < n_tiles:
        changed = True
        while changed:  # everything that happens at this cycle boundary
            changed = False
            if gathering is not None and gathering[1] == 0:
                gathered.add(gathering[0])
                gathering = None
                changed = True
            if merging is not None and merging[1] == 0:
                index = merging[0]
                merging = None
                merged_items = index + 1
                if items[index][1] == last_k:
                    tiles_merged += 1
                changed = True
            if draining is not None and draining[1] == 0:
                draining = None
                drained += 1
                changed = True
            in_flight = next_gather - merged_items  # items holding a slot
            if gathering is None and next_gather < n_items and in_flight < 2:
                gathering = (next_gather, items[next_gather][2])
                next_gather += 1
                changed = True
            if merging is None and next_merge < n_items and next_merge in gathered:
                tile, k = items[next_merge][0], items[next_merge][1]
                if k > 0 or tile < 2 or drained >= tile - 1:
                    merging = (next_merge, items[next_merge][3])
                    next_merge += 1
                    changed = True
            if draining is None and next_drain < tiles_merged:
                draining = (next_drain, drains[next_drain])
                next_drain += 1
                changed = True
        if drained == n_tiles:
            break
        if gathering is not None:  # one cycle of work in every busy stage
            gathering = (gathering[0], gathering[1] - 1)
        if merging is not None:
            merging = (merging[0], merging[1] - 1)
        if draining is not None:
            draining = (draining[0], draining[1] - 1)
        cycle += 1
    return cycle


def naive_outer_product(x, w, m, n, k, g):
    """Statistics of ``accel_sim.kernels.outer_product.schedule`` as a dict, from masks
    ``x`` [m][k] and ``w`` [n][k] (nested lists or arrays of bools) and a geometry ``g``
    (``OuterProductGeometry``); with ``g.bitmaps`` False every pair is computed."""
    if not g.bitmaps:
        x = [[True] * k for _ in range(m)]
        w = [[True] * k for _ in range(n)]
    tiles_m = -(-m // g.tile_m)
    tiles_n = -(-n // g.tile_n)
    tiles = [(mt, nt) for mt in range(tiles_m) for nt in range(tiles_n)]
    totals = Counter()
    end = 0
    for core in range(g.cores):
        items, drains = [], []
        for local, t in enumerate(range(core, len(tiles), g.cores)):
            mt, nt = tiles[t]
            rows_a = list(range(mt * g.tile_m, min(m, (mt + 1) * g.tile_m)))
            rows_b = list(range(nt * g.tile_n, min(n, (nt + 1) * g.tile_n)))
            for kk in range(k):
                gather, merge, stats = _item(x, w, rows_a, rows_b, kk, g)
                items.append((local, kk, gather, merge))
                totals.update(stats)
                totals["gather_cycles"] += gather
                totals["merge_cycles"] += merge
            out_bytes = len(rows_a) * len(rows_b) * g.word_bytes
            if g.bitmaps:
                out_bytes += -(-(len(rows_a) * len(rows_b)) // 8)
            drain = _cycles_to_move([out_bytes], [g.ofmap_bytes_per_cycle])
            drains.append(drain)
            totals["drain_cycles"] += drain
        if drains:
            end = max(end, _run_core(items, drains, k - 1))
    return {"cycles": end, **{key: totals[key] for key in (
        "steps", "pairs", "merge_cycles", "gather_cycles", "values_a", "values_b",
        "bitmap_bits", "drain_cycles", "bank_limited")}}  # fmt: skip
