"""Property tests of the dense engine against analytical bounds (roofline, compulsory traffic)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accel_sim import simulate
from accel_sim.spec import derive
from tests.conftest import make_hardware
from workloads import GemmOp, GemmRole, VectorKind, VectorOp, Workload, build_workload

hardware = st.builds(
    make_hardware,
    rows=st.integers(1, 32),
    cols=st.integers(1, 32),
    dataflow=st.sampled_from(["ws", "os", "is"]),
    sram_bytes=st.sampled_from([512, 4096, 64 * 1024, 8 * 2**20]),
    dram_bytes_per_s=st.sampled_from([1e8, 4e9, 64e9, 1e12]),
    double_buffered=st.booleans(),
    precision=st.sampled_from(["int8", "int16", "fp16", "fp32"]),
)
gemm_shapes = st.tuples(
    st.integers(1, 200), st.integers(1, 200), st.integers(1, 200), st.integers(1, 4)
)


def gemm_workload(m: int, k: int, n: int, count: int = 1) -> Workload:
    op = GemmOp("g", GemmRole.FFN_IN, m=m, k=k, n=n, count=count)
    return Workload(model_name="random-gemm", batch=1, seq_len=m, ops=(op,))


@settings(max_examples=150, deadline=None)
@given(hardware, gemm_shapes)
def test_gemm_respects_compute_and_memory_rooflines(hw, shape):
    m, k, n, count = shape
    result = simulate(gemm_workload(m, k, n, count), hw)
    op = result.ops[0]
    macs = m * k * n * count
    compulsory_bytes = (m * k + k * n + m * n) * hw.word_bytes * count
    assert op.cycles >= macs / hw.pe_count
    assert op.dram_bytes >= compulsory_bytes
    assert op.cycles >= compulsory_bytes / hw.dram_bytes_per_cycle - count
    assert op.stall_cycles >= 0
    assert 0 < op.utilisation <= 1
    assert result.latency_s == result.cycles / hw.pe_array.clock_hz


@settings(max_examples=100, deadline=None)
@given(hardware, gemm_shapes, st.integers(1, 100))
def test_more_work_costs_more_energy_and_no_fewer_cycles(hw, shape, extra_rows):
    """The mapper optimises latency by default: more rows never run faster. Under the energy
    objective they never cost less energy (under latency a faster mapping of the longer GEMM
    may happen to be frugal, so energy is compared where it is what the mapper minimises)."""
    m, k, n, count = shape
    small = simulate(gemm_workload(m, k, n, count), hw)
    large = simulate(gemm_workload(m + extra_rows, k, n, count), hw)
    assert large.energy_breakdown_j["mac"] > small.energy_breakdown_j["mac"]
    assert large.cycles >= small.cycles
    frugal = derive(hw, {"mapping.objective": "energy"})
    assert (
        simulate(gemm_workload(m + extra_rows, k, n, count), frugal).energy_j
        > simulate(gemm_workload(m, k, n, count), frugal).energy_j
    )
    doubled = simulate(gemm_workload(m, k, n, 2 * count), hw)
    assert math.isclose(doubled.energy_j, 2 * small.energy_j, rel_tol=1e-9)
    assert doubled.cycles == 2 * small.cycles


@settings(max_examples=60, deadline=None)
@given(hardware, st.integers(1, 5_000_000), st.sampled_from(list(VectorKind)))
def test_vector_ops_respect_lane_and_memory_bounds(hw, elements, kind):
    op = VectorOp("v", kind, elements)
    result = simulate(Workload("vec", 1, 1, (op,)), hw)
    vector = result.ops[0]
    assert vector.cycles >= vector.dram_bytes / hw.dram_bytes_per_cycle - 1
    assert vector.dram_bytes >= 2 * elements * hw.word_bytes
    assert vector.energy_j > 0


def test_whole_model_energy_and_cycles_grow_with_sequence_length_and_depth():
    hw = make_hardware(rows=16, cols=16)
    short = simulate(build_workload("bert-tiny", seq_len=32), hw)
    long = simulate(build_workload("bert-tiny", seq_len=128), hw)
    deeper = simulate(build_workload("bert-mini", seq_len=32), hw)
    assert long.energy_j > short.energy_j and long.cycles > short.cycles
    assert deeper.energy_j > short.energy_j and deeper.cycles > short.cycles
    assert short.cycles == sum(op.cycles for op in short.ops)
    assert short.sequences_per_s == short.batch / short.latency_s


def test_bert_base_on_32x32_ws_matches_the_fold_formula_for_every_gemm():
    """Under the fixed mapping with serial preload, each BERT-base GEMM takes SCALE-Sim's WS
    closed form: its folds of 2R + C + M - 2 cycles (SCALE-Sim reports one cycle less, its
    last cycle's index; the kernel statistics match that exactly, see tests/validation)."""
    hw = make_hardware(rows=32, cols=32, dataflow="ws", mapping="fixed")
    result = simulate(build_workload("bert-base-uncased"), hw)
    for op in result.ops:
        if op.kind != "gemm":
            continue
        folds = math.ceil(op.k / 32) * math.ceil(op.n / 32)
        assert op.compute_cycles == op.count * folds * (2 * 32 + 32 + op.m - 2), op.name
        assert op.mapping == "N>K serial", op.name


def test_a_runs_vector_ops_cost_what_vector_cost_gives_each():
    """The array datapaths cost a vector op once per (kind, elements, outputs, reads, reads
    on chip, output on chip) and reuse it: every vector op of a batch-4 run, with activations
    kept on chip and its micro-batch plans, and of bi-encoders at two lengths (mean pooling
    writes the same values from more or fewer tokens), costs what ``vector_cost`` gives it
    alone."""
    from accel_sim import load_hardware
    from accel_sim.datapaths import datapath_for
    from accel_sim.vector_unit import vector_cost
    from workloads import build_workload
    from workloads.ops import VectorOp

    hw = load_hardware("systolic-32x32-ws")
    workload = build_workload("bert-base-uncased", batch=4, seq_len=32)
    pooled = build_workload("bert-base-uncased", batch=4, seq_len=32, head="bi-encoder")
    shorter = build_workload("bert-base-uncased", batch=4, seq_len=16, head="bi-encoder")
    datapath = datapath_for(hw)  # one cache for every run below, as across a batch's plans
    checked = 0
    for part in (workload, workload.micro_batch(2), workload.micro_batch(1), pooled, shorter):
        costs, _ = datapath._ops(part)
        plan, _ = datapath.residency_plan(part)
        for (op, cost), residency in zip(costs, plan, strict=True):
            if isinstance(op, VectorOp):
                assert cost == vector_cost(op, hw, residency), op.name
                checked += 1
    assert checked == 3 * len(workload.vector_ops) + 2 * len(pooled.vector_ops)
    pools = [op for op in (*pooled.vector_ops, *shorter.vector_ops) if op.name == "pooler.mean"]
    assert len({op.outputs for op in pools}) == 1 and len({op.elements for op in pools}) == 2
    assert len(datapath._vector_costs) < len(workload.vector_ops)  # reused, not one per op


def test_op_results_set_in_one_step_equal_those_built_field_by_field():
    """The array datapaths build each op's result with ``OpResult.from_fields`` (its fields
    set in one step): every op of a run equals, field for field, the ``OpResult`` its own
    fields construct, survives a pickle round trip and ``dataclasses.replace``; a missing or
    unknown field is refused by name."""
    import dataclasses
    import pickle

    from accel_sim import load_hardware, simulate
    from accel_sim.results import OpResult
    from workloads import build_workload

    result = simulate(build_workload("bert-base-uncased", batch=2, seq_len=16),
                      load_hardware("eie-64pe"), baseline=False)  # fmt: skip
    assert result.ops
    for op in result.ops:
        built = OpResult(**vars(op))
        assert op == built and vars(op) == vars(built) and repr(op) == repr(built)
        assert pickle.loads(pickle.dumps(op)) == op
        assert dataclasses.replace(op, note="x").note == "x"
    fields = dict(vars(result.ops[0]))
    del fields["mapping"]
    with pytest.raises(TypeError, match=r"missing \['mapping'\], unknown \[\]"):
        OpResult.from_fields(fields)
    with pytest.raises(TypeError, match=r"unknown \['colour'\]"):
        OpResult.from_fields({**vars(result.ops[0]), "colour": 1})
