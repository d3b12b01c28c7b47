"""``extends:`` in a hardware YAML: a preset or another file as the starting point, merged
field by field, chains followed relative to each file, cycles refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from accel_sim import HardwareConfigError, hardware_from_dict, load_hardware
from accel_sim.spec import derive


def write(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))
    return path


def test_extending_a_preset_changes_only_the_given_fields(tmp_path: Path) -> None:
    path = write(
        tmp_path / "big.yaml",
        {"extends": "systolic-32x32-ws", "name": "big", "pe_array": {"rows": 64}},
    )
    hw = load_hardware(path)
    expected = derive(load_hardware("systolic-32x32-ws"), {"pe_array.rows": 64, "name": "big"})
    assert hw == expected
    assert hw.pe_array.cols == 32 and hw.pe_array.dataflow == "ws"
    assert "extends" not in hw.model_dump()


def test_chains_resolve_relative_to_each_file(tmp_path: Path) -> None:
    write(tmp_path / "base" / "wide.yaml", {"extends": "systolic-32x32-ws", "name": "wide",
                                            "pe_array": {"cols": 64}})
    child = write(tmp_path / "child" / "fast.yaml", {"extends": "../base/wide.yaml",
                                                     "name": "fast",
                                                     "dram": {"bandwidth_bytes_per_s": "64 GB/s"}})
    hw = load_hardware(child)
    assert (hw.name, hw.pe_array.rows, hw.pe_array.cols) == ("fast", 32, 64)
    assert hw.dram.bandwidth_bytes_per_s == 64e9
    assert hw.dram.energy_per_bit_j == load_hardware("systolic-32x32-ws").dram.energy_per_bit_j


def test_a_mapping_extends_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "wide.yaml", {"extends": "eie-64pe", "name": "wide-eie"})
    monkeypatch.chdir(tmp_path)
    hw = hardware_from_dict({"extends": "wide.yaml", "cores": 2})
    assert (hw.name, hw.cores, hw.datapath) == ("wide-eie", 2, "pe-array")


@pytest.mark.parametrize("loop", ["self", "pair"])
def test_cycles_are_refused(tmp_path: Path, loop: str) -> None:
    if loop == "self":
        path = write(tmp_path / "a.yaml", {"extends": "a.yaml", "name": "a"})
    else:
        write(tmp_path / "b.yaml", {"extends": "a.yaml", "name": "b"})
        path = write(tmp_path / "a.yaml", {"extends": "b.yaml", "name": "a"})
    with pytest.raises(HardwareConfigError, match="extends forms a cycle"):
        load_hardware(path)


@pytest.mark.parametrize(
    ("extends", "fragment"),
    [
        ("systolic-32x32-wz", "did you mean 'systolic-32x32-ws'"),
        ("missing.yaml", "not found"),
        (3, "expected a preset name or a YAML file path"),
    ],
)
def test_bad_extends_is_one_clear_error(tmp_path: Path, extends: object, fragment: str) -> None:
    path = write(tmp_path / "x.yaml", {"extends": extends, "name": "x"})
    with pytest.raises(HardwareConfigError, match=fragment):
        load_hardware(path)


def test_the_merged_spec_is_validated(tmp_path: Path) -> None:
    path = write(tmp_path / "x.yaml", {"extends": "systolic-32x32-ws", "pe_array": {"rows": 0}})
    with pytest.raises(HardwareConfigError, match=r"pe_array\.rows"):
        load_hardware(path)
