"""Benchmark: latency of the dual-side sparse outer-product array (DSTC style) against its own
dense baseline, over activation density 1.0 to 0.3 and weight density 1.0 and 0.4, beside the
product of the densities.

Run: python benchmarks/bench_dual_side.py [--size 1024] [--hw dual-side-32x32]
     [--activation-densities 1.0,0.9,...,0.3] [--weight-densities 1.0,0.4] [--seed 0]
     [--no-study] [--out docs/results/bench_dual_side.md]
One GEMM ``Y[size, size] = X[size, size] @ W[size, size]^T``: a random weight mask of the
given density, activation zeros where ``accel_sim.activations`` draws them. Normalised
latency is sparse cycles (stalls included) over the dense baseline's (the same array computing
every pair). Beside the preset, two variants show what the gather and the merge stage cost:
the ifmap/filter ports at the systolic presets' 32 B/cycle, and an accumulation buffer of
only 32x32 banks (bank conflicts). Then (unless ``--no-study``) the outer-product points of
the built-in ``compression`` study (BERT-base, 128 tokens, random-init magnitude masks), with
the sparse run's cycles split into linear layers, attention GEMMs, vector ops and stalls.
Writes the tables to ``--out`` (included by docs/dual-side.md).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np
from _table_file import TableFile, default_out

from accel_sim import simulate
from accel_sim.datapaths import datapath_for
from accel_sim.datapaths.outer_product.model import warm_up
from accel_sim.spec import derive, load_hardware
from workloads import GemmOp, GemmRole, Workload

ACTIVATION_DENSITIES = "1.0,0.9,0.8,0.7,0.6,0.5,0.4,0.3"
ATTENTION_ROLES = ("attention_scores", "attention_context")


def variants(hw) -> dict[str, object]:
    """The preset and the two variants the table compares."""
    rows, cols = hw.pe_array.rows, hw.pe_array.cols
    return {
        "preset": hw,
        "ports": derive(hw, {"sram.ifmap.bytes_per_cycle": 32, "sram.filter.bytes_per_cycle": 32}),
        "banks": derive(hw, {"outer_product.accumulator_banks": [rows, cols]}),
    }


def run(hw, size: int, mask: np.ndarray, activation_density: float):
    op = GemmOp("gemm", GemmRole.FFN_IN, m=size, k=size, n=size, weight_name="w", mask=mask,
                activation_density=activation_density)  # fmt: skip
    result = simulate(Workload("dual-side", 1, size, (op,)), hw, baseline=True)
    stats = datapath_for(hw).simulate(op)
    dense_steps = datapath_for(hw).dense_baseline().simulate(op).steps
    return result, stats.steps / dense_steps


def cycle_split(result) -> dict[str, int]:
    """Compute cycles of linear layers, attention GEMMs and vector ops, and all stalls."""
    split = {"linear": 0, "attention": 0, "vector": 0, "stalls": result.stall_cycles}
    for op in result.ops:
        if op.kind != "gemm":
            split["vector"] += op.compute_cycles
        elif op.role in ATTENTION_ROLES:
            split["attention"] += op.compute_cycles
        else:
            split["linear"] += op.compute_cycles
    return split


def study_table(out: TableFile) -> None:
    """The outer-product points of the built-in compression study."""
    from studies.evaluate import simulate_point
    from studies.spec import expand as expand_study
    from studies.spec import load_spec

    spec, base = load_spec("compression")
    points = [
        p for p in expand_study(spec, base) if p["hardware"].get("datapath") == "outer-product"
    ]
    hw = points[0]["hardware"]
    out()
    out(
        f"Built-in study `compression`, its outer-product points: {points[0]['model']}, "
        f"{points[0]['seq_len']} tokens, batch {points[0]['batch']}, unstructured magnitude masks "
        f"of random-init weights, dense activations (GELU BERT); "
        f"{hw['pe_array']['rows']}x{hw['pe_array']['cols']} multipliers, ifmap/filter ports "
        f"{hw['sram']['ifmap']['bytes_per_cycle']:g} B/cycle as the study's systolic arrays. "
        "Cycles of the sparse run, in thousands:"
    )
    out()
    out(
        "| compression [x] | weight density | speedup [x] | sequences/s | dense sequences/s "
        "| energy / dense | linear | attention | vector | stalls |"
    )
    out("|---|---|---|---|---|---|---|---|---|---|")
    for point in sorted(points, key=lambda p: p["sparsity"]):
        result, *_ = simulate_point(point)
        split = cycle_split(result)
        density = result.weight_density
        out(
            f"| {1 / density:.1f} | {density:.3f} | {result.speedup:.2f} "
            f"| {result.sequences_per_s:,.1f} | {result.baseline.sequences_per_s:,.1f} "
            f"| {result.energy_ratio:.3f} | "
            + " | ".join(f"{split[key] / 1e3:,.0f}" for key in split)
            + " |"
        )
    dense = result.baseline
    split = cycle_split(dense)
    out(
        f"| dense baseline | 1.000 | 1.00 | {dense.sequences_per_s:,.1f} "
        f"| {dense.sequences_per_s:,.1f} | 1.000 | "
        + " | ".join(f"{split[key] / 1e3:,.0f}" for key in split)
        + " |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024, help="M = N = K")
    parser.add_argument("--hw", default="dual-side-32x32")
    parser.add_argument("--activation-densities", default=ACTIVATION_DENSITIES)
    parser.add_argument("--weight-densities", default="1.0,0.4")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-study", action="store_true", help="skip the BERT-base table")
    parser.add_argument(
        "--out", type=Path, default=default_out(__file__), help="markdown file for the table"
    )
    args = parser.parse_args()
    acts = [float(v) for v in args.activation_densities.split(",")]
    weights = [float(v) for v in args.weight_densities.split(",")]
    hw = load_hardware(args.hw)
    chips = variants(hw)
    geometry = datapath_for(hw).geometry()
    warm_up()

    out = TableFile(fenced=False)
    out(
        f"M = N = K = {args.size}, int8, on `{args.hw}` ({hw.pe_array.rows}x{hw.pe_array.cols} "
        f"multipliers, {geometry.tile_m}x{geometry.tile_n} output tiles, ifmap/filter ports "
        f"{hw.sram.ifmap.bytes_per_cycle:g}/{hw.sram.filter.bytes_per_cycle:g} B/cycle); "
        f"random weight mask (seed {args.seed}) and activation zeros. Normalised latency: "
        "sparse / dense cycles on the same array."
    )
    out()
    out(
        "| weight density | activation density | density product | normalised latency "
        "| latency / product | array steps / dense | energy / dense "
        "| ports 32 B/cycle | 32x32 accumulator banks | published (DSTC) |"
    )
    out("|---|---|---|---|---|---|---|---|---|---|")
    rng = np.random.default_rng(args.seed)
    for weight_density in weights:
        mask = rng.random((args.size, args.size)) < weight_density
        kept = float(mask.mean())
        for act in acts:
            result, steps = run(chips["preset"], args.size, mask, act)
            latency = result.cycles / result.baseline.cycles
            product = kept * act
            ports, _ = run(chips["ports"], args.size, mask, act)
            banks, _ = run(chips["banks"], args.size, mask, act)
            out(
                f"| {kept:.3f} | {act:.1f} | {product:.3f} | {latency:.3f} "
                f"| {latency / product:.2f} | {steps:.3f} | {result.energy_ratio:.3f} "
                f"| {ports.cycles / ports.baseline.cycles:.3f} "
                f"| {banks.cycles / banks.baseline.cycles:.3f} | not available |"
            )
    out()
    out(
        "Published (DSTC): the paper's per-density SpGEMM figures could not be read here (no "
        "copy of the paper or of its figure data in the sources available to this project); "
        "docs/dual-side.md lists what second-hand descriptions of it state."
    )
    if not args.no_study:
        study_table(out)
    out.write(args.out)


if __name__ == "__main__":
    main()
