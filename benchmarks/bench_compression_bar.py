"""Benchmark: what stops each datapath short of SparseBERT's 13.5x at 20x compression.

Run: python benchmarks/bench_compression_bar.py [--lanes 32,1024]
     [--out docs/results/bench_compression_bar.md]

BERT-base (random-init weights) at 128 tokens, batch 1, every encoder matrix pruned to 20x
(5 % of the weights kept; N:M at its own 1:16), on each chip of the built-in ``compression``
study (1,024 multipliers, 512 KiB buffers, 64 GB/s), against the same chip
without sparse support (its dense baseline). For each vector-unit width it prints the
speedup, the sparse run's cycles split into linear layers, attention GEMMs, vector ops and
stalls, and the Amdahl bound of that chip: the dense run's cycles over (its linear cycles /
20 + its attention and vector cycles), what a perfect 20x on the linear layers with no stall
left would give. SparseBERT (Moffett hardware, MRPC) reports about 13.5x at 20x.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np
import torch
from _table_file import TableFile, default_out
from bench_sparse_point import encoder_weights

from accel_sim import load_hardware, simulate
from accel_sim.spec import derive
from pruning.masks import compute_masks
from workloads import attach_masks, build_workload

MODEL = "bert-base-uncased"
RATIO = 20
STUDY_MEMORY = {
    "sram.ifmap.size_bytes": 512 * 1024,
    "sram.filter.size_bytes": 512 * 1024,
    "sram.ofmap.size_bytes": 512 * 1024,
    "dram.bandwidth_bytes_per_s": 64e9,
}
# (name, preset, overrides, pattern): the built-in compression study's chips (its grid values),
# 1,024 multipliers each
CASES = (
    ("systolic, block 16x16 skipping", "systolic-32x32-ws",
     {"sparse.zero_handling": "skipping", "sparse.weight_format": "bsr",
      "sparse.format_block": [16, 16]}, "block:16x16"),
    ("systolic, N:M 1:16", "systolic-32x32-ws",
     {"sparse.zero_handling": "nm", "sparse.weight_format": "nm", "sparse.nm": [1, 16]},
     "nm:1:16"),
    ("EIE-style PE array, width 1", "systolic-32x32-ws",
     {"datapath": "pe-array", "sparse.zero_handling": "skipping", "sparse.weight_format": "csc"},
     "unstructured"),
    ("EIE-style PE array, width 16", "systolic-32x32-ws",
     {"datapath": "pe-array", "sparse.zero_handling": "skipping", "sparse.weight_format": "csc",
      "fifo_array.broadcast_width": 16, "fifo_array.filter_empty_columns": True},
     "unstructured"),
    ("dual-side outer product", "systolic-32x32-ws",
     {"datapath": "outer-product", "sparse.zero_handling": "skipping",
      "sparse.weight_format": "bitmap", "outer_product.tile_steps": [2, 4]}, "unstructured"),
    ("SIGMA-style flexible", "systolic-32x32-ws",
     {"datapath": "flexible", "flexible.dpe_size": 128, "flexible.distribution_bandwidth": 32,
      "sparse.zero_handling": "skipping", "sparse.weight_format": "bitmap"}, "unstructured"),
)  # fmt: skip


def chip(preset: str, overrides: dict, lanes: int):
    return derive(load_hardware(preset), {**STUDY_MEMORY, **overrides, "vector_unit.lanes": lanes})


def amdahl_bound(dense) -> float:
    """The dense run's cycles over its linear cycles / RATIO plus its attention and vector
    cycles: what the chip could reach if the linear layers ran exactly RATIO times faster and
    every stall vanished (the attention GEMMs and vector ops run the same on both)."""
    split = dense.cycle_breakdown
    return dense.cycles / (split["linear"] / RATIO + split["attention"] + split["vector"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lanes", default="32,1024", help="vector-unit widths to compare")
    parser.add_argument("--out", type=Path, default=default_out(__file__))
    args = parser.parse_args()
    torch.set_num_threads(1)
    weights = encoder_weights()
    workload = build_workload(MODEL, batch=1, seq_len=128)
    out = TableFile()
    out(f"{MODEL} (random-init weights), 128 tokens, batch 1, {RATIO}x compression (N:M: 1:16, "
        "16x); shares of the sparse run's cycles; bound: a perfect 20x on the dense run's "
        "linear layers and no stalls")
    out("")
    header = (f"{'datapath':<31}{'lanes':>6}{'speedup':>9}{'bound':>8}{'linear':>8}"
              f"{'attn':>7}{'vector':>8}{'stalls':>8}{'seq/s':>9}{'dense':>8}")  # fmt: skip
    out(header)
    out("-" * len(header))
    masks_by_pattern: dict[str, dict[str, np.ndarray]] = {}
    for lanes in (int(x) for x in args.lanes.split(",")):
        for name, preset, overrides, pattern in CASES:
            if pattern not in masks_by_pattern:
                sparsity = None if pattern.startswith("nm:") else 1 - 1 / RATIO
                masks_by_pattern[pattern] = {
                    n: np.asarray(m) for n, m in compute_masks(weights, pattern, sparsity).items()
                }
            hw = chip(preset, overrides, lanes)
            started = time.perf_counter()
            result = simulate(attach_masks(workload, masks_by_pattern[pattern]), hw)
            seconds = time.perf_counter() - started
            split, cycles = result.cycle_breakdown, result.cycles
            shares = "".join(
                f"{100 * split[part] / cycles:>{width}.1f}%"
                for part, width in (("linear", 7), ("attention", 6), ("vector", 7), ("stalls", 7))
            )
            out(f"{name:<31}{lanes:>6}{result.speedup:>8.2f}x{amdahl_bound(result.baseline):>7.1f}x"
                f"{shares}{result.sequences_per_s:>9.1f}{result.baseline.sequences_per_s:>8.1f}"
                )  # fmt: skip
            print(f"  ({seconds:.1f} s)", flush=True)
    out("")
    out("SparseBERT (Moffett hardware, MRPC): about 13.5x sentences/s at 20x compression.")
    out.write(args.out)


if __name__ == "__main__":
    main()
