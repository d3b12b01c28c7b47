"""The dense systolic array (SCALE-Sim's model), and zero gating on it.

A GEMM runs as ``ceil(Sr/R) x ceil(Sc/C)`` folds (``accel_sim.kernels.dense_folds``), and
instances of a GEMM (``count``, e.g. batch x heads of attention) run back to back, so their
cycles and traffic add up. Activations and weights start in DRAM and outputs end there
(layer-by-layer execution), which makes each GEMM's compulsory traffic its operands once.

What this datapath does with zeros (``sparse.zero_handling``):

- ``none``: nothing; zeros are multiplied like any other value;
- ``gating``: the dense schedule (no time saved); MACs, register traffic and weight reads of
  zero weights are gated off, so only their energy goes.

In both, weights travel in ``sparse.weight_format``: DRAM and SRAM traffic for them is the
format's exact size (values plus metadata, ``accel_sim.formats``) scaled to how often the
dense schedule fetches the weight.

Every GEMM runs under the best mapping the mapper finds for it (``accel_sim.mapping``: loop
order, M tiling, split across cores, preload), or SCALE-Sim's fixed loop order with
``mapping.search: fixed``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import numpy as np

from accel_sim.datapaths.array import ArrayDatapath
from accel_sim.datapaths.base import register
from accel_sim.energy import ActionCounts, dynamic_energy_j
from accel_sim.kernels import dense_folds as k
from accel_sim.kernels import fold_memory as fm
from accel_sim.kernels import preconditions as pre
from accel_sim.mapping import Composite, Mapping, OpResidency, best_of, cache, compose
from accel_sim.mapping.compose import Piece, TileRun, compute_floor, dram_floor
from accel_sim.mapping.residency import NONE
from accel_sim.mapping.space import tilings
from accel_sim.op_cost import OpCost
from accel_sim.results import SimResult
from accel_sim.spec import Dataflow, HardwareConfig, ZeroHandling
from accel_sim.traffic import fold_counts, memory_params
from workloads.ops import GemmOp, Workload

T = TypeVar("T")
# The most bytes of tile schedules one datapath keeps for reuse within a run (BERT-base at 512
# tokens and batch 8 keeps about 64 MB on a 32x32 skipping array); past it, new ones are not kept.
TILE_RUN_BYTES = 256 << 20

__all__ = ["DenseSystolicArray", "SystolicArray", "dense_gemm_cost", "gemm_stats", "warm_up"]

DATAFLOW_CODE = {
    Dataflow.WEIGHT_STATIONARY: k.WS,
    Dataflow.OUTPUT_STATIONARY: k.OS,
    Dataflow.INPUT_STATIONARY: k.IS,
}
# SCALE-Sim's loop order: OS loops over row folds outside, WS and IS over column folds.
FIXED_ROWS_OUTER = {Dataflow.WEIGHT_STATIONARY: False, Dataflow.OUTPUT_STATIONARY: True,
                    Dataflow.INPUT_STATIONARY: False}  # fmt: skip
SCALESIM_PLAN = fm.FoldPlan(False, False, False, False, False)


def gemm_stats(
    m: int,
    kdim: int,
    n: int,
    hw: HardwareConfig,
    filter_dram_scale: float = 1.0,
    plan: fm.FoldPlan | None = None,
):
    """Raw kernel statistics for one instance of (m x kdim) @ (kdim x n) (``fold_memory``
    indices) under ``plan`` (default: SCALE-Sim's loop order, serial preload, every operand
    in DRAM). ``filter_dram_scale``: compressed / dense bytes of the weight."""
    if plan is None:
        plan = SCALESIM_PLAN._replace(rows_outer=FIXED_ROWS_OUTER[hw.pe_array.dataflow])
    check_sizes(f"a {m}x{kdim}x{n} GEMM", m, kdim, n, hw)
    return k.dense_gemm_folds(
        DATAFLOW_CODE[hw.pe_array.dataflow],
        hw.pe_array.rows,
        hw.pe_array.cols,
        m,
        kdim,
        n,
        memory_params(hw, filter_dram_scale),
        plan,
    )


def dense_gemm_cost(
    m: int, kdim: int, n: int, count: int, hw: HardwareConfig, *, filter_dram_scale: float = 1.0
) -> OpCost:
    """Cycles and action counts of ``count`` dense GEMMs (m x kdim) @ (kdim x n) under
    SCALE-Sim's fixed loop order with serial preload (no mapping search)."""
    s = gemm_stats(m, kdim, n, hw, filter_dram_scale).tolist()  # plain floats
    compute = int(s[fm.COMPUTE_CYCLES])
    stall = int(s[fm.TOTAL_CYCLES]) - compute
    return OpCost(
        compute_cycles=compute * count,
        stall_cycles=stall * count,
        counts=fold_counts(s, m * kdim * n, hw).scaled(count),
        folds=int(s[fm.FOLDS]) * count,
        sram_limited_cycles=int(s[fm.SRAM_LIMITED_CYCLES]) * count,
    )


def check_sizes(what: str, m: int, kdim: int, n: int, hw: HardwareConfig) -> None:
    """The fold kernels' precondition (``accel_sim.kernels.preconditions``) for one
    (m x kdim) @ (kdim x n) schedule on ``hw``'s array."""
    pe = hw.pe_array
    pre.check_gemm_schedule(what, pe.dataflow.value, pe.rows, pe.cols, m, kdim, n,
                            hw.word_bytes, pe.accumulator_bytes)  # fmt: skip


def _gated(cost: OpCost, density: float, useful_macs: int) -> OpCost:
    """Zero weights gated: their MACs, register traffic and filter reads cost no energy."""
    counts = cost.counts
    gated = ActionCounts(
        **{
            **counts.__dict__,
            "macs": useful_macs,
            "register_bytes": counts.register_bytes * density,
            "sram_filter_read_bytes": counts.sram_filter_read_bytes * density,
        }
    )
    return cost.with_mode("gating", counts=gated, useful_macs=useful_macs)


def masked(op: GemmOp) -> np.ndarray | None:
    """The op's keep-mask as an array, or None when it has none."""
    return op.mask if isinstance(op.mask, np.ndarray) else None


def operands_on_chip(op: GemmOp, residency: OpResidency) -> tuple[bool, bool]:
    """(left operand, right operand) on chip: the input activation, and the weight (resident)
    or, for attention, the second activation."""
    ifmap = bool(op.reads) and op.reads[0] in residency.on_chip_reads
    if op.weight_name is not None:
        return ifmap, residency.weights_on_chip
    return ifmap, len(op.reads) > 1 and op.reads[1] in residency.on_chip_reads


class SystolicArray(ArrayDatapath):
    """What the dense and compacting systolic arrays share: the mapper's search over loop
    orders, M tiles, core splits and preload, each candidate costed by the datapath's
    ``piece``."""

    hw: HardwareConfig
    # Loop orders this datapath can run (rows_outer values); the compacting and flexible
    # ones have one.
    orders: tuple[bool, ...] = (False, True)
    # Whether ``mapping.preload`` applies (a datapath whose stationary words come over the
    # network that streams never hides a fold's load: every candidate is serial).
    preload_applies = True
    # Whether ``piece`` reads the mask (where the zeros are), so the mapper's cache key needs
    # its digest; otherwise the mask acts only through the weight's storage scale.
    piece_reads_mask = True

    def __init__(self, hw: HardwareConfig) -> None:
        super().__init__(hw)
        self._key = hw.config_hash()
        # Tile schedules by (weight, rows, output columns, plan, memory), for one run with
        # micro-batch plans (``plans_share_work``): they ask again for most of the whole
        # batch's tiles (the same rows under the same plan), which schedule alike.
        self._tile_runs: dict[tuple, TileRun] = {}
        self._tile_run_bytes = 0  # their fold logs, kept under TILE_RUN_BYTES
        self._weight_models: dict[tuple, Any] = {}

    def piece(self, op: GemmOp, mask: np.ndarray | None) -> Piece:
        """The kernel for ``op``'s sub-GEMMs (``accel_sim.mapping.compose.Piece``)."""
        hw = self.hw
        dataflow = DATAFLOW_CODE[hw.pe_array.dataflow]
        rows, cols, kdim = hw.pe_array.rows, hw.pe_array.cols, op.k
        checked: set[tuple[int, int]] = set()  # (rows, columns) whose sizes passed

        def run(m_rows, n_start, n_stop, plan, mem):
            n = n_stop - n_start
            if (m_rows, n) not in checked:
                check_sizes(op.name, m_rows, kdim, n, hw)
                checked.add((m_rows, n))
            stats, log, _ = k.dense_gemm_schedule_plain(dataflow, rows, cols, m_rows, kdim, n,
                                                        tuple(mem), tuple(plan))  # fmt: skip
            return TileRun(stats, log, 0.0, float(m_rows * kdim * n))

        return run

    def run(self, workload: Workload, seed: int = 0) -> SimResult:
        """``ArrayDatapath.run``, with the schedules and fold lists kept for reuse dropped
        before and after: they live for one run, not for the datapath (a ``gemm_cost`` asked
        outside a run keeps nothing)."""
        self._drop_kept()
        try:
            return super().run(workload, seed)
        finally:
            self.plans_share_work = False
            self._drop_kept()

    def _drop_kept(self) -> None:
        self._tile_runs.clear()
        self._tile_run_bytes = 0
        self._weight_models.clear()

    def _shared_weight(self, op: GemmOp, mask: np.ndarray | None) -> tuple | None:
        """What identifies ``op``'s weight across a run's searches (its shape and mask
        digest), or None when nothing is shared: a run without micro-batch plans, or a mask
        without a digest."""
        if not self.plans_share_work or (mask is not None and op.mask_digest is None):
            return None
        return (op.k, op.n, None if mask is None else op.mask_digest)

    def shared_piece(self, op: GemmOp, mask: np.ndarray | None) -> Piece:
        """``piece``, its tile schedules shared by every search of this datapath on the same
        weight (its shape and mask digest) when the run's plans share work; unshared for a
        mask without a digest."""
        piece = self.piece(op, mask)
        weight = self._shared_weight(op, mask)
        if weight is None:
            return piece
        runs = self._tile_runs

        def run(m_rows, n_start, n_stop, plan, mem):
            key = (weight, m_rows, n_start, n_stop, plan, mem)
            tile = runs.get(key)
            if tile is None:
                tile = piece(m_rows, n_start, n_stop, plan, mem)
                size = tile.stats.nbytes + sum(part.nbytes for part in tile.log)
                if self._tile_run_bytes + size <= TILE_RUN_BYTES:
                    runs[key] = tile
                    self._tile_run_bytes += size
            return tile

        for floor in ("fold_cycles", "dram_bytes"):  # what the mapper's floors read
            if hasattr(piece, floor):
                setattr(run, floor, getattr(piece, floor))
        return run

    def weight_model(
        self, op: GemmOp, mask: np.ndarray | None, n_start: int, n_stop: int,
        build: Callable[[], T], search: dict,
    ) -> T:  # fmt: skip
        """``build()``: what a sparse piece precomputes for output columns ``[n_start,
        n_stop)`` of ``op``'s weight (its fold lists), once per search (kept in ``search``,
        the piece's own dict) or, when the run's plans share work, once per run for that
        weight (its shape and mask digest). Kept no longer than that: a run's worth of fold
        lists held at once made every later one land in fresh memory, twice as slow."""
        weight = self._shared_weight(op, mask)
        models = search if weight is None else self._weight_models
        key = (weight, n_start, n_stop)  # a search's own dict holds one weight
        model = models.get(key)
        if model is None:
            model = models[key] = build()
        return model

    def candidates(self, op: GemmOp) -> Iterator[Sequence[Mapping]]:
        """The mapper's space for ``op``, one group per (split, loop order), fewest M tiles
        first (``accel_sim.mapping.space``)."""
        hw = self.hw
        overlapped = hw.mapping.preload == "overlapped" and self.preload_applies
        if hw.mapping.search == "fixed":
            split = "n" if hw.cores > 1 else "none"
            fixed = FIXED_ROWS_OUTER[hw.pe_array.dataflow]
            rows_outer = fixed if fixed in self.orders else self.orders[0]
            yield [Mapping(rows_outer, 1, split, min(hw.cores, op.n), overlapped)]
            return
        splits = [("none", 1)]
        if hw.cores > 1:
            splits = [("m", min(hw.cores, op.m)), ("n", min(hw.cores, op.n))]
        for split, cores in splits:
            rows_per_core = -(-op.m // cores) if split == "m" else op.m
            for rows_outer in self.orders:
                yield tilings(rows_outer, rows_per_core, split, cores, overlapped)

    def _mapped_cost(self, op: GemmOp, composite: Composite, mapping: Mapping) -> OpCost:
        s = composite.stats.tolist()
        counts = fold_counts(s, composite.macs, self.hw)
        if composite.global_read_bytes:
            counts = ActionCounts(**{
                **counts.__dict__,
                "dram_read_bytes": counts.dram_read_bytes - composite.dram_bytes_saved,
                "sram_global_read_bytes": composite.global_read_bytes,
                "sram_global_write_bytes": composite.global_write_bytes,
            })  # fmt: skip
        count = op.count
        return OpCost(
            compute_cycles=composite.compute_cycles * count,
            stall_cycles=(composite.cycles - composite.compute_cycles) * count,
            counts=counts.scaled(count),
            folds=int(s[fm.FOLDS]) * count,
            sram_limited_cycles=int(s[fm.SRAM_LIMITED_CYCLES]) * count,
        )  # mapping: described once the search is over (a subclass may put a detail here)

    def _energy_j(self, cost: OpCost) -> float:
        latency_s = cost.cycles / self.hw.pe_array.clock_hz
        dynamic = dynamic_energy_j(cost.counts, self.hw, self.prices)
        return sum(dynamic.values()) + self.leakage_w * latency_s

    def mapped(
        self, op: GemmOp, mask: np.ndarray | None, scale: float, residency: OpResidency,
        piece: Piece | None = None,
    ) -> OpCost:  # fmt: skip
        """The cost of ``op`` under its best mapping (cached). ``piece``: the search's kernel
        when the caller has made it (``shared_piece(op, mask)``), its fold lists kept."""
        ifmap, filt = operands_on_chip(op, residency)
        key = (self.name, self._key, op.m, op.k, op.n, op.count, op.weight_name is None,
               mask is not None and (op.mask_digest if self.piece_reads_mask else True),
               scale, ifmap, filt,
               residency.output_on_chip)  # fmt: skip

        given = piece

        def search() -> OpCost:
            piece = given if given is not None else self.shared_piece(op, mask)
            records: dict[int, fm.MemoryParams] = {}  # by cores sharing DRAM

            def memory(cores: int) -> fm.MemoryParams:
                record = records.get(cores)
                if record is None:
                    record = records[cores] = memory_params(self.hw, scale, cores)
                return record

            # A candidate is priced (action counts, OpCost) only when its energy decides or
            # it is chosen: cycles order the same unscaled as scaled by op.count.
            def evaluate(mapping: Mapping) -> tuple[Mapping, Composite]:
                return mapping, compose(piece, op.m, op.k, op.n, mapping, self.hw, residency,
                                        ifmap, filt, scale, memory)  # fmt: skip

            def price(candidate: tuple[Mapping, Composite]) -> OpCost:
                return self._mapped_cost(op, candidate[1], candidate[0])

            # a piece that gives its tiles' fold cycles alone lets the search skip candidates
            # whose compute exceeds the best latency (``compose.compute_floor``)
            fold_cycles = getattr(piece, "fold_cycles", None)
            floor = None
            if fold_cycles is not None:
                floor = lambda mapping: compute_floor(fold_cycles, op.m, op.n, mapping)  # noqa: E731
            # and one that gives its least DRAM bytes, those whose traffic alone takes
            # longer (``compose.dram_floor``)
            dram_bytes = getattr(piece, "dram_bytes", None)
            dram = None
            if dram_bytes is not None:
                dram = lambda mapping: dram_floor(dram_bytes, op.m, op.k, op.n, mapping,  # noqa: E731
                                                  residency, ifmap, filt, memory)  # fmt: skip

            chosen, candidate = best_of(
                self.candidates(op),
                evaluate,
                cycles=lambda c: c[1].cycles,
                compute_cycles=lambda c: c[1].compute_cycles,
                energy_j=lambda c: self._energy_j(price(c)),
                objective=self.hw.mapping.objective,
                compute_floor=floor,
                dram_floor=dram,
            )
            cost = price(candidate)
            described = chosen.describe(self.hw.pe_array.dataflow.value, op.m)
            return cost.replaced(mapping=described + (cost.mapping or ""))

        cost = cache.get_or_compute(key, search)
        return replace_avoided(cost, op, self.hw, scale, ifmap, filt, residency)


def replace_avoided(
    cost: OpCost, op: GemmOp, hw: HardwareConfig, scale: float, ifmap: bool, filt: bool,
    residency: OpResidency,
) -> OpCost:  # fmt: skip
    """``cost`` with the DRAM bytes its on-chip operands did not move, each counted once."""
    word = hw.word_bytes
    weight_scale = scale if op.weight_name is not None else 1.0
    avoided = (
        ifmap * op.m * op.k * op.count * word
        + filt * op.k * op.n * word * weight_scale * (1 if op.weight_name else op.count)
        + residency.output_on_chip * op.m * op.n * op.count * word
    )
    return cost.with_mode(cost.mode, dram_bytes_avoided=float(avoided)) if avoided else cost


@register
class DenseSystolicArray(SystolicArray):
    """``datapath: systolic`` with ``zero_handling`` none or gating."""

    name = "dense-systolic"
    piece_reads_mask = False  # zeros are multiplied or gated: the schedule is the dense one

    @classmethod
    def handles(cls, hw: Any) -> bool:
        return (
            isinstance(hw, HardwareConfig)
            and hw.datapath == "systolic"
            and hw.sparse.zero_handling in (ZeroHandling.NONE, ZeroHandling.GATING)
        )

    def gemm_cost(self, op: GemmOp, residency: OpResidency = NONE) -> OpCost:
        mask = masked(op)
        scale, note = self.storage_scale(op)
        cost = self.mapped(op, mask, scale, residency)
        if self.hw.sparse.zero_handling == ZeroHandling.GATING and mask is not None:
            cost = _gated(cost, op.weight_density, self.useful_macs(op))
        elif self.exploits_sparsity or mask is not None:
            cost = cost.with_mode("dense", useful_macs=self.useful_macs(op))
        return cost.with_mode(cost.mode, note) if note else cost


def warm_up() -> None:
    """Compile (or load from the on-disk cache) the fold kernel, so timings exclude JIT."""
    mem = fm.MemoryParams(1, 4, 64.0, 64.0, 64.0, True, 1.0, 1.0, 1.0, 1.0, 1.0)
    k.dense_gemm_folds(k.WS, 2, 2, 2, 2, 2, mem, SCALESIM_PLAN)
