"""The crossbar chip as a datapath (``datapath: crossbar``): map every weight, cost every op,
then time the forward pass layer by layer or pipelined across tiles."""

from __future__ import annotations

import math
from typing import Any

from accel_sim.datapaths.base import Datapath, register
from accel_sim.datapaths.crossbar.costs import (
    OpCharge,
    digital_gemm_cost,
    vector_cost,
    weight_gemm_cost,
)
from accel_sim.datapaths.crossbar.mapping import block_stats, replication
from accel_sim.datapaths.crossbar.power_area import chip_area_mm2, tile_area_mm2
from accel_sim.datapaths.crossbar.results import (
    CROSSBAR_ENERGY_COMPONENTS,
    CrossbarOpResult,
    CrossbarSimResult,
)
from accel_sim.datapaths.crossbar.timing import (
    CrossbarTiming,
    crossbar_timing,
    cycles,
    pipelined_ticks,
)
from accel_sim.results import SimResult, op_identity
from accel_sim.run_hash import run_config_hash
from accel_sim.spec.crossbar_chip import CrossbarChipConfig
from accel_sim.version import __version__
from workloads.ops import GemmOp, VectorOp, Workload

__all__ = ["CrossbarChip"]


@register
class CrossbarChip(Datapath):
    """ReRAM crossbar tiles for weight GEMMs, a digital unit for the rest."""

    name = "crossbar"
    hw: CrossbarChipConfig

    @classmethod
    def handles(cls, hw: Any) -> bool:
        return isinstance(hw, CrossbarChipConfig)

    def dense_baseline(self) -> Datapath:
        """The same chip: its dense baseline maps the unmasked weights."""
        return self

    @property
    def exploits_sparsity(self) -> bool:
        return True  # empty blocks are never mapped; empty rows and columns are not driven

    def is_sparse_run(self, workload: Workload) -> bool:
        return any(op.mask is not None for op in workload.gemms)

    def compulsory_dram_bytes(self, op: GemmOp) -> float:
        """Nothing: weights stay in the crossbars once programmed and activations live in the
        tiles' eDRAM (a model that does not fit pays its reprogramming on top)."""
        return 0.0

    @property
    def energy_components(self) -> tuple[str, ...]:
        return CROSSBAR_ENERGY_COMPONENTS

    def area_mm2(self) -> dict[str, float]:
        return chip_area_mm2(self.hw)

    def peak_ops_per_s(self) -> float:
        """Crossbars and digital unit together (2 ops per MAC)."""
        return 2.0 * self.hw.pe_count * self.hw.clock_hz

    def run(self, workload: Workload, seed: int = 0) -> CrossbarSimResult:
        chip = self.hw
        xb = chip.crossbar
        weighted = [op for op in workload.gemms if op.weight_name is not None]
        stats = {
            id(op): block_stats(op.mask, op.n, op.k, xb.rows, xb.cols, xb.adcs_per_crossbar)
            for op in weighted
        }
        needed = sum(s.mapped_blocks for s in stats.values()) * chip.crossbars_per_block
        fits = needed <= chip.chip_crossbars
        max_vectors = max((op.m * op.count for op in weighted), default=1)
        copies = replication(chip, needed, max_vectors) if fits else 1

        results, timings = [], {}
        unmasked: dict[tuple, tuple[CrossbarTiming | None, OpCharge]] = {}
        for op in workload:
            if isinstance(op, GemmOp) and op.weight_name is not None:
                # an unmasked weight's timing and cost depend on its shape alone (BERT-base's
                # dense baseline: 74 weight GEMMs of 5 shapes): built once per shape
                shape = (op.m, op.n, op.k, op.count, op.weight_nnz)  # nnz: the useful MACs
                if op.mask is None and shape in unmasked:
                    timing, cost = unmasked[shape]
                else:
                    timing = None
                    if fits:  # one replica's pipeline: the op's cost and the pipelined pass
                        timing = crossbar_timing(chip, op, stats[id(op)], copies)
                    cost = weight_gemm_cost(
                        op, chip, stats[id(op)], copies, reprogram=not fits, timing=timing
                    )
                    if op.mask is None:
                        unmasked[shape] = (timing, cost)
                if timing is not None:
                    timings[id(op)] = timing
            elif isinstance(op, GemmOp):
                cost = digital_gemm_cost(op, chip)
            else:
                cost = vector_cost(op, chip)
            results.append(self._op_result(op, cost))

        execution, forward_cycles, note = chip.mapping.execution, None, ""
        if execution == "pipelined" and not fits:
            execution = "layer"
            note = (
                f"pipelined execution needs the whole model on the chip ({needed:,} crossbars, "
                f"chip {chip.chip_crossbars:,}): ran layer by layer with reprogramming"
            )
        elif execution == "pipelined":
            ticks = pipelined_ticks(workload, chip, timings, results)
            forward_cycles = math.ceil(ticks * chip.clock_hz / xb.adc_sample_rate_hz - 1e-9)
        return CrossbarSimResult(
            model_name=workload.model_name,
            hardware_name=chip.name,
            batch=workload.batch,
            seq_len=workload.seq_len,
            clock_hz=chip.clock_hz,
            pe_count=chip.pe_count,
            ops=tuple(results),
            config_hash=run_config_hash(workload, chip, seed),
            version=__version__,
            seed=seed,
            chip_crossbars=chip.chip_crossbars,
            crossbars_per_tile=chip.tile.crossbars,
            replication=copies,
            fits_on_chip=fits,
            area_breakdown_mm2=chip_area_mm2(chip),
            tile_area_mm2=sum(tile_area_mm2(chip).values()),
            execution=execution,
            execution_note=note,
            forward_cycles=forward_cycles,
        )

    def _op_result(self, op: GemmOp | VectorOp, cost: OpCharge) -> CrossbarOpResult:
        chip = self.hw
        compute = cycles(cost.seconds, chip.clock_hz)
        stall = cycles(cost.stall_seconds, chip.clock_hz)
        return CrossbarOpResult(
            **op_identity(op),
            macs=cost.macs,
            compute_cycles=compute,
            stall_cycles=stall,
            latency_s=(compute + stall) / chip.clock_hz,
            energy_breakdown_j=dict(cost.energy),  # costs may be shared by same-shaped ops
            dram_read_bytes=float(cost.dram_bytes),
            dram_write_bytes=0.0,
            sram_read_bytes=float(cost.buffer_read_bytes),
            sram_write_bytes=float(cost.buffer_write_bytes),
            utilisation=cost.utilisation,
            mode=cost.mode if isinstance(op, GemmOp) else "vector",
            useful_macs=cost.useful_macs,
            **cost.extra,
        )

    def study_columns(self, result: SimResult) -> dict[str, Any]:
        """``zero_handling`` is ``crossbar``: empty blocks, rows and columns are skipped."""
        chip = self.hw
        breakdown = result.energy_breakdown_j
        return {
            "zero_handling": "crossbar",
            "weight_format": "crossbar",
            "pe_rows": chip.crossbar.rows,
            "pe_cols": chip.crossbar.cols,
            "sram_bytes": chip.tiles * chip.tile.buffer_bytes,
            "dram_bandwidth_bytes_per_s": chip.dram.bandwidth_bytes_per_s,
            **{f"energy_{c}_j": breakdown[c] for c in CROSSBAR_ENERGY_COMPONENTS},
            "execution": result.execution,
            "crossbars_used": result.crossbars_used,
            "crossbars_unreplicated": result.crossbars_unreplicated,
            "chip_crossbars": result.chip_crossbars,
            "replication": result.replication,
            "adc_conversions": result.adc_conversions,
            "digital_cycles": result.digital_cycles,
            "mapped_area_mm2": result.mapped_area_mm2,
        }
