"""Benchmark: wall time of one sparse BERT-base design point per datapath and pattern, of its
mask computation, and both against the mask-scan floor measured in the same run.

Run: python benchmarks/bench_sparse_point.py [--repeats 3] [--cases all|NAME,...]
     [--large] [--out docs/results/bench_sparse_point.md]

A design point is what a sweep evaluates: ``simulate(workload, hw, baseline=True)`` of
BERT-base (random-init weights, magnitude masks on the 72 encoder matrices) with its dense
baseline, the mapper's cache cleared first (a sweep's points rarely share a mask). Times are
medians of ``--repeats`` after one warm-up (kernels compiled or loaded from Numba's cache).
The mask-scan floor is one ``numpy.count_nonzero`` pass over the 85M mask entries: a
simulator that reads every mask bit once can be no faster. ``--large`` adds 512 tokens at
batch 8 (target: 200 ms a point). The cold start (a fresh process's first point, with and
without Numba's on-disk cache) closes the table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np
import torch
from _table_file import TableFile, default_out

from accel_sim import load_hardware, simulate
from accel_sim.mapping import cache
from accel_sim.spec import derive
from pruning.masks import compute_masks
from safeio.limits import SizeLimitError
from workloads import attach_masks, build_workload

MODEL = "bert-base-uncased"
SPARSITY = 0.9
# (case name, preset, spec overrides, pattern)
CASES = (
    ("dense", "systolic-32x32-ws", {}, None),
    ("gating", "systolic-32x32-ws-gating", {}, "unstructured"),
    ("skipping block 16x16", "systolic-32x32-ws-skip", {}, "block:16x16"),
    ("skipping unstructured", "systolic-32x32-ws-skip", {}, "unstructured"),
    ("N:M 2:4 (WS)", "systolic-32x32-ws-nm", {}, "nm:2:4"),
    ("N:M 2:4 (OS)", "systolic-32x32-os",
     {"sparse.zero_handling": "nm", "sparse.weight_format": "nm", "sparse.nm": [2, 4]}, "nm:2:4"),
    ("EIE 64 PEs", "eie-64pe", {}, "unstructured"),
    ("EIE 1024 PEs width 16", "eie-64pe",
     {"pe_array.rows": 32, "pe_array.cols": 32, "fifo_array.broadcast_width": 16,
      "fifo_array.filter_empty_columns": True}, "unstructured"),
    ("dual-side outer product", "dual-side-32x32", {}, "unstructured"),
    ("SIGMA-style flexible", "sigma-1024", {}, "unstructured"),
    ("crossbar tiles", "isaac-crossbar", {}, "crossbar:128x128"),
)  # fmt: skip


def encoder_weights(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights of BERT-base's 72 encoder matrices, by HF parameter name."""
    workload = build_workload(MODEL, batch=1, seq_len=8)
    generator = torch.Generator().manual_seed(seed)
    return {
        op.weight_name: torch.randn(op.n, op.k, generator=generator)
        for op in workload.gemms
        if op.weight_name and op.role.value not in ("pooler", "classifier")
    }


def median_ms(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(1e3 * (time.perf_counter() - started))
    return statistics.median(times)


def mask_scan_ms(masks: dict[str, np.ndarray], repeats: int) -> float:
    return median_ms(lambda: sum(int(np.count_nonzero(m)) for m in masks.values()), repeats)


def point_ms(workload, hw, repeats: int) -> float:
    def run() -> None:
        cache.clear()
        simulate(workload, hw, baseline=True)

    run()  # warm-up: kernels compiled or loaded
    return median_ms(run, repeats)


COLD = """
import time
started = time.perf_counter()
from accel_sim import load_hardware, simulate
from workloads import build_workload
simulate(build_workload("bert-base-uncased", batch=1, seq_len=128),
         load_hardware("systolic-32x32-ws-skip"), baseline=True)
print(f"{1e3 * (time.perf_counter() - started):.0f}")
"""


def cold_start_ms() -> tuple[float, float]:
    """(first point of a process with an empty Numba cache, the same with it filled): both
    include importing the package."""
    with tempfile.TemporaryDirectory() as cache_dir:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
        runs = []
        for _ in range(2):
            done = subprocess.run(
                [sys.executable, "-c", COLD], env=env, check=True, capture_output=True, text=True
            )
            runs.append(float(done.stdout.strip()))
    return runs[0], runs[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cases", default="all", help="comma-separated case names, or all")
    parser.add_argument("--large", action="store_true", help="also 512 tokens at batch 8")
    parser.add_argument("--out", type=Path, default=default_out(__file__))
    args = parser.parse_args()
    torch.set_num_threads(1)
    wanted = None if args.cases == "all" else set(args.cases.split(","))
    shapes = [(1, 128)] + ([(8, 512)] if args.large else [])
    out = TableFile()
    out(f"{MODEL} (random-init weights), sparsity {SPARSITY} (N:M: its own), design point = "
        "sparse run + dense baseline, mapper cache cleared; medians of "
        f"{args.repeats}")  # fmt: skip
    weights = encoder_weights()
    floor_masks = {n: np.asarray(m) for n, m in compute_masks(weights, "unstructured",
                                                               SPARSITY).items()}  # fmt: skip
    floor_ms = mask_scan_ms(floor_masks, max(args.repeats, 5))
    entries = sum(m.size for m in floor_masks.values())
    out(f"mask-scan floor: {floor_ms:.1f} ms (count_nonzero over {entries / 1e6:.0f}M entries)")
    out("")
    header = (f"{'case':<26}{'pattern':<18}{'tokens x batch':>15}{'mask ms':>9}"
              f"{'point ms':>10}{'/ floor':>9}{'speedup':>9}")  # fmt: skip
    out(header)
    out("-" * len(header))
    for name, preset, overrides, pattern in CASES:
        if wanted is not None and name not in wanted:
            continue
        hw = derive(load_hardware(preset), overrides) if overrides else load_hardware(preset)
        masks, mask_ms = None, 0.0
        if pattern is not None:
            sparsity = None if pattern.startswith("nm:") else SPARSITY
            compute_masks(weights, pattern, sparsity)  # warm-up
            mask_ms = median_ms(lambda p=pattern, s=sparsity: compute_masks(weights, p, s),
                                args.repeats)  # fmt: skip
            masks = {n: np.asarray(m) for n, m in compute_masks(weights, pattern,
                                                                 sparsity).items()}  # fmt: skip
        for batch, seq_len in shapes:
            workload = build_workload(MODEL, batch=batch, seq_len=seq_len)
            if masks is not None:
                workload = attach_masks(workload, masks)
            try:
                ms = point_ms(workload, hw, args.repeats)
            except SizeLimitError as refused:  # the simulator's bound on kernel work
                out(f"{name:<26}{pattern or '-':<18}{f'{seq_len} x {batch}':>15}"
                    f"{mask_ms:>9.0f}   refused: {str(refused).split(':')[0]}")  # fmt: skip
                continue
            speedup = simulate(workload, hw, baseline=True).speedup
            shown = "-" if speedup is None else f"{speedup:.2f}x"
            out(f"{name:<26}{pattern or '-':<18}{f'{seq_len} x {batch}':>15}"
                f"{mask_ms:>9.0f}{ms:>10.1f}{ms / floor_ms:>9.1f}{shown:>9}")  # fmt: skip
    cold, warm = cold_start_ms()
    out("")
    out(f"cold start (new process: import, build BERT-base, one skipping point with baseline): "
        f"{cold:,.0f} ms with an empty Numba cache, {warm:,.0f} ms with it filled")  # fmt: skip
    out.write(args.out)


if __name__ == "__main__":
    main()
