"""Benchmark: what the mapper changes, against SCALE-Sim's fixed schedule, on the cases that
motivated it, and dense BERT-base DRAM traffic against its lower bounds.

Run: python benchmarks/bench_mapper.py [--repeats N] [--out docs/results/bench_mapper.md]

"SCALE-Sim's schedule" is ``mapping.search: fixed`` with serial preload and nothing kept on
chip; "mapped" is each preset as shipped (best mapping per GEMM, overlapped preload,
activations kept on chip when they fit). Sections:

1. The cases: a 2:4 GEMM of 4096x64x32; BERT-base at 384 tokens, batch 1 and 8, on a 64x64
   array with 1 MiB buffers (the 128x128 preset's ports and 256 GB/s); fill and drain of a
   128x1152x1024 GEMM; dense BERT-base's stall share; 2:4 on all-MiniLM-L6-v2 end to end.
2. Dense BERT-base DRAM traffic per GEMM role on the 32x32 and 128x128 presets, beside the
   compulsory traffic (each operand once) and the tiling lower bound 2 M N K w / sqrt(S / w)
   bytes for words of w bytes and S bytes on chip (Hong and Kung 1981; Smith et al. 2019 show
   it tight up to lower-order terms).
3. Speed: a dense BERT-base point with the mapping search (cache emptied first) and the
   mapper's share of it.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np
from _table_file import TableFile, default_out

from accel_sim import load_hardware, simulate
from accel_sim.mapping import cache
from accel_sim.spec import derive
from workloads import GemmOp, GemmRole, Workload, attach_masks, build_workload

SCALESIM = {"mapping.search": "fixed", "mapping.preload": "serial",
            "residency.activations_on_chip": False}  # fmt: skip


def scalesim(hw):
    return derive(hw, SCALESIM)


def two_of_four(n: int, k: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (np.argsort(rng.random((n, k // 4, 4)), axis=2) < 2).reshape(n, k)


def cases(out: TableFile) -> None:
    out("1. The cases (SCALE-Sim's schedule -> mapped)")
    out("")
    hw = load_hardware("systolic-32x32-ws-nm")
    m, k, n = 4096, 64, 32
    op = GemmOp("g", GemmRole.FFN_IN, m=m, k=k, n=n, weight_name="w", mask=two_of_four(n, k))
    gemm = Workload("gemm", 1, m, (op,))
    fixed, best = simulate(gemm, scalesim(hw)), simulate(gemm, hw)
    out(f"2:4 {m}x{k}x{n} on {hw.name}: speedup {fixed.speedup:.2f}x -> {best.speedup:.2f}x "
        f"(bound 2.00x); dense baseline {fixed.baseline.cycles:,} -> "
        f"{best.baseline.cycles:,} cycles ({best.baseline.ops[0].mapping})")  # fmt: skip

    big = derive(load_hardware("systolic-128x128-ws"), {
        "pe_array.rows": 64, "pe_array.cols": 64, "sram.ifmap.size_bytes": 1 << 20,
        "sram.filter.size_bytes": 1 << 20, "sram.ofmap.size_bytes": 1 << 20,
        "name": "64x64-1MiB-256GB/s"})  # fmt: skip
    bigger = derive(big, {"sram.ofmap.size_bytes": 4 << 20})
    for label, spec in (("1 MiB ofmap", big), ("4 MiB ofmap", bigger)):
        rates = []
        for chip in (scalesim(spec), spec):
            rates.append([simulate(build_workload("bert-base-uncased", batch=b, seq_len=384),
                                   chip).sequences_per_s for b in (1, 8)])  # fmt: skip
        (f1, f8), (b1, b8) = rates
        out(f"BERT-base, 384 tokens, on 64x64 WS, {label}, 256 GB/s: sequences/s batch 1 / "
            f"batch 8: {f1:.1f} / {f8:.1f} -> {b1:.1f} / {b8:.1f}")  # fmt: skip

    hw32 = load_hardware("systolic-32x32-ws")
    roomy = derive(hw32, {"dram.bandwidth_bytes_per_s": 1e15,
                          "sram.ifmap.size_bytes": 1 << 30, "sram.filter.size_bytes": 1 << 30,
                          "sram.ofmap.size_bytes": 1 << 30})  # fmt: skip
    op = GemmOp("g", GemmRole.FFN_IN, m=128, k=1152, n=1024, weight_name="w")
    gemm = Workload("gemm", 1, 128, (op,))
    fixed, best = simulate(gemm, scalesim(roomy)), simulate(gemm, roomy)
    ideal = op.macs / hw32.pe_count
    out(f"128x1152x1024 on 32x32 (compute-bound): {fixed.cycles:,} -> {best.cycles:,} cycles; "
        f"ideal {ideal:,.0f} (MACs / 1024): {fixed.cycles / ideal:.2f}x -> "
        f"{best.cycles / ideal:.2f}x of ideal")  # fmt: skip

    bert = build_workload("bert-base-uncased")
    fixed, best = simulate(bert, scalesim(hw32)), simulate(bert, hw32)
    out(f"dense BERT-base on {hw32.name}: stalls {fixed.stall_cycles / fixed.cycles:.0%} of "
        f"{fixed.cycles:,} cycles -> {best.stall_cycles / best.cycles:.0%} of "
        f"{best.cycles:,}")  # fmt: skip

    nm = load_hardware("systolic-32x32-ws-nm")
    minilm = build_workload("all-MiniLM-L6-v2")
    masks = {o.weight_name: two_of_four(o.n, o.k, seed=i) for i, o in enumerate(minilm.gemms)
             if o.weight_name and o.role.value not in ("pooler", "classifier")}  # fmt: skip
    minilm = attach_masks(minilm, masks)
    fixed, best = simulate(minilm, scalesim(nm)), simulate(minilm, nm)
    out(f"2:4 all-MiniLM-L6-v2 end to end on {nm.name}: {fixed.speedup:.2f}x -> "
        f"{best.speedup:.2f}x")  # fmt: skip
    out("")


def tiling_bound_bytes(op: GemmOp, word: int, chip_bytes: int) -> float:
    words = chip_bytes / word
    return op.count * 2 * op.m * op.n * op.k * word / math.sqrt(words)


def traffic(out: TableFile) -> None:
    out("2. Dense BERT-base DRAM traffic, MB (batch 1, 128 tokens)")
    out("")
    out("mapped: DRAM bytes under the best mappings; kept: bytes the mapped run kept on chip")
    out("instead (residency); the bounds assume every operand starts and ends in DRAM, so the")
    out("last column compares them with mapped + kept.")
    out("")
    header = (f"{'preset':<20} {'GEMM role':<18} {'SCALE-Sim':>10} {'mapped':>9} {'kept':>7} "
              f"{'compulsory':>10} {'tiling LB':>9} {'(m+k)/LB':>9}")  # fmt: skip
    out(header)
    out("-" * len(header))
    bert = build_workload("bert-base-uncased")
    for name in ("systolic-32x32-ws", "systolic-128x128-ws"):
        hw = load_hardware(name)
        word, chip = hw.word_bytes, hw.core_sram_bytes
        fixed, best = simulate(bert, scalesim(hw)), simulate(bert, hw)
        rows: dict[str, list[float]] = {}
        fixed_gemms = [o for o in fixed.ops if o.kind == "gemm"]
        best_gemms = [o for o in best.ops if o.kind == "gemm"]
        for op, f_op, b_op in zip(bert.gemms, fixed_gemms, best_gemms, strict=True):
            compulsory = op.count * (op.m * op.k + op.k * op.n + op.m * op.n) * word
            bound = max(compulsory, tiling_bound_bytes(op, word, chip))
            row = rows.setdefault(op.role.value, [0.0] * 5)
            values = (f_op.dram_bytes, b_op.dram_bytes, b_op.dram_bytes_avoided, compulsory,
                      bound)  # fmt: skip
            for i, value in enumerate(values):
                row[i] += value
        totals = [sum(r[i] for r in rows.values()) for i in range(5)]
        for role, row in [*rows.items(), ("all GEMMs", totals)]:
            mb = [value / 1e6 for value in row]
            out(f"{name:<20} {role:<18} {mb[0]:>10.2f} {mb[1]:>9.2f} {mb[2]:>7.2f} "
                f"{mb[3]:>10.2f} {mb[4]:>9.2f} {(row[1] + row[2]) / row[4]:>9.2f}")  # fmt: skip
    out("")


def median_s(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def speed(out: TableFile, repeats: int) -> None:
    out("3. Speed (dense BERT-base, 128 tokens, batch 1, systolic-32x32-ws)")
    out("")
    bert = build_workload("bert-base-uncased")
    hw = load_hardware("systolic-32x32-ws")
    fixed_hw = derive(hw, {"mapping.search": "fixed"})
    simulate(bert, hw)

    def cold(spec):
        cache.clear()
        simulate(bert, spec)

    searched = median_s(lambda: cold(hw), repeats)
    one = median_s(lambda: cold(fixed_hw), repeats)
    warm = median_s(lambda: simulate(bert, hw), repeats)
    out(f"whole point with the mapping search, cache emptied first: {searched * 1e3:.1f} ms "
        f"(median of {repeats})")  # fmt: skip
    out(f"the same point under one fixed mapping per GEMM: {one * 1e3:.1f} ms; the search's "
        f"share: {(searched - one) * 1e3:.1f} ms ({(searched - one) / searched:.0%})")  # fmt: skip
    out(f"with the mapping cache warm (a sweep revisiting these shapes): {warm * 1e3:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--out", type=Path, default=default_out(__file__))
    args = parser.parse_args()
    out = TableFile()
    cases(out)
    traffic(out)
    speed(out, args.repeats)
    out.write(args.out)


if __name__ == "__main__":
    main()
