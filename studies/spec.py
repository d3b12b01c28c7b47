"""Study specs: which models, workloads, pruning patterns and hardware a sweep covers.

A study spec is YAML validated by pydantic (unknown keys rejected; errors name the dotted
field). :func:`expand` turns it into design points: plain JSON-able dicts holding the full
configuration of one simulation (the hardware as its complete dumped spec), so a point's
store key (``studies.store.point_key``) covers everything that decides its result.

```yaml
name: my-study
kind: custom                    # block-size | compression | dse | custom (picks plots)
models: [bert-base-uncased]
seq_lens: [128]
batches: [1]
seed: 0
hardware: [systolic-32x32-ws]   # presets or YAML files (relative to the spec file)
grid:                           # dotted hardware field -> values; the cartesian product
  sparse.zero_handling: [skipping]
  dram.bandwidth_bytes_per_s: [16 GB/s, 64 GB/s]
  pe_array: [{rows: 16, cols: 16}, {rows: 32, cols: 32}]   # mappings merge into the field
sparsities: [0.75]              # or compression_ratios: [2, 4, 8] (sparsity = 1 - 1/ratio)
patterns:
  - block:4x4                   # a pattern string (pruning.patterns forms, or "dense")
  - pattern: nm:2:4             # or a mapping with its own grid / sparsities
    grid: {sparse.zero_handling: [nm]}
artifacts: []                   # pruned artifact directories, instead of patterns
outputs: {plots_dir: plots, report: report.md}
```

Rules: ``dense`` means no masks (sparsity 0); an N:M pattern's sparsity is fixed at
``1 - N/M`` (the listed sparsities do not apply to it); a pattern's own ``grid`` entries
replace the study grid's entries of the same field; duplicate points are dropped.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import re
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from accel_sim.spec import HardwareConfigError, derive, hardware_from_dict, load_hardware
from accel_sim.spec.loading import set_dotted
from safeio.errors import format_validation_error

__all__ = [
    "BUILTIN_DIR",
    "KINDS",
    "PatternCase",
    "StudySpec",
    "StudySpecError",
    "builtin_names",
    "builtin_text",
    "expand",
    "load_spec",
    "point_label",
]

# Package data (``studies/builtin/*.yaml``), read through importlib.resources so that an
# installed wheel has them; BUILTIN_DIR is the folder as a path.
BUILTIN_ROOT: Traversable = resources.files("studies").joinpath("builtin")
BUILTIN_DIR = Path(str(BUILTIN_ROOT))
KINDS = ("block-size", "compression", "dse", "custom")
DENSE = "dense"


class StudySpecError(ValueError):
    """A study spec that cannot be used; the message names the field and expected form."""


def _check_pattern(text: str) -> str:
    if text == DENSE:
        return text
    from pruning.patterns import PatternError, parse_pattern

    try:
        return str(parse_pattern(text))
    except (PatternError, ValueError) as error:
        raise ValueError(str(error)) from None


_OUTPUT_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")


def _check_output_name(text: str) -> str:
    """One file or directory name inside the output directory: no path separators, no
    ``..``, not absolute, not hidden, so a spec cannot make a study write anywhere else."""
    if not text or not text.strip():
        raise ValueError("expected a non-empty file name inside the output directory")
    for flavour in (PurePosixPath, PureWindowsPath):
        path = flavour(text)
        if path.is_absolute() or path.drive or path.root:
            raise ValueError(f"{text!r} is absolute: expected a name inside the output directory")
        if ".." in path.parts:
            raise ValueError(f"{text!r} leaves the output directory ('..' is not allowed)")
    if "/" in text or "\\" in text:
        raise ValueError(
            f"{text!r} contains a path separator: expected a single name inside the output "
            "directory"
        )
    if not _OUTPUT_NAME.match(text):
        raise ValueError(
            f"{text!r} is not a plain name: expected letters, digits, '.', '_' or '-', "
            "not starting with '.' or '-'"
        )
    return text


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


Grid = dict[str, list[Any]]
PositiveInt = Annotated[int, Field(gt=0, strict=True)]


def _check_grid(grid: Grid) -> Grid:
    for path, values in grid.items():
        if not path or any(not part for part in path.split(".")):
            raise ValueError(f"{path!r} is not a dotted hardware field such as pe_array.rows")
        if not values:
            raise ValueError(f"{path}: expected a non-empty list of values")
    return grid


class PatternCase(_Spec):
    """One pruning pattern, optionally with its own sparsities and hardware grid."""

    pattern: str
    sparsities: list[float] | None = None
    compression_ratios: list[float] | None = None
    grid: Grid = Field(default_factory=dict)

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, value: str) -> str:
        return _check_pattern(value)

    @field_validator("grid")
    @classmethod
    def _grid(cls, value: Grid) -> Grid:
        return _check_grid(value)

    @field_validator("sparsities")
    @classmethod
    def _sparsities(cls, value: list[float] | None) -> list[float] | None:
        return None if value is None else _check_sparsities(value)

    @field_validator("compression_ratios")
    @classmethod
    def _ratios(cls, value: list[float] | None) -> list[float] | None:
        return None if value is None else _check_ratios(value)

    @model_validator(mode="after")
    def _one_of(self) -> PatternCase:
        if self.sparsities is not None and self.compression_ratios is not None:
            raise ValueError("give sparsities or compression_ratios, not both")
        return self


def _check_sparsities(values: list[float]) -> list[float]:
    for value in values:
        if not 0.0 <= value < 1.0:
            raise ValueError(f"sparsity {value!r} is outside [0, 1)")
    return values


def _check_ratios(values: list[float]) -> list[float]:
    for value in values:
        if not value >= 1.0:
            raise ValueError(f"compression ratio {value!r} is below 1")
    return values


class Outputs(_Spec):
    """Files the study writes: single names inside the output directory."""

    plots_dir: str = "plots"
    report: str = "report.md"

    @field_validator("plots_dir", "report")
    @classmethod
    def _inside(cls, value: str) -> str:
        return _check_output_name(value)


class StudySpec(_Spec):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    kind: Literal["block-size", "compression", "dse", "custom"] = "custom"
    description: str = ""
    models: list[str] = Field(default_factory=lambda: ["bert-base-uncased"], min_length=1)
    seq_lens: list[PositiveInt] = Field(default_factory=lambda: [128], min_length=1)
    batches: list[PositiveInt] = Field(default_factory=lambda: [1], min_length=1)
    seed: int = Field(default=0, ge=0)
    hardware: list[str] = Field(default_factory=lambda: ["systolic-32x32-ws"], min_length=1)
    grid: Grid = Field(default_factory=dict)
    sparsities: list[float] = Field(default_factory=lambda: [0.5])
    compression_ratios: list[float] | None = None
    patterns: list[PatternCase] = Field(default_factory=list)
    artifacts: list[str] = Field(default_factory=list)
    outputs: Outputs = Outputs()

    @field_validator("grid")
    @classmethod
    def _grid(cls, value: Grid) -> Grid:
        return _check_grid(value)

    @field_validator("patterns", mode="before")
    @classmethod
    def _cases(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"pattern": v} if isinstance(v, str) else v for v in value]
        return value

    @field_validator("sparsities")
    @classmethod
    def _sparsities(cls, value: list[float]) -> list[float]:
        return _check_sparsities(value)

    @field_validator("compression_ratios")
    @classmethod
    def _ratios(cls, value: list[float] | None) -> list[float] | None:
        return None if value is None else _check_ratios(value)

    @model_validator(mode="after")
    def _something_to_run(self) -> StudySpec:
        if not self.patterns and not self.artifacts:
            raise ValueError("give patterns or artifacts (or both): nothing to simulate")
        return self

    def case_sparsities(self, case: PatternCase) -> list[float]:
        """Sparsities of one pattern case (its own, else the study's)."""
        if case.pattern == DENSE:
            return [0.0]
        if case.pattern.startswith("nm:"):
            _, n, m = case.pattern.split(":")
            return [1.0 - int(n) / int(m)]
        ratios = case.compression_ratios
        sparsities = case.sparsities
        if ratios is None and sparsities is None:
            ratios, sparsities = self.compression_ratios, self.sparsities
        if ratios is not None:
            return [1.0 - 1.0 / r for r in ratios]
        return list(sparsities)


def _builtin_files() -> dict[str, Traversable]:
    if not BUILTIN_ROOT.is_dir():
        return {}
    return {
        entry.name[: -len(".yaml")]: entry
        for entry in BUILTIN_ROOT.iterdir()
        if entry.name.endswith(".yaml") and entry.is_file()
    }


def builtin_names() -> list[str]:
    """Names of the built-in studies (package data ``studies/builtin/*.yaml``)."""
    return sorted(_builtin_files())


def builtin_text(name: str) -> str:
    """The YAML text of built-in study ``name``."""
    return _builtin_files()[name].read_text(encoding="utf-8")


def _validate(data: Any, source: str) -> StudySpec:
    if not isinstance(data, dict):
        raise StudySpecError(
            f"invalid study spec {source}: expected a YAML mapping of fields, "
            f"got {'an empty document' if data is None else type(data).__name__}"
        )
    try:
        return StudySpec.model_validate(data)
    except ValidationError as error:
        raise StudySpecError(
            format_validation_error(
                error, "study spec", source, "see studies/spec.py or `cosim study list`"
            )
        ) from None


def load_spec(source: str | Path) -> tuple[StudySpec, Path]:
    """A built-in name or a YAML file -> (spec, directory that relative paths start from)."""
    text = str(source)
    path = Path(text)
    if path.suffix not in {".yaml", ".yml"} and "/" not in text and "\\" not in text:
        builtins = _builtin_files()
        if text not in builtins:
            names = ", ".join(sorted(builtins)) or "(none)"
            raise StudySpecError(
                f"unknown study {text!r}: expected a built-in name ({names}) or a .yaml file"
            )
        try:
            data = yaml.safe_load(builtins[text].read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as error:  # pragma: no cover - shipped
            raise StudySpecError(f"built-in study {text} is not valid YAML: {error}") from None
        return _validate(data, f"built-in study {text}"), BUILTIN_DIR
    if not path.is_file():
        raise StudySpecError(f"study spec file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise StudySpecError(f"study spec {path} is not valid YAML: {error}") from None
    return _validate(data, str(path)), path.resolve().parent


def spec_from_dict(data: Any, source: str = "<dict>") -> StudySpec:
    return _validate(data, source)


def _set_path(data: dict, path: str, value: Any) -> None:
    """Set dotted ``path`` in nested ``data``; a mapping value merges into what is there."""
    try:
        set_dotted(data, path, value)
    except HardwareConfigError as error:
        raise StudySpecError(f"grid field {error}") from None


def _resolve_hardware(name: str, base: Path, overrides: dict[str, Any] | None = None) -> dict:
    candidate = Path(name)
    if candidate.suffix in {".yaml", ".yml", ".cfg"} and not candidate.is_absolute():
        candidate = base / candidate
        name = str(candidate)
    try:
        hw = load_hardware(name)
        if overrides:
            hw = derive(hw, overrides, source=f"{name} with --set {json.dumps(overrides)}")
        return hw.model_dump(mode="json")
    except HardwareConfigError as error:
        raise StudySpecError(f"study spec field hardware: {error}") from None


def _check_model(index: int, model: str) -> None:
    """Refuse an unknown or non-BERT model when the spec expands, not once per design point."""
    from workloads.bert import WorkloadError, check_model

    try:
        check_model(model)
    except WorkloadError as error:
        raise StudySpecError(f"study spec field models[{index}]: {error}") from None


def _hardware_points(base_hw: dict, grid: Grid, source: str) -> list[tuple[dict, dict]]:
    """Every grid combination applied to ``base_hw``, validated: (hardware dict, params)."""
    paths = list(grid)
    combos = itertools.product(*(grid[p] for p in paths)) if paths else [()]
    out = []
    for combo in combos:
        data = copy.deepcopy(base_hw)
        params = dict(zip(paths, combo, strict=True))
        for path, value in params.items():
            _set_path(data, path, value)
        try:
            hw = hardware_from_dict(data, source=f"{source} with grid {json.dumps(params)}")
        except HardwareConfigError as error:
            raise StudySpecError(f"study spec field grid: {error}") from None
        out.append((hw.model_dump(mode="json"), params))
    return out


def _artifact_digest(path: Path) -> str:
    from pruning.artifact import MANIFEST_FILE, MASKS_FILE, ArtifactError, load_artifact

    digest = hashlib.sha256()
    if not path.is_dir():
        raise StudySpecError(f"study spec field artifacts: {path} is not an artifact directory")
    try:
        load_artifact(path)  # a broken artifact fails here, not in every design point
    except ArtifactError as error:
        raise StudySpecError(f"study spec field artifacts: {error}") from None
    for name in (MANIFEST_FILE, MASKS_FILE):
        file = path / name
        if not file.is_file():
            raise StudySpecError(f"study spec field artifacts: {file} not found")
        digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def point_label(point: dict) -> str:
    """A short human label of what varies in a point: pattern and grid values."""
    pattern = point.get("pattern") or "artifact"
    parts = [pattern]
    params = point.get("grid") or {}
    hw = point.get("hardware") or {}
    if "pe_array" in params or "pe_array.rows" in params or "pe_array.cols" in params:
        parts.append(f"{hw['pe_array']['rows']}x{hw['pe_array']['cols']}")
    if any(k == "sram" or k.startswith("sram.") for k in params):
        total = sum(hw["sram"][b]["size_bytes"] for b in ("ifmap", "filter", "ofmap"))
        parts.append(f"{total // 1024}KiB")
    if "dram.bandwidth_bytes_per_s" in params:
        parts.append(f"{hw['dram']['bandwidth_bytes_per_s'] / 1e9:g}GB/s")
    if "sparse.zero_handling" in params:
        parts.append(str(hw["sparse"]["zero_handling"]))
    if any(k == "crossbar" or k.startswith("crossbar.") for k in params):  # datapath: crossbar
        parts.append(f"xbar {hw['crossbar']['rows']}x{hw['crossbar']['cols']}")
    if "mapping.execution" in params:
        parts.append(str(hw["mapping"]["execution"]))
    return " ".join(parts)


def expand(
    spec: StudySpec, base: Path | None = None, overrides: dict[str, Any] | None = None
) -> list[dict]:
    """The spec's design points, in a stable order, duplicates dropped.

    ``overrides`` (dotted hardware field -> value, ``cosim study run --set``) change every
    hardware spec the study names before its grid is applied.

    Each point: ``model``, ``batch``, ``seq_len``, ``pattern`` (None for an artifact),
    ``sparsity``, ``artifact`` (absolute directory or None) and ``artifact_digest``, ``seed``,
    ``grid`` (the grid values that made the hardware, for labels) and ``hardware`` (the full
    validated spec as a dict).
    """
    base = base or Path.cwd()
    points: list[dict] = []
    seen: set[str] = set()

    def add(point: dict) -> None:
        canonical = json.dumps(point, sort_keys=True)
        if canonical not in seen:
            seen.add(canonical)
            points.append(point)

    hardware = [(name, _resolve_hardware(name, base, overrides)) for name in spec.hardware]
    for index, model in enumerate(spec.models):
        _check_model(index, model)
    artifacts = []
    for entry in spec.artifacts:
        path = Path(entry)
        path = (path if path.is_absolute() else base / path).resolve()
        artifacts.append((str(path), _artifact_digest(path)))

    for case in spec.patterns:
        grid = {**spec.grid, **case.grid}
        sparsities = spec.case_sparsities(case)
        for hw_name, hw_dict in hardware:
            for hw, params in _hardware_points(hw_dict, grid, hw_name):
                for model, seq_len, batch, sparsity in itertools.product(
                    spec.models, spec.seq_lens, spec.batches, sparsities
                ):
                    add(
                        {
                            "model": model,
                            "batch": batch,
                            "seq_len": seq_len,
                            "pattern": case.pattern,
                            "sparsity": round(float(sparsity), 12),
                            "artifact": None,
                            "artifact_digest": None,
                            "seed": spec.seed,
                            "grid": params,
                            "hardware": hw,
                        }
                    )
    for path, digest in artifacts:
        for hw_name, hw_dict in hardware:
            for hw, params in _hardware_points(hw_dict, spec.grid, hw_name):
                for seq_len, batch in itertools.product(spec.seq_lens, spec.batches):
                    add(
                        {
                            "model": path,
                            "batch": batch,
                            "seq_len": seq_len,
                            "pattern": None,
                            "sparsity": None,
                            "artifact": path,
                            "artifact_digest": digest,
                            "seed": spec.seed,
                            "grid": params,
                            "hardware": hw,
                        }
                    )
    return points
