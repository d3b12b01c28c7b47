"""What each op costs on a crossbar chip: weight GEMMs on the crossbars (conversions, row
drives, reads, shift-and-adds, register, buffer and network bytes, reprogramming), attention
GEMMs and vector ops on the digital unit. Energies are counts times ``CrossbarEnergy``."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from accel_sim.datapaths.crossbar.mapping import BlockStats, program_passes
from accel_sim.datapaths.crossbar.results import CROSSBAR_ENERGY_COMPONENTS
from accel_sim.datapaths.crossbar.timing import CrossbarTiming, crossbar_timing
from accel_sim.kernels import preconditions as pre
from accel_sim.spec.crossbar_chip import CrossbarChipConfig
from accel_sim.traffic import vector_bytes
from accel_sim.vector_unit import LANE_OPS_PER_ELEMENT
from workloads.ops import GemmOp, VectorKind, VectorOp

__all__ = ["OpCharge", "digital_gemm_cost", "vector_cost", "weight_gemm_cost"]


@dataclass(frozen=True)
class OpCharge:
    seconds: float
    stall_seconds: float
    energy: dict[str, float]
    macs: int = 0
    useful_macs: int | None = None
    utilisation: float = 0.0
    mode: str = "digital"
    dram_bytes: float = 0.0
    buffer_read_bytes: float = 0.0
    buffer_write_bytes: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def _energy(**parts: float) -> dict[str, float]:
    return {c: float(parts.get(c, 0.0)) for c in CROSSBAR_ENERGY_COMPONENTS}


def weight_gemm_cost(
    op: GemmOp,
    chip: CrossbarChipConfig,
    stats: BlockStats,
    replication: int,
    reprogram: bool,
    timing: CrossbarTiming | None = None,
) -> OpCharge:
    """``op`` on its crossbars; ``timing``: its ``crossbar_timing`` at ``replication`` when the
    caller already built it (without reprogramming)."""
    xb, enc, e = chip.crossbar, chip.encoding, chip.energy
    per_block = chip.crossbars_per_block
    vectors = op.m * op.count
    slices = chip.input_slices
    mapped = stats.mapped
    sum_rows = int(stats.active_rows[mapped].sum())
    sum_cols = int(stats.active_cols[mapped].sum())
    driven_fraction = float((stats.active_rows[mapped] / xb.rows).sum())
    in_bytes, out_bytes = enc.input_bits / 8, enc.output_bits / 8

    conversions = vectors * slices * sum_cols * per_block
    drives = vectors * slices * sum_rows * per_block
    merges = vectors * (sum_cols - stats.active_outputs)
    offsets = vectors * stats.active_outputs if enc.signed_weights == "offset" else 0
    network_bytes = vectors * (sum_rows * in_bytes + sum_cols * out_bytes)
    buffer_read = vectors * stats.active_inputs * in_bytes
    buffer_write = vectors * op.n * out_bytes

    crossbars = stats.mapped_blocks * per_block
    pre.check_token_arrays(op.name, vectors)
    zeros = np.zeros(vectors, dtype=np.int64)
    if reprogram:
        pass_stats = program_passes(op, stats, chip)
        passes = len(pass_stats)
        pass_ticks = [
            int(crossbar_timing(chip, op, p, 1).finish_ticks(zeros).max(initial=0))
            for p in pass_stats
        ]
        pass_crossbars = [p.mapped_blocks * per_block for p in pass_stats]
        stall_s = sum(program_s(chip, p) for p in pass_stats)
    else:
        passes = 0
        if timing is None:
            timing = crossbar_timing(chip, op, stats, replication)
        pass_ticks = [int(timing.finish_ticks(zeros).max(initial=0))]
        pass_crossbars = [crossbars * replication]
        stall_s = 0.0
    compute_s = sum(pass_ticks) / xb.adc_sample_rate_hz
    written_cells = crossbars * xb.rows * xb.cols if reprogram else 0
    program_bytes = (
        stats.mapped_blocks * xb.rows * xb.cols * enc.weight_bits / 8 if reprogram else 0
    )
    energy = _energy(
        adc=conversions * e.adc_conversion_j,
        dac=drives * e.dac_drive_j,
        sample_hold=conversions * e.sample_hold_j,
        crossbar=vectors * slices * driven_fraction * per_block * e.crossbar_read_j
        + written_cells * e.cell_write_j,
        shift_add=conversions * e.shift_add_j + (merges + offsets) * e.tile_shift_add_j,
        registers=drives * xb.dac_bits / 8 * e.input_register_j_per_byte
        + conversions * e.ima_output_register_j
        + vectors * sum_cols * out_bytes * e.tile_output_register_j_per_byte,
        buffer=(buffer_read + buffer_write) * e.buffer_j_per_byte,
        network=network_bytes * e.network_j_per_byte,
        dram=program_bytes * 8 * chip.dram.energy_per_bit_j,
    )
    nnz = op.weight_nnz if op.weight_nnz is not None else op.n * op.k
    busy = sum(n * t for n, t in zip(pass_crossbars, pass_ticks, strict=True))
    busy /= xb.adc_sample_rate_hz
    capacity = chip.chip_crossbars * (compute_s + stall_s)
    return OpCharge(
        seconds=compute_s,
        stall_seconds=stall_s,
        energy=energy,
        macs=op.macs,
        useful_macs=vectors * nnz,
        utilisation=busy / capacity if capacity else 0.0,
        mode="crossbar" if not reprogram else "crossbar-reprogrammed",
        dram_bytes=program_bytes,
        buffer_read_bytes=buffer_read,
        buffer_write_bytes=buffer_write,
        extra={
            "crossbars": crossbars * replication,
            "blocks": int(mapped.size),
            "mapped_blocks": stats.mapped_blocks,
            "replication": replication,
            "adc_conversions": conversions,
            "dac_drives": drives,
            "program_passes": passes,
        },
    )


def program_s(chip: CrossbarChipConfig, stats: BlockStats) -> float:
    """Time to write one pass's crossbars: rows programmed one at a time, all crossbars in
    parallel (``rows x program_row_s``), but no faster than its weights arrive from DRAM."""
    xb = chip.crossbar
    weight_bytes = stats.mapped_blocks * xb.rows * xb.cols * chip.encoding.weight_bits / 8
    return max(xb.rows * chip.mapping.program_row_s, weight_bytes / chip.dram.bandwidth_bytes_per_s)


def digital_gemm_cost(op: GemmOp, chip: CrossbarChipConfig) -> OpCharge:
    """An attention GEMM on the digital MAC array, operands in eDRAM."""
    in_bytes, out_bytes = chip.encoding.input_bits / 8, chip.encoding.output_bits / 8
    cycles = math.ceil(op.macs / chip.digital.macs_per_cycle) + chip.digital.pipeline_latency_cycles
    reads = op.count * (op.m * op.k + op.k * op.n) * in_bytes
    writes = op.count * op.m * op.n * out_bytes
    energy = _energy(
        digital=op.macs * chip.energy.digital_mac_j,
        buffer=(reads + writes) * chip.energy.buffer_j_per_byte,
    )
    seconds = cycles / chip.clock_hz
    utilisation = op.macs / (cycles * chip.digital.macs_per_cycle)
    return OpCharge(
        seconds=seconds,
        stall_seconds=0.0,
        energy=energy,
        macs=op.macs,
        utilisation=utilisation,
        buffer_read_bytes=reads,
        buffer_write_bytes=writes,
    )


def vector_cost(op: VectorOp, chip: CrossbarChipConfig) -> OpCharge:
    """A vector op on the digital unit's lanes; the embedding gather reads DRAM."""
    word = chip.encoding.input_bits / 8
    lane_ops = op.elements * LANE_OPS_PER_ELEMENT[op.kind]
    cycles = math.ceil(lane_ops / chip.digital.vector_lanes) + chip.digital.pipeline_latency_cycles
    reads, writes = vector_bytes(op, word)
    dram_bytes = op.elements * word if op.kind == VectorKind.EMBEDDING_GATHER else 0.0
    compute_s = cycles / chip.clock_hz
    dram_s = dram_bytes / chip.dram.bandwidth_bytes_per_s
    energy = _energy(
        digital=lane_ops * chip.energy.vector_op_j,
        buffer=(reads + writes) * chip.energy.buffer_j_per_byte,
        dram=dram_bytes * 8 * chip.dram.energy_per_bit_j,
    )
    return OpCharge(
        seconds=compute_s,
        stall_seconds=max(0.0, dram_s - compute_s),
        energy=energy,
        dram_bytes=dram_bytes,
        buffer_read_bytes=reads,
        buffer_write_bytes=writes,
    )
