"""What every array chip (systolic or PE array) shares: the op loop, the vector unit, energy
priced from the chip's tables, leakage over each op's latency, and the study columns.

A subclass supplies ``gemm_cost`` (cycles and action counts of one GEMM op, given what of it
is on chip) and, if it adds hardware, ``sparse_area_um2``. Before the ops run, the residency
plan (``accel_sim.mapping.residency``) decides which activations stay on chip between their
producer and readers and whether the weights stay resident; a run whose weights were asked to
stay but do not fit says so in its notes. Unmasked GEMMs of equal shape and residency are
costed once per run.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Callable, Hashable
from dataclasses import replace
from typing import Any, TypeVar

import numpy as np

from accel_sim.activations import skips_activations_note
from accel_sim.area import area_mm2
from accel_sim.datapaths.base import Datapath, datapath_for
from accel_sim.energy import (
    ENERGY_COMPONENTS,
    dynamic_energy_j,
    energy_prices,
    leakage_power_w,
)
from accel_sim.mapping.residency import (
    NONE,
    OpResidency,
    activation_capacity_bytes,
    plan_residency,
)
from accel_sim.op_cost import OpCost
from accel_sim.results import OpResult, SimResult, op_identity
from accel_sim.run_hash import run_config_hash
from accel_sim.spec import HardwareConfig, SparseSupport, WeightFormat, ZeroHandling
from accel_sim.traffic import compulsory_dram_bytes
from accel_sim.vector_unit import vector_cost
from accel_sim.version import __version__
from safeio.limits import SizeLimitError
from workloads.ops import GemmOp, VectorOp, Workload

T = TypeVar("T")


def divisors(number: int) -> list[int]:
    """Every divisor of ``number``, ascending (O(sqrt(number)) steps)."""
    small, large = [], []
    factor = 1
    while factor * factor <= number:
        if number % factor == 0:
            small.append(factor)
            if factor * factor != number:
                large.append(number // factor)
        factor += 1
    return small + large[::-1]


def _repeated(result: OpResult, op: GemmOp | VectorOp, parts: int) -> OpResult:
    """``result`` (one micro-batch's run of ``op``) repeated ``parts`` times, under ``op``'s
    identity (its whole-batch shape)."""
    scaled = {
        name: getattr(result, name) * parts
        for name in ("compute_cycles", "stall_cycles", "latency_s", "dram_read_bytes",
                     "dram_write_bytes", "sram_read_bytes", "sram_write_bytes", "folds",
                     "dram_bytes_avoided", "macs")
    }  # fmt: skip
    useful = None if result.useful_macs is None else result.useful_macs * parts
    energy = {key: value * parts for key, value in result.energy_breakdown_j.items()}
    return replace(result, **op_identity(op), **scaled, useful_macs=useful,
                   energy_breakdown_j=energy)  # fmt: skip


class ArrayDatapath(Datapath):
    """Base of the array datapaths (``HardwareConfig`` chips)."""

    hw: HardwareConfig

    def __init__(self, hw: HardwareConfig) -> None:
        super().__init__(hw)
        self.prices = energy_prices(hw)
        self.leakage_w = leakage_power_w(hw)
        self._mask_facts: dict[tuple[str, int, int, Hashable], object] = {}
        self._all_kept_scales: dict[tuple[int, int, int | None], tuple[float, str | None]] = {}
        self._all_ones: dict[tuple[int, int], np.ndarray] = {}
        self._vector_costs: dict[tuple, OpCost] = {}
        # Whether this run has several execution plans (the whole batch and micro-batches):
        # a datapath keeps work for reuse only then, as keeping it costs fresh memory.
        self.plans_share_work = False

    def mask_fact(self, op: GemmOp, what: Hashable, compute: Callable[[], T]) -> T:
        """``compute()``: a fact about ``op``'s mask in this spec (``what`` names it: its stored
        size, whether it fits N:M), worked out once per mask (its digest and shape) by this
        datapath. A batch's micro-batches share their masks, so a run asks each fact up to
        four times per mask; a sweep builds a datapath per point."""
        if op.mask_digest is None:
            return compute()
        key = (op.mask_digest, op.n, op.k, what)  # the digest is of the bits, not the shape
        if key not in self._mask_facts:
            self._mask_facts[key] = compute()
        return self._mask_facts[key]  # type: ignore[return-value]

    @abstractmethod
    def gemm_cost(self, op: GemmOp, residency: OpResidency = NONE) -> OpCost:
        """Cycles and action counts of ``op`` (all its instances), given its mask and which of
        its operands are on chip."""

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

    def _cache_key(self, op: GemmOp, residency: OpResidency) -> tuple | None:
        """GEMMs with the same key cost the same; None: cost this one alone (a masked op)."""
        if op.mask is not None:
            return None
        on_chip = tuple(t in residency.on_chip_reads for t in op.reads)
        return (op.m, op.k, op.n, op.count, op.weight_name is None, on_chip,
                residency.output_on_chip, residency.weights_on_chip,
                op.activation_density)  # fmt: skip

    def weight_bytes(self, workload: Workload) -> float:
        """Bytes of every weight in the spec's storage format."""
        word = self.hw.word_bytes
        return sum(
            self.stored_weight_scale(op) * op.n * op.k * word
            for op in workload.gemms
            if op.weight_name is not None
        )

    def stored_weight_scale(self, op: GemmOp) -> float:
        """Stored over dense bytes of ``op``'s weight."""
        return self.storage_scale(op)[0]

    def storage_scale(
        self, op: GemmOp, value_bits: int | None = None,
        column_bits: Callable[[], np.ndarray] | None = None,
    ) -> tuple[float, str | None]:  # fmt: skip
        """``weight_storage_scale`` of ``op``'s own mask (once per mask, ``mask_fact``).
        ``column_bits``: gives the mask's column words, when the datapath keeps them."""
        from accel_sim.traffic import weight_storage_scale

        mask = op.mask if isinstance(op.mask, np.ndarray) else None

        def size() -> tuple[float, str | None]:
            words = None if column_bits is None or mask is None else column_bits()
            return weight_storage_scale(mask, self.hw, value_bits, nnz=op.weight_nnz,
                                        column_bits=words)  # fmt: skip

        return self.mask_fact(op, ("storage", value_bits), size)

    def all_kept_storage_scale(
        self, n: int, k: int, value_bits: int | None = None
    ) -> tuple[float, str | None]:
        """``weight_storage_scale`` of an ``[n, k]`` weight with every entry kept (a dense
        baseline's, or a datapath storing the whole weight), once per shape, of a broadcast
        all-ones view: a format's size with every weight kept reads the shape and the count
        alone (``formats.format_size``), and allocating the mask took 4 ms of a BERT-base
        point on the SIGMA-style array."""
        from accel_sim.traffic import weight_storage_scale

        key = (n, k, value_bits)
        if key not in self._all_kept_scales:
            ones = np.broadcast_to(np.True_, (n, k))
            self._all_kept_scales[key] = weight_storage_scale(ones, self.hw, value_bits, nnz=n * k)
        return self._all_kept_scales[key]

    def all_ones(self, n: int, k: int) -> np.ndarray:
        """The ``[n, k]`` mask that keeps every weight, built once per shape and read-only
        (dense baselines ask for it every op: allocating it took a millisecond a 3,072-wide
        layer). Kept for the run only: held for the process, these masks left the
        allocator handing later large arrays fresh pages (the dual-side point at 512 x 8
        took 15 % longer)."""
        ones = self._all_ones.get((n, k))
        if ones is None:
            ones = self._all_ones[(n, k)] = np.ones((n, k), dtype=bool)
            ones.flags.writeable = False
        return ones

    def weight_buffer_bytes(self) -> int:
        """Where resident weights live: the global buffer, else every core's filter buffer
        (each core needs its own copy)."""
        hw = self.hw
        if hw.global_buffer is not None:
            return hw.global_buffer.size_bytes
        return hw.sram.filter.size_bytes

    def residency_plan(self, workload: Workload) -> tuple[list[OpResidency], tuple[str, ...]]:
        """Per op, what is on chip; and the run's notes."""
        hw = self.hw
        notes: list[str] = []
        weights = False
        if hw.residency.weights_resident:
            needed, room = self.weight_bytes(workload), self.weight_buffer_bytes()
            weights = needed <= room
            if not weights:
                notes.append(
                    f"weights_resident: the stored weights ({needed:,.0f} B) do not fit the "
                    f"weight buffer ({room:,} B); every inference loads them from DRAM"
                )
        capacity = activation_capacity_bytes(hw) if hw.residency.activations_on_chip else 0
        if not capacity and not weights:
            return [NONE] * len(workload.ops), tuple(notes)
        return plan_residency(workload, capacity, hw.word_bytes, weights), tuple(notes)

    def run(self, workload: Workload, seed: int = 0) -> SimResult:
        """Every op in order. With the mapper searching and activations kept on chip, a batch
        may also run as micro-batches (each divisor of the batch, every op of the model per
        micro-batch) whose smaller activations fit where the whole batch's do not; the
        fastest plan wins, so a batch never costs more per sequence than any divisor of it.
        A plan whose GEMMs are beyond the kernels' size limits
        (``accel_sim.kernels.preconditions``) is not a candidate; the run is refused only
        when no plan is within them."""
        hw = self.hw
        micro = hw.mapping.search == "best" and hw.residency.activations_on_chip
        # the micro-batch plans ask for much of what the whole batch's did
        self.plans_share_work = micro and workload.batch > 1
        refused: SizeLimitError | None = None
        # the chosen plan's (op, cost) pairs and micro-batches; only its results are built
        parts = 1
        try:
            costs, notes = self._ops(workload)
            best = sum(cost.cycles for _, cost in costs)
        except SizeLimitError as error:
            if not (micro and workload.batch > 1):
                raise
            refused, costs, notes, best = error, [], (), math.inf
        if micro and workload.batch > 1:
            for size in divisors(workload.batch)[:-1]:
                part = workload.micro_batch(size)
                if part is None:
                    continue
                try:
                    part_costs, part_notes = self._ops(part)
                except SizeLimitError:
                    continue  # larger micro-batches are beyond the limits too
                cycles = sum(cost.cycles for _, cost in part_costs) * (workload.batch // size)
                if cycles < best:
                    best, costs, parts = cycles, part_costs, workload.batch // size
                    why = (
                        "the whole batch is beyond the simulator's size limits"
                        if refused is not None
                        else "their activations stay on chip where the whole batch's would not"
                    )
                    notes = (
                        *part_notes,
                        f"ran as {parts} micro-batches of {size} sequence(s): {why}",
                    )
        if not costs and refused is not None:
            raise refused
        ops = [self._op_result(op, cost) for op, cost in costs]
        if parts > 1:
            ops = [_repeated(op, source, parts) for op, source in zip(ops, workload, strict=True)]
        return SimResult(
            model_name=workload.model_name,
            hardware_name=hw.name,
            batch=workload.batch,
            seq_len=workload.seq_len,
            clock_hz=hw.pe_array.clock_hz,
            pe_count=hw.pe_count,
            ops=tuple(ops),
            config_hash=run_config_hash(workload, hw, seed),
            version=__version__,
            seed=seed,
            notes=tuple(notes),
        )

    def _ops(
        self, workload: Workload
    ) -> tuple[list[tuple[GemmOp | VectorOp, OpCost]], tuple[str, ...]]:
        """Every op of ``workload`` with its cost, and the run's notes (the results are built
        for the plan ``run`` chooses only)."""
        costs: dict[tuple, OpCost] = {}
        results = []
        plan, notes = self.residency_plan(workload)
        for op, residency in zip(workload, plan, strict=True):
            if isinstance(op, GemmOp):
                key = self._cache_key(op, residency)
                if key is None:
                    cost = self.gemm_cost(op, residency)
                elif key in costs:
                    cost = costs[key]
                else:
                    cost = costs[key] = self.gemm_cost(op, residency)
            else:
                cost = self._vector_cost(op, residency)
            if isinstance(op, GemmOp) and not self.skips_zero_activations:
                ignored = skips_activations_note(op)
                if ignored:
                    note = f"{cost.note}; {ignored}" if cost.note else ignored
                    cost = cost.with_mode(cost.mode, note)
            results.append((op, cost))
        return results, notes

    def _vector_cost(self, op: VectorOp, residency: OpResidency) -> OpCost:
        """``vector_cost`` of ``op``, once per what it reads of the op and its residency: a
        model's layers repeat the same vector ops, and a batch's plans ask for them again
        (608 calls at 10 µs each in a 512 x 8 point, about 60 of them distinct)."""
        key = (op.kind, op.elements, op.outputs, len(op.reads),
               len(residency.on_chip_reads), residency.output_on_chip)  # fmt: skip
        cost = self._vector_costs.get(key)
        if cost is None:
            cost = self._vector_costs[key] = vector_cost(op, self.hw, residency)
        return cost

    def _op_result(self, op: GemmOp | VectorOp, cost: OpCost) -> OpResult:
        hw = self.hw
        latency_s = cost.cycles / hw.pe_array.clock_hz
        energy = dynamic_energy_j(cost.counts, hw, self.prices)
        energy["leakage"] = self.leakage_w * latency_s
        is_gemm = isinstance(op, GemmOp)
        counts = cost.counts
        return OpResult.from_fields(dict(
            op_identity(op),
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
            mapping=cost.mapping,
            dram_bytes_avoided=cost.dram_bytes_avoided,
        ))

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
