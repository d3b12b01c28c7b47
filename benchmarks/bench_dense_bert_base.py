"""Benchmark: a full BERT-base forward (12 layers, L=128, B=1) on the 32x32 weight-stationary
preset, timed after JIT warm-up, and SCALE-Sim 3.0.0 on one of the same GEMMs in the same run.

Run: python benchmarks/bench_dense_bert_base.py [--repeats N] [--gemm query|ffn_in|...]
     [--out docs/results/bench_dense_bert_base.md]
Prints our time for the whole model and for the one GEMM, SCALE-Sim's time for that GEMM,
the speed ratio per GEMM, and whether the two agree on its compute cycles, and writes the
same lines to ``--out`` (included by docs/speed.md).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

from _table_file import TableFile, default_out

from accel_sim import load_hardware, simulate
from accel_sim.datapaths.systolic.dense import warm_up
from accel_sim.validation.scalesim_ref import run_scalesim
from workloads import Workload, build_workload


def median_seconds(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--gemm", default="query", help="role of the GEMM given to SCALE-Sim")
    parser.add_argument("--hw", default="systolic-32x32-ws")
    parser.add_argument(
        "--out", type=Path, default=default_out(__file__), help="markdown file for the table"
    )
    args = parser.parse_args()

    hw = load_hardware(args.hw)
    workload = build_workload("bert-base-uncased", batch=1, seq_len=128)
    warm_up()
    simulate(workload, hw)  # first call pays any remaining one-off costs
    model_s = median_seconds(lambda: simulate(workload, hw), args.repeats)
    result = simulate(workload, hw)

    gemm = next(op for op in workload.gemms if op.role.value == args.gemm)
    single = Workload(workload.model_name, workload.batch, workload.seq_len, (gemm,))
    ours_gemm_s = median_seconds(lambda: simulate(single, hw), args.repeats)
    ours_cycles = simulate(single, hw).ops[0].compute_cycles

    sram_kb = (
        hw.sram.ifmap.size_bytes // 1024,
        hw.sram.filter.size_bytes // 1024,
        hw.sram.ofmap.size_bytes // 1024,
    )
    (reference,) = run_scalesim(
        [(gemm.m, gemm.k, gemm.n)],
        rows=hw.pe_array.rows,
        cols=hw.pe_array.cols,
        dataflow=hw.pe_array.dataflow.value,
        sram_kb=sram_kb,
    )

    out = TableFile()
    out(
        f"hardware: {hw.name}; model: bert-base-uncased, L=128, B=1, "
        f"{len(workload.gemms)} GEMMs, {len(workload.vector_ops)} vector ops"
    )
    out(
        f"cosim full model: {model_s * 1e3:.2f} ms (median of {args.repeats}, after warm-up); "
        f"{result.cycles:,} cycles, {result.latency_s * 1e3:.3f} ms simulated"
    )
    out(
        f"GEMM {gemm.name} ({gemm.m}x{gemm.k}x{gemm.n}): cosim {ours_gemm_s * 1e6:.1f} us, "
        f"SCALE-Sim {reference.wall_s:.2f} s"
    )
    out(f"speed ratio per GEMM: {reference.wall_s / ours_gemm_s:,.0f}x")
    out(f"speed ratio SCALE-Sim one GEMM vs cosim whole model: {reference.wall_s / model_s:,.0f}x")
    deviation = abs(ours_cycles - reference.compute_cycles) / reference.compute_cycles
    agreement = "exact" if deviation == 0 else f"{100 * deviation:.3f}% off"
    out(
        f"compute cycles: cosim {ours_cycles:,}, SCALE-Sim {reference.compute_cycles:,} "
        f"({agreement})"
    )
    out.write(args.out)


if __name__ == "__main__":
    main()
