"""Slow, obvious twins of ``accel_sim.kernels.sparse_folds``.

``naive_folds`` packs folds with Python lists and sets, ``naive_sparse_gemm`` replays the
memory schedule fold by fold (as ``tests.naive.dense_folds`` does for the dense kernel), and
``naive_stepping`` runs the cycle-by-cycle rules with explicit bank queues and a dict of
which token each PE holds. ``naive_stream_gemm`` / ``naive_stream_stepping`` do the same for
output- and input-stationary skipping. Same rules, written plainly.
"""

from __future__ import annotations

import math
from collections import Counter, deque


def naive_folds(mask, rows, cols, granularity, banks, nm=None):
    """List of folds ``{"strip", "rows", "cc", "k": [K indices], "conflict"}``."""
    n, k = len(mask), len(mask[0])
    folds = []
    for c in range(math.ceil(n / cols)):
        cc = min(cols, n - c * cols)
        if nm is not None:
            nm_n, nm_m = nm
            slots = list(range(k // nm_m * nm_n))
            for s in range(0, len(slots), rows):
                part = slots[s : s + rows]
                groups = sorted({slot // nm_n for slot in part})
                ks = [i for g in groups for i in range(g * nm_m, (g + 1) * nm_m)]
                folds.append({"strip": c, "rows": len(part), "cc": cc, "k": ks, "conflict": 1})
            continue
        live = [any(mask[j][i] for j in range(c * cols, c * cols + cc)) for i in range(k)]
        packed = []
        for g0 in range(0, k, granularity):
            group = list(range(g0, min(k, g0 + granularity)))
            if any(live[i] for i in group):
                packed += group
        for s in range(0, len(packed), rows):
            part = packed[s : s + rows]
            conflict = max(Counter(i % banks for i in part).values())
            folds.append({"strip": c, "rows": len(part), "cc": cc, "k": part, "conflict": conflict})
    return folds


def naive_sparse_gemm(
    mask,
    m,
    rows,
    cols,
    granularity,
    banks,
    word,
    acc,
    cap_ifmap,
    cap_filter,
    cap_ofmap,
    double_buffered,
    dram_bpc,
    bpc,
    filter_dram_scale=1.0,
    nm=None,
):
    """Statistics of the fast engine (dict keyed like ``naive_dense_gemm``'s, plus extras)."""
    del cap_filter  # every WS weight tile is new: the filter buffer never holds reuse
    n, k = len(mask), len(mask[0])
    folds = naive_folds(mask, rows, cols, granularity, banks, nm)
    compact = sum(f["rows"] * f["cc"] for f in folds)
    weight_bytes = filter_dram_scale * k * n * word
    live_k = {i for f in folds for i in f["k"]}
    ifmap_resident = m * len(live_k) * word <= cap_ifmap
    per_strip = Counter(f["strip"] for f in folds)
    t = dict.fromkeys(
        [
            *("ifmap_sram", "filter_sram", "ofmap_sram_w", "ofmap_sram_r", "ifmap_dram"),
            *("filter_dram", "ofmap_dram_r", "ofmap_dram_w", "sram_extra", "conflict_cycles"),
        ],
        0.0,
    )
    seen: set[int] = set()
    previous = None
    done_in_strip: Counter = Counter()
    plan = []
    for f in folds:
        ks, cc, rr = f["k"], f["cc"], f["rows"]
        cycles = 2 * rows + cols - 2 + m * f["conflict"]
        ifmap_words, filter_words, out_words = m * len(ks), rr * cc, m * cc
        if ifmap_resident:
            load_i = m * len(set(ks) - seen) * word
        else:
            new = previous is None or ks != previous or ifmap_words * word > cap_ifmap
            load_i = ifmap_words * word if new else 0.0
        seen |= set(ks)
        previous = ks
        load_f = weight_bytes * filter_words / compact
        index = done_in_strip[f["strip"]]
        done_in_strip[f["strip"]] += 1
        accumulate = index > 0
        last = index == per_strip[f["strip"]] - 1
        spills = out_words * acc > cap_ofmap
        inflight = 0.0
        if spills and not last:
            inflight += out_words * acc
            t["ofmap_dram_w"] += out_words * acc
        if spills and accumulate:
            inflight += out_words * acc
            t["ofmap_dram_r"] += out_words * acc
        writeback = out_words * word if last else 0.0
        t["ofmap_dram_w"] += writeback
        t["ifmap_sram"] += ifmap_words
        t["filter_sram"] += filter_words
        t["ofmap_sram_w"] += out_words
        t["ofmap_sram_r"] += out_words if accumulate else 0
        t["ifmap_dram"] += load_i
        t["filter_dram"] += load_f
        t["conflict_cycles"] += m * (f["conflict"] - 1)
        port = max(ifmap_words * word, filter_words * word, 2 * out_words * acc) / bpc
        if not accumulate:
            port = max(ifmap_words * word, filter_words * word, out_words * acc) / bpc
        busy = max(cycles, port)
        t["sram_extra"] += busy - cycles
        plan.append({"load": load_i + load_f, "inflight": inflight, "wb": writeback, "busy": busy})
    dead = sum(
        m * min(cols, n - c * cols) * word for c in range(math.ceil(n / cols)) if per_strip[c] == 0
    )
    t["ofmap_dram_w"] += dead
    ideal = sum(2 * rows + cols - 2 + m * f["conflict"] for f in folds)
    if not plan:
        elapsed = dead / dram_bpc
    else:
        plan[-1]["wb"] += dead
        elapsed = 0.0
        if double_buffered:
            elapsed = (plan[0]["load"] + plan[-1]["wb"]) / dram_bpc
            for i, fold in enumerate(plan):
                traffic = fold["inflight"]
                traffic += plan[i + 1]["load"] if i + 1 < len(plan) else 0.0
                traffic += plan[i - 1]["wb"] if i > 0 else 0.0
                elapsed += max(fold["busy"], traffic / dram_bpc)
        else:
            for fold in plan:
                elapsed += (fold["load"] + fold["wb"]) / dram_bpc
                elapsed += max(fold["busy"], fold["inflight"] / dram_bpc)
    compute = max(ideal - 1, 0)
    stall = max(math.ceil(elapsed - (ideal if plan else 0) - 1e-9), 0)
    return {
        "compute_cycles": compute,
        "total_cycles": compute + stall,
        "folds": len(folds),
        "compacted_weights": compact,
        **t,
    }


def naive_stepping(mask, m, rows, cols, granularity, banks, nm=None):
    """(per-fold cycles, MACs) by stepping banks, issue and the PE grid cycle by cycle."""
    out, total_macs = [], 0
    for f in naive_folds(mask, rows, cols, granularity, banks, nm):
        rr, cc = f["rows"], f["cc"]
        # bank of each fold row (N:M: one port per row, so no conflicts)
        row_bank = list(range(rr)) if nm is not None else [i % banks for i in f["k"]]
        queues: dict[int, deque] = {}
        for t in range(m):
            for b in row_bank:
                queues.setdefault(b, deque()).append(t)
        arrived = Counter()
        issued_at: dict[int, int] = {}  # cycle -> token
        grid: dict[tuple[int, int], int] = {}
        issued, x, last_active, macs = 0, 0, -1, 0
        while True:
            for q in queues.values():
                if q:
                    arrived[q.popleft()] += 1
            if issued < m and arrived[issued] == rr:
                issued_at[x] = issued
                issued += 1
            new_grid = {}
            for i in range(rows):
                for j in range(cols):
                    token = issued_at.get(x - i) if j == 0 else grid.get((i, j - 1))
                    if token is not None:
                        new_grid[(i, j)] = token
                        macs += i < rr and j < cc
            grid = new_grid
            if grid:
                last_active = x
            elif issued == m:
                break
            x += 1
        out.append(rows + last_active + 1)
        total_macs += macs
    return out, total_macs


def _live(lines, granularity):
    """Live indices of a list of bool lines (any line keeps it), whole aligned groups."""
    length = len(lines[0])
    out = []
    for g0 in range(0, length, granularity):
        group = list(range(g0, min(length, g0 + granularity)))
        if any(line[i] for line in lines for i in group):
            out += group
    return out


def naive_stream_folds(mask, m, rows, cols, granularity, dataflow):
    """OS/IS folds ``{"tile", "strip", "tt", "ss", "live"}`` in the kernel's order: ``tt`` the
    tile's extent along m, ``ss`` the strip's extent, ``live`` its live indices."""
    n, k = len(mask), len(mask[0])
    if dataflow == "os":  # strips of C outputs, live K; tiles of R tokens
        width, extent, tile = cols, n, rows
        strips = [_live(mask[c * cols : (c + 1) * cols], granularity) for c in range(-(-n // cols))]
    else:  # strips of R K-rows, live N; tiles of C tokens
        width, extent, tile = rows, k, cols
        columns = [[mask[j][i] for j in range(n)] for i in range(k)]
        strips = [
            _live(columns[r * rows : (r + 1) * rows], granularity) for r in range(-(-k // rows))
        ]
    folds = []
    for t in range(-(-m // tile)):
        for s, live in enumerate(strips):
            if live:
                tt, ss = min(tile, m - t * tile), min(width, extent - s * width)
                folds.append({"tile": t, "strip": s, "tt": tt, "ss": ss, "live": live})
    return folds, strips


def naive_stream_gemm(
    mask, m, rows, cols, granularity, dataflow, word, acc, cap_ifmap, cap_filter, cap_ofmap,
    double_buffered, dram_bpc, bpc, filter_dram_scale=1.0,
):  # fmt: skip
    """Statistics of OS/IS skipping (dict keyed like ``naive_sparse_gemm``'s)."""
    n, k = len(mask), len(mask[0])
    folds, strips = naive_stream_folds(mask, m, rows, cols, granularity, dataflow)
    width, extent = (cols, n) if dataflow == "os" else (rows, k)
    compact = sum(len(live) * min(width, extent - s * width) for s, live in enumerate(strips))
    per_word = filter_dram_scale * k * n * word / compact if compact else 0.0
    overhead = rows + cols - 2 if dataflow == "os" else 2 * rows + cols - 2
    t = dict.fromkeys(
        [
            *("ifmap_sram", "filter_sram", "ofmap_sram_w", "ofmap_sram_r", "ifmap_dram"),
            *("filter_dram", "ofmap_dram_r", "ofmap_dram_w", "sram_extra", "conflict_cycles"),
        ],
        0.0,
    )
    live_strips = [s for s, live in enumerate(strips) if live]
    union_k = {i for live in strips for i in live}
    touched: dict[int, list[int]] = {}  # IS: output column -> positions of strips touching it
    for p, s in enumerate(live_strips):
        for j in strips[s]:
            touched.setdefault(j, []).append(p)
    filter_loaded: set[int] = set()
    seen_k: set[int] = set()
    plan = []
    for f, fold in enumerate(folds):
        live, s, tt, ss = fold["live"], fold["strip"], fold["tt"], fold["ss"]
        cycles = overhead + len(live)
        # filter: the strip's compacted chunk
        chunk = len(live) * ss
        resident = compact * word <= cap_filter
        changed = f == 0 or folds[f - 1]["strip"] != s
        first = s not in filter_loaded
        filter_loaded.add(s)
        fetch = first or (not resident and (changed or chunk * word > cap_filter))
        load_f = chunk * per_word if fetch else 0.0
        inflight = reads = 0.0
        if dataflow == "os":
            if f == 0 or folds[f - 1]["tile"] != fold["tile"]:
                seen_k = set()
            ifmap_words, out_words = tt * len(live), tt * ss
            if tt * len(union_k) * word <= cap_ifmap:
                load_i = tt * len(set(live) - seen_k) * word
                seen_k |= set(live)
            else:
                load_i = ifmap_words * word
            writeback = out_words * word
        else:
            ifmap_words, out_words = ss * tt, tt * len(live)
            load_i = ifmap_words * word
            p = live_strips.index(s)
            earlier = sum(1 for j in live if touched[j][0] < p)
            final = sum(1 for j in live if touched[j][-1] == p)
            reads = tt * earlier
            writeback = tt * final * word
            if tt * n * acc > cap_ofmap:
                spill = tt * (len(live) - final) * acc
                inflight = spill + reads * acc
                t["ofmap_dram_w"] += spill
                t["ofmap_dram_r"] += reads * acc
        t["ifmap_sram"] += ifmap_words
        t["filter_sram"] += chunk
        t["ofmap_sram_w"] += out_words
        t["ofmap_sram_r"] += reads
        t["ifmap_dram"] += load_i
        t["filter_dram"] += load_f
        t["ofmap_dram_w"] += writeback
        port = max(ifmap_words * word, chunk * word, (out_words + reads) * acc) / bpc
        busy = max(cycles, port)
        t["sram_extra"] += busy - cycles
        plan.append({"load": load_i + load_f, "inflight": inflight, "wb": writeback, "busy": busy})
    if dataflow == "os":
        dead = sum(m * min(cols, n - c * cols) * word for c, live in enumerate(strips) if not live)
    else:
        dead = m * (n - len(touched)) * word
    t["ofmap_dram_w"] += dead
    ideal = sum(overhead + len(fold["live"]) for fold in folds)
    if not plan:
        elapsed = dead / dram_bpc
    else:
        plan[-1]["wb"] += dead
        if double_buffered:
            elapsed = (plan[0]["load"] + plan[-1]["wb"]) / dram_bpc
            for i, fold in enumerate(plan):
                traffic = fold["inflight"]
                traffic += plan[i + 1]["load"] if i + 1 < len(plan) else 0.0
                traffic += plan[i - 1]["wb"] if i > 0 else 0.0
                elapsed += max(fold["busy"], traffic / dram_bpc)
        else:
            elapsed = 0.0
            for fold in plan:
                elapsed += (fold["load"] + fold["wb"]) / dram_bpc
                elapsed += max(fold["busy"], fold["inflight"] / dram_bpc)
    compute = max(ideal - 1, 0)
    stall = max(math.ceil(elapsed - (ideal if plan else 0) - 1e-9), 0)
    return {
        "compute_cycles": compute,
        "total_cycles": compute + stall,
        "folds": len(folds),
        "compacted_weights": compact,
        **t,
    }


def naive_stream_stepping(mask, m, rows, cols, granularity, dataflow):
    """(per-fold cycles, MACs) of OS/IS skipping, stepping the PE grid cycle by cycle.

    OS: live position s enters row i in cycle s + i (activation, moving right) and column j in
    cycle s + j (weight, moving down); a PE in the fold's rr x cc corner MACs when both its
    operands are position s; the fold lasts until every operand has left the R x C array.
    IS: R preload cycles, then live column s enters row i in cycle s + i and moves right; the
    fold lasts R + the cycles until the last column has left the array.
    """
    folds, _ = naive_stream_folds(mask, m, rows, cols, granularity, dataflow)
    out, total_macs = [], 0
    for fold in folds:
        t = len(fold["live"])
        rr, cc = (fold["tt"], fold["ss"]) if dataflow == "os" else (fold["ss"], fold["tt"])
        act: dict[tuple[int, int], int] = {}
        wgt: dict[tuple[int, int], int] = {}
        x, last_active, macs = 0, -1, 0
        while True:
            act = {
                (i, j): s
                for i in range(rows)
                for j in range(cols)
                if (s := (x - i if j == 0 else act.get((i, j - 1), -1))) in range(t)
            }
            if dataflow == "os":
                wgt = {
                    (i, j): s
                    for i in range(rows)
                    for j in range(cols)
                    if (s := (x - j if i == 0 else wgt.get((i - 1, j), -1))) in range(t)
                }
                macs += sum(
                    1 for (i, j), s in act.items() if i < rr and j < cc and wgt.get((i, j)) == s
                )
            else:
                macs += sum(1 for (i, j) in act if i < rr and j < cc)
            if act or wgt:
                last_active = x
            elif x >= t:
                break
            x += 1
        out.append(last_active + 1 + (rows if dataflow == "is" else 0))
        total_macs += macs
    return out, total_macs
