"""Quantization-aware crossbar ADMM on all-MiniLM-L6-v2 with SST-2, CPU-sized: accuracy vs
device variation sigma, and power and area on ISAAC against the dense 16-bit mapping.

Run: python benchmarks/qadmm_minilm.py [--task SST-2] [--out results/qadmm-minilm-sst2]
    [--work-dir out/qadmm-minilm-sst2] [--train-examples 1000] [--eval-examples 200]
    [--epochs 2]

1. ``cosim prune --method admm --weight-bits 8 --cell-bits 2 --pattern crossbar:128x128
   --sparsity 0.5`` on a seeded subset of the task's train split (ADMM for --epochs, then masked
   and quantized retraining for as long, lr 1e-4, batch 16, sequence length 64, as
   ``results/accuracy-sst2-patterns`` fine-tunes), scored on a seeded subset of its dev
   split;
2. the artifact's dev accuracy and F1 under lognormal conductance variation per sigma over
   3 seeds (``pruning.variation.artifact_sigma_sweep``: mean and standard error);
3. ``cosim simulate --artifact`` on ``isaac-crossbar`` (batch 1, sequence length 128): the
   quantized sparse model against the dense model at 16 bits.

Writes ``results.md`` (the tables the docs include), ``sigma.csv``, ``crossbar.csv`` and
``run.json`` (settings, timings) under ``--out``. At these sizes the model learns little:
the table is the machinery's output at a CPU budget, not the paper's accuracy.
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

ROOT = Path(__file__).resolve().parents[1]
SIGMAS = (0.0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2)
SEEDS = (0, 1, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="SST-2")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "qadmm-minilm-sst2")
    parser.add_argument("--work-dir", type=Path, default=ROOT / "out" / "qadmm-minilm-sst2")
    parser.add_argument("--train-examples", type=int, default=1000)
    parser.add_argument("--eval-examples", type=int, default=200)
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--weight-bits", type=int, default=8)
    parser.add_argument(
        "--reuse", action="store_true", help="reuse the artifact in --work-dir (skip pruning)"
    )
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))

    from accel_sim import load_hardware, simulate
    from accel_sim.datapaths.crossbar.quantized import reduction_vs_dense, with_weight_quantization
    from accel_sim.engine import without_masks
    from pruning.artifact import load_artifact
    from pruning.job import prune_job
    from pruning.pipeline import run_prune
    from pruning.variation import artifact_sigma_sweep
    from workloads import artifact_workload

    settings = {
        "model": "all-MiniLM-L6-v2",
        "task": args.task,
        "method": "admm",
        "pattern": "crossbar:128x128",
        "sparsity": 0.5,
        "weight_bits": args.weight_bits,
        "cell_bits": 2,
        "max_train_examples": args.train_examples,
        "max_eval_examples": args.eval_examples,
        "max_seq_len": 64,
        "epochs": args.epochs,
        "retrain_epochs": args.epochs,
        "batch_size": 16,
        "lr": 1e-4,
        "progress": False,
    }
    timings = {}
    started = time.perf_counter()
    path = args.work_dir / "artifact"
    if args.reuse and (path / "manifest.json").is_file():
        manifest = load_artifact(path).manifest
        if "quantization" not in manifest:
            raise SystemExit(f"{path} is not a quantized artifact")
        metrics = manifest["training"]["metrics"]
        timings["prune_s"] = "reused"
    else:
        outcome = run_prune(prune_job(**settings), path)
        metrics = outcome.metrics
        timings["prune_s"] = round(time.perf_counter() - started, 1)

    started = time.perf_counter()
    table = artifact_sigma_sweep(
        path, SIGMAS, SEEDS, max_eval_examples=args.eval_examples
    )
    timings["sigma_sweep_s"] = round(time.perf_counter() - started, 1)

    started = time.perf_counter()
    artifact = load_artifact(path)
    workload = artifact_workload(artifact, 1, 128, "all-MiniLM-L6-v2")
    chip = load_hardware("isaac-crossbar")
    quantized = simulate(
        workload, with_weight_quantization(chip, artifact.manifest["quantization"]),
        baseline=False,
    )  # fmt: skip
    dense = simulate(without_masks(workload), chip, baseline=False)
    figures = reduction_vs_dense(quantized, dense)
    timings["simulate_s"] = round(time.perf_counter() - started, 1)

    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "sigma.csv", index=False)
    import pandas as pd

    crossbar = pd.DataFrame([{"figure": k, **v} for k, v in figures.items()])
    crossbar.to_csv(args.out / "crossbar.csv", index=False)
    lines = [
        f"{args.task}, {args.train_examples} train / {args.eval_examples} dev examples (seeded), "
        f"sequence length 64, ADMM {args.epochs:g} epochs + quantized retraining "
        f"{args.epochs:g} epochs; crossbar:128x128 at 50 %, {args.weight_bits}-bit weights in "
        f"2-bit cells, on/off ratio 17. Dev before pruning: "
        + ", ".join(f"{k} {v:.3f}" for k, v in metrics.get("before", {}).items())
        + "; after quantized retraining: "
        + ", ".join(f"{k} {v:.3f}" for k, v in metrics.get("retrain", {}).items())
        + ".",
        "",
        "| sigma | metric | mean | SE (3 seeds) |",
        "|---|---|---|---|",
    ]
    for row in table.itertuples():
        lines.append(f"| {row.sigma:g} | {row.metric} | {row.mean:.4f} | {row.se:.4f} |")
    lines += [
        "",
        f"On isaac-crossbar (batch 1, 128 tokens): the pruned {args.weight_bits}-bit model "
        "against the dense 16-bit mapping.",
        "",
        "| figure | quantized, pruned | dense 16-bit | reduction |",
        "|---|---|---|---|",
    ]
    for name, row in figures.items():
        lines.append(
            f"| {name} | {row['quantized']:.6g} | {row['dense']:.6g} | "
            f"{100 * row['reduction']:.2f} % |"
        )
    (args.out / "results.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    run = {
        "command": "python benchmarks/qadmm_minilm.py " + " ".join(sys.argv[1:]),
        "settings": settings,
        "sigmas": list(SIGMAS),
        "seeds": list(SEEDS),
        "timings": timings,
    }
    (args.out / "run.json").write_text(json.dumps(run, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
