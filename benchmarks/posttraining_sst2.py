"""Post-training pruning of a fine-tuned all-MiniLM-L6-v2 on SST-2, with no retraining.

Run: python benchmarks/posttraining_sst2.py [--out results/posttraining-sst2]
    [--work-dir out/posttraining-sst2] [--train-examples 1000] [--dense-epochs 2]

1. Fine-tune the dense model (mean head, the checkpoint's own) on a seeded subset of SST-2's
   train split (as ``results/accuracy-sst2-patterns``: 1,000 sentences, 2 epochs, lr 1e-4,
   batch 32, sequence length 64): a ``cosim prune`` job at sparsity 0, no retraining, whose
   artifact is the dense fine-tuned checkpoint.
2. Prune that checkpoint with magnitude, Wanda and SparseGPT at 50 % unstructured and 2:4,
   each from 128 calibration examples of the same train subset, no retraining, and score
   every model on SST-2's full dev split (872).

Writes ``results.md``/``results.csv`` (one row per model: accuracy, share of the dense
accuracy, share of the dense model's gain over the majority class, ``method_s``: the prune's
wall time for Wanda and SparseGPT, the whole job's (load, prune, two dev evaluations) for
magnitude) and ``run.json`` (command, settings, timings) under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np
import pandas as pd
import torch
from _table_file import pipe_table

from pruning.job import prune_job
from pruning.pipeline import run_prune

ROWS = [
    ("magnitude", "unstructured", 0.5),
    ("wanda", "unstructured", 0.5),
    ("sparsegpt", "unstructured", 0.5),
    ("magnitude", "nm:2:4", None),
    ("wanda", "nm:2:4", None),
    ("sparsegpt", "nm:2:4", None),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/posttraining-sst2"))
    parser.add_argument("--work-dir", type=Path, default=Path("out/posttraining-sst2"))
    parser.add_argument("--train-examples", type=int, default=1000)
    parser.add_argument("--dense-epochs", type=float, default=2.0)
    parser.add_argument("--calibration-examples", type=int, default=128)
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--max-eval-examples", type=int, default=None)
    args = parser.parse_args()
    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))
    common = {
        "task": "SST-2",
        "max_train_examples": args.train_examples,
        "max_eval_examples": args.max_eval_examples,
        "max_seq_len": 64,
        "batch_size": 32,
        "lr": 1e-4,
        "seed": 0,
        "progress": False,
    }
    started = time.perf_counter()
    dense_dir = args.work_dir / "dense"
    dense_job = prune_job(
        "posttraining_sst2",
        **common,
        model=args.model,
        pattern="unstructured",
        sparsity=0.0,
        dense_epochs=args.dense_epochs,
        retrain_epochs=0.0,
    )
    dense = run_prune(dense_job, dense_dir)
    dense_s = time.perf_counter() - started
    dense_accuracy = dense.metrics["dense"]["accuracy"]
    labels = dense.manifest["training"]["dev"]["examples"]
    rows = [
        {
            "method": "dense",
            "pattern": "dense",
            "sparsity": 0.0,
            "accuracy": dense_accuracy,
            "method_s": None,
        }
    ]
    for method, pattern, sparsity in ROWS:
        fields = {**common, "model": str(dense_dir), "method": method, "pattern": pattern}
        if sparsity is not None:
            fields["sparsity"] = sparsity
        if method == "magnitude":
            fields["retrain_epochs"] = 0.0
        else:
            fields["calibration_examples"] = args.calibration_examples
        job = prune_job("posttraining_sst2", **fields)
        begun = time.perf_counter()
        outcome = run_prune(job, args.work_dir / f"{method}-{pattern.replace(':', '')}")
        schedule = outcome.manifest["schedule"]
        rows.append(
            {
                "method": method,
                "pattern": pattern,
                "sparsity": 1 - outcome.manifest["density"],
                "accuracy": outcome.metrics["after-prune"]["accuracy"],
                "method_s": schedule.get("method_seconds", round(time.perf_counter() - begun, 1)),
            }
        )
    frame = pd.DataFrame(rows)
    counts = dense.manifest["training"]["predictions"]["dense"]["predicted_counts"]
    from pruning.glue import get_task, load_split

    dev = load_split(get_task("SST-2"), "dev", max_examples=args.max_eval_examples)
    dev_labels = np.asarray(dev.labels)
    majority_accuracy = float(max((dev_labels == c).mean() for c in np.unique(dev_labels)))
    frame["relative_to_dense"] = frame["accuracy"] / dense_accuracy
    frame["gain_retained"] = (frame["accuracy"] - majority_accuracy) / (
        dense_accuracy - majority_accuracy
    )
    frame = frame.round(4)
    args.out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out / "results.csv", index=False)
    (args.out / "results.md").write_text(pipe_table(frame))
    record = {
        "command": "python " + " ".join(sys.argv),
        "settings": {
            **common,
            "model": args.model,
            "dense_epochs": args.dense_epochs,
            "calibration_examples": args.calibration_examples,
        },
        "dev_examples": labels,
        "majority_accuracy": majority_accuracy,
        "dense_predicted_counts": counts,
        "dense_fine_tune_s": round(dense_s, 1),
        "wall_s": round(time.perf_counter() - started, 1),
        "threads": torch.get_num_threads(),
    }
    (args.out / "run.json").write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
