"""Benchmark: a 10,000-point sparse DSE through the study runner and its store (issue 18).

Issue 18's target: 10,000 design points of mixed datapaths and patterns in 5 minutes on two
cores, through the study runner with its store. The spec (``SPEC`` below) sweeps a systolic
array's size and dataflow (10), its SRAM buffers (5) and DRAM bandwidth (10) against 20
(pattern, sparsity, datapath) pairs: dense; block 16x16, block 32x1 and unstructured at
50/75/90 % under zero skipping and zero gating (bitmap weights); 2:4 under the N:M datapath.
The model is bert-tiny (2 layers, hidden 128) at 128 tokens, batch 1, random-init magnitude
masks: the smallest BERT preset, so that store and runner overhead show beside simulation.

The steps are ``cosim study run``'s up to its table (expand the spec, compute the masks,
``run_points`` with ``--jobs`` loky workers into a :class:`~studies.sqlite_store.SqliteStore`,
the table and its Parquet/CSV export), without its plots and report:

1. from an empty directory;
2. again on the same directory in a fresh process: every point is found in the store, none
   is recomputed;
3. the store alone: the stored documents written again into a fresh SQLite store in its
   batches and into a fresh per-point JSON store (one fsync'd file each, the store before
   this one).

``--points N`` takes N points evenly spaced over the 10,000 (a loaded machine).

Run: python benchmarks/bench_dse_10k.py [--points 10000] [--jobs 2] [--work DIR]
     [--out docs/results/bench_dse_10k.md]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _table_file import TableFile, default_out

THREAD_ENV = {"OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
SRAM_SIZES = ("16 KiB", "64 KiB", "256 KiB", "1 MiB", "4 MiB")
SPARSE = {"sparse.zero_handling": ["skipping", "gating"], "sparse.weight_format": ["bitmap"]}
SPEC = {
    "name": "dse-10k",
    "kind": "dse",
    "description": "10,000-point sparse DSE: array, SRAM, DRAM x pattern, sparsity, datapath",
    "models": ["bert-tiny"],
    "seq_lens": [128],
    "batches": [1],
    "seed": 0,
    "hardware": ["systolic-32x32-ws"],
    "grid": {
        "pe_array": [
            {"rows": size, "cols": size, "dataflow": dataflow}
            for size in (8, 16, 32, 64, 128)
            for dataflow in ("ws", "os")
        ],
        "sram": [
            {name: {"size_bytes": size} for name in ("ifmap", "filter", "ofmap")}
            for size in SRAM_SIZES
        ],
        "dram.bandwidth_bytes_per_s": [
            f"{gb} GB/s" for gb in (4, 8, 12, 16, 24, 32, 48, 64, 96, 128)
        ],
    },
    "sparsities": [0.5, 0.75, 0.9],
    "patterns": [
        {"pattern": "dense", "grid": {"sparse.zero_handling": ["none"]}},
        {"pattern": "block:16x16", "grid": SPARSE},
        {"pattern": "block:32x1", "grid": SPARSE},
        {"pattern": "unstructured", "grid": SPARSE},
        {
            "pattern": "nm:2:4",
            "grid": {
                "sparse.zero_handling": ["nm"],
                "sparse.weight_format": ["nm"],
                "sparse.nm": [[2, 4]],
            },
        },
    ],
}
N_POINTS = 10_000


def _points(n_points: int) -> list[dict]:
    from studies.spec import expand, spec_from_dict

    points = expand(spec_from_dict(SPEC), Path.cwd())
    if len(points) != N_POINTS:
        raise SystemExit(f"the spec expands to {len(points)} points, expected {N_POINTS}")
    if not 1 <= n_points <= N_POINTS:
        raise SystemExit(f"--points must be between 1 and {N_POINTS}, got {n_points}")
    step = N_POINTS / n_points
    return [points[int(i * step)] for i in range(n_points)]


def sweep(directory: Path, n_points: int, jobs: int) -> dict[str, float]:
    """``study run``'s steps up to the table into ``directory``; seconds of each step."""
    import functools

    from studies.evaluate import evaluate_point, mask_group, prepare_masks
    from studies.runner import run_points
    from studies.sqlite_store import SqliteStore
    from studies.store import point_key

    times = {}
    started = time.perf_counter()
    points = _points(n_points)
    keys = [point_key(point) for point in points]
    times["expand_s"] = time.perf_counter() - started
    with SqliteStore(directory / "store") as store:
        begun = time.perf_counter()
        stored = store.keys()
        todo = [point for point, key in zip(points, keys, strict=True) if key not in stored]
        prepare_masks(todo, directory / "masks")
        times["masks_s"] = time.perf_counter() - begun
        begun = time.perf_counter()
        evaluate = functools.partial(evaluate_point, mask_dir=str((directory / "masks").resolve()))
        summary = run_points(
            points, evaluate, store, jobs=jobs, progress=False, group=mask_group, keys=keys
        )
        times["sweep_s"] = time.perf_counter() - begun
        if summary.failed:
            raise SystemExit(f"{len(summary.failed)} points failed: {summary.failed[:3]}")
        begun = time.perf_counter()
        store.export(directory, {"spec": SPEC}, keys)
        times["table_s"] = time.perf_counter() - begun
        times["simulation_s"] = store.timing(keys).get("simulation_s", 0.0)
    times["wall_s"] = time.perf_counter() - started
    times.update(
        done=summary.done,
        skipped=summary.skipped,
        store_read_s=summary.store_read_s,
        store_write_s=summary.store_write_s,
    )
    return times


def _sweep_in_a_fresh_process(directory: Path, n_points: int, jobs: int) -> dict[str, float]:
    script = Path(__file__).resolve()
    command = [sys.executable, str(script), "--points", str(n_points), "--jobs", str(jobs)]
    command += ["--sweep-into", str(directory)]
    started = time.perf_counter()
    finished = subprocess.run(
        command, check=True, capture_output=True, text=True, env={**os.environ, **THREAD_ENV}
    )
    times = json.loads(finished.stdout.strip().splitlines()[-1])
    times["process_s"] = time.perf_counter() - started  # interpreter start and imports too
    return times


def _rewrite(documents: list[dict], store, batch: int) -> float:
    """Seconds to write ``documents`` into ``store`` ``batch`` at a time."""
    started = time.perf_counter()
    for start in range(0, len(documents), batch):
        store.write(documents[start : start + batch])
    return time.perf_counter() - started


def _line(out, label: str, seconds: float, note: str = "") -> None:
    out(f"{label:<30} {seconds:8.2f} s  {note}".rstrip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=N_POINTS, help="points of the 10,000")
    parser.add_argument("--jobs", type=int, default=2, help="loky worker processes")
    parser.add_argument("--work", type=Path, help="scratch directory (default: a temporary one)")
    parser.add_argument("--sweep-into", type=Path, help=argparse.SUPPRESS)  # one sweep, as JSON
    parser.add_argument(
        "--out", type=Path, default=default_out(__file__), help="markdown file for the table"
    )
    args = parser.parse_args()
    os.environ.update(THREAD_ENV)
    if args.sweep_into is not None:
        print(json.dumps(sweep(args.sweep_into, args.points, args.jobs)))
        return

    from studies.sqlite_store import SqliteStore
    from studies.store import ResultStore

    out = TableFile()
    n = args.points
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-dse-10k-", dir=args.work) as scratch:
        work = Path(scratch)
        cold = _sweep_in_a_fresh_process(work / "study", n, args.jobs)
        if cold["done"] != n:
            raise SystemExit(f"expected {n} evaluated points, got {cold}")
        warm = _sweep_in_a_fresh_process(work / "study", n, args.jobs)
        if (warm["done"], warm["skipped"]) != (0, n):
            raise SystemExit(f"the second run recomputed points: {warm}")
        with SqliteStore(work / "study" / "store") as stored:
            documents = list(stored.documents(sorted(stored.keys())).values())
        with SqliteStore(work / "again-sqlite") as fresh:
            sqlite_s = _rewrite(documents, fresh, SqliteStore.commit_points)
        json_s = _rewrite(documents, ResultStore(work / "again-json"), 1)

    subset = "" if n == N_POINTS else f" ({n:,} evenly spaced of the {N_POINTS:,})"
    out(
        f"spec: {n:,} points{subset}, bert-tiny (L=128, B=1), systolic array x SRAM x DRAM x "
        f"(dense; block 16x16 / 32x1 / unstructured x skipping / gating; 2:4 x N:M)"
    )
    out(
        f"--jobs {args.jobs}; cpu count {os.cpu_count()}; load average {load:.1f} at the start "
        f"(other work on the machine)"
    )
    out()
    rate = n / cold["wall_s"]
    _line(out, "cold (empty directory)", cold["process_s"], "the whole process")
    _line(out, "  expand + keys", cold["expand_s"])
    _line(out, "  masks", cold["masks_s"])
    _line(out, "  sweep (run_points)", cold["sweep_s"], f"{rate:.1f} points/s over the steps")
    _line(
        out,
        "  simulation, summed",
        cold["simulation_s"],
        f"{1000 * cold['simulation_s'] / n:.1f} ms a point; "
        f"{100 * cold['simulation_s'] / (args.jobs * cold['sweep_s']):.0f} % of the workers' "
        "sweep time",
    )
    _line(
        out,
        "  store writes (parent)",
        cold["store_write_s"],
        f"{1000 * cold['store_write_s'] / n:.2f} ms a point; "
        f"{100 * cold['store_write_s'] / cold['wall_s']:.1f} % of the steps",
    )
    _line(out, "  table + export", cold["table_s"])
    _line(
        out,
        "resume (all stored)",
        warm["process_s"],
        f"0 evaluated, {n:,} reused; finding them {warm['store_read_s']:.2f} s",
    )
    out()
    out(f"store alone: the {len(documents):,} stored documents written again")
    _line(
        out,
        f"  SQLite, {SqliteStore.commit_points:,} a transaction",
        sqlite_s,
        f"{1000 * sqlite_s / len(documents):.3f} ms a point",
    )
    _line(
        out,
        "  one fsync'd JSON a point",
        json_s,
        f"{1000 * json_s / len(documents):.3f} ms a point",
    )
    out.write(args.out)


if __name__ == "__main__":
    main()
