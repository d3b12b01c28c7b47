"""Benchmark: speedup and energy of real pruned masks under each sparse hardware mode.

Run: python benchmarks/bench_sparse_modes.py [--model all-MiniLM-L6-v2] [--seq-len 128]
     [--out docs/results/bench_sparse_modes.md]

Masks come from one-shot magnitude pruning of the model's encoder (all-MiniLM-L6-v2: the
real pre-trained weights; other presets: random weights, flagged synthetic). Each pattern runs
on the hardware preset whose sparse mode fits it:

- unstructured      -> eie-64pe (unstructured-sparse PE array, RLE weights)
- block:4x4, 32x32  -> systolic-32x32-ws-skip (row compaction, 32-bank crossbar, bitmap)
- nm:2:4            -> systolic-32x32-ws-nm (2:4 sparse tensor mode)
- unstructured      -> systolic-32x32-ws-gating (energy only)

For every (pattern, sparsity) it prints cycles, speedup and energy ratio against the dense
run of the same model on the same hardware, effective utilisation, load imbalance where the
mode has one, and the simulator's wall time for that design point; the same lines go to
``--out`` (included by docs/sparse-execution.md).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import torch
from _table_file import TableFile, default_out

from accel_sim import load_hardware, simulate
from pruning.masks import compute_masks
from pruning.models import load_model
from pruning.targets import prunable_weights
from workloads import attach_masks, build_workload

CASES = [
    ("unstructured", "eie-64pe"),
    ("unstructured", "systolic-32x32-ws-gating"),
    ("block:4x4", "systolic-32x32-ws-skip"),
    ("block:32x32", "systolic-32x32-ws-skip"),
    ("nm:2:4", "systolic-32x32-ws-nm"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--sparsities", default="0.5,0.8,0.9")
    parser.add_argument(
        "--out", type=Path, default=default_out(__file__), help="markdown file for the table"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = TableFile()

    loaded = load_model(args.model)
    weights = {n: w.detach().clone() for n, w in prunable_weights(loaded.model).items()}
    workload = build_workload(args.model, batch=1, seq_len=args.seq_len)
    weights_note = "synthetic (random) weights" if loaded.synthetic_weights else "real weights"
    out(f"{args.model} ({weights_note}), batch 1, seq len {args.seq_len}\n")
    header = (
        f"{'pattern':<14}{'sparsity':>9}  {'hardware':<26}{'cycles':>12}{'speedup':>9}"
        f"{'energy':>8}{'eff util':>9}{'imbal':>7}{'sim ms':>8}"
    )
    out(header)
    out("-" * len(header))
    for pattern, hw_name in CASES:
        hw = load_hardware(hw_name)
        warm = compute_masks(weights, pattern, None if pattern.startswith("nm:") else 0.5)
        simulate(attach_masks(workload, {n: m.numpy() for n, m in warm.items()}), hw)  # JIT
        for text in args.sparsities.split(","):
            sparsity = None if pattern.startswith("nm:") else float(text)
            if pattern.startswith("nm:") and text != args.sparsities.split(",")[0]:
                continue  # N:M sparsity is fixed by the pattern
            masks = compute_masks(weights, pattern, sparsity)
            numpy_masks = {name: mask.numpy() for name, mask in masks.items()}
            masked = attach_masks(workload, numpy_masks)
            started = time.perf_counter()
            result = simulate(masked, hw)
            wall_ms = 1e3 * (time.perf_counter() - started)
            imbalance = result.load_imbalance
            shown = 1 - result.weight_density
            out(
                f"{pattern:<14}{shown:>9.2f}  {hw_name:<26}{result.cycles:>12,}"
                f"{result.speedup:>8.2f}x{result.energy_ratio:>7.2f}x"
                f"{100 * result.effective_utilisation:>8.1f}%"
                f"{'-' if imbalance is None else f'{imbalance:.3f}':>7}{wall_ms:>8.0f}"
            )
    out(
        "\nspeedup = dense cycles / sparse cycles and energy = sparse / dense energy, both on "
        "the same hardware; wall time includes the dense baseline run."
    )
    out.write(args.out)


if __name__ == "__main__":
    main()
