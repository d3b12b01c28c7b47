"""Benchmark: how much of a SIGMA-style design point is its schedule search, and what the
point takes with a perfect search.

Run: python benchmarks/bench_sigma_search.py [--repeats 7] [--large]
     [--out docs/results/bench_sigma_search.md]

For each tile of token rows the mapper tries, the SIGMA-style array picks the (strip width,
output block) schedule that finishes first, stalls included (``kernels.flexible.best_schedule``:
it packs and ranks candidates, and skips those its floors show to be slower). A perfect
search would only pack and schedule the winner. This script takes ``bench_sparse_point``'s
SIGMA-style point (BERT-base, random-init weights, unstructured 90 % masks, the dense
baseline included, the mapper's cache cleared), records every search's answer, then runs the
point with each search replaced by scheduling its recorded answer (``kernels.flexible.
schedule_at``: one kernel call, as the search is). Both runs must give the same result (the
script checks their frames). The two are timed in alternation (medians of ``--repeats``),
with the dense control of ``bench_sparse_point`` (the 32 x 32 weight-stationary array)
in the same window.

The perfect-search point is the least any exact pruning of the search can reach while the
mapper tries the candidates it does: the rest is reading the masks, the winners' packings
and schedules, the mapper's composition of candidates and the dense baseline.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np
import pandas as pd
import torch
from _table_file import TableFile, default_out
from bench_sparse_point import MODEL, SPARSITY, encoder_weights

from accel_sim import load_hardware, simulate
from accel_sim.kernels import flexible as kf
from accel_sim.mapping import cache
from pruning.masks import compute_masks
from workloads import attach_masks, build_workload

PRESET = "sigma-1024"
BUDGET_MS = {(1, 128): 50.0, (8, 512): 200.0}  # issue 18's per-point targets


class RecordedSearch:
    """Stands in for ``kf.best_schedule``: records each search's answer (``record``), or
    replays the recorded answers in the same order (``replay``), scheduling each with
    ``kf.schedule_at`` instead of searching."""

    def __init__(self) -> None:
        self.search = kf.best_schedule
        self.answers: list[tuple[int, int]] = []
        self.next = 0

    def record(self, store, weight, widths, blocks, m, levels, mem, plan):
        found = self.search(store, weight, widths, blocks, m, levels, mem, plan)
        self.answers.append((int(found[0]), int(found[1])))
        return found

    def replay(self, store, weight, widths, blocks, m, levels, mem, plan):
        width, block = self.answers[self.next]
        self.next += 1
        return kf.schedule_at(store, weight, width, block, m, levels, mem, plan)


def point(workload, hw, search):
    """(ms, result) of one design point with ``search`` as the schedule search."""
    kf.best_schedule = search
    try:
        cache.clear()
        started = time.perf_counter()
        result = simulate(workload, hw, baseline=True)
        return 1e3 * (time.perf_counter() - started), result
    finally:
        kf.best_schedule = RECORDED.search


RECORDED = RecordedSearch()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--large", action="store_true", help="also 512 tokens at batch 8")
    parser.add_argument("--out", type=Path, default=default_out(__file__))
    args = parser.parse_args()
    torch.set_num_threads(1)
    masks = {n: np.asarray(m) for n, m in compute_masks(encoder_weights(), "unstructured",
                                                         SPARSITY).items()}  # fmt: skip
    hw = load_hardware(PRESET)
    dense_hw = load_hardware("systolic-32x32-ws")
    out = TableFile()
    out(f"{MODEL} (random-init weights), unstructured {SPARSITY}, preset {PRESET}; a point is "
        f"the sparse run and its dense baseline, mapper cache cleared; medians of "
        f"{args.repeats}, the two searches alternated")  # fmt: skip
    out("")
    header = (f"{'tokens x batch':>15}{'searches':>10}{'dense ms':>10}{'point ms':>10}"
              f"{'perfect ms':>12}{'search ms':>11}{'budget ms':>11}")  # fmt: skip
    out(header)
    out("-" * len(header))
    for batch, seq_len in [(1, 128)] + ([(8, 512)] if args.large else []):
        plain = build_workload(MODEL, batch=batch, seq_len=seq_len)
        workload = attach_masks(plain, masks)
        RECORDED.answers.clear()
        _, searched = point(workload, hw, RECORDED.record)  # also the warm-up
        searches = len(RECORDED.answers)
        RECORDED.next = 0
        _, replayed = point(workload, hw, RECORDED.replay)
        pd.testing.assert_frame_equal(searched.to_frame(), replayed.to_frame())  # lined up
        real, perfect, dense = [], [], []
        for _ in range(args.repeats):
            real.append(point(workload, hw, RECORDED.search)[0])
            RECORDED.next = 0
            perfect.append(point(workload, hw, RECORDED.replay)[0])
            dense.append(point(plain, dense_hw, RECORDED.search)[0])
        real_ms, perfect_ms = statistics.median(real), statistics.median(perfect)
        out(f"{f'{seq_len} x {batch}':>15}{searches:>10}{statistics.median(dense):>10.1f}"
            f"{real_ms:>10.1f}{perfect_ms:>12.1f}{real_ms - perfect_ms:>11.1f}"
            f"{BUDGET_MS[(batch, seq_len)]:>11.0f}")  # fmt: skip
    out("")
    out("perfect: every (strip width, output block) search replaced by scheduling its known "
        "answer (same results, checked); search: point less perfect; dense: the "
        "systolic-32x32-ws dense point, the window's control")  # fmt: skip
    out.write(args.out)


if __name__ == "__main__":
    main()
