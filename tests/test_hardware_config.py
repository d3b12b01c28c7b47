"""accel_sim.spec: presets, YAML files, unit strings, one clear error per bad file."""

from __future__ import annotations

import copy
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

from pathlib import Path

import pytest
import yaml

from accel_sim import (
    HardwareConfig,
    HardwareConfigError,
    hardware_from_dict,
    list_presets,
    load_hardware,
)
from accel_sim.spec import Dataflow, preset_dir
from accel_sim.spec.units import DecimalBufferWarning

KIB, MIB = 2**10, 2**20
SIZES = ("32x32", "128x128")
DATAFLOWS = ("ws", "os", "is")
EXPECTED_PRESETS = [f"systolic-{size}-{flow}" for size in SIZES for flow in DATAFLOWS]
# The sparse variants of systolic-32x32-ws: mode -> preset.
SPARSE_PRESETS = {
    "skipping": "systolic-32x32-ws-skip",
    "nm": "systolic-32x32-ws-nm",
    "gating": "systolic-32x32-ws-gating",
}
PE_ARRAY_PRESETS = ["eie-64pe"]
OUTER_PRODUCT_PRESETS = ["dual-side-32x32"]


def preset_data(name: str = "systolic-32x32-ws") -> dict:
    """The raw YAML mapping of a preset, as a user would copy and edit it."""
    return yaml.safe_load((preset_dir() / f"{name}.yaml").read_text())


def write_yaml(path: Path, data: object) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# --- presets ---------------------------------------------------------------------------------


def test_every_preset_is_listed() -> None:
    crossbar_presets = ["isaac-crossbar"]  # datapath: crossbar
    flexible_presets = ["sigma-1024"]  # datapath: flexible
    listed = [*EXPECTED_PRESETS, *SPARSE_PRESETS.values(), *PE_ARRAY_PRESETS, *crossbar_presets,
              *OUTER_PRODUCT_PRESETS, *flexible_presets]  # fmt: skip
    assert sorted(listed) == list_presets()


@pytest.mark.parametrize(("mode", "name"), list(SPARSE_PRESETS.items()))
def test_sparse_presets_declare_their_mode(mode: str, name: str) -> None:
    hw = load_hardware(name)
    assert hw.datapath == "systolic" and hw.sparse.zero_handling == mode
    if name.startswith("systolic-32x32-ws-"):
        dense = load_hardware("systolic-32x32-ws")
        assert hw.pe_array == dense.pe_array and hw.sram == dense.sram and hw.dram == dense.dram


def test_presets_name_their_datapath() -> None:
    assert load_hardware("eie-64pe").datapath == "pe-array"
    assert load_hardware("eie-64pe").sparse.zero_handling == "skipping"
    assert load_hardware("isaac-crossbar").datapath == "crossbar"
    assert load_hardware("dual-side-32x32").datapath == "outer-product"
    assert load_hardware("sigma-1024").datapath == "flexible"


def test_older_spellings_still_load_as_the_named_datapath() -> None:
    """``kind: crossbar`` and ``zero_handling: unstructured-pe`` predate ``datapath``."""
    eie = preset_data("eie-64pe")
    del eie["datapath"]
    eie["sparse"]["zero_handling"] = "unstructured-pe"
    upgraded = hardware_from_dict(eie)
    assert upgraded == load_hardware("eie-64pe")
    crossbar = preset_data("isaac-crossbar")
    crossbar = {"kind": crossbar.pop("datapath"), **crossbar}
    assert hardware_from_dict(crossbar) == load_hardware("isaac-crossbar")


def test_systolic_specs_dump_without_their_default_datapath() -> None:
    """``datapath: systolic`` is the default and is not written out, so dumps (and config
    hashes, and study tables) of systolic specs are what they were before the field."""
    hw = load_hardware("systolic-32x32-ws")
    assert hw.datapath == "systolic" and "datapath" not in hw.model_dump()
    assert hardware_from_dict(hw.model_dump()) == hw
    eie = load_hardware("eie-64pe")
    assert eie.model_dump()["datapath"] == "pe-array"
    assert hardware_from_dict(eie.model_dump(mode="json")) == eie


@pytest.mark.parametrize("name", EXPECTED_PRESETS)
def test_every_preset_loads(name: str) -> None:
    hw = load_hardware(name)
    assert isinstance(hw, HardwareConfig)
    assert hw.name == name
    size, flow = name.split("-")[1:]
    rows, cols = (int(part) for part in size.split("x"))
    assert (hw.pe_array.rows, hw.pe_array.cols) == (rows, cols)
    assert hw.pe_array.dataflow == Dataflow(flow)
    assert hw.pe_count == rows * cols


# SCALE-Sim configs/scale.cfg (32x32) and configs/google.cfg (128x128) buffer sizes
PRESET_BUFFERS = {"32x32": (64 * KIB, 64 * KIB, 64 * KIB), "128x128": (6 * MIB, 6 * MIB, 2 * MIB)}


@pytest.mark.parametrize("flow", DATAFLOWS)
@pytest.mark.parametrize("array", list(PRESET_BUFFERS))
def test_presets_have_scalesim_config_buffers(array: str, flow: str) -> None:
    sram = load_hardware(f"systolic-{array}-{flow}").sram
    sizes = (sram.ifmap.size_bytes, sram.filter.size_bytes, sram.ofmap.size_bytes)
    assert sizes == PRESET_BUFFERS[array]


@pytest.mark.parametrize("name", EXPECTED_PRESETS)
def test_sizes_are_whole_ints(name: str) -> None:
    sram = load_hardware(name).sram
    for buffer in (sram.ifmap, sram.filter, sram.ofmap):
        assert type(buffer.size_bytes) is int


def test_preset_dir_can_be_overridden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = preset_data()
    data["name"] = "mine"
    write_yaml(tmp_path / "mine.yaml", data)
    monkeypatch.setenv("COSIM_HW_DIR", str(tmp_path))
    assert list_presets() == ["mine"]
    assert load_hardware("mine").name == "mine"


# --- YAML files and unit strings ------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".yaml", ".yml"])
def test_yaml_path_loads_like_the_preset(tmp_path: Path, suffix: str) -> None:
    path = write_yaml(tmp_path / f"hw{suffix}", preset_data())
    from_path = load_hardware(path)
    from_str = load_hardware(str(path))
    assert from_path == from_str == load_hardware("systolic-32x32-ws")


def test_path_without_yaml_suffix_is_read_as_a_file(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "hardware.cfg", preset_data())
    assert load_hardware(str(path)) == load_hardware("systolic-32x32-ws")


def test_unit_strings_parse_into_si_numbers(tmp_path: Path) -> None:
    data = preset_data()
    data["pe_array"]["clock_hz"] = "700 MHz"
    data["sram"]["ifmap"]["size_bytes"] = "1.5 MiB"
    data["sram"]["filter"]["size_bytes"] = "64 kB"
    data["sram"]["ofmap"]["size_bytes"] = 4096
    data["dram"]["bandwidth_bytes_per_s"] = "25.6 GB/s"
    data["dram"]["energy_per_bit_j"] = "3.9pJ"
    with pytest.warns(DecimalBufferWarning, match="'64 kB' is 64,000 bytes"):
        hw = load_hardware(write_yaml(tmp_path / "units.yaml", data))
    assert hw.pe_array.clock_hz == pytest.approx(700e6)
    assert hw.sram.ifmap.size_bytes == 1536 * KIB
    assert hw.sram.filter.size_bytes == 64000
    assert hw.sram.ofmap.size_bytes == 4096
    assert hw.dram.bandwidth_bytes_per_s == pytest.approx(25.6e9)
    assert hw.dram.energy_per_bit_j == pytest.approx(3.9e-12)
    assert hw.dram_bytes_per_cycle == pytest.approx(25.6e9 / 700e6)


def test_preset_quantities_are_si() -> None:
    hw = load_hardware("systolic-32x32-ws")
    assert hw.pe_array.clock_hz == 1e9
    assert hw.dram.bandwidth_bytes_per_s == 16e9
    assert hw.dram.energy_per_bit_j == pytest.approx(8e-12)
    big = load_hardware("systolic-128x128-ws")
    assert big.dram.bandwidth_bytes_per_s == 256e9
    assert big.dram.energy_per_bit_j == pytest.approx(3.9e-12)


# --- bad files: one HardwareConfigError naming the field -------------------------------------


def _set(path: str, value: object):
    """An edit that sets the dotted ``path`` in the preset mapping."""

    def edit(data: dict) -> None:
        *parents, leaf = path.split(".")
        for part in parents:
            data = data.setdefault(part, {})
        data[leaf] = value

    return edit


def _delete(path: str):
    def edit(data: dict) -> None:
        *parents, leaf = path.split(".")
        for part in parents:
            data = data[part]
        del data[leaf]

    return edit


BAD_EDITS = {
    "unknown top-level key": (_set("pe_arrays", {"rows": 4}), "pe_arrays", "unknown key"),
    "unknown nested key": (_set("pe_array.rowz", 4), "pe_array.rowz", "unknown key"),
    "unknown deeply nested key": (
        _set("sram.ifmap.sise_bytes", 4),
        "sram.ifmap.sise_bytes",
        "unknown key",
    ),
    "missing dram": (_delete("dram"), "dram", "missing"),
    "missing nested field": (_delete("pe_array.rows"), "pe_array.rows", "missing"),
    "wrong type": (_set("pe_array.rows", "many"), "pe_array.rows", "integer"),
    "zero rows": (_set("pe_array.rows", 0), "pe_array.rows", "greater than 0"),
    "boolean rows": (_set("pe_array.rows", True), "pe_array.rows", "integer"),
    "infinite bandwidth": (
        _set("dram.bandwidth_bytes_per_s", float("inf")),
        "dram.bandwidth_bytes_per_s",
        "finite",
    ),
    "infinite energy override": (_set("energy.mac_j", float("inf")), "energy.mac_j", "finite"),
    "negative size": (
        _set("sram.ifmap.size_bytes", -1),
        "sram.ifmap.size_bytes",
        "greater than 0",
    ),
    "zero size string": (
        _set("sram.ofmap.size_bytes", "0 KiB"),
        "sram.ofmap.size_bytes",
        "greater than 0",
    ),
    "fractional bytes": (
        _set("sram.filter.size_bytes", "1.0001 KiB"),
        "sram.filter.size_bytes",
        "whole number",
    ),
    "bad unit": (_set("sram.ifmap.size_bytes", "64 parsecs"), "sram.ifmap.size_bytes", "unit B"),
    "unit of the wrong quantity": (_set("pe_array.clock_hz", "64 KiB"), "clock_hz", "Hz"),
    "negative bandwidth": (
        _set("dram.bandwidth_bytes_per_s", "-16 GB/s"),
        "dram.bandwidth_bytes_per_s",
        "greater than or equal to 1",  # safeio.limits.MIN_BANDWIDTH
    ),
    "negative dram energy": (
        _set("dram.energy_per_bit_j", -1e-12),
        "dram.energy_per_bit_j",
        "greater than or equal to 0",
    ),
    "unknown dataflow": (_set("pe_array.dataflow", "xs"), "pe_array.dataflow", "'ws'"),
    "unknown precision": (_set("pe_array.precision", "int4"), "pe_array.precision", "int8"),
    "zero lanes": (_set("vector_unit.lanes", 0), "vector_unit.lanes", "greater than 0"),
    "unknown energy key": (_set("energy.mac_pj", 0.3), "energy.mac_pj", "unknown key"),
    "unknown leakage key": (_set("leakage.dram_w", 1.0), "leakage.dram_w", "unknown key"),
    "negative energy override": (_set("energy.mac_j", -1e-12), "energy.mac_j", ">= 0"),
    "float N:M": (_set("sparse.nm", [2.0, 4.0]), "sparse.nm.0", "valid integer"),
    "huge float N:M": (_set("sparse.nm", [2, 1e300]), "sparse.nm.1", "valid integer"),
    "huge float format block": (
        _set("sparse.format_block", [1e300, 4]),
        "sparse.format_block.0",
        "valid integer",
    ),
}


@pytest.mark.parametrize("case", list(BAD_EDITS))
def test_bad_field_raises_one_error_naming_the_dotted_path(tmp_path: Path, case: str) -> None:
    edit, field, hint = BAD_EDITS[case]
    data = preset_data()
    edit(data)
    path = write_yaml(tmp_path / "bad.yaml", data)
    with pytest.raises(HardwareConfigError) as excinfo:
        load_hardware(path)
    message = str(excinfo.value)
    assert field in message
    assert str(path) in message
    if hint == ">= 0":
        assert "greater than or equal to 0" in message
    else:
        assert hint in message, message
    # One error of our own type, not pydantic's chained underneath.
    assert excinfo.value.__cause__ is None
    assert excinfo.value.__suppress_context__


def test_several_problems_are_reported_in_one_error() -> None:
    data = preset_data()
    data["pe_array"]["rows"] = 0
    data["dram"]["energy_per_bitj"] = 1
    with pytest.raises(HardwareConfigError) as excinfo:
        hardware_from_dict(data)
    message = str(excinfo.value)
    assert "pe_array.rows" in message
    assert "dram.energy_per_bitj" in message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("- rows: 32\n- cols: 32\n", "got list"),
        ("just a string\n", "got str"),
        ("", "got an empty document"),
    ],
)
def test_non_mapping_yaml_is_rejected(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "list.yaml"
    path.write_text(text)
    with pytest.raises(HardwareConfigError, match="expected a YAML mapping") as excinfo:
        load_hardware(path)
    assert fragment in str(excinfo.value)


def test_invalid_yaml_syntax(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("pe_array: {rows: 32, cols: [32\nsram: :\n")
    with pytest.raises(HardwareConfigError, match="not valid YAML") as excinfo:
        load_hardware(path)
    assert str(path) in str(excinfo.value)
    assert excinfo.value.__suppress_context__


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(HardwareConfigError, match="not found") as excinfo:
        load_hardware(path)
    assert str(path) in str(excinfo.value)


def test_unknown_preset_lists_the_presets() -> None:
    with pytest.raises(HardwareConfigError, match="unknown hardware preset") as excinfo:
        load_hardware("systolic-64x64-ws")
    message = str(excinfo.value)
    assert "systolic-64x64-ws" in message
    for name in EXPECTED_PRESETS:
        assert name in message
    assert ".yaml" in message


def test_hardware_config_error_is_a_value_error() -> None:
    assert issubclass(HardwareConfigError, ValueError)


# --- config_hash --------------------------------------------------------------------------------


def test_config_hash_is_stable_across_loads(tmp_path: Path) -> None:
    first = load_hardware("systolic-32x32-ws").config_hash()
    assert first == load_hardware("systolic-32x32-ws").config_hash()
    path = write_yaml(tmp_path / "copy.yaml", preset_data())
    assert load_hardware(path).config_hash() == first
    # Writing a quantity differently does not change the hardware, nor the hash.
    data = preset_data()
    data["sram"]["ifmap"]["size_bytes"] = 65536
    data["pe_array"]["clock_hz"] = "1000 MHz"
    assert hardware_from_dict(data).config_hash() == first
    assert len(first) == 16
    int(first, 16)


def test_presets_have_distinct_hashes() -> None:
    hashes = {load_hardware(name).config_hash() for name in EXPECTED_PRESETS}
    assert len(hashes) == len(EXPECTED_PRESETS)


def _leaf_paths(data: dict, prefix: str = "") -> list[str]:
    paths = []
    for key, value in data.items():
        if isinstance(value, dict):
            paths.extend(_leaf_paths(value, f"{prefix}{key}."))
        else:
            paths.append(f"{prefix}{key}")
    return paths


_BASE_DUMP = load_hardware("systolic-32x32-ws").model_dump(mode="json")


# Fields whose generic change below is not a valid value of the field.
_SPECIAL_CHANGES = {
    "pe_array.dataflow": "os",
    "pe_array.precision": "fp16",
    "sparse.zero_handling": "skipping",
    "sparse.weight_format": "bitmap",
    "sparse.nm": [1, 4],
    "sparse.format_block": [8, 8],
    "sparse.ifmap_banks": 16,
    "sparse.index_bits": 8,
    "global_buffer": {"size_bytes": 1 << 20, "bytes_per_cycle": 64},
    "mapping.search": "fixed",
    "mapping.objective": "energy",
    "mapping.preload": "serial",
}


def _changed(value: object, path: str) -> object:
    if path in _SPECIAL_CHANGES:
        return _SPECIAL_CHANGES[path]
    if isinstance(value, bool):
        return not value
    if value is None:
        return 1e-12
    if isinstance(value, str):
        return value + "-changed"
    if isinstance(value, int):
        return value + 1
    return value * 1.5


@pytest.mark.parametrize("path", _leaf_paths(_BASE_DUMP))
def test_config_hash_changes_when_any_field_changes(path: str) -> None:
    base = hardware_from_dict(copy.deepcopy(_BASE_DUMP))
    data = copy.deepcopy(_BASE_DUMP)
    *parents, leaf = path.split(".")
    node = data
    for part in parents:
        node = node[part]
    node[leaf] = _changed(node[leaf], path)
    changed = hardware_from_dict(data)
    assert changed != base
    assert changed.config_hash() != base.config_hash()


# --- energy and leakage overrides -----------------------------------------------------------


def test_energy_and_leakage_overrides_are_applied(tmp_path: Path) -> None:
    path = tmp_path / "override.yaml"
    # Written by hand: PyYAML reads `1e-12` (no dot) as a string, which must still work.
    text = yaml.safe_dump(preset_data())
    text += "energy: {mac_j: 1e-12, sram_read_j_per_byte: 2.0e-12, vector_op_j: 0.5e-12}\n"
    text += "leakage: {pe_w: 1.0e-6, sram_w_per_byte: 0}\n"
    path.write_text(text)
    hw = load_hardware(path)
    assert hw.energy.mac_j == pytest.approx(1e-12)
    assert hw.energy.sram_read_j_per_byte == pytest.approx(2e-12)
    assert hw.energy.vector_op_j == pytest.approx(0.5e-12)
    assert hw.energy.sram_write_j_per_byte is None  # untouched fields keep their defaults
    assert hw.energy.register_j_per_byte == pytest.approx(0.072e-12)
    assert hw.leakage.pe_w == pytest.approx(1e-6)
    assert hw.leakage.sram_w_per_byte == 0.0
    assert hw.leakage.vector_lane_w == pytest.approx(10e-6)
    assert hw.config_hash() != load_hardware("systolic-32x32-ws").config_hash()


def test_defaults_apply_when_energy_is_absent() -> None:
    hw = load_hardware("systolic-32x32-ws")
    assert hw.energy.mac_j is None
    assert hw.energy.sram_read_j_per_byte is None
    assert hw.leakage.pe_w == pytest.approx(10e-6)


def test_unknown_energy_key_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "energy.yaml"
    text = yaml.safe_dump(preset_data()) + "energy: {mac_j: 1.0e-12, dram_j: 1.0e-12}\n"
    path.write_text(text)
    with pytest.raises(HardwareConfigError, match=r"energy\.dram_j: unknown key"):
        load_hardware(path)


def test_config_is_frozen() -> None:
    hw = load_hardware("systolic-32x32-ws")
    with pytest.raises(ValueError):
        hw.pe_array.rows = 64  # type: ignore[misc]


def test_energy_and_leakage_overrides_accept_unit_strings(tmp_path: Path) -> None:
    data = preset_data()
    data["energy"] = {"mac_j": "0.3 pJ", "vector_op_j": "1.1pJ"}
    data["leakage"] = {"pe_w": "10 uW", "sram_w_per_byte": "20 nW"}
    hw = load_hardware(write_yaml(tmp_path / "units.yaml", data))
    assert hw.energy.mac_j == pytest.approx(0.3e-12)
    assert hw.energy.vector_op_j == pytest.approx(1.1e-12)
    assert hw.leakage.pe_w == pytest.approx(10e-6)
    assert hw.leakage.sram_w_per_byte == pytest.approx(20e-9)
