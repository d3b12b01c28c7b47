"""Benchmark: design points per second of a sweep over BERT-base hardware design points.

Each point is a full BERT-base forward (L=128, B=1) on the dense systolic template, over a
grid of PE array rows x cols x dataflow x ifmap/filter SRAM size x DRAM bandwidth (1,000
points by default; fewer are taken evenly spaced from the same grid). Every backend writes
into a fresh result store, so nothing is skipped, and every point is stored (fsync'd) by
the parent as it arrives, as in a real sweep.

Run: python benchmarks/bench_sweep.py [--points N] [--jobs N] [--workers N]
     [--out docs/results/bench_sweep.md]
Prints points/s in-process, with joblib/loky (--jobs) and on a Dask LocalCluster
(--workers): cold (worker start-up included) and warm (workers already up and warmed), and
writes the same lines to ``--out`` (included by docs/speed.md).
"""

from __future__ import annotations

import argparse
import functools
import itertools
import os
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from _table_file import TableFile, default_out

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

ROWS = (8, 16, 32, 64, 128)
COLS = (8, 16, 32, 64, 128)
DATAFLOWS = ("ws", "os")
SRAM_KIB = (32, 64, 128, 256, 512)
DRAM_GB_S = (8, 16, 32, 64)
BASE_HARDWARE = "systolic-32x32-ws"


def grid(n_points: int) -> list[dict[str, Any]]:
    """``n_points`` design points spread evenly over the full 1,000-point grid."""
    full = [
        {
            "model": "bert-base-uncased",
            "batch": 1,
            "seq_len": 128,
            "hardware": BASE_HARDWARE,
            "pe_array": {"rows": rows, "cols": cols, "dataflow": dataflow},
            "sram_bytes": kib * 1024,
            "dram_bytes_per_s": gb_s * 1e9,
        }
        for rows, cols, dataflow, kib, gb_s in itertools.product(
            ROWS, COLS, DATAFLOWS, SRAM_KIB, DRAM_GB_S
        )
    ]
    if not 1 <= n_points <= len(full):
        raise SystemExit(f"--points must be between 1 and {len(full)}, got {n_points}")
    step = len(full) / n_points
    return [full[int(i * step)] for i in range(n_points)]


@functools.lru_cache(maxsize=4)
def _workload(model: str, batch: int, seq_len: int) -> Any:
    from workloads import build_workload

    return build_workload(model, batch=batch, seq_len=seq_len)


def evaluate_point(point: Mapping[str, Any]) -> dict[str, Any]:
    """One design point: build its hardware, simulate the workload, return the totals."""
    from accel_sim import hardware_from_dict, load_hardware, simulate

    spec = load_hardware(point["hardware"]).model_dump(mode="json")
    spec["pe_array"].update(point["pe_array"])
    for buffer in ("ifmap", "filter"):
        spec["sram"][buffer]["size_bytes"] = point["sram_bytes"]
    spec["dram"]["bandwidth_bytes_per_s"] = point["dram_bytes_per_s"]
    hw = hardware_from_dict(spec)
    result = simulate(_workload(point["model"], point["batch"], point["seq_len"]), hw)
    return result.totals()


def _sweep(points, evaluate, **options) -> float:
    """Seconds to run ``points`` into a fresh store; fails loudly if any point failed."""
    from studies.runner import run_points
    from studies.store import ResultStore

    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as directory:
        started = time.perf_counter()
        summary = run_points(points, evaluate, ResultStore(directory), progress=False, **options)
        elapsed = time.perf_counter() - started
    if summary.failed or summary.done != len(points):
        raise SystemExit(f"sweep failed: {summary.failed[:3]} ({summary.done} done)")
    return elapsed


def _report(out, label: str, n_points: int, seconds: float, note: str = "") -> None:
    rate = n_points / seconds
    extra = f"  ({note})" if note else ""
    out(f"{label:<34} {n_points:>5} points in {seconds:7.2f} s = {rate:8.1f} points/s{extra}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=2, help="loky worker processes")
    parser.add_argument("--workers", type=int, default=2, help="Dask LocalCluster workers")
    parser.add_argument(
        "--out", type=Path, default=default_out(__file__), help="markdown file for the table"
    )
    args = parser.parse_args()

    # Workers must import the evaluate function by name, so use this file as a module.
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_sweep import evaluate_point as evaluate
    from bench_sweep import grid as make_grid

    from studies.runner import local_cluster

    points = make_grid(args.points)
    out = TableFile()
    out(
        f"grid: {len(points)} BERT-base (L=128, B=1) design points; cpu count {os.cpu_count()}; "
        f"store: one fsync'd JSON file per point"
    )

    started = time.perf_counter()
    evaluate(points[0])  # builds the workload and compiles kernels once
    warm_up_s = time.perf_counter() - started
    _report(out, "in-process", len(points), _sweep(points, evaluate), f"warm-up {warm_up_s:.1f} s")

    # loky keeps its worker pool between calls: the second sweep finds the workers warm
    cold = _sweep(points, evaluate, jobs=args.jobs)
    _report(out, f"joblib/loky jobs={args.jobs}, cold", len(points), cold, "pool start included")
    warm = _sweep(points, evaluate, jobs=args.jobs)
    _report(out, f"joblib/loky jobs={args.jobs}, warm", len(points), warm)

    started = time.perf_counter()
    with local_cluster(args.workers) as cluster:
        start_s = time.perf_counter() - started
        address = cluster.scheduler_address
        cold = _sweep(points, evaluate, scheduler=address)
        _report(
            out,
            f"Dask LocalCluster {args.workers} workers, cold",
            len(points),
            cold,
            f"cluster start {start_s:.1f} s not included; worker warm-up included",
        )
        _report(
            out,
            f"Dask LocalCluster {args.workers} workers, warm",
            len(points),
            _sweep(points, evaluate, scheduler=address),
        )
    out.write(args.out)


if __name__ == "__main__":
    main()
