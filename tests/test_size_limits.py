"""Extreme sizes (issue 17, families 1 and 3): limits named in one module, checked where
each size enters, and preconditions at every kernel entry.

- every field limit of ``safeio.limits`` refuses the value one past it, naming the field
  and the limit, and accepts the limit itself;
- the kernel preconditions: for random (often huge) GEMM shapes and arrays, a fold kernel
  either refuses with ``SizeLimitError`` before running or returns counts that equal their
  exact integer closed forms (no int64 wrap-around, no float64 rounding);
- the batch, up to the largest accepted (``MAX_BATCH``): total cycles never fall as the
  batch grows when every batch runs whole, a batch never costs less than a batch it is a
  multiple of, and cycles x PEs >= useful MACs on every datapath;
- the inputs of the issue: a huge hidden size with one head, 10**5 layers, block:10000000x1,
  batch 10**7 on an output-stationary array and crossbar rates near 0 or 1e300 all end in
  one named error, quickly.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from transformers import BertConfig

from accel_sim import simulate
from accel_sim.datapaths.array import divisors
from accel_sim.datapaths.pe_array.fifo_array import simulate_unstructured
from accel_sim.datapaths.systolic.dense import gemm_stats
from accel_sim.engine import check_counts
from accel_sim.kernels import fold_memory as fm
from accel_sim.kernels import preconditions as pre
from accel_sim.spec import HardwareConfigError, derive, hardware_from_dict, load_hardware
from pruning.patterns import PatternError, check_fits, parse_pattern
from safeio import limits
from safeio.limits import SizeLimitError
from tests.conftest import hardware_dict, make_hardware
from workloads import WorkloadError, build_workload

# A one-layer model small enough for a batch of 2**20 sequences to simulate in seconds.
SMALL = BertConfig(
    hidden_size=32,
    num_hidden_layers=1,
    num_attention_heads=2,
    intermediate_size=64,
    max_position_embeddings=64,
)
SEQ = 4
PRESETS = ("systolic-32x32-ws", "systolic-32x32-os", "systolic-32x32-is", "eie-64pe",
           "isaac-crossbar", "systolic-32x32-ws-skip", "systolic-32x32-ws-nm")  # fmt: skip
# every batch runs whole: no micro-batch plans (mapping fixed or activations off chip)
WHOLE = ({"mapping.search": "fixed"}, {"residency.activations_on_chip": False})


def _useful_macs(result) -> int:
    return sum(op.useful_macs if op.useful_macs is not None else op.macs for op in result.ops)


# ------------------------------------------------------------------ field limits


def _workload(**config) -> None:
    build_workload(BertConfig(**{**SMALL.to_dict(), **config}), batch=1, seq_len=SEQ)


MODEL_FIELDS = {
    "hidden_size": limits.MAX_HIDDEN,
    "num_hidden_layers": limits.MAX_LAYERS,
    "num_attention_heads": limits.MAX_HEADS,
    "intermediate_size": limits.MAX_INTERMEDIATE,
}


@pytest.mark.parametrize("field", list(MODEL_FIELDS))
def test_model_config_fields_stop_at_their_limit(field: str) -> None:
    limit = MODEL_FIELDS[field]
    extra = {"num_attention_heads": 1} if field == "hidden_size" else {}
    if field == "num_attention_heads":
        extra = {"hidden_size": limit}  # heads must divide hidden
    started = time.perf_counter()
    with pytest.raises(WorkloadError) as caught:
        _workload(**{field: limit + 1, **extra})
    message = str(caught.value)
    assert field in message and f"{limit:,}" in message and "\n" not in message
    assert time.perf_counter() - started < 5


@pytest.mark.parametrize(
    ("name", "value", "limit"),
    [("batch", limits.MAX_BATCH + 1, limits.MAX_BATCH),
     ("seq_len", limits.MAX_SEQ_LEN + 1, limits.MAX_SEQ_LEN)],
)  # fmt: skip
def test_batch_and_seq_len_stop_at_their_limit(name: str, value: int, limit: int) -> None:
    config = BertConfig(**{**SMALL.to_dict(), "max_position_embeddings": limits.MAX_SEQ_LEN + 2})
    with pytest.raises(WorkloadError, match=f"{name} is .*the limit is {limit:,}"):
        build_workload(config, **{"batch": 1, "seq_len": SEQ, name: value})


def test_a_forward_pass_past_the_mac_limit_is_refused() -> None:
    with pytest.raises(WorkloadError, match=r"MACs: the limit is .*\(2\*\*48\)"):
        build_workload("bert-base-uncased", batch=limits.MAX_BATCH, seq_len=512)


SPEC_FIELDS = [
    ("pe_array.clock_hz", limits.MAX_RATE_HZ * 2),
    ("pe_array.clock_hz", limits.MIN_RATE_HZ / 2),
    ("dram.bandwidth_bytes_per_s", limits.MAX_BANDWIDTH * 10),
    ("dram.bandwidth_bytes_per_s", 1e-300),
    ("dram.energy_per_bit_j", 1e300),
    ("sram.ifmap.size_bytes", limits.MAX_BUFFER_BYTES + 1),
    ("sram.ifmap.bytes_per_cycle", 1e-300),
    ("sram.ofmap.bytes_per_cycle", 1e300),
    ("vector_unit.pipeline_latency_cycles", 2**63),
    ("leakage.pe_w", 1e300),
    ("area.sram_um2_per_byte", 1e300),
    ("sparse.nm", [2, 2**40]),
    ("sparse.format_block", [2**40, 1]),
]


@pytest.mark.parametrize(("field", "value"), SPEC_FIELDS)
def test_array_spec_fields_stop_at_their_limit(field: str, value) -> None:
    data = hardware_dict()
    node = data
    *parents, leaf = field.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
    with pytest.raises(HardwareConfigError) as caught:
        hardware_from_dict(data, source="limits")
    message = str(caught.value)
    assert field in message and "\n" not in message


CROSSBAR_RATES = [
    ("crossbar.adc_sample_rate_hz", 1e-300), ("crossbar.adc_sample_rate_hz", 1e300),
    ("crossbar.read_cycle_s", 1e-300), ("crossbar.read_cycle_s", 1e300),
    ("tile.buffer_bytes_per_s", 1e-300), ("tile.network_bytes_per_s", 1e300),
    ("tile.network_hop_s", 1e300), ("mapping.program_row_s", 5e-324),
    ("clock_hz", 1e300), ("digital.macs_per_cycle", 2**63),
    ("digital.pipeline_latency_cycles", 2**63), ("mapping.max_replication", 2**63),
]  # fmt: skip


@pytest.mark.parametrize(("field", "value"), CROSSBAR_RATES)
def test_crossbar_rates_near_zero_or_huge_are_refused_by_name(field: str, value) -> None:
    chip = load_hardware("isaac-crossbar")
    with pytest.raises(HardwareConfigError) as caught:
        derive(chip, {field: value})
    assert field in str(caught.value) and "\n" not in str(caught.value)


def test_the_limits_themselves_run() -> None:
    """The largest accepted value of the fields that scale work, one at a time."""
    hw = make_hardware(rows=8, cols=8)
    for change in ({"pe_array.rows": 4096}, {"pe_array.cols": 4096}, {"cores": 64},
                   {"sram.ifmap.size_bytes": limits.MAX_BUFFER_BYTES},
                   {"dram.bandwidth_bytes_per_s": limits.MIN_BANDWIDTH},
                   {"pe_array.clock_hz": limits.MAX_RATE_HZ}):  # fmt: skip
        result = simulate(build_workload(SMALL, batch=2, seq_len=SEQ), derive(hw, change))
        assert result.cycles * result.pe_count >= _useful_macs(result), change
        assert np.isfinite(result.latency_s) and np.isfinite(result.energy_j)


# ------------------------------------------------------------------ kernel preconditions

extents = st.one_of(st.integers(1, 300), st.integers(1, 2**40).map(lambda v: v))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    m=extents, k=extents, n=extents,
    rows=st.sampled_from([1, 2, 7, 32, 4096]), cols=st.sampled_from([1, 3, 32, 4096]),
    dataflow=st.sampled_from(["ws", "os", "is"]),
)  # fmt: skip
def test_fold_kernels_refuse_or_count_exactly(m, k, n, rows, cols, dataflow) -> None:
    """SCALE-Sim's serial schedule has closed forms: folds = ceil(Sr/R) x ceil(Sc/C) and
    compute cycles = folds x (overhead + T) - 1. Whatever the sizes, the kernel either is
    refused before it runs or returns exactly those integers."""
    hw = make_hardware(rows=rows, cols=cols, dataflow=dataflow, sram_bytes=2**20)
    folds = pre.dense_folds(dataflow, rows, cols, m, k, n)
    try:
        stats = gemm_stats(m, k, n, hw)
    except SizeLimitError as error:
        assert "\n" not in str(error) and "limit" in str(error)
        assert (
            folds > limits.MAX_FOLDS
            or m * k * n >= limits.EXACT_COUNT
            or max(m * k, k * n, m * n * 4) >= limits.EXACT_COUNT
        )
        return
    temporal = {"ws": m, "os": k, "is": n}[dataflow]
    overhead = rows + cols - 2 if dataflow == "os" else 2 * rows + cols - 2
    assert int(stats[fm.FOLDS]) == folds
    assert int(stats[fm.COMPUTE_CYCLES]) == folds * (overhead + temporal) - 1
    assert np.isfinite(stats).all() and (stats >= 0).all()


def test_a_huge_hidden_size_with_one_head_is_refused_at_the_kernel_entry() -> None:
    """The segfault of the issue (a fold count past int64), reached below the workload
    builder: the kernel is never called."""
    hw = make_hardware(rows=1, cols=1)
    with pytest.raises(SizeLimitError, match="fold count"):
        gemm_stats(128, 2**40, 2**40, hw)


@settings(max_examples=40, deadline=None)
@given(
    mask=st.integers(1, 6).flatmap(lambda n: st.integers(1, 6).flatmap(
        lambda k: st.lists(st.booleans(), min_size=n * k, max_size=n * k).map(
            lambda bits: np.array(bits, dtype=bool).reshape(n, k)))),
    m=st.integers(1, 4), pes=st.integers(1, 5), depth=st.integers(1, 8),
)  # fmt: skip
def test_a_fifo_deeper_than_its_stream_gives_the_same_numbers(mask, m, pes, depth) -> None:
    """The PE array cuts the FIFO depth to the number of entries (bounded memory for any
    fifo_depth): a deeper FIFO than the stream never fills, so nothing changes."""
    entries = mask.shape[1] * m
    for engine in ("fast", "cycle_stepping"):
        deep = simulate_unstructured(mask, m, pes, entries + depth, engine=engine)
        exact = simulate_unstructured(mask, m, pes, entries, engine=engine)
        assert (deep.cycles, deep.busy_cycles, deep.broadcast_stall_cycles) == (
            exact.cycles,
            exact.busy_cycles,
            exact.broadcast_stall_cycles,
        )


def test_pe_array_kernels_refuse_huge_tables_and_loops() -> None:
    mask = np.ones((4, 8), dtype=bool)
    wide = np.zeros((2**15, 2**13), dtype=bool)  # untouched pages: no memory used
    with pytest.raises(SizeLimitError, match="per-PE work table"):
        simulate_unstructured(wide, 1, 2**15, 1 << 20, what="ffn_in")
    # PEs past the layer's rows add no table rows: 2**30 PEs on 4 rows run as 5
    huge = simulate_unstructured(mask, 1, 2**30, 1 << 20, what="ffn_in")
    assert huge.cycles == simulate_unstructured(mask, 1, 5, 1 << 20).cycles
    assert huge.load_imbalance == 1.0 and huge.n_pes == 2**30
    # 2**30 tokens of the same activations: the schedule repeats after a few passes and the
    # rest is added in one step, exactly (each later pass adds the same cycles)
    period = (simulate_unstructured(mask, 128, 64, 8).cycles
              - simulate_unstructured(mask, 64, 64, 8).cycles) // 64  # fmt: skip
    longest = simulate_unstructured(mask, 2**30, 64, 8, what="ffn_in")
    assert longest.cycles == simulate_unstructured(mask, 128, 64, 8).cycles + (2**30 - 128) * period
    # token by token (an activation mask), the whole stream is the kernel's work: refused
    with pytest.raises(SizeLimitError, match="kernel steps"):
        simulate_unstructured(mask, 2**30, 64, 8, activations=np.ones(8, dtype=bool),
                              what="ffn_in")  # fmt: skip
    # a FIFO depth of 2**20 allocates no more than the stream needs
    assert simulate_unstructured(mask, 2, 4, 1 << 20).cycles > 0


def test_a_stream_that_does_not_repeat_within_the_step_limit_is_refused(monkeypatch) -> None:
    """The recurrence runs at most the passes the kernel-step limit allows; a schedule that
    has not repeated by then is refused with the whole stream's bound, not run further."""
    import accel_sim.kernels.preconditions as preconditions
    from accel_sim.kernels.sparse_pe import fifo_event_periodic

    rng = np.random.default_rng(5)
    mask = rng.random((12, 16)) < 0.4
    cost = np.maximum(simulate_unstructured.__globals__["per_pe_work"](mask, 3), 1)
    cols = np.arange(16, dtype=np.int64)
    assert fifo_event_periodic(cost, cols, 50, 4, 1, 1)[0] == -1  # one pass cannot repeat
    full = fifo_event_periodic(cost, cols, 50, 4, 1, 50)
    assert full[0] > 0 and 0 < full[3][0] < 50
    assert simulate_unstructured(mask, 50, 3, 4).cycles == full[0]
    monkeypatch.setattr(preconditions, "MAX_KERNEL_STEPS", 3 * 16)  # one pass of 3 PEs
    with pytest.raises(SizeLimitError, match="kernel steps"):
        simulate_unstructured(mask, 50, 3, 4)


def test_divisors_are_every_divisor_in_order() -> None:
    for number in (1, 2, 12, 97, 2**20, 997 * 1009, 720720):
        assert divisors(number) == [d for d in range(1, number + 1) if number % d == 0] or (
            number > 10**5 and all(number % d == 0 for d in divisors(number))
        )
    assert len(divisors(2**20)) == 21


def test_counts_past_2_53_are_refused_not_rounded() -> None:
    """Each field alone stays exact; a combination (a huge batch on a 1 B/s DRAM at 1 THz)
    is refused naming the count instead of reporting a rounded number."""
    hw = derive(make_hardware(rows=8, cols=8), {"dram.bandwidth_bytes_per_s": 1.0,
                                                "pe_array.clock_hz": 1e12})  # fmt: skip
    with pytest.raises(SizeLimitError, match=r"cycles of .* over the limit of 9,007"):
        simulate(build_workload("bert-tiny", batch=2**14, seq_len=128), hw)
    slow_dram = derive(hw, {"pe_array.clock_hz": 1e9})
    check_counts(simulate(build_workload(SMALL, batch=1, seq_len=SEQ), slow_dram))


# ------------------------------------------------------------------ batch properties


def _cycles(hw, batch: int) -> int:
    result = simulate(build_workload(SMALL, batch=batch, seq_len=SEQ), hw)
    assert result.cycles * result.pe_count >= _useful_macs(result)
    return result.cycles


batches = st.one_of(st.integers(1, 64), st.integers(1, 2**14))
big_batches = st.integers(1, limits.MAX_BATCH)


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(PRESETS), st.sampled_from(WHOLE), batches, batches)
def test_total_cycles_never_fall_as_the_batch_grows(preset, whole, a, b) -> None:
    """With every batch run whole, more sequences never take fewer cycles (and every run
    has cycles x PEs >= useful MACs)."""
    hw = load_hardware(preset)
    if hw.datapath != "crossbar":
        hw = derive(hw, whole)
    small, large = sorted((a, b))
    assert _cycles(hw, small) <= _cycles(hw, large)


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(PRESETS), st.integers(1, 256), st.integers(2, 64))
def test_a_batch_never_costs_less_than_a_batch_it_is_a_multiple_of(preset, batch, times):
    """With micro-batch plans (the default mapping), k x b sequences never take fewer cycles
    than b (nor more than k runs of b: issue 14's property, tests/test_mapper.py)."""
    hw = load_hardware(preset)
    assert _cycles(hw, batch) <= _cycles(hw, batch * times)


@pytest.mark.parametrize("preset", PRESETS)
def test_the_largest_accepted_batch_runs(preset: str) -> None:
    """MAX_BATCH runs on every preset (whole, or as micro-batches within the kernel limits)
    with cycles x PEs >= useful MACs, and no fewer cycles than a smaller batch."""
    hw = load_hardware(preset)
    assert _cycles(hw, 2**10) <= _cycles(hw, limits.MAX_BATCH)


@pytest.mark.slow
@settings(max_examples=40, deadline=None)
@given(st.sampled_from(PRESETS), st.sampled_from(WHOLE), big_batches, big_batches)
def test_total_cycles_never_fall_up_to_the_largest_batch(preset, whole, a, b) -> None:
    hw = load_hardware(preset)
    if hw.datapath != "crossbar":
        hw = derive(hw, whole)
    small, large = sorted((a, b))
    try:
        assert _cycles(hw, small) <= _cycles(hw, large)
    except SizeLimitError:  # whole-batch runs past the kernel limits (no micro-batches)
        with pytest.raises(SizeLimitError):
            _cycles(hw, large)


# ------------------------------------------------------------------ the issue's inputs


def _quick(call, error: type[Exception], match: str) -> None:
    started = time.perf_counter()
    with pytest.raises(error, match=match) as caught:
        call()
    assert "\n" not in str(caught.value)
    assert time.perf_counter() - started < 10


def test_the_issue_inputs_end_in_one_named_error_quickly() -> None:
    _quick(lambda: _workload(hidden_size=2**20, num_attention_heads=1), WorkloadError,
           "hidden_size.*the limit is 65,536")  # fmt: skip
    _quick(lambda: _workload(num_hidden_layers=10**5), WorkloadError,
           "num_hidden_layers.*the limit is 1,024")  # fmt: skip
    _quick(lambda: check_fits(parse_pattern("block:10000000x1"), {"w": (3072, 768)}),
           PatternError, "padded to whole blocks .* over the limit")  # fmt: skip
    os_hw = make_hardware(dataflow="os")
    _quick(lambda: simulate(build_workload("bert-tiny", batch=10**7), os_hw), WorkloadError,
           "batch is 10,000,000")  # fmt: skip


def test_a_whole_batch_past_the_os_fold_limit_is_refused() -> None:
    """Batch 2**17 on an 8x8 output-stationary array run whole (fixed mapping): more folds
    per GEMM than MAX_FOLDS, refused before any kernel allocates them."""
    fixed = derive(make_hardware(rows=8, cols=8, dataflow="os"), {"mapping.search": "fixed"})
    _quick(lambda: simulate(build_workload(SMALL, batch=2**17, seq_len=64), fixed),
           SizeLimitError, "fold count")  # fmt: skip


@pytest.mark.slow
def test_a_batch_past_the_os_fold_limit_runs_as_micro_batches() -> None:
    """The same batch with the mapper searching runs as micro-batches within the limit."""
    hw = make_hardware(rows=8, cols=8, dataflow="os")
    result = simulate(build_workload(SMALL, batch=2**17, seq_len=64), hw)
    assert "micro-batches" in result.notes[-1]
    assert result.cycles * result.pe_count >= _useful_macs(result)


def test_cli_simulate_turns_a_kernel_limit_into_one_line(tmp_path) -> None:
    from typer.testing import CliRunner

    from studies.cli import app

    data = hardware_dict(dataflow="os", rows=1, cols=1)
    data["mapping"] = {"search": "fixed"}
    path = tmp_path / "os.yaml"
    import yaml

    path.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(
        app, ["simulate", "--model", "bert-tiny", "--hw", str(path), "--batch", "4096"]
    )
    assert result.exit_code == 2, result.output
    assert "fold count" in result.output and "Traceback" not in result.output
