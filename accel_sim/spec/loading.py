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
                error, "hardware config", source, "check spelling; see configs/hw/ for valid keys"
            )
        ) from None


def preset_dir() -> Path:
    """``configs/hw`` beside the packages (override with $COSIM_HW_DIR)."""
    override = os.environ.get(PRESET_DIR_ENV)
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2] / "configs" / "hw"


def list_presets() -> list[str]:
    directory = preset_dir()
    return sorted(path.stem for path in directory.glob("*.yaml")) if directory.is_dir() else []


def load_hardware(source: str | os.PathLike[str]) -> ChipConfig:
    """Load a preset by name (``systolic-32x32-ws``) or a YAML file by path."""
    path = Path(source)
    is_file_like = path.suffix in {".yaml", ".yml"} or os.sep in str(source)
    if not is_file_like:
        candidate = preset_dir() / f"{source}.yaml"
        if not candidate.is_file():
            names = ", ".join(list_presets()) or "(none found)"
            raise HardwareConfigError(
                f"unknown hardware preset {str(source)!r}: expected a preset name ({names}) "
                "or a path to a .yaml file"
            )
        path = candidate
    if not path.is_file():
        raise HardwareConfigError(f"hardware config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise HardwareConfigError(f"hardware config {path} is not valid YAML: {error}") from None
    return hardware_from_dict(data, source=str(path))
