"""Benchmark: all-MiniLM-L6-v2 (real pre-trained weights) fine-tuned and pruned on MRPC, CPU.

Run: python benchmarks/bench_prune_minilm_mrpc.py [--train-examples N] [--epochs E]
     [--sparsity S] [--runs dense,magnitude,gradual,gradual-block4] [--out DIR]
     [--table docs/results/bench_prune_minilm_mrpc.md]

Each run is one ``cosim prune`` job (pruning.pipeline.run_prune) starting from the
pre-trained MiniLM with a new classification head:

- ``dense``: fine-tuning only (magnitude at sparsity 0, so the same code path);
- ``magnitude``: one-shot magnitude prune of the pre-trained encoder, then masked fine-tuning;
- ``gradual``: gradual magnitude pruning (cubic ramp over the first 70 % of steps) while
  fine-tuning, unstructured; ``gradual-block4``: the same with 4x4 blocks.

Prints a markdown table of dev accuracy / F1 (all 408 MRPC dev pairs), encoder density and
wall time per run, writes that table to ``--table`` (by default the file docs/pruning.md
refers to) and ``results.json`` plus the artifacts under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")

import torch
from _table_file import TableFile, default_out

from pruning.job import prune_job
from pruning.pipeline import run_prune
from safeio.atomic import atomic_write_text

RUNS = {
    "dense": {"method": "magnitude", "pattern": "unstructured", "sparsity": 0.0},
    "magnitude": {"method": "magnitude", "pattern": "unstructured"},
    "gradual": {"method": "gradual", "pattern": "unstructured"},
    "gradual-block4": {"method": "gradual", "pattern": "block:4x4"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-examples", type=int, default=2000)
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--seq-len", type=int, default=96, help="MRPC dev pairs: max 86 tokens")
    parser.add_argument("--sparsity", type=float, default=0.5)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--runs", default=",".join(RUNS))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/minilm-mrpc"))
    parser.add_argument(
        "--table", type=Path, default=default_out(__file__), help="markdown file for the table"
    )
    parser.add_argument("--threads", type=int, default=int(os.environ["OMP_NUM_THREADS"]))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    rows = []
    for name in args.runs.split(","):
        settings = {"sparsity": args.sparsity, **RUNS[name]}
        job = prune_job(
            model="all-MiniLM-L6-v2",
            task="MRPC",
            max_train_examples=args.train_examples,
            max_seq_len=args.seq_len,
            epochs=args.epochs,
            lr=args.lr,
            progress=False,
            **settings,
        )
        started = time.perf_counter()
        report = lambda line, n=name: print(f"[{n}] {line}", flush=True)  # noqa: E731
        outcome = run_prune(job, args.out / name, report=report)
        seconds = time.perf_counter() - started
        final = list(outcome.metrics)[-1]
        scores = outcome.metrics[final]
        rows.append(
            {
                "run": name,
                "pattern": job.pattern,
                "density": outcome.manifest["density"],
                "accuracy": scores["accuracy"],
                "f1": scores["f1"],
                "seconds": seconds,
            }
        )
        print(f"[{name}] done in {seconds:.0f} s", flush=True)

    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    atomic_write_text(
        args.out / "results.json", json.dumps({"args": settings, "rows": rows}, indent=2)
    )
    out = TableFile(fenced=False)
    out(
        f"\nall-MiniLM-L6-v2 on MRPC: {args.train_examples} training pairs, {args.epochs:g} "
        f"epochs, seq len {args.seq_len}, lr {args.lr:g}, batch 32, dev = 408 pairs\n"
    )
    out("| run | pattern | encoder density | dev accuracy | dev F1 | wall time |")
    out("|---|---|---:|---:|---:|---:|")
    for row in rows:
        out(
            f"| {row['run']} | {row['pattern']} | {100 * row['density']:.1f} % | "
            f"{100 * row['accuracy']:.1f} | {100 * row['f1']:.1f} | {row['seconds'] / 60:.1f} min |"
        )
    out.write(args.table)


if __name__ == "__main__":
    main()
