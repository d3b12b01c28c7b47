"""Benchmark: the EIE-style PE array on EIE's own layers: FIFO depth, PE count and broadcast
width on AlexNet's FC6-FC8 at the densities EIE reports.

Run: python benchmarks/bench_eie.py [--seed 0] [--out docs/results/bench_eie.md]

The layers and densities are EIE's Table III (Han et al., "EIE: Efficient Inference Engine on
Compressed Deep Neural Network", ISCA 2016): Alex-6 9216 -> 4096 with 9 % of the weights and
35.1 % of the input activations nonzero, Alex-7 4096 -> 4096 (9 %, 35.3 %), Alex-8 4096 ->
1000 (25 %, 37.5 %); one input vector at a time (batch 1), as EIE runs FC layers. EIE used
the real pruned AlexNet; these masks are random at those densities (weights uniformly per
matrix, activations per element), so they are more balanced than real ones.

1. FIFO depth 1 to 256 on 64 PEs (EIE's Figure 8 sweep): load-balance efficiency, EIE's
   measure: PE-cycles spent on work over PE-cycles of the layer (1 - idle fraction).
2. PE count 16 to 4,096 at broadcast width 1, 4 and 16: cycles of the sparse layer, of the same
   array running the dense layer (every weight, every activation), and the broadcast bound
   (nonzero activations / width).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np
from _table_file import TableFile, default_out

from accel_sim.datapaths.pe_array.fifo_array import simulate_unstructured

# EIE (ISCA 2016) Table III: (name, inputs, outputs, weight density, activation density).
ALEXNET_FC = (
    ("Alex-6", 9216, 4096, 0.09, 0.351),
    ("Alex-7", 4096, 4096, 0.09, 0.353),
    ("Alex-8", 4096, 1000, 0.25, 0.375),
)
DEPTHS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
PE_COUNTS = (16, 64, 256, 1024, 4096)
WIDTHS = (1, 4, 16)
RUN_BITS = 4  # EIE's 4-bit zero runs


def layer_masks(n_in: int, n_out: int, weights: float, acts: float, seed: int):
    rng = np.random.default_rng(seed)
    mask = rng.random((n_out, n_in)) < weights
    activations = rng.random((1, n_in)) < acts
    return mask, activations


def efficiency(stats) -> float:
    return 1.0 - stats.idle_fraction


def fifo_sweep(out: TableFile, seed: int) -> None:
    out("1. Load-balance efficiency vs FIFO depth, 64 PEs, RLE with 4-bit runs")
    out("")
    out(f"{'depth':>5} " + " ".join(f"{name:>8}" for name, *_ in ALEXNET_FC))
    layers = [layer_masks(i, o, w, a, seed) for _, i, o, w, a in ALEXNET_FC]
    for depth in DEPTHS:
        row = [
            efficiency(simulate_unstructured(mask, 1, 64, depth, activations=acts,
                                             run_bits=RUN_BITS))
            for mask, acts in layers
        ]  # fmt: skip
        out(f"{depth:>5} " + " ".join(f"{value:>8.1%}" for value in row))
    out("")


def scaling(out: TableFile, seed: int) -> None:
    out("2. Alex-7 cycles vs PE count and broadcast width (occupancy filter on when the")
    out("   width is above 1: without it every PE spends a cycle on every activation)")
    out("")
    _, n_in, n_out, weights, acts = ALEXNET_FC[1]
    mask, activations = layer_masks(n_in, n_out, weights, acts, seed)
    dense = np.ones_like(mask)
    entries = int(activations.sum())
    header = f"{'PEs':>5} {'width':>5} {'sparse':>9} {'dense':>9} {'speedup':>8} {'bound':>7}"
    out(header)
    out("-" * len(header))
    for pes in PE_COUNTS:
        for width in WIDTHS:
            sparse = simulate_unstructured(
                mask, 1, pes, 8, activations=activations, run_bits=RUN_BITS,
                broadcast_width=width, min_cycles_per_entry=0 if width > 1 else 1,
            )  # fmt: skip
            full = simulate_unstructured(dense, 1, pes, 8, broadcast_width=width)
            bound = -(-entries // width)
            out(f"{pes:>5} {width:>5} {sparse.cycles:>9,} {full.cycles:>9,} "
                f"{full.cycles / sparse.cycles:>7.2f}x {bound:>7,}")  # fmt: skip
    out("")
    out(f"Alex-7: {entries:,} nonzero activations of {n_in:,}; weight density {weights:.0%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=default_out(__file__))
    args = parser.parse_args()
    out = TableFile()
    fifo_sweep(out, args.seed)
    scaling(out, args.seed)
    out.write(args.out)


if __name__ == "__main__":
    main()
