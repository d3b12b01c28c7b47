"""Slow, obvious twin of ``accel_sim.kernels.dense_folds.dense_gemm_folds``.

Builds the fold schedule as a Python list, tracks which operand chunks are resident with
sets, and replays the double-buffered pipeline fold by fold. Same rules, written plainly.
"""

from __future__ import annotations

import math


def naive_dense_gemm(
    dataflow,
    rows,
    cols,
    m,
    k,
    n,
    word,
    acc,
    cap_ifmap,
    cap_filter,
    cap_ofmap,
    double_buffered,
    dram_bpc,
    bpc_ifmap,
    bpc_filter,
    bpc_ofmap,
    filter_dram_scale=1.0,
):
    geometry = {
        "ws": (k, n, m, 2 * rows + cols - 2),
        "os": (m, n, k, rows + cols - 2),
        "is": (k, m, n, 2 * rows + cols - 2),
    }
    spatial_rows, spatial_cols, temporal, overhead = geometry[dataflow]
    row_folds = math.ceil(spatial_rows / rows)
    col_folds = math.ceil(spatial_cols / cols)
    if dataflow == "os":
        schedule = [(r, c) for r in range(row_folds) for c in range(col_folds)]
    else:
        schedule = [(r, c) for c in range(col_folds) for r in range(row_folds)]

    whole_ifmap_resident = m * k * word <= cap_ifmap
    whole_filter_resident = k * n * word <= cap_filter
    seen: dict[str, set] = {"ifmap": set(), "filter": set()}
    previous: dict[str, object] = {"ifmap": None, "filter": None}
    totals = dict.fromkeys(
        [
            "ifmap_sram",
            "filter_sram",
            "ofmap_sram_w",
            "ofmap_sram_r",
            "ifmap_dram",
            "filter_dram",
            "ofmap_dram_r",
            "ofmap_dram_w",
            "sram_extra",
        ],
        0.0,
    )
    folds = []

    def fetch(operand, chunk, nbytes, resident, capacity):
        """DRAM bytes to bring ``chunk`` in: once if the operand stays resident, else on
        change, or always when the chunk alone overflows its buffer."""
        if resident:
            new = chunk not in seen[operand]
        else:
            new = chunk != previous[operand] or nbytes > capacity
        seen[operand].add(chunk)
        previous[operand] = chunk
        return nbytes if new else 0.0

    for r, c in schedule:
        rr = min(rows, spatial_rows - r * rows)
        cc = min(cols, spatial_cols - c * cols)
        if dataflow == "ws":
            ifmap_words, filter_words, out_words = m * rr, rr * cc, m * cc
            load_f = filter_words * word  # every weight tile is new
            load_i = fetch("ifmap", r, ifmap_words * word, whole_ifmap_resident, cap_ifmap)
        elif dataflow == "is":
            ifmap_words, filter_words, out_words = rr * cc, rr * n, cc * n
            load_i = ifmap_words * word
            load_f = fetch("filter", r, filter_words * word, whole_filter_resident, cap_filter)
        else:
            ifmap_words, filter_words, out_words = rr * k, k * cc, rr * cc
            load_i = fetch("ifmap", r, ifmap_words * word, False, cap_ifmap)
            load_f = fetch("filter", c, filter_words * word, whole_filter_resident, cap_filter)
        load_f *= filter_dram_scale  # weights travel compressed
        accumulate = dataflow != "os" and r > 0
        last = dataflow == "os" or r == row_folds - 1
        spills = dataflow != "os" and out_words * acc > cap_ofmap
        inflight = 0.0
        if spills and not last:
            inflight += out_words * acc
            totals["ofmap_dram_w"] += out_words * acc
        if spills and accumulate:
            inflight += out_words * acc
            totals["ofmap_dram_r"] += out_words * acc
        writeback = out_words * word if last else 0.0
        totals["ofmap_dram_w"] += writeback
        totals["ifmap_sram"] += ifmap_words
        totals["filter_sram"] += filter_words
        totals["ofmap_sram_w"] += out_words
        totals["ofmap_sram_r"] += out_words if accumulate else 0
        totals["ifmap_dram"] += load_i
        totals["filter_dram"] += load_f
        port_cycles = max(
            ifmap_words * word / bpc_ifmap,
            filter_words * word / bpc_filter,
            (out_words + (out_words if accumulate else 0)) * acc / bpc_ofmap,
        )
        busy = max(overhead + temporal, port_cycles)
        totals["sram_extra"] += busy - (overhead + temporal)
        folds.append(
            {"load": load_i + load_f, "inflight": inflight, "writeback": writeback, "busy": busy}
        )

    elapsed = 0.0
    if double_buffered:
        elapsed = folds[0]["load"] / dram_bpc + folds[-1]["writeback"] / dram_bpc
        for i, fold in enumerate(folds):
            traffic = fold["inflight"]
            traffic += folds[i + 1]["load"] if i + 1 < len(folds) else 0.0
            traffic += folds[i - 1]["writeback"] if i > 0 else 0.0
            elapsed += max(fold["busy"], traffic / dram_bpc)
    else:
        for fold in folds:
            elapsed += (fold["load"] + fold["writeback"]) / dram_bpc
            elapsed += max(fold["busy"], fold["inflight"] / dram_bpc)
    ideal = len(folds) * (overhead + temporal)
    compute = ideal - 1
    stall = max(math.ceil(elapsed - ideal - 1e-9), 0)
    return {
        "compute_cycles": compute,
        "total_cycles": compute + stall,
        "folds": len(folds),
        **totals,
    }
