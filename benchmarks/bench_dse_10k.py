"""Benchmark: a 10,000-point sparse DSE through ``cosim study run --jobs 2`` and its store.

Issue 18's target: 10,000 design points of mixed datapaths and patterns in 5 minutes on two
cores, through the study runner with its store. The spec (``SPEC`` below) sweeps a systolic
array's size and dataflow (10), its SRAM buffers (5) and DRAM bandwidth (10) against 20
(pattern, sparsity, datapath) pairs: dense; block 16x16, block 32x1 and unstructured at
50/75/90 % under zero skipping and zero gating (bitmap weights); 2:4 under the N:M datapath.
The model is bert-tiny (2 layers, hidden 128) at 128 tokens, batch 1, random-init magnitude
masks: the smallest BERT preset, so that store and runner overhead show beside simulation.

Runs, each in a fresh process as a user runs them:

1. ``cosim study run SPEC --out DIR --jobs 2`` from an empty DIR (masks, sweep, table,
   plots, report);
2. the same command again: every point is found in the store and none is recomputed;
3. the store alone: the 10,000 stored documents written again into a fresh SQLite store in
   its batches and into a fresh per-point JSON store (one fsync'd file each, the store
   before this one), the JSON store on the first ``--json-points`` of them.

Run: python benchmarks/bench_dse_10k.py [--jobs 2] [--json-points 10000] [--work DIR]
     [--out docs/results/bench_dse_10k.md]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from _table_file import REPO, TableFile, default_out

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


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _study_run(spec: Path, out: Path, jobs: int) -> tuple[float, float, dict]:
    """Wall and CPU seconds of one ``cosim study run`` process (CPU: it and its workers,
    which it waits for) and the run.json it wrote."""
    command = [sys.executable, "-m", "studies.cli", "study", "run", str(spec)]
    command += ["--out", str(out), "--jobs", str(jobs), "--no-progress"]
    cpu = _children_cpu_s()
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=REPO, env={**os.environ, **THREAD_ENV})
    wall_s = time.perf_counter() - started
    return wall_s, _children_cpu_s() - cpu, json.loads((out / "run.json").read_text())


def _rewrite(documents: list[dict], store, batch: int) -> float:
    """Seconds to write ``documents`` into ``store`` ``batch`` at a time."""
    started = time.perf_counter()
    for start in range(0, len(documents), batch):
        store.write(documents[start : start + batch])
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="local worker processes")
    parser.add_argument(
        "--json-points", type=int, default=N_POINTS, help="documents to write per-point JSON"
    )
    parser.add_argument("--work", type=Path, help="scratch directory (default: a temporary one)")
    parser.add_argument(
        "--out", type=Path, default=default_out(__file__), help="markdown file for the table"
    )
    args = parser.parse_args()
    os.environ.update(THREAD_ENV)

    from studies.sqlite_store import SqliteStore
    from studies.store import ResultStore

    out = TableFile()
    with tempfile.TemporaryDirectory(prefix="bench-dse-10k-", dir=args.work) as scratch:
        work = Path(scratch)
        spec = work / "dse-10k.yaml"
        spec.write_text(yaml.safe_dump(SPEC, sort_keys=False))
        study = work / "study"

        load = os.getloadavg()[0]
        cold_s, cold_cpu_s, run = _study_run(spec, study, args.jobs)
        if (run["n_points"], run["evaluated"], run["failed"]) != (N_POINTS, N_POINTS, 0):
            raise SystemExit(f"expected {N_POINTS} evaluated points, run.json says {run}")
        simulation_s = float(run["timing"]["simulation_s"])
        out(
            f"spec: {N_POINTS:,} points, bert-tiny (L=128, B=1), systolic array x SRAM x DRAM x "
            f"(dense, block 16x16 / 32x1 / unstructured x skipping / gating, 2:4 x N:M); "
            f"--jobs {args.jobs}, cpu count {os.cpu_count()}, load average {load:.1f} at the "
            f"start (other work on the machine)"
        )
        out()
        out(f"cold run (empty dir)    {cold_s:7.1f} s  = {N_POINTS / cold_s:6.1f} points/s")
        out(
            f"  CPU time              {cold_cpu_s:7.1f} s  (the command and its workers; "
            f"/ {args.jobs} = {cold_cpu_s / args.jobs:.1f} s, the wall time on {args.jobs} "
            f"idle cores)"
        )
        out(f"  up to the table       {run['wall_s']:7.1f} s  (expand, masks, sweep, frame)")
        out(
            f"  simulation            {simulation_s:7.1f} s  summed over points "
            f"({1000 * simulation_s / N_POINTS:.1f} ms a point, sparse run and dense baseline)"
        )
        out(
            f"  store writes          {run['store_write_s']:7.2f} s  "
            f"= {100 * run['store_write_s'] / cold_s:.1f} % of the run "
            f"({1000 * run['store_write_s'] / N_POINTS:.3f} ms a point, in the parent)"
        )
        warm_s, warm_cpu_s, again = _study_run(spec, study, args.jobs)
        if (again["evaluated"], again["skipped"]) != (0, N_POINTS):
            raise SystemExit(f"the second run recomputed points: {again}")
        out(
            f"resume (all stored)     {warm_s:7.1f} s  (CPU {warm_cpu_s:.1f} s; 0 evaluated, "
            f"{N_POINTS:,} reused; finding them {again['store_read_s']:.2f} s, the rest is "
            f"expansion, table, plots, report)"
        )

        with SqliteStore(study / "store") as stored:
            documents = list(stored.documents(sorted(stored.keys())).values())
        with SqliteStore(work / "again-sqlite") as fresh:
            sqlite_s = _rewrite(documents, fresh, SqliteStore.commit_points)
        n_json = min(args.json_points, len(documents))
        json_s = _rewrite(documents[:n_json], ResultStore(work / "again-json"), 1)
        out()
        out(f"store alone: the {len(documents):,} stored documents written again")
        out(
            f"  SQLite, WAL, {SqliteStore.commit_points} a transaction   {sqlite_s:7.2f} s  "
            f"= {1000 * sqlite_s / len(documents):.3f} ms a point"
        )
        note = "" if n_json == len(documents) else f" (first {n_json:,} points)"
        out(
            f"  one fsync'd JSON file a point   {json_s:7.2f} s  "
            f"= {1000 * json_s / n_json:.3f} ms a point{note}"
        )
    out.write(args.out)


if __name__ == "__main__":
    main()
