"""Non-GEMM ops (softmax, GELU, LayerNorm, residual adds, gathers) on a SIMD vector unit.

An op streams its inputs from DRAM and its outputs back (layer-by-layer execution, double
buffered), so it lasts the longer of its lane work and its DRAM traffic, plus the pipeline
fill. Lane-ops per element are instruction counts of the usual implementations:
softmax = max, subtract, exp, sum, divide (5); LayerNorm = mean, centre, square, variance,
scale, shift (6); GELU (tanh form) = 8; tanh = 4; residual add = ReLU = 1; gather = 0
(data movement only); mean pooling = 1 add per token value (the divide per output is left
out); cosine = 3 multiply-adds per hidden unit (u.v, u.u, v.v); the bi-encoder's pair
features = 3 per hidden unit (subtract, absolute value, multiply).
"""

from __future__ import annotations

import math

from accel_sim.energy import ActionCounts
from accel_sim.mapping.residency import NONE, OpResidency
from accel_sim.op_cost import OpCost
from accel_sim.spec import HardwareConfig
from accel_sim.traffic import vector_bytes
from workloads.ops import VectorKind, VectorOp

LANE_OPS_PER_ELEMENT = {
    VectorKind.SOFTMAX: 5,
    VectorKind.LAYERNORM: 6,
    VectorKind.GELU: 8,
    VectorKind.TANH: 4,
    VectorKind.RESIDUAL_ADD: 1,
    VectorKind.RELU: 1,
    VectorKind.EMBEDDING_GATHER: 0,
    VectorKind.MEAN_POOL: 1,
    VectorKind.COSINE: 3,
    VectorKind.PAIR_FEATURES: 3,
}


def vector_cost(op: VectorOp, hw: HardwareConfig, residency: OpResidency = NONE) -> OpCost:
    """Cycles and action counts of a vector op on ``hw``'s vector unit; inputs already on
    chip (an equal share of the reads each) and an output kept on chip skip DRAM."""
    lane_ops = op.elements * LANE_OPS_PER_ELEMENT[op.kind]
    read_bytes, write_bytes = vector_bytes(op, hw.word_bytes)
    avoided = 0.0
    if residency.on_chip_reads:
        avoided = read_bytes * len(residency.on_chip_reads) / len(op.reads)
        read_bytes -= avoided
    if residency.output_on_chip:
        avoided += write_bytes
        write_bytes = 0
    lane_cycles = math.ceil(lane_ops / hw.vector_unit.lanes)
    compute = lane_cycles + hw.vector_unit.pipeline_latency_cycles
    dram_cycles = math.ceil((read_bytes + write_bytes) / hw.dram_bytes_per_cycle)
    stall = max(0, dram_cycles - lane_cycles)
    counts = ActionCounts(
        vector_lane_ops=lane_ops,
        dram_read_bytes=read_bytes,
        dram_write_bytes=write_bytes,
    )
    return OpCost(
        compute_cycles=compute, stall_cycles=stall, counts=counts, dram_bytes_avoided=avoided
    )
