"""``simulate(workload, hardware) -> SimResult``: a thin evaluator over the components.

GEMMs go to the systolic-array model (``systolic``), everything else to the vector unit
(``vector_unit``); each op's action counts are priced by the energy table (``energy``) and
charged the chip's leakage for as long as the op runs.
"""

from __future__ import annotations

import hashlib
import json
import time

from accel_sim.config import HardwareConfig
from accel_sim.energy import dynamic_energy_j, leakage_power_w
from accel_sim.op_cost import OpCost
from accel_sim.results import OpResult, SimResult
from accel_sim.systolic import array_parameters, dense_gemm_cost
from accel_sim.vector_unit import vector_cost
from accel_sim.version import __version__
from workloads.ops import GemmOp, VectorOp, Workload


def run_config_hash(workload: Workload, hw: HardwareConfig, seed: int = 0) -> str:
    """Hash of everything that determines a result: hardware, workload shapes, code version."""
    # A masked GEMM adds its kept-entry count (weight_density is in the result); dense
    # workloads hash exactly as before masks existed.
    shapes = [
        (op.name, op.m, op.k, op.n, op.count, *(() if op.mask is None else (op.weight_nnz,)))
        if isinstance(op, GemmOp)
        else (op.name, op.kind.value, op.elements)
        for op in workload
    ]
    identity = {
        "hardware": hw.model_dump(mode="json"),
        "model": workload.model_name,
        "batch": workload.batch,
        "seq_len": workload.seq_len,
        "ops": shapes,
        "version": __version__,
        "seed": seed,
    }
    canonical = json.dumps(identity, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _op_result(
    op: GemmOp | VectorOp, cost: OpCost, hw: HardwareConfig, leakage_w: float
) -> OpResult:
    latency_s = cost.cycles / hw.pe_array.clock_hz
    energy = dynamic_energy_j(cost.counts, hw)
    energy["leakage"] = leakage_w * latency_s
    is_gemm = isinstance(op, GemmOp)
    counts = cost.counts
    return OpResult(
        name=op.name,
        kind="gemm" if is_gemm else op.kind.value,
        role=op.role.value if is_gemm else None,
        layer=op.layer,
        m=op.m if is_gemm else None,
        n=op.n if is_gemm else None,
        k=op.k if is_gemm else None,
        count=op.count if is_gemm else 1,
        elements=None if is_gemm else op.elements,
        macs=op.macs,
        compute_cycles=cost.compute_cycles,
        stall_cycles=cost.stall_cycles,
        latency_s=latency_s,
        energy_breakdown_j=energy,
        dram_read_bytes=counts.dram_read_bytes,
        dram_write_bytes=counts.dram_write_bytes,
        sram_read_bytes=counts.sram_read_bytes,
        sram_write_bytes=counts.sram_write_bytes,
        utilisation=op.macs / (cost.cycles * hw.pe_count) if is_gemm and cost.cycles else 0.0,
        folds=cost.folds,
        weight_nnz=op.weight_nnz if is_gemm and op.mask is not None else None,
    )


def simulate(workload: Workload, hw: HardwareConfig, seed: int = 0) -> SimResult:
    """Run every op of ``workload`` on ``hw`` in order (dense execution)."""
    started = time.perf_counter()
    params = array_parameters(hw)
    leakage_w = leakage_power_w(hw)
    gemm_costs: dict[tuple[int, int, int, int], OpCost] = {}
    results = []
    for op in workload:
        if isinstance(op, GemmOp):
            # Masks are not part of the key: cost is dense (zeros are multiplied like any
            # other value) until sparse execution lands, so equal shapes cost the same.
            key = (op.m, op.k, op.n, op.count)
            if key not in gemm_costs:
                gemm_costs[key] = dense_gemm_cost(op.m, op.k, op.n, op.count, hw, params)
            cost = gemm_costs[key]
        else:
            cost = vector_cost(op, hw)
        results.append(_op_result(op, cost, hw, leakage_w))
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
    )
