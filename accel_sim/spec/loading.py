"""Hardware specs from YAML files, preset names and mappings; one clear error per bad input.

A mapping's ``datapath`` picks its spec class: ``crossbar`` is a ReRAM crossbar chip
(``CrossbarChipConfig``), ``systolic`` (the default), ``pe-array``, ``outer-product`` and
``flexible`` are array chips (``HardwareConfig``). Two older spellings are still read: ``kind:
crossbar`` for ``datapath: crossbar``, and ``sparse.zero_handling: unstructured-pe`` for
``datapath: pe-array`` with ``zero_handling: skipping`` (the EIE-style array used to be a
zero-handling mode of the systolic array).

``extends: <preset name or YAML file>`` starts a spec from another one: the file's own fields
are merged over it (mappings field by field, anything else replaced), relative paths start
at the extending file's folder (the working directory for a mapping), chains are followed
and a cycle is an error.

Every file (a spec, a file it extends, a SCALE-Sim ``.cfg``) is read through the bounded
readers of ``safeio.documents`` (size, nesting, digits, aliases).
"""

from __future__ import annotations

import copy
import os
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from accel_sim.spec.array_chip import ARRAY_DATAPATHS, HardwareConfig
from accel_sim.spec.crossbar_chip import CrossbarChipConfig
from safeio.documents import MAX_YAML_BYTES, DocumentError, is_file, parse_yaml, read_text
from safeio.errors import did_you_mean, format_validation_error
from safeio.limits import BoundedError

PRESET_DIR_ENV = "COSIM_HW_DIR"
DATAPATHS = (*ARRAY_DATAPATHS, "crossbar")
SPEC_SUFFIXES = {".yaml", ".yml", ".cfg"}

ChipConfig = HardwareConfig | CrossbarChipConfig


class HardwareConfigError(BoundedError):  # a ValueError, message bounded
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


EXTENDS = "extends"


def _merged(base: dict, over: dict) -> dict:
    """``over`` merged into a copy of ``base``: mappings field by field, the rest replaced."""
    merged = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _read_source(reference: str, base_dir: Path) -> tuple[Any, str, Path, str]:
    """A preset name or spec file -> (raw data, source label, its folder, identity)."""
    presets = _preset_files()
    path = Path(reference)
    if path.suffix not in SPEC_SUFFIXES and os.sep not in reference and reference in presets:
        entry = presets[reference]
        data = _parse_file(entry, str(entry))
        return data, str(entry), base_dir, f"preset {reference}"
    if path.suffix not in SPEC_SUFFIXES and os.sep not in reference:
        _check_preset_override()
        names = ", ".join(sorted(presets)) or "(none found)"
        raise HardwareConfigError(
            f"unknown hardware preset {reference!r}{did_you_mean(reference, presets)}: "
            f"expected a preset name ({names}) or a path to a .yaml or SCALE-Sim .cfg file"
        )
    path = (base_dir / path).expanduser() if not path.is_absolute() else path
    if not is_file(path):
        raise HardwareConfigError(f"hardware config file not found: {path}")
    return _parse_file(path, str(path)), str(path), path.resolve().parent, str(path.resolve())


def _looks_like_ini(text: str) -> bool:
    """A SCALE-Sim config: its first line that is not blank or a comment is ``[section]``."""
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";")):
            return line.startswith("[") and line.endswith("]") and ":" not in line
    return False


def _parse_file(entry: Traversable, source: str) -> Any:
    """A spec file (or shipped preset) as data: YAML, or a SCALE-Sim ``.cfg``; read and
    parsed with the bounds of ``safeio.documents``."""
    kind = "SCALE-Sim .cfg" if entry.name.endswith(".cfg") else "YAML"
    try:
        if isinstance(entry, Path):  # bounded: size, and no FIFOs or devices
            text = read_text(entry, MAX_YAML_BYTES, kind)
        else:  # package data inside an installed wheel
            text = entry.read_text(encoding="utf-8")
    except DocumentError as error:
        raise HardwareConfigError(f"hardware config {source} {error}") from None
    except UnicodeDecodeError as error:
        raise HardwareConfigError(f"hardware config {source} is not valid YAML: {error}") from None
    except OSError as error:
        raise HardwareConfigError(f"hardware config {source} cannot be read: {error}") from None
    if entry.name.endswith(".cfg") and _looks_like_ini(text):
        from accel_sim.spec.scalesim_cfg import ScaleSimConfigError, config_from_scalesim

        try:
            return config_from_scalesim(text, source)
        except ScaleSimConfigError as error:
            raise HardwareConfigError(str(error)) from None
    try:
        return parse_yaml(text)  # bounded: size, depth, digits, aliases
    except DocumentError as error:
        raise HardwareConfigError(f"hardware config {source} {error}") from None


def resolve_extends(
    data: Any, base_dir: Path, source: str, seen: tuple[str, ...] = ()
) -> Any:
    """``data`` with its ``extends`` chain merged in (see the module docstring)."""
    if not isinstance(data, dict) or EXTENDS not in data:
        return data
    reference = data[EXTENDS]
    if not isinstance(reference, str) or not reference.strip():
        raise HardwareConfigError(
            f"invalid hardware config {source}: extends: expected a preset name or a YAML "
            f"file path, got {reference!r}"
        )
    parent, parent_source, parent_dir, identity = _read_source(reference, base_dir)
    if identity in seen:
        chain = " -> ".join([*seen, identity])
        raise HardwareConfigError(f"hardware config {source}: extends forms a cycle: {chain}")
    if not isinstance(parent, dict):
        raise HardwareConfigError(
            f"hardware config {parent_source} (extended by {source}) is not a mapping of fields"
        )
    parent = resolve_extends(parent, parent_dir, parent_source, (*seen, identity))
    return _merged(parent, {k: v for k, v in data.items() if k != EXTENDS})


def hardware_from_dict(
    data: Any, source: str = "<dict>", base_dir: Path | None = None
) -> ChipConfig:
    """Validate a mapping into the spec class its ``datapath`` names; errors name the
    offending field. An ``extends`` key is resolved first (relative paths from ``base_dir``,
    default the working directory)."""
    if not isinstance(data, dict):
        raise HardwareConfigError(
            f"invalid hardware config {source}: expected a YAML mapping of fields, "
            f"got {'an empty document' if data is None else type(data).__name__}"
        )
    data = resolve_extends(data, base_dir or Path.cwd(), source)
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
                spec_class,
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


def _check_preset_override() -> None:
    """HardwareConfigError when ``$COSIM_HW_DIR`` names no folder: a preset name looked up
    there found nothing and said only "(none found)"; ``cosim presets`` listed nothing."""
    override = os.environ.get(PRESET_DIR_ENV)
    if override and not Path(override).is_dir():
        raise HardwareConfigError(
            f"${PRESET_DIR_ENV} is {override!r}, which is not a directory: expected a folder "
            "of hardware preset YAML files, or unset it for the built-in presets"
        )


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
    """Names of the hardware presets (``cosim presets``); HardwareConfigError when
    ``$COSIM_HW_DIR`` names no folder."""
    _check_preset_override()
    return sorted(_preset_files())


def load_hardware(source: str | os.PathLike[str]) -> ChipConfig:
    """Load a preset by name (``systolic-32x32-ws``), a YAML file or a SCALE-Sim ``.cfg``
    file by path (``extends`` chains followed); files are read with the bounds of
    ``safeio.documents``."""
    data, label, folder, identity = _read_source(str(source), Path.cwd())
    data = resolve_extends(data, folder, label, (identity,)) if isinstance(data, dict) else data
    return hardware_from_dict(data, source=label, base_dir=folder)


def hardware_json_schema() -> dict[str, Any]:
    """The JSON Schema of a hardware spec file, every datapath (``cosim schema hardware``):
    an array chip or a crossbar chip, either of them possibly ``extends``-ing another spec
    (then only the fields it changes need be given). Quantities accept unit strings."""
    from pydantic import TypeAdapter

    schema = TypeAdapter(HardwareConfig | CrossbarChipConfig).json_schema()
    extends = {
        "type": "string",
        "description": "a preset name or a YAML file (relative to this file) to start from; "
        "the fields given here are merged over it",
    }
    for branch in schema["anyOf"]:
        name = branch["$ref"].rsplit("/", 1)[-1]
        schema["$defs"][name]["properties"]["extends"] = extends
    schema["anyOf"].append(
        {
            "type": "object",
            "required": [EXTENDS],
            "properties": {EXTENDS: extends},
            "description": "a spec that extends another: any subset of the fields",
        }
    )
    array_datapaths = ", ".join(ARRAY_DATAPATHS)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "sparse-bert-cosim hardware spec",
        "description": f"An array chip (datapath: one of {array_datapaths}; systolic is the "
        "default) or a crossbar chip (datapath: crossbar). Sizes, clocks, bandwidths and "
        "energies accept numbers in SI units or strings such as '64 KiB', '1 GHz', "
        "'16 GB/s', '8 pJ'.",
        **schema,
    }
