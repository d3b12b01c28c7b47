"""Simulation results: per-op and totals, with the tidy-table and JSON views the CLI writes."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from accel_sim.energy import ENERGY_COMPONENTS
from workloads.ops import GemmOp, GemmRole, VectorOp

# Weightless GEMMs: what weight pruning leaves untouched.
ATTENTION_ROLES = frozenset({GemmRole.ATTENTION_SCORES.value, GemmRole.ATTENTION_CONTEXT.value})

if TYPE_CHECKING:  # pandas is imported by to_frame, not for every simulation
    import pandas as pd


def op_identity(op: GemmOp | VectorOp) -> dict[str, Any]:
    """The fields of an :class:`OpResult` that describe the op itself, not its cost (shared by
    every simulator that builds op results)."""
    is_gemm = isinstance(op, GemmOp)
    return {
        "name": op.name,
        "kind": "gemm" if is_gemm else op.kind.value,
        "role": op.role.value if is_gemm else None,
        "layer": op.layer,
        "m": op.m if is_gemm else None,
        "n": op.n if is_gemm else None,
        "k": op.k if is_gemm else None,
        "count": op.count if is_gemm else 1,
        "elements": None if is_gemm else op.elements,
        "weight_nnz": op.weight_nnz if is_gemm and op.mask is not None else None,
    }


@dataclass(frozen=True)
class OpResult:
    """One op of the workload as it ran on the hardware."""

    name: str
    kind: str  # "gemm" or a vector kind
    role: str | None
    layer: int | None
    m: int | None
    n: int | None
    k: int | None
    count: int
    elements: int | None
    macs: int
    compute_cycles: int
    stall_cycles: int
    latency_s: float
    energy_breakdown_j: dict[str, float]
    dram_read_bytes: float
    dram_write_bytes: float
    sram_read_bytes: float
    sram_write_bytes: float
    utilisation: float  # MACs / (cycles x PEs); 0 for vector ops
    folds: int = 0
    # Kept weight entries when the op's weight has a mask attached; None when dense/weightless.
    weight_nnz: int | None = None
    mode: str = "dense"  # how a GEMM ran (its datapath's modes); "vector" for vector ops
    useful_macs: int | None = None  # MACs with a nonzero weight; None: all of ``macs``
    load_imbalance: float | None = None  # unstructured-pe: busiest PE / mean PE work
    bank_conflict: float | None = None  # skipping: mean cycles per streamed input row
    note: str | None = None  # why a sparse mode or format could not be used, if so
    mapping: str | None = None  # the mapping a GEMM ran under (accel_sim.mapping)
    dram_bytes_avoided: float = 0.0  # DRAM traffic of its operands kept on chip

    @classmethod
    def from_fields(cls, fields: dict[str, Any]) -> OpResult:
        """The result with these fields, every one of them named (else TypeError), set in
        one step: a frozen dataclass's ``__init__`` sets its 28 fields one
        ``object.__setattr__`` at a time (5 µs an op, 1.7 ms of the two runs of a BERT-base
        point), and a simulator building every op's result has checked what it passes."""
        if fields.keys() != _OP_RESULT_FIELDS:
            missing = sorted(_OP_RESULT_FIELDS - fields.keys())
            unknown = sorted(fields.keys() - _OP_RESULT_FIELDS)
            raise TypeError(f"OpResult fields missing {missing}, unknown {unknown}")
        result = object.__new__(cls)
        result.__dict__.update(fields)
        return result

    @property
    def cycles(self) -> int:
        return self.compute_cycles + self.stall_cycles

    @property
    def weight_density(self) -> float:
        """Kept fraction of the op's weight: 1.0 for dense and weightless ops."""
        if self.weight_nnz is None or not self.n or not self.k:
            return 1.0
        return self.weight_nnz / (self.n * self.k)

    @property
    def energy_j(self) -> float:
        return sum(self.energy_breakdown_j.values())

    @property
    def dram_bytes(self) -> float:
        return self.dram_read_bytes + self.dram_write_bytes

    @property
    def effective_macs(self) -> int:
        """MACs that multiply a nonzero weight."""
        return self.macs if self.useful_macs is None else self.useful_macs


_OP_RESULT_FIELDS = frozenset(f.name for f in fields(OpResult))


@dataclass(frozen=True)
class SimResult:
    """A whole forward pass: ops in order plus the totals users quote."""

    model_name: str
    hardware_name: str
    batch: int
    seq_len: int
    clock_hz: float
    pe_count: int
    ops: tuple[OpResult, ...]
    config_hash: str
    version: str
    seed: int = 0
    notes: tuple[str, ...] = ()  # run-level facts, e.g. resident weights that did not fit
    simulation_s: float = field(default=0.0, compare=False)
    # The same workload without masks on the same hardware without sparse support.
    baseline: SimResult | None = field(default=None, compare=False, repr=False)

    @property
    def compute_cycles(self) -> int:
        return sum(op.compute_cycles for op in self.ops)

    @property
    def stall_cycles(self) -> int:
        return sum(op.stall_cycles for op in self.ops)

    @property
    def cycles(self) -> int:
        return self.compute_cycles + self.stall_cycles

    @property
    def latency_s(self) -> float:
        return self.cycles / self.clock_hz

    @property
    def cycle_breakdown(self) -> dict[str, int]:
        """Where the cycles went: compute of the weight GEMMs (``linear``), of the weightless
        attention GEMMs (``attention``), of vector ops (``vector``), and every op's stalls
        (``stalls``); the four sum to the ops' cycles (``cycles``, except where a crossbar chip
        overlaps layers). Weight sparsity shrinks only the first."""
        split = {"linear": 0, "attention": 0, "vector": 0, "stalls": self.stall_cycles}
        for op in self.ops:
            if op.kind != "gemm":
                split["vector"] += op.compute_cycles
            elif op.role in ATTENTION_ROLES:
                split["attention"] += op.compute_cycles
            else:
                split["linear"] += op.compute_cycles
        return split

    @property
    def energy_breakdown_j(self) -> dict[str, float]:
        return {
            c: sum(op.energy_breakdown_j.get(c, 0.0) for op in self.ops) for c in ENERGY_COMPONENTS
        }

    @property
    def energy_j(self) -> float:
        return sum(op.energy_j for op in self.ops)

    @property
    def macs(self) -> int:
        return sum(op.macs for op in self.ops)

    @property
    def dram_bytes(self) -> float:
        return sum(op.dram_bytes for op in self.ops)

    @property
    def dram_bytes_avoided(self) -> float:
        """DRAM traffic the run's on-chip activations and resident weights did not move."""
        return sum(op.dram_bytes_avoided for op in self.ops)

    @property
    def sram_bytes(self) -> float:
        return sum(op.sram_read_bytes + op.sram_write_bytes for op in self.ops)

    @property
    def utilisation(self) -> float:
        return self.macs / (self.cycles * self.pe_count) if self.cycles else 0.0

    @property
    def sequences_per_s(self) -> float:
        return self.batch / self.latency_s if self.latency_s else 0.0

    @property
    def weight_density(self) -> float:
        """Kept weight entries / all entries over the GEMMs with masks (1.0 when none)."""
        masked = [op for op in self.ops if op.weight_nnz is not None]
        total = sum(op.n * op.k for op in masked)
        return sum(op.weight_nnz for op in masked) / total if total else 1.0

    @property
    def effective_macs(self) -> int:
        return sum(op.effective_macs for op in self.ops)

    @property
    def effective_utilisation(self) -> float:
        """Nonzero-weight MACs per PE-cycle: what the array did that mattered."""
        return self.effective_macs / (self.cycles * self.pe_count) if self.cycles else 0.0

    @property
    def load_imbalance(self) -> float | None:
        """Cycle-weighted mean load imbalance over the ops that report one."""
        ops = [op for op in self.ops if op.load_imbalance is not None]
        cycles = sum(op.cycles for op in ops)
        if not cycles:
            return None
        return sum(op.load_imbalance * op.cycles for op in ops) / cycles

    @property
    def speedup(self) -> float | None:
        """Dense-baseline cycles over these cycles."""
        if self.baseline is None or not self.cycles:
            return None
        return self.baseline.cycles / self.cycles

    @property
    def energy_ratio(self) -> float | None:
        """This energy over the dense baseline's (below 1 saves energy)."""
        if self.baseline is None or not self.baseline.energy_j:
            return None
        return self.energy_j / self.baseline.energy_j

    def summary_rows(self) -> list[tuple[str, str]]:
        """(label, value) rows a datapath adds to the printed totals (none here)."""
        return []

    def totals(self) -> dict[str, float | None]:
        return {
            "cycles": self.cycles,
            "compute_cycles": self.compute_cycles,
            "stall_cycles": self.stall_cycles,
            "latency_s": self.latency_s,
            "energy_j": self.energy_j,
            "sequences_per_s": self.sequences_per_s,
            "macs": self.macs,
            "utilisation": self.utilisation,
            "dram_bytes": self.dram_bytes,
            "dram_bytes_avoided": self.dram_bytes_avoided,
            "sram_bytes": self.sram_bytes,
            "effective_macs": self.effective_macs,
            "effective_utilisation": self.effective_utilisation,
            "weight_density": self.weight_density,
            "load_imbalance": self.load_imbalance,
            "speedup": self.speedup,
            "energy_ratio": self.energy_ratio,
        }

    def to_frame(self) -> pd.DataFrame:
        """One tidy row per op, with the run's identity on every row."""
        import pandas as pd

        rows = []
        for op in self.ops:
            row = {
                "model": self.model_name,
                "hardware": self.hardware_name,
                "batch": self.batch,
                "seq_len": self.seq_len,
                "op": op.name,
                "kind": op.kind,
                "role": op.role,
                "layer": op.layer,
                "m": op.m,
                "n": op.n,
                "k": op.k,
                "count": op.count,
                "elements": op.elements,
                "macs": op.macs,
                "cycles": op.cycles,
                "compute_cycles": op.compute_cycles,
                "stall_cycles": op.stall_cycles,
                "latency_s": op.latency_s,
                "energy_j": op.energy_j,
                **{f"energy_{c}_j": op.energy_breakdown_j.get(c, 0.0) for c in ENERGY_COMPONENTS},
                "dram_read_bytes": op.dram_read_bytes,
                "dram_write_bytes": op.dram_write_bytes,
                "sram_read_bytes": op.sram_read_bytes,
                "sram_write_bytes": op.sram_write_bytes,
                "utilisation": op.utilisation,
                "weight_density": op.weight_density,
                "mode": op.mode,
                "effective_macs": op.effective_macs,
                "load_imbalance": op.load_imbalance,
                "bank_conflict": op.bank_conflict,
                "mapping": op.mapping,
                "dram_bytes_avoided": op.dram_bytes_avoided,
                "config_hash": self.config_hash,
                "seed": self.seed,
            }
            rows.append(row)
        return pd.DataFrame(rows)

    def to_dict(self) -> dict:
        """The JSON document ``cosim simulate --json`` writes."""
        return {
            "model": self.model_name,
            "hardware": self.hardware_name,
            "batch": self.batch,
            "seq_len": self.seq_len,
            "total": self.totals(),
            "energy_breakdown_j": self.energy_breakdown_j,
            "ops": [
                {
                    "name": op.name,
                    "kind": op.kind,
                    "role": op.role,
                    "layer": op.layer,
                    "m": op.m,
                    "n": op.n,
                    "k": op.k,
                    "count": op.count,
                    "elements": op.elements,
                    "macs": op.macs,
                    "cycles": op.cycles,
                    "compute_cycles": op.compute_cycles,
                    "stall_cycles": op.stall_cycles,
                    "latency_s": op.latency_s,
                    "energy_j": op.energy_j,
                    "dram_bytes": op.dram_bytes,
                    "weight_density": op.weight_density,
                    "mode": op.mode,
                    "effective_macs": op.effective_macs,
                    "load_imbalance": op.load_imbalance,
                    "bank_conflict": op.bank_conflict,
                    "mapping": op.mapping,
                    "dram_bytes_avoided": op.dram_bytes_avoided,
                    "note": op.note,
                }
                for op in self.ops
            ],
            "baseline": None if self.baseline is None else self.baseline.totals(),
            "notes": list(self.notes),
            "meta": {
                "simulation_s": self.simulation_s,
                "version": self.version,
                "config_hash": self.config_hash,
                "seed": self.seed,
            },
        }
