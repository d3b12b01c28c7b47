"""Movement pruning against gradual magnitude pruning on SST-2, same sparsity and budget.

Run: python benchmarks/movement_sst2.py [--out results/movement-minilm-sst2]
    [--work-dir out/movement-sst2] [--train-examples 1000] [--epochs 3] [--sparsity 0.8]
    [--patterns unstructured,block:16x16] [--jobs 4]

Sanh, Wolf and Rush (NeurIPS 2020) prune while fine-tuning from the pre-trained model and
compare movement with magnitude pruning under one schedule; this script does the same at CPU
size: every run starts from the pre-trained all-MiniLM-L6-v2 (mean head), fine-tunes on a
seeded subset of SST-2's train split for ``--epochs`` with the same optimiser and a cubic
sparsity ramp to ``--sparsity`` over 70 % of the steps, and is scored on SST-2's dev split
(all 872 sentences, or a seeded ``--max-eval-examples``). Rows: hard movement and gradual
magnitude, each unstructured and ``block:16x16`` (``--patterns`` picks).

The runs go to ``--jobs`` parallel processes, one thread each; a run an earlier invocation
finished with the same job is reused. Writes
``results.md``/``results.csv`` (accuracy and its bootstrap standard error, steps and wall time
per run; ``wall_s`` is the run's own, from its manifest) and ``run.json`` (command, settings)
under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import pandas as pd
import torch
from _table_file import pipe_table

from pruning.job import prune_job
from pruning.pipeline import run_prune

RUNS = [
    ("movement", "unstructured"),
    ("gradual", "unstructured"),
    ("movement", "block:16x16"),
    ("gradual", "block:16x16"),
]


def run_one(method: str, pattern: str, common: dict, work_dir: Path) -> dict:
    """One prune-while-fine-tuning run and its row."""
    job = prune_job("movement_sst2", **common, method=method, pattern=pattern)
    out = work_dir / f"{method}-{pattern.replace(':', '')}"
    manifest = _finished(out, job.record())
    if manifest is None:
        manifest = run_prune(job, out).manifest
    phases = manifest["schedule"]["phases"]
    training = manifest["training"]
    return {
        "method": method,
        "pattern": pattern,
        "sparsity": round(1 - manifest["density"], 4),
        "accuracy": round(training["metrics"][method]["accuracy"], 4),
        "accuracy_se": round(training["standard_errors"][method]["accuracy"], 4),
        "steps": sum(int(phase["steps"]) for phase in phases),
        "wall_s": round(manifest["schedule"]["seconds"], 1),
    }


def _finished(out: Path, record: dict) -> dict | None:
    """The manifest of a run an earlier invocation finished in ``out`` with the same job, so a
    rerun reuses it instead of training again; None otherwise."""
    from pruning.artifact import load_artifact

    if not (out / "manifest.json").is_file():
        return None
    manifest = load_artifact(out).manifest
    same = manifest["schedule"]["job"] == json.loads(json.dumps(record))
    return manifest if same else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/movement-minilm-sst2"))
    parser.add_argument("--work-dir", type=Path, default=Path("out/movement-sst2"))
    parser.add_argument("--train-examples", type=int, default=1000)
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--sparsity", type=float, default=0.8)
    parser.add_argument("--max-eval-examples", type=int, default=None, help="seeded dev subset")
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--jobs", type=int, default=4, help="runs in parallel, one thread each")
    parser.add_argument("--patterns", default="unstructured,block:16x16")
    args = parser.parse_args()
    if args.jobs < 1:
        parser.error("--jobs: expected a positive integer")
    patterns = [p.strip() for p in args.patterns.split(",") if p.strip()]
    if not patterns or set(patterns) - {pattern for _, pattern in RUNS}:
        parser.error("--patterns: expected a comma-separated subset of unstructured,block:16x16")
    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))
    common = {
        "model": args.model,
        "task": "SST-2",
        "max_train_examples": args.train_examples,
        "max_eval_examples": args.max_eval_examples,
        "max_seq_len": 64,
        "batch_size": 32,
        "lr": 1e-4,
        "seed": 0,
        "epochs": args.epochs,
        "sparsity": args.sparsity,
        "progress": False,
    }
    started = time.perf_counter()
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(args.jobs, mp_context=context) as pool:
        futures = [
            pool.submit(run_one, method, pattern, common, args.work_dir)
            for method, pattern in RUNS
            if pattern in patterns
        ]
        rows = [future.result() for future in futures]
    frame = pd.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out / "results.csv", index=False)
    (args.out / "results.md").write_text(pipe_table(frame))
    record = {
        "command": "python " + " ".join(sys.argv),
        "settings": {**common, "ramp_fraction": 0.7, "head": "mean (the checkpoint's own)"},
        "jobs": args.jobs,
        "wall_s": round(time.perf_counter() - started, 1),
        "threads_per_job": torch.get_num_threads(),
    }
    (args.out / "run.json").write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
