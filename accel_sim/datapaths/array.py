"""What every array chip (systolic or PE array) shares: the op loop, the vector unit, energy
priced from the chip's tables, leakage over each op's latency, and the study columns.

A subclass supplies ``gemm_cost`` (cycles and action counts of one GEMM op) and, if it adds
hardware, ``sparse_area_um2``. Unmasked GEMMs of equal shape are costed once per run.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

from accel_sim.area import area_mm2
from accel_sim.datapaths.base import Datapath, datapath_for
from accel_sim.energy import ENERGY_COMPONENTS, dynamic_energy_j, leakage_power_w
from accel_sim.op_cost import OpCost
from accel_sim.results import OpResult, SimResult, op_identity
from accel_sim.run_hash import run_config_hash
from accel_sim.spec import HardwareConfig, SparseSupport, WeightFormat, ZeroHandling
from accel_sim.traffic import compulsory_dram_bytes
from accel_sim.vector_unit import vector_cost
from accel_sim.version import __version__
from workloads.ops import GemmOp, VectorOp, Workload


class ArrayDatapath(Datapath):
    """Base of the array datapaths (``HardwareConfig`` chips)."""

    hw: HardwareConfig

    @abstractmethod
    def gemm_cost(self, op: GemmOp) -> OpCost:
        """Cycles and action counts of ``op`` (all its instances), given its mask."""

    def sparse_area_um2(self) -> float:
        """Area of the datapath's sparse-support hardware."""
        return 0.0

    def dense_spec(self) -> HardwareConfig:
        """The same chip without sparse support (what ``dense_baseline`` runs)."""
        return self.hw.model_copy(update={"sparse": SparseSupport()})

    def dense_baseline(self) -> Datapath:
        return datapath_for(self.dense_spec())

    @property
    def exploits_sparsity(self) -> bool:
        sparse = self.hw.sparse
        handles_zeros = sparse.zero_handling != ZeroHandling.NONE
        return handles_zeros or sparse.weight_format != WeightFormat.DENSE

    @property
    def energy_components(self) -> tuple[str, ...]:
        return ENERGY_COMPONENTS

    def area_mm2(self) -> dict[str, float]:
        return area_mm2(self.hw, self.sparse_area_um2())

    def compulsory_dram_bytes(self, op: GemmOp) -> float:
        """Inputs, the weight in the spec's format and outputs, once per instance (operands
        and results start and end in DRAM)."""
        return compulsory_dram_bytes(op, self.hw)

    def peak_ops_per_s(self) -> float:
        return 2.0 * self.hw.pe_count * self.hw.pe_array.clock_hz

    def is_sparse_run(self, workload: Workload) -> bool:
        """Sparse when the spec's sparse section differs from the baseline's, or masks are
        attached."""
        masked_ops = any(op.mask is not None for op in workload.gemms)
        return masked_ops or self.hw.sparse != self.dense_spec().sparse

    def _cache_key(self, op: GemmOp) -> tuple | None:
        """GEMMs with the same key cost the same; None: cost this one alone (a masked op)."""
        if op.mask is not None:
            return None
        return (op.m, op.k, op.n, op.count, op.weight_name is None)

    def run(self, workload: Workload, seed: int = 0) -> SimResult:
        hw = self.hw
        leakage_w = leakage_power_w(hw)
        costs: dict[tuple, OpCost] = {}
        results = []
        for op in workload:
            if isinstance(op, GemmOp):
                key = self._cache_key(op)
                if key is None:
                    cost = self.gemm_cost(op)
                elif key in costs:
                    cost = costs[key]
                else:
                    cost = costs[key] = self.gemm_cost(op)
            else:
                cost = vector_cost(op, hw)
            results.append(self._op_result(op, cost, leakage_w))
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
        )

    def _op_result(self, op: GemmOp | VectorOp, cost: OpCost, leakage_w: float) -> OpResult:
        hw = self.hw
        latency_s = cost.cycles / hw.pe_array.clock_hz
        energy = dynamic_energy_j(cost.counts, hw)
        energy["leakage"] = leakage_w * latency_s
        is_gemm = isinstance(op, GemmOp)
        counts = cost.counts
        return OpResult(
            **op_identity(op),
            macs=int(counts.macs) if is_gemm else 0,
            compute_cycles=cost.compute_cycles,
            stall_cycles=cost.stall_cycles,
            latency_s=latency_s,
            energy_breakdown_j=energy,
            dram_read_bytes=counts.dram_read_bytes,
            dram_write_bytes=counts.dram_write_bytes,
            sram_read_bytes=counts.sram_read_bytes,
            sram_write_bytes=counts.sram_write_bytes,
            utilisation=counts.macs / (cost.cycles * hw.pe_count)
            if is_gemm and cost.cycles
            else 0.0,
            folds=cost.folds,
            mode=cost.mode if is_gemm else "vector",
            useful_macs=cost.useful_macs if is_gemm else None,
            load_imbalance=cost.load_imbalance,
            bank_conflict=cost.bank_conflict,
            note=cost.note,
        )

    def study_columns(self, result: SimResult) -> dict[str, Any]:
        hw = self.hw
        breakdown = result.energy_breakdown_j
        return {
            "zero_handling": hw.sparse.zero_handling.value,
            "weight_format": hw.sparse.weight_format.value,
            "pe_rows": hw.pe_array.rows,
            "pe_cols": hw.pe_array.cols,
            "sram_bytes": hw.sram_bytes,
            "dram_bandwidth_bytes_per_s": hw.dram.bandwidth_bytes_per_s,
            **{f"energy_{c}_j": breakdown.get(c, 0.0) for c in ENERGY_COMPONENTS},
        }
