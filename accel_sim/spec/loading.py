"""Hardware specs from YAML files, preset names and mappings; one clear error per bad input.

A mapping's ``datapath`` picks its spec class: ``crossbar`` is a ReRAM crossbar chip
(``CrossbarChipConfig``), ``systolic`` (the default) and ``pe-array`` are array chips
(``HardwareConfig``). Two older spellings are still read: ``kind: crossbar`` for
``datapath: crossbar``, and ``sparse.zero_handling: unstructured-pe`` for ``datapath:
pe-array`` with ``zero_handling: skipping`` (the EIE-style array used to be a zero-handling
mode of the systolic array).
"""

from __future__ import annotations

import copy
import os
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from accel_sim.spec.array_chip import ARRAY_DATAPATHS, HardwareConfig
from accel_sim.spec.crossbar_chip import CrossbarChipConfig
from safeio.errors import format_validation_error

PRESET_DIR_ENV = "COSIM_HW_DIR"
DATAPATHS = (*ARRAY_DATAPATHS, "crossbar")

ChipConfig = HardwareConfig | CrossbarChipConfig


class HardwareConfigError(ValueError):
    """A hardware spec that cannot be used; the message names the field and expected form."""


def _upgraded(data: dict) -> dict:
    """``data`` with the older spellings (module docstring) rewritten; never mutates it."""
    sparse = data.get("sparse")
    legacy_pe = isinstance(sparse, dict) and sparse.get("zero_handling") == "unstructured-pe"
    if data.get("kind") != "crossbar" and not legacy_pe:
        return data
    data = copy.deepcopy(data)
    if data.get("kind") == "crossbar" and "datapath" not in data:
        data = {"datapath": data.pop("kind"), **data}
    if legacy_pe and data.get("datapath", "systolic") in ("systolic", "pe-array"):
        data["datapath"] = "pe-array"
        data["sparse"]["zero_handling"] = "skipping"
    return data


def hardware_from_dict(data: Any, source: str = "<dict>") -> ChipConfig:
    """Validate a mapping into the spec class its ``datapath`` names; errors name the
    offending field."""
    if not isinstance(data, dict):
        raise HardwareConfigError(
            f"invalid hardware config {source}: expected a YAML mapping of fields, "
            f"got {'an empty document' if data is None else type(data).__name__}"
        )
    if "kind" in data and data["kind"] != "crossbar":
        raise HardwareConfigError(
            f"invalid hardware config {source}: kind: {data['kind']!r} is not a hardware kind: "
            f"name the datapath instead (datapath: one of {', '.join(DATAPATHS)})"
        )
    data = _upgraded(data)
    datapath = data.get("datapath", "systolic")
    if datapath not in DATAPATHS:
        raise HardwareConfigError(
            f"invalid hardware config {source}: datapath: {datapath!r} is not a datapath: "
            f"expected one of {', '.join(DATAPATHS)}"
        )
    spec_class = CrossbarChipConfig if datapath == "crossbar" else HardwareConfig
    try:
        return spec_class.model_validate(data)
    except ValidationError as error:
        raise HardwareConfigError(
            format_validation_error(
                error,
                "hardware config",
                source,
                "check spelling; `cosim schema hardware` lists the valid keys",
            )
        ) from None


def set_dotted(data: dict, path: str, value: Any) -> None:
    """Set dotted ``path`` (``pe_array.rows``) in nested ``data``; a mapping value merges
    into the mapping already there. Raises ``HardwareConfigError`` when a parent on the path
    is not a section."""
    *parents, leaf = path.split(".")
    node = data
    for part in parents:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise HardwareConfigError(f"{path}: {part} is not a section of the hardware spec")
        node = child
    if isinstance(value, dict) and isinstance(node.get(leaf), dict):
        merged = copy.deepcopy(node[leaf])
        for key, item in value.items():
            set_dotted(merged, key, item)
        node[leaf] = merged
    else:
        node[leaf] = value


def derive(hw: ChipConfig, changes: dict[str, Any], source: str = "derived spec") -> ChipConfig:
    """``hw`` with dotted ``changes`` applied (``{"mapping.objective": "energy"}``), validated
    like a file: ``model_copy(update=...)`` would skip validation."""
    data = hw.model_dump(mode="json")
    for path, value in changes.items():
        set_dotted(data, path, value)
    return hardware_from_dict(data, source=source)


def _preset_root() -> Traversable:
    """The preset folder: ``$COSIM_HW_DIR`` when set, else the package data folder
    ``accel_sim/presets`` (read through ``importlib.resources``, so an installed wheel has it)."""
    override = os.environ.get(PRESET_DIR_ENV)
    if override:
        return Path(override)
    return resources.files("accel_sim").joinpath("presets")


def preset_dir() -> Path:
    """The preset folder as a path: ``accel_sim/presets`` inside the installed package
    (override with $COSIM_HW_DIR)."""
    return Path(str(_preset_root()))


def _preset_files() -> dict[str, Traversable]:
    root = _preset_root()
    if not root.is_dir():
        return {}
    return {
        entry.name[: -len(".yaml")]: entry
        for entry in root.iterdir()
        if entry.name.endswith(".yaml") and entry.is_file()
    }


def list_presets() -> list[str]:
    """Names of the hardware presets (``cosim presets``)."""
    return sorted(_preset_files())


def load_hardware(source: str | os.PathLike[str]) -> ChipConfig:
    """Load a preset by name (``systolic-32x32-ws``) or a YAML file by path."""
    path: Traversable = Path(source)
    is_file_like = Path(source).suffix in {".yaml", ".yml"} or os.sep in str(source)
    if not is_file_like:
        presets = _preset_files()
        if str(source) not in presets:
            names = ", ".join(sorted(presets)) or "(none found)"
            raise HardwareConfigError(
                f"unknown hardware preset {str(source)!r}: expected a preset name ({names}) "
                "or a path to a .yaml file"
            )
        path = presets[str(source)]
    if not path.is_file():
        raise HardwareConfigError(f"hardware config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise HardwareConfigError(f"hardware config {path} is not valid YAML: {error}") from None
    return hardware_from_dict(data, source=str(path))
