"""Benchmark: crossbars freed, energy and latency of pruned MiniLM on an ISAAC-class chip.

Run: python benchmarks/bench_crossbar.py [--model all-MiniLM-L6-v2] [--seq-len 128]
    [--hw isaac-crossbar] [--sparsities 0.5,0.8,0.9] [--out docs/results/bench_crossbar.md]

Masks come from one-shot magnitude pruning of the encoder (all-MiniLM-L6-v2: the real
pre-trained weights) with each pattern (unstructured, block:4x4, crossbar:128x128). For every
(pattern, sparsity) it prints the crossbars one copy of the weights needs, the replication the
freed crossbars allow, latency, energy, speedup and energy ratio against the dense mapping of
the same model on the same chip, and the ADC share of the energy. First it prints the preset's
per-tile peak power and area by component against ISAAC's Table I tile (330 mW, 0.372 mm^2),
the ADC share of each, pJ per MAC and GOPS/W at peak (all crossbars busy on dense blocks; the
sigmoid and max-pool units, which BERT never uses, at their Table I power, as Table I counts
them; 1 MAC = 2 ops). Then the forward latency run layer
by layer against pipelined across tiles (``mapping.execution``) for the dense model and
crossbar:128x128 masks, and the speed of the fast timing engine against the cycle-stepping
reference on one layer. The same lines go to ``--out`` (included by docs/crossbar.md).
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

from accel_sim import load_hardware, simulate
from accel_sim.datapaths.crossbar import (
    IDLE_TILE_UNITS,
    block_stats,
    chip_area_mm2,
    crossbar_timing,
    peak_macs_per_s,
    tile_area_mm2,
    tile_power_w,
)
from pruning.masks import compute_masks
from pruning.models import load_model
from pruning.targets import prunable_weights
from workloads import attach_masks, build_workload

PATTERNS = ("unstructured", "block:4x4", "crossbar:128x128")
TABLE_I_TILE_W, TABLE_I_TILE_MM2 = 0.330, 0.372  # ISAAC (ISCA 2016) Table I, per tile


def print_chip(hw, out) -> None:
    power, area = tile_power_w(hw), tile_area_mm2(hw)
    tile_w, tile_mm2 = sum(power.values()), sum(area.values())
    out(
        f"{hw.name}: {hw.tiles} tiles x {hw.tile.crossbars} crossbars "
        f"{hw.crossbar.rows}x{hw.crossbar.cols}, {hw.crossbar.bits_per_cell} b/cell, "
        f"{hw.encoding.weight_bits}-bit weights, {hw.encoding.input_bits}-bit inputs"
    )
    out(f"\n{'per tile':<12}{'power mW':>10}{'share':>8}{'area mm2':>11}{'share':>8}")
    for name in area:
        watts = power.get(name, 0.0)
        out(
            f"{name:<12}{1e3 * watts:>10.2f}{100 * watts / tile_w:>7.1f}%"
            f"{area[name]:>11.5f}{100 * area[name] / tile_mm2:>7.1f}%"
            + ("  idle (unused by BERT)" if name in IDLE_TILE_UNITS else "")
        )
    out(f"{'tile total':<12}{1e3 * tile_w:>10.2f}{'':>8}{tile_mm2:>11.5f}")
    out(
        f"{'Table I':<12}{1e3 * TABLE_I_TILE_W:>10.2f}{'':>8}{TABLE_I_TILE_MM2:>11.5f}"
        f"  (model {100 * (tile_w / TABLE_I_TILE_W - 1):+.2f} % power, "
        f"{100 * (tile_mm2 / TABLE_I_TILE_MM2 - 1):+.2f} % area)"
    )
    chip_w = tile_w * hw.tiles
    chip_mm2 = sum(chip_area_mm2(hw).values())
    macs = peak_macs_per_s(hw)
    out(
        f"\nADC share: {100 * power['adc'] / tile_w:.1f} % of tile power, "
        f"{100 * area['adc'] / tile_mm2:.1f} % of tile area"
    )
    out(
        f"chip (crossbar tiles): {chip_w:.2f} W, {chip_mm2:.2f} mm^2 incl. digital unit; "
        f"peak {macs / 1e12:.2f} TMAC/s = {2 * macs / 1e12:.2f} TOPS"
    )
    out(
        f"pJ per MAC (peak, tiles only): {1e12 * chip_w / macs:.3f}; "
        f"GOPS/W: {2 * macs / 1e9 / chip_w:.1f}; GOPS/s/mm^2: {2 * macs / 1e9 / chip_mm2:.1f}\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--hw", default="isaac-crossbar")
    parser.add_argument("--sparsities", default="0.5,0.8,0.9")
    parser.add_argument(
        "--out", type=Path, default=default_out(__file__), help="markdown file for the table"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    hw = load_hardware(args.hw)
    out = TableFile()
    print_chip(hw, out)

    loaded = load_model(args.model)
    weights = {n: w.detach().clone() for n, w in prunable_weights(loaded.model).items()}
    workload = build_workload(args.model, batch=1, seq_len=args.seq_len)
    note = "synthetic (random) weights" if loaded.synthetic_weights else "real weights"
    dense = simulate(workload, hw)
    out(
        f"{args.model} ({note}), batch 1, seq len {args.seq_len}; dense mapping: "
        f"{dense.crossbars_unreplicated:,} crossbars (x{dense.replication} replicas), "
        f"{1e3 * dense.latency_s:.3f} ms, {1e3 * dense.energy_j:.3f} mJ\n"
    )
    header = (
        f"{'pattern':<18}{'sparsity':>9}{'crossbars':>10}{'freed':>7}{'repl':>5}"
        f"{'latency ms':>11}{'energy mJ':>10}{'speedup':>9}{'energy':>8}{'ADC %':>7}"
        f"{'sim ms':>8}"
    )
    out(header)
    out("-" * len(header))
    for pattern in PATTERNS:
        for text in args.sparsities.split(","):
            masks = compute_masks(weights, pattern, float(text))
            masked = attach_masks(workload, {n: m.numpy() for n, m in masks.items()})
            started = time.perf_counter()
            result = simulate(masked, hw)
            wall_ms = 1e3 * (time.perf_counter() - started)
            freed = 1 - result.crossbars_unreplicated / result.baseline.crossbars_unreplicated
            adc = result.energy_breakdown_j["adc"] / result.energy_j
            out(
                f"{pattern:<18}{1 - result.weight_density:>9.2f}"
                f"{result.crossbars_unreplicated:>10,}{100 * freed:>6.1f}%"
                f"{result.replication:>5}{1e3 * result.latency_s:>11.3f}"
                f"{1e3 * result.energy_j:>10.3f}{result.speedup:>8.2f}x"
                f"{result.energy_ratio:>7.2f}x{100 * adc:>6.1f}%{wall_ms:>8.0f}"
            )
    crossbar_masks = []
    for text in args.sparsities.split(","):
        masks = compute_masks(weights, "crossbar:128x128", float(text))
        masked = attach_masks(workload, {n: m.numpy() for n, m in masks.items()})
        crossbar_masks.append((f"crossbar:128x128 {float(text):.2f}", masked))
    print_execution(hw, workload, crossbar_masks, out)
    print_engine_speed(hw, crossbar_masks[0][1], out)
    out(
        "\ncrossbars = one copy of the weights; freed = share of the dense mapping's crossbars "
        "not needed; repl = replicas the chip holds (mapping.replication auto); speedup and "
        "energy are against the dense mapping on the same chip; sim ms includes the dense run."
    )
    out.write(args.out)


def with_execution(hw, execution: str):
    mapping = hw.mapping.model_copy(update={"execution": execution})
    return hw.model_copy(update={"mapping": mapping})


def print_execution(hw, workload, masks_by_sparsity, out) -> None:
    out(f"\n{'masks':<26}{'layer ms':>10}{'pipelined ms':>14}{'gain':>7}  execution")
    for label, masked in [("dense", workload), *masks_by_sparsity]:
        layer = simulate(masked, with_execution(hw, "layer"), baseline=False)
        piped = simulate(masked, with_execution(hw, "pipelined"), baseline=False)
        out(
            f"{label:<26}{1e3 * layer.latency_s:>10.3f}{1e3 * piped.latency_s:>14.3f}"
            f"{layer.latency_s / piped.latency_s:>6.2f}x  {piped.execution}"
        )


def print_engine_speed(hw, masked, out) -> None:
    op = next(op for op in masked.gemms if op.weight_name is not None and op.layer == 0)
    xb = hw.crossbar
    stats = block_stats(op.mask, op.n, op.k, xb.rows, xb.cols, xb.adcs_per_crossbar)
    timing = crossbar_timing(hw, op, stats, 1)
    zeros = np.zeros(op.m * op.count, dtype=np.int64)
    walls, ticks = {}, {}
    for engine in ("event", "stepping"):
        timing.finish_ticks(zeros[:1], engine)  # compile
        started = time.perf_counter()
        ticks[engine] = int(timing.finish_ticks(zeros, engine).max())
        walls[engine] = time.perf_counter() - started
    out(
        f"\ntiming engines on {op.name} ({op.m} tokens, {timing.adc_load.shape[0]} crossbars, "
        f"replication 1): event {1e3 * walls['event']:.3f} ms, stepping "
        f"{1e3 * walls['stepping']:.1f} ms ({walls['stepping'] / walls['event']:.0f}x), "
        f"{ticks['event']:,} ticks each, equal: {ticks['event'] == ticks['stepping']}"
    )


if __name__ == "__main__":
    main()
