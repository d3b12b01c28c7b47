"""Dense GEMMs on the systolic array: unpack the hardware spec, run the fold kernel.

Instances of a GEMM (``count``, e.g. batch x heads of attention) run back to back, so their
cycles and traffic add up. Activations and weights start in DRAM and outputs end there
(layer-by-layer execution), which makes each GEMM's compulsory traffic its operands once.
"""

from __future__ import annotations

from accel_sim.config import Dataflow, HardwareConfig
from accel_sim.energy import ActionCounts
from accel_sim.kernels import dense_folds as k
from accel_sim.op_cost import OpCost

_DATAFLOW_CODE = {
    Dataflow.WEIGHT_STATIONARY: k.WS,
    Dataflow.OUTPUT_STATIONARY: k.OS,
    Dataflow.INPUT_STATIONARY: k.IS,
}


def array_parameters(hw: HardwareConfig) -> tuple:
    """The scalar arguments of the fold kernel that come from the hardware spec."""
    share = 0.5 if hw.sram.double_buffered else 1.0
    return (
        _DATAFLOW_CODE[hw.pe_array.dataflow],
        hw.pe_array.rows,
        hw.pe_array.cols,
        hw.word_bytes,
        hw.pe_array.accumulator_bytes,
        hw.sram.ifmap.size_bytes * share,
        hw.sram.filter.size_bytes * share,
        hw.sram.ofmap.size_bytes * share,
        hw.sram.double_buffered,
        hw.dram_bytes_per_cycle,
        hw.sram.ifmap.bytes_per_cycle,
        hw.sram.filter.bytes_per_cycle,
        hw.sram.ofmap.bytes_per_cycle,
    )


def memory_arguments(params: tuple, filter_dram_scale: float) -> tuple:
    """The fold kernels' arguments after the GEMM shape, from ``array_parameters``' tuple:
    word and accumulator bytes, buffer capacities, double buffering, DRAM and SRAM-port
    bandwidths, then ``filter_dram_scale`` (shared by the dense and sparse kernels)."""
    return (*params[3:], float(filter_dram_scale))


def gemm_stats(m: int, kdim: int, n: int, params: tuple, filter_dram_scale: float = 1.0):
    """Raw kernel statistics for one instance of (m x kdim) @ (kdim x n).

    ``filter_dram_scale``: compressed / dense bytes of the weight (its DRAM loads scale by it).
    """
    dataflow, rows, cols = params[:3]
    return k.dense_gemm_folds(
        dataflow, rows, cols, m, kdim, n, *memory_arguments(params, filter_dram_scale)
    )


def dense_gemm_cost(
    m: int,
    kdim: int,
    n: int,
    count: int,
    hw: HardwareConfig,
    params: tuple | None = None,
    *,
    filter_dram_scale: float = 1.0,
) -> OpCost:
    """Cycles and action counts of ``count`` dense GEMMs (m x kdim) @ (kdim x n)."""
    params = params if params is not None else array_parameters(hw)
    # plain floats for JSON and arithmetic
    s = gemm_stats(m, kdim, n, params, filter_dram_scale).tolist()
    word, acc = hw.word_bytes, hw.pe_array.accumulator_bytes
    macs = m * kdim * n
    ofmap_dram_read = s[k.OFMAP_DRAM_READ_BYTES]
    ofmap_dram_write = s[k.OFMAP_DRAM_WRITE_BYTES]
    counts = ActionCounts(
        macs=macs,
        # per MAC: read the weight and the activation, update the partial sum
        register_bytes=macs * (2 * word + acc),
        sram_ifmap_read_bytes=s[k.IFMAP_SRAM_READS] * word,
        sram_ifmap_write_bytes=s[k.IFMAP_DRAM_BYTES],
        sram_filter_read_bytes=s[k.FILTER_SRAM_READS] * word,
        sram_filter_write_bytes=s[k.FILTER_DRAM_BYTES],
        # array-side psum traffic, plus the buffer side of spills and write-backs
        sram_ofmap_read_bytes=s[k.OFMAP_SRAM_READS] * acc + ofmap_dram_write,
        sram_ofmap_write_bytes=s[k.OFMAP_SRAM_WRITES] * acc + ofmap_dram_read,
        dram_read_bytes=s[k.IFMAP_DRAM_BYTES] + s[k.FILTER_DRAM_BYTES] + ofmap_dram_read,
        dram_write_bytes=ofmap_dram_write,
    ).scaled(count)
    compute = int(s[k.COMPUTE_CYCLES])
    stall = int(s[k.TOTAL_CYCLES]) - compute
    return OpCost(
        compute_cycles=compute * count,
        stall_cycles=stall * count,
        counts=counts,
        folds=int(s[k.FOLDS]) * count,
        sram_limited_cycles=int(s[k.SRAM_LIMITED_CYCLES]) * count,
    )


def warm_up() -> None:
    """Compile (or load from the on-disk cache) the fold kernel, so timings exclude JIT."""
    k.dense_gemm_folds(k.WS, 2, 2, 2, 2, 2, 1, 4, 64.0, 64.0, 64.0, True, 1.0, 1.0, 1.0, 1.0, 1.0)
