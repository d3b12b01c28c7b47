"""accel_sim.energy: published per-action energies, hand-checked pricing, and the breakdown
of a real simulation adding up."""

from __future__ import annotations

import math
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

from functools import cache

import pytest
from hypothesis import given
from hypothesis import strategies as st

from accel_sim import HardwareConfig, SimResult, hardware_from_dict, load_hardware, simulate
from accel_sim.energy import (
    ENERGY_COMPONENTS,
    ActionCounts,
    EnergyTable,
    default_mac_j,
    dynamic_energy_j,
    leakage_power_w,
    sram_j_per_byte,
)
from workloads import build_workload

PJ = 1e-12
KIB, MIB = 2**10, 2**20
HW_NAME = "systolic-32x32-ws"


# --- SRAM: Horowitz 2014 ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size_bytes", "pj_per_64_bits"),
    [(8 * KIB, 10.0), (32 * KIB, 20.0), (1 * MIB, 100.0)],
)
def test_sram_reproduces_horowitz_points(size_bytes: int, pj_per_64_bits: float) -> None:
    assert sram_j_per_byte(size_bytes) == pytest.approx(pj_per_64_bits * PJ / 8, rel=1e-12)


def _power_law_pj_per_64_bits(size_bytes: float) -> float:
    """Straight lines on log-log axes through the Horowitz points, written independently."""
    if size_bytes <= 32 * KIB:
        return 10.0 * (size_bytes / (8 * KIB)) ** (math.log(2) / math.log(4))
    return 20.0 * (size_bytes / (32 * KIB)) ** (math.log(5) / math.log(32))


@pytest.mark.parametrize("size_bytes", [1 * KIB, 16 * KIB, 64 * KIB, 2 * MIB, 6 * MIB, 64 * MIB])
def test_sram_interpolates_and_extrapolates_log_log(size_bytes: int) -> None:
    expected = _power_law_pj_per_64_bits(size_bytes) * PJ / 8
    assert sram_j_per_byte(size_bytes) == pytest.approx(expected, rel=1e-12)


@given(
    st.integers(min_value=KIB, max_value=64 * MIB),
    st.integers(min_value=KIB, max_value=64 * MIB),
)
def test_sram_energy_increases_with_size(a: int, b: int) -> None:
    small, large = sorted((a, b))
    assert sram_j_per_byte(small) > 0
    if small == large:
        assert sram_j_per_byte(small) == sram_j_per_byte(large)
    else:
        assert sram_j_per_byte(small) < sram_j_per_byte(large)


# --- MAC: Horowitz 2014 -----------------------------------------------------------------------


def test_default_mac_values() -> None:
    assert default_mac_j("int8") == pytest.approx(0.3 * PJ, rel=1e-12)  # 0.2 mult + 0.1 add
    assert default_mac_j("fp32") == pytest.approx(4.6 * PJ, rel=1e-12)  # 3.7 mult + 0.9 add
    assert default_mac_j("fp16") == pytest.approx(2.0 * PJ, rel=1e-12)  # 1.1 mult + 0.9 add
    assert default_mac_j("int16") == pytest.approx(0.9 * PJ, rel=1e-12)  # 0.8 mult + 0.1 add


def test_default_mac_ordering() -> None:
    energies = [default_mac_j(p) for p in ("int8", "int16", "fp16", "fp32")]
    assert energies == sorted(energies)
    assert len(set(energies)) == 4


# --- pricing action counts ------------------------------------------------------------------

COUNTS = ActionCounts(
    macs=1000.0,
    register_bytes=500.0,
    sram_ifmap_read_bytes=100.0,
    sram_ifmap_write_bytes=10.0,
    sram_filter_read_bytes=200.0,
    sram_filter_write_bytes=20.0,
    sram_ofmap_read_bytes=300.0,
    sram_ofmap_write_bytes=30.0,
    dram_read_bytes=64.0,
    dram_write_bytes=16.0,
    vector_lane_ops=7.0,
)


def test_dynamic_energy_matches_hand_computation() -> None:
    hw = load_hardware(HW_NAME)  # int8, 64 KiB buffers, 8 pJ/bit DRAM
    sram_64k = _power_law_pj_per_64_bits(64 * KIB) * PJ / 8
    expected = {
        "mac": 1000 * 0.3 * PJ,
        "register": 500 * 0.072 * PJ,
        "sram_ifmap": 110 * sram_64k,
        "sram_filter": 220 * sram_64k,
        "sram_ofmap": 330 * sram_64k,
        "sram_global": 0.0,  # no global buffer on this chip
        "dram": 80 * 8 * 8 * PJ,
        "vector": 7 * 1.1 * PJ,
    }
    energy = dynamic_energy_j(COUNTS, hw)
    assert set(energy) == set(expected)
    assert set(energy) | {"leakage"} == set(ENERGY_COMPONENTS)
    for component, joules in expected.items():
        assert energy[component] == pytest.approx(joules, rel=1e-12), component


def test_dynamic_energy_uses_each_buffers_own_size() -> None:
    data = load_hardware(HW_NAME).model_dump(mode="json")
    data["sram"]["filter"]["size_bytes"] = MIB
    hw = hardware_from_dict(data)
    energy = dynamic_energy_j(ActionCounts(sram_filter_read_bytes=8.0), hw)
    assert energy["sram_filter"] == pytest.approx(100 * PJ, rel=1e-12)


def test_energy_overrides_are_honoured() -> None:
    base = load_hardware(HW_NAME)
    table = EnergyTable(mac_j=1.0 * PJ, sram_read_j_per_byte=2.0 * PJ, register_j_per_byte=3.0 * PJ)
    hw = base.model_copy(update={"energy": table})
    energy = dynamic_energy_j(COUNTS, hw)
    derived_write = sram_j_per_byte(64 * KIB)  # writes still use the derived default
    assert energy["mac"] == pytest.approx(1000 * 1.0 * PJ, rel=1e-12)
    assert energy["register"] == pytest.approx(500 * 3.0 * PJ, rel=1e-12)
    assert energy["sram_ifmap"] == pytest.approx(100 * 2.0 * PJ + 10 * derived_write, rel=1e-12)
    assert energy["sram_filter"] == pytest.approx(200 * 2.0 * PJ + 20 * derived_write, rel=1e-12)
    assert energy["sram_ofmap"] == pytest.approx(300 * 2.0 * PJ + 30 * derived_write, rel=1e-12)
    assert energy["dram"] == dynamic_energy_j(COUNTS, base)["dram"]


def test_sram_write_override() -> None:
    hw = load_hardware(HW_NAME).model_copy(
        update={"energy": EnergyTable(sram_write_j_per_byte=0.0)}
    )
    energy = dynamic_energy_j(COUNTS, hw)
    assert energy["sram_ifmap"] == pytest.approx(100 * sram_j_per_byte(64 * KIB), rel=1e-12)


def test_mac_default_follows_precision() -> None:
    data = load_hardware(HW_NAME).model_dump(mode="json")
    data["pe_array"]["precision"] = "fp32"
    hw = hardware_from_dict(data)
    assert dynamic_energy_j(ActionCounts(macs=10.0), hw)["mac"] == pytest.approx(46 * PJ)


@pytest.mark.parametrize("pj_per_bit", [0.0, 3.9, 8.0, 20.0])
def test_dram_energy_is_bytes_times_8_times_energy_per_bit(pj_per_bit: float) -> None:
    base = load_hardware(HW_NAME)
    hw = base.model_copy(
        update={"dram": base.dram.model_copy(update={"energy_per_bit_j": pj_per_bit * PJ})}
    )
    counts = ActionCounts(dram_read_bytes=1234.0, dram_write_bytes=766.0)
    assert dynamic_energy_j(counts, hw)["dram"] == pytest.approx(2000 * 8 * pj_per_bit * PJ)


def test_zero_counts_cost_nothing() -> None:
    energy = dynamic_energy_j(ActionCounts(), load_hardware(HW_NAME))
    assert all(value == 0.0 for value in energy.values())


def test_leakage_power_by_hand() -> None:
    hw = load_hardware(HW_NAME)
    expected = 10e-6 * 1024 + 20e-9 * 3 * 64 * KIB + 10e-6 * 32
    assert leakage_power_w(hw) == pytest.approx(expected, rel=1e-12)


def test_action_counts_scale() -> None:
    doubled = COUNTS.scaled(2.0)
    assert doubled.macs == 2000.0
    assert doubled.dram_bytes == 160.0
    assert doubled.sram_read_bytes == 1200.0
    assert doubled.sram_write_bytes == 120.0


# --- a real simulation --------------------------------------------------------------------


@cache
def _hardware() -> HardwareConfig:
    return load_hardware(HW_NAME)


@cache
def _result(hw: HardwareConfig | None = None) -> SimResult:
    return simulate(build_workload("bert-tiny"), hw or _hardware())


def test_op_breakdowns_sum_to_op_energy() -> None:
    result = _result()
    assert result.ops
    for op in result.ops:
        assert set(op.energy_breakdown_j) == set(ENERGY_COMPONENTS)
        assert math.fsum(op.energy_breakdown_j.values()) == pytest.approx(op.energy_j, rel=1e-12)
        assert op.energy_j > 0


def test_total_breakdown_sums_to_total_energy() -> None:
    result = _result()
    breakdown = result.energy_breakdown_j
    assert list(breakdown) == list(ENERGY_COMPONENTS)
    assert math.fsum(breakdown.values()) == pytest.approx(result.energy_j, rel=1e-12)
    assert result.energy_j == pytest.approx(math.fsum(op.energy_j for op in result.ops), rel=1e-12)


def test_all_components_are_non_negative() -> None:
    result = _result()
    for op in result.ops:
        for component, joules in op.energy_breakdown_j.items():
            assert joules >= 0, (op.name, component)
    for component in ("mac", "register", "sram_ifmap", "sram_filter", "dram", "vector", "leakage"):
        assert result.energy_breakdown_j[component] > 0, component


def test_leakage_is_power_times_latency() -> None:
    result = _result()
    expected = leakage_power_w(_hardware()) * result.latency_s
    assert result.energy_breakdown_j["leakage"] == pytest.approx(expected, rel=1e-9)


def test_doubling_dram_energy_doubles_only_the_dram_component() -> None:
    hw = _hardware()
    doubled_dram = hw.dram.model_copy(update={"energy_per_bit_j": 2 * hw.dram.energy_per_bit_j})
    doubled = _result(hw.model_copy(update={"dram": doubled_dram}))
    base = _result()
    assert doubled.cycles == base.cycles
    before, after = base.energy_breakdown_j, doubled.energy_breakdown_j
    assert before["dram"] > 0
    assert after["dram"] == pytest.approx(2 * before["dram"], rel=1e-12)
    for component in ENERGY_COMPONENTS:
        if component != "dram":
            assert after[component] == before[component], component
    assert doubled.energy_j - base.energy_j == pytest.approx(before["dram"], rel=1e-9)
