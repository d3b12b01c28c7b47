"""Fisher-based mask search on a fine-tuned all-MiniLM-L6-v2 for SST-2, with no retraining.

Run: python benchmarks/fisher_minilm_sst2.py [--out results/fisher-minilm-sst2]
    [--work-dir out/fisher-minilm-sst2] [--fractions 0.4 0.5 0.6] [--calibration-examples 512]

1. Fine-tune the dense model exactly as ``benchmarks/posttraining_sst2.py`` does (mean head,
   1,000 seeded SST-2 training sentences, 2 epochs, lr 1e-4, batch 32, 64 tokens): a
   ``cosim prune`` job at sparsity 0, no retraining. An existing dense artifact in the work
   directory from the same job is reused.
2. Prune that checkpoint with ``--method fisher-mask`` at each FLOPs fraction, from
   ``--calibration-examples`` of the same training subset, no retraining; the pruned heads
   and neurons are removed, so each artifact is a smaller dense model. Score it on SST-2's
   full dev split (872).
3. Simulate the dense and every shrunk artifact on ``--hw`` (a dense 32x32 weight-stationary
   systolic array by default) at the mean calibration length (the length the FLOPs budget
   is counted at) and at 128 tokens; the speedup is the dense latency over the shrunk one.

Writes ``results.md``/``results.csv`` (one row per model) and ``run.json`` (command,
settings, per-row method records) under ``--out``.
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

import pandas as pd
import torch
from _table_file import pipe_table

from pruning.job import prune_job
from pruning.pipeline import run_prune

SIM_SEQ_LEN = 128


def _latency_s(artifact: Path, hw: str, seq_len: int) -> float:
    """Simulated latency of one ``seq_len``-token sequence through ``artifact`` on ``hw``."""
    from accel_sim import load_hardware, simulate
    from pruning.artifact import load_artifact
    from workloads import artifact_workload

    workload = artifact_workload(load_artifact(artifact), 1, seq_len, None)
    return simulate(workload, load_hardware(hw)).latency_s


def _dense(args: argparse.Namespace, common: dict) -> tuple[Path, dict, float]:
    """The fine-tuned dense artifact (reused when the work directory holds this job's)."""
    from pruning.artifact import load_artifact

    job = prune_job(
        "fisher_minilm_sst2",
        **common,
        model=args.model,
        pattern="unstructured",
        sparsity=0.0,
        dense_epochs=args.dense_epochs,
        retrain_epochs=0.0,
    )
    path = args.work_dir / "dense"
    if (path / "manifest.json").is_file():
        manifest = load_artifact(path).manifest
        if manifest["schedule"]["job"] == json.loads(json.dumps(job.record())):
            return path, manifest, 0.0
    started = time.perf_counter()
    outcome = run_prune(job, path)
    return path, outcome.manifest, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/fisher-minilm-sst2"))
    parser.add_argument("--work-dir", type=Path, default=Path("out/fisher-minilm-sst2"))
    parser.add_argument("--train-examples", type=int, default=1000)
    parser.add_argument("--dense-epochs", type=float, default=2.0)
    parser.add_argument("--calibration-examples", type=int, default=512)
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.4, 0.5, 0.6])
    parser.add_argument("--hw", default="systolic-32x32-ws")
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    args = parser.parse_args()
    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))
    common = {
        "task": "SST-2",
        "max_train_examples": args.train_examples,
        "max_seq_len": 64,
        "batch_size": 32,
        "lr": 1e-4,
        "seed": 0,
        "progress": False,
    }
    started = time.perf_counter()
    dense_dir, dense_manifest, dense_s = _dense(args, common)
    dense_accuracy = dense_manifest["training"]["metrics"]["dense"]["accuracy"]
    runs = []
    for fraction in args.fractions:
        job = prune_job(
            "fisher_minilm_sst2",
            **common,
            model=str(dense_dir),
            method="fisher-mask",
            flops_fraction=fraction,
            calibration_examples=args.calibration_examples,
        )
        outcome = run_prune(job, args.work_dir / f"fisher-{fraction:g}")
        runs.append((fraction, outcome))
    first = runs[0][1].manifest["schedule"]
    sim_len = round(first["flops_seq_len"])
    dense_latency = {n: _latency_s(dense_dir, args.hw, n) for n in (sim_len, SIM_SEQ_LEN)}
    rows = [
        {
            "model": "dense",
            "flops_kept": 1.0,
            "accuracy": dense_accuracy,
            "relative_to_dense": 1.0,
            "method_s": None,
            "heads": f"{first['total_heads']}/{first['total_heads']}",
            "neurons": f"{first['total_neurons']}/{first['total_neurons']}",
            f"speedup_{sim_len}tok": 1.0,
            f"speedup_{SIM_SEQ_LEN}tok": 1.0,
        }
    ]
    records = {}
    for fraction, outcome in runs:
        schedule = outcome.manifest["schedule"]
        accuracy = outcome.metrics["after-prune"]["accuracy"]
        speedups = {
            n: dense_latency[n] / _latency_s(outcome.artifact, args.hw, n)
            for n in (sim_len, SIM_SEQ_LEN)
        }
        rows.append(
            {
                "model": f"fisher-mask {fraction:g}",
                "flops_kept": round(schedule["flops_fraction_kept"], 4),
                "accuracy": accuracy,
                "relative_to_dense": accuracy / dense_accuracy,
                "method_s": schedule["method_seconds"],
                "heads": f"{schedule['kept_heads']}/{schedule['total_heads']}",
                "neurons": f"{schedule['kept_neurons']}/{schedule['total_neurons']}",
                f"speedup_{sim_len}tok": speedups[sim_len],
                f"speedup_{SIM_SEQ_LEN}tok": speedups[SIM_SEQ_LEN],
            }
        )
        records[f"{fraction:g}"] = {
            k: schedule[k]
            for k in (
                "flops_fraction_target", "flops_fraction_kept", "flops_seq_len",
                "kept_heads_per_layer", "kept_neurons_per_layer", "gradient_batches",
                "gradient_seconds", "search_seconds", "method_seconds", "tuning",
            )
        }  # fmt: skip
    frame = pd.DataFrame(rows).round(4)
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
            "fractions": args.fractions,
            "hw": args.hw,
            "simulated_seq_lens": [sim_len, SIM_SEQ_LEN],
        },
        "dev_examples": dense_manifest["training"]["dev"]["examples"],
        "dense_latency_s": {str(n): v for n, v in dense_latency.items()},
        "dense_fine_tune_s": round(dense_s, 1),
        "runs": records,
        "wall_s": round(time.perf_counter() - started, 1),
        "threads": torch.get_num_threads(),
    }
    (args.out / "run.json").write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
