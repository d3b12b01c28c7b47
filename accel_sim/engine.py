"""``simulate(workload, hardware) -> SimResult``: a thin evaluator over the components.

GEMMs go to the systolic-array model (``systolic``), everything else to the vector unit
(``vector_unit``); each op's action counts are priced by the energy table (``energy``) and
charged the chip's leakage for as long as the op runs.
"""

from __future__ import annotations

import dataclasses
import time

from accel_sim.config import HardwareConfig, SparseSupport
from accel_sim.crossbar import CrossbarChipConfig, simulate_crossbar
from accel_sim.energy import dynamic_energy_j, leakage_power_w
from accel_sim.op_cost import OpCost
from accel_sim.results import OpResult, SimResult, op_identity
from accel_sim.run_hash import run_config_hash
from accel_sim.sparse_exec import sparse_gemm_op_cost
from accel_sim.systolic import array_parameters, dense_gemm_cost
from accel_sim.vector_unit import vector_cost
from accel_sim.version import __version__
from workloads.ops import GemmOp, VectorOp, Workload


def _op_result(
    op: GemmOp | VectorOp, cost: OpCost, hw: HardwareConfig, leakage_w: float
) -> OpResult:
    latency_s = cost.cycles / hw.pe_array.clock_hz
    energy = dynamic_energy_j(cost.counts, hw)
    energy["leakage"] = leakage_w * latency_s
    is_gemm = isinstance(op, GemmOp)
    counts = cost.counts
    return OpResult(
        **op_identity(op),
        macs=int(cost.counts.macs) if is_gemm else 0,
        compute_cycles=cost.compute_cycles,
        stall_cycles=cost.stall_cycles,
        latency_s=latency_s,
        energy_breakdown_j=energy,
        dram_read_bytes=counts.dram_read_bytes,
        dram_write_bytes=counts.dram_write_bytes,
        sram_read_bytes=counts.sram_read_bytes,
        sram_write_bytes=counts.sram_write_bytes,
        utilisation=cost.counts.macs / (cost.cycles * hw.pe_count)
        if is_gemm and cost.cycles
        else 0.0,
        folds=cost.folds,
        mode=cost.mode if is_gemm else "vector",
        useful_macs=cost.useful_macs if is_gemm else None,
        load_imbalance=cost.load_imbalance,
        bank_conflict=cost.bank_conflict,
        note=cost.note,
    )


def _is_sparse(workload: Workload, hw: HardwareConfig) -> bool:
    """Whether anything about this run differs from plain dense execution."""
    plain = hw.sparse == SparseSupport()
    return not plain or any(op.mask is not None for op in workload.gemms)


def dense_baseline_inputs(
    workload: Workload, hw: HardwareConfig
) -> tuple[Workload, HardwareConfig]:
    """The same model without masks, on the same hardware without sparse support."""
    ops = tuple(
        dataclasses.replace(op, mask=None) if isinstance(op, GemmOp) else op for op in workload
    )
    return dataclasses.replace(workload, ops=ops), hw.model_copy(update={"sparse": SparseSupport()})


def simulate(
    workload: Workload,
    hw: HardwareConfig | CrossbarChipConfig,
    seed: int = 0,
    *,
    baseline: bool | None = None,
) -> SimResult:
    """Run every op of ``workload`` on ``hw`` in order.

    GEMMs run under ``hw.sparse`` with their masks (``accel_sim.sparse_exec``). A sparse run
    (sparse hardware support or masks attached) also simulates the dense baseline, reachable
    as ``result.baseline`` with ``speedup`` and ``energy_ratio``; ``baseline`` forces it on or
    off.
    """
    # --- crossbar chips run their own mapping and timing (accel_sim.crossbar) ---
    if isinstance(hw, CrossbarChipConfig):
        return simulate_crossbar(workload, hw, seed, baseline=baseline)
    # --- end crossbar chips ---
    started = time.perf_counter()
    params = array_parameters(hw)
    leakage_w = leakage_power_w(hw)
    sparse = _is_sparse(workload, hw)
    plain_hw = hw.sparse == SparseSupport()
    gemm_costs: dict[tuple[int, int, int, int], OpCost] = {}
    results = []
    for op in workload:
        if isinstance(op, GemmOp):
            if op.mask is not None or not plain_hw:
                cost = _cached_or(gemm_costs, op, op.mask is None, hw, params)
            else:
                key = (op.m, op.k, op.n, op.count)
                if key not in gemm_costs:
                    gemm_costs[key] = dense_gemm_cost(op.m, op.k, op.n, op.count, hw, params)
                cost = gemm_costs[key]
        else:
            cost = vector_cost(op, hw)
        results.append(_op_result(op, cost, hw, leakage_w))
    dense_run = None
    if baseline if baseline is not None else sparse:
        dense_run = simulate(*dense_baseline_inputs(workload, hw), seed, baseline=False)
    return SimResult(
        model_name=workload.model_name,
        hardware_name=hw.name,
        batch=workload.batch,
        seq_len=workload.seq_len,
        clock_hz=hw.pe_array.clock_hz,
        pe_count=hw.pe_count,
        ops=tuple(results),
        config_hash=run_config_hash(workload, hw, seed),
        version=__version__,
        seed=seed,
        simulation_s=time.perf_counter() - started,
        baseline=dense_run,
    )


def _cached_or(
    cache: dict, op: GemmOp, cacheable: bool, hw: HardwareConfig, params: tuple
) -> OpCost:
    """Sparse-support cost; unmasked GEMMs of equal shape are computed once (weightless ones
    apart from weighted ones, whose storage format may differ), while masked ones always run
    their own mask."""
    if not cacheable:
        return sparse_gemm_op_cost(op, hw, params)
    key = ("sparse", op.m, op.k, op.n, op.count, op.weight_name is None)
    if key not in cache:
        cache[key] = sparse_gemm_op_cost(op, hw, params)
    return cache[key]
