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
sparsities: [0.75]              # or compression_ratios: [2, 4, 8] (sparsity = 1 - 1/ratio);
                                # required when a pattern needs one (no default)
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
import math
import re
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from accel_sim.spec import HardwareConfigError, derive, hardware_from_dict, load_hardware
from accel_sim.spec.loading import set_dotted
from safeio import limits
from safeio.documents import DocumentError, is_dir, is_file, parse_yaml, read_yaml
from safeio.errors import did_you_mean, format_validation_error

__all__ = [
    "BUILTIN_DIR",
    "KINDS",
    "RESERVED_NAMES",
    "PatternCase",
    "StudySpec",
    "StudySpecError",
    "builtin_names",
    "builtin_text",
    "count_points",
    "expand",
    "load_spec",
    "point_label",
    "study_json_schema",
]

# Package data (``studies/builtin/*.yaml``), read through importlib.resources so that an
# installed wheel has them; BUILTIN_DIR is the folder as a path.
BUILTIN_ROOT: Traversable = resources.files("studies").joinpath("builtin")
BUILTIN_DIR = Path(str(BUILTIN_ROOT))
KINDS = ("block-size", "compression", "dse", "custom")
DENSE = "dense"


class StudySpecError(limits.BoundedError):  # a ValueError, message bounded
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
# What a study writes into its output directory besides ``outputs``: the table, its record,
# the spec, the result store, the mask cache and the roofline's op table. ``outputs`` names
# may not be any of them (compared ignoring case, as some file systems do).
RESERVED_NAMES = frozenset({
    "results.csv", "results.parquet", "run.json", "spec.yaml", "store", "masks",
    "ops.csv", "ops.parquet",
})  # fmt: skip


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
    if text.lower() in RESERVED_NAMES:
        raise ValueError(
            f"{text!r} is a file the study writes itself: expected a name other than "
            f"{', '.join(sorted(RESERVED_NAMES))}"
        )
    return text


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


Grid = dict[str, list[Any]]
SeqLen = Annotated[int, Field(gt=0, le=limits.MAX_SEQ_LEN, strict=True)]
Batch = Annotated[int, Field(gt=0, le=limits.MAX_BATCH, strict=True)]


def _check_grid(grid: Grid) -> Grid:
    for path, values in grid.items():
        if not path or any(not part for part in path.split(".")):
            raise ValueError(f"{path!r} is not a dotted hardware field such as pe_array.rows")
        if not values:
            raise ValueError(f"{path}: expected a non-empty list of values")
        if len(values) > limits.MAX_GRID_VALUES:
            raise ValueError(
                f"{path}: {len(values):,} values, over the limit of {limits.MAX_GRID_VALUES:,}"
            )
    return grid


class PatternCase(_Spec):
    """One pruning pattern, optionally with its own sparsities and hardware grid."""

    pattern: str = Field(
        description="a pruning pattern: unstructured, block:RxC, nm:N:M, crossbar:RxC, row, "
        "column, head, or dense (no masks)"
    )
    sparsities: list[float] | None = Field(
        default=None,
        description="this pattern's fractions of weights pruned, each in [0, 1) (instead of "
        "the study's)",
    )
    compression_ratios: list[float] | None = Field(
        default=None,
        description="this pattern's dense/kept weight ratios, each >= 1 (sparsity = 1 - "
        "1/ratio), instead of sparsities",
    )
    grid: Grid = Field(
        default_factory=dict,
        description="dotted hardware field -> values for this pattern; replaces the study "
        "grid's entry of the same field",
    )

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

    @property
    def needs_sparsity(self) -> bool:
        """Dense has none and an N:M pattern's is fixed (1 - N/M); the others need one."""
        return self.pattern != DENSE and not self.pattern.startswith("nm:")


def _check_sparsities(values: list[float]) -> list[float]:
    for value in values:
        if not 0.0 <= value < 1.0:
            raise ValueError(f"sparsity {value!r} is outside [0, 1)")
    return values


def _check_ratios(values: list[float]) -> list[float]:
    for value in values:
        if not value >= 1.0:
            raise ValueError(f"compression ratio {value!r} is below 1")
        if value > limits.MAX_COMPRESSION_RATIO:
            raise ValueError(
                f"compression ratio {value!r} is over the limit of "
                f"{limits.describe(limits.MAX_COMPRESSION_RATIO)}"
            )
    return values


class Outputs(_Spec):
    """Files the study writes: single names inside the output directory."""

    plots_dir: str = Field(default="plots", description="folder of the PNG and SVG plots")
    report: str = Field(default="report.md", description="the Markdown report")

    @field_validator("plots_dir", "report")
    @classmethod
    def _inside(cls, value: str) -> str:
        return _check_output_name(value)

    @model_validator(mode="after")
    def _distinct(self) -> Outputs:
        if self.plots_dir.lower() == self.report.lower():
            raise ValueError(
                f"plots_dir and report are both {self.report!r}: expected two different names"
            )
        return self


_COLUMN = re.compile(r"^(max:)?[A-Za-z_][A-Za-z0-9_.]*$")


class ParetoSpec(_Spec):
    """The Pareto front a study's report marks and its plot circles (the same rows)."""

    objectives: list[str] = Field(
        default_factory=lambda: ["latency_s", "energy_j", "area_mm2"],
        min_length=1,
        description="result columns, each minimised (max:column to maximise, e.g. "
        "max:sequences_per_s); the plot's axes are the first two, its colour the third",
    )
    epsilon: float = Field(
        default=0.01,
        ge=0.0,
        le=1.0,
        description="relative tolerance: a design within epsilon of another in every "
        "objective, and worse in none by more, leaves the front (0: the exact front)",
    )
    constraints: dict[str, float | str] = Field(
        default_factory=dict,
        description="result column -> bound, e.g. {area_mm2: '<= 5'} (an area budget) or "
        "{sequences_per_s: '>= 100'}; a bare number is an upper bound",
    )

    @field_validator("objectives")
    @classmethod
    def _objectives(cls, value: list[str]) -> list[str]:
        for objective in value:
            if not _COLUMN.match(objective):
                raise ValueError(
                    f"objective {objective!r}: expected a result column such as latency_s, "
                    "or max:column"
                )
        return value

    @field_validator("constraints")
    @classmethod
    def _constraints(cls, value: dict[str, float | str]) -> dict[str, float | str]:
        from studies.pareto import parse_constraint

        for column, rule in value.items():
            parse_constraint(rule)
            if not _COLUMN.match(column) or column.startswith("max:"):
                raise ValueError(f"constraint column {column!r} is not a result column name")
        return value


class StudySpec(_Spec):
    """A study: the models, workloads, pruning patterns and hardware a sweep covers."""

    name: str = Field(
        min_length=1,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="the study's name (letters, digits, '.', '_', '-'); default output "
        "folder out/<name>",
    )
    kind: Literal["block-size", "compression", "dse", "custom"] = Field(
        default="custom",
        description="which plots and key table the report has: block-size, compression, dse "
        "or custom",
    )
    description: str = Field(default="", description="one line shown by `cosim study list`")
    models: list[str] = Field(
        default_factory=lambda: ["bert-base-uncased"],
        min_length=1,
        description="models: presets, checkpoint directories or hub ids",
    )
    seq_lens: list[SeqLen] = Field(
        default_factory=lambda: [128], min_length=1, description="tokens per sequence"
    )
    batches: list[Batch] = Field(
        default_factory=lambda: [1], min_length=1, description="sequences per batch"
    )
    seed: int = Field(
        default=0,
        ge=0,
        le=limits.MAX_SEED,
        description="seed of the synthetic weights and masks",
    )
    hardware: list[str] = Field(
        default_factory=lambda: ["systolic-32x32-ws"],
        min_length=1,
        description="hardware presets, YAML or SCALE-Sim .cfg files (relative to the spec "
        "file)",
    )
    grid: Grid = Field(
        default_factory=dict,
        description="dotted hardware field -> list of values; every combination is a design "
        "point (a mapping value merges into the field)",
    )
    sparsities: list[float] | None = Field(
        default=None,
        description="fractions of weights pruned, each in [0, 1); required (or "
        "compression_ratios) when a pattern other than dense or nm:N:M has none of its own",
    )
    compression_ratios: list[float] | None = Field(
        default=None,
        description="dense/kept weight ratios, each >= 1 (sparsity = 1 - 1/ratio), instead "
        "of sparsities",
    )
    patterns: list[PatternCase] = Field(
        default_factory=list,
        description="pruning patterns (strings or mappings with their own sparsities and "
        "grid); magnitude masks are computed for each",
    )
    artifacts: list[str] = Field(
        default_factory=list,
        description="pruned artifact directories (cosim prune) to simulate with their own "
        "masks, relative to the spec file",
    )
    checkpoints: list[str] = Field(
        default_factory=list,
        description="externally pruned checkpoint directories (nn_pruning, torch.ao.pruning, "
        "SparseML output: pruned weights are exact zeros, no masks), simulated with masks "
        "read from those zeros; relative to the spec file",
    )
    outputs: Outputs = Field(default_factory=Outputs, description="names of the files written")
    pareto: ParetoSpec = Field(
        default_factory=ParetoSpec,
        description="objectives, epsilon and constraints of the Pareto front the report and "
        "plot show",
    )

    @field_validator("grid")
    @classmethod
    def _grid(cls, value: Grid) -> Grid:
        return _check_grid(value)

    @field_validator("patterns", mode="before", json_schema_input_type=list[PatternCase | str])
    @classmethod
    def _cases(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"pattern": v} if isinstance(v, str) else v for v in value]
        return value

    @field_validator("sparsities")
    @classmethod
    def _sparsities(cls, value: list[float] | None) -> list[float] | None:
        return None if value is None else _check_sparsities(value)

    @field_validator("compression_ratios")
    @classmethod
    def _ratios(cls, value: list[float] | None) -> list[float] | None:
        return None if value is None else _check_ratios(value)

    @model_validator(mode="after")
    def _something_to_run(self) -> StudySpec:
        problems = []
        if not self.patterns and not self.artifacts and not self.checkpoints:
            problems.append("give patterns, artifacts or checkpoints: nothing to simulate")
        if self.sparsities is not None and self.compression_ratios is not None:
            problems.append("give sparsities or compression_ratios, not both")
        study_level = self.sparsities is not None or self.compression_ratios is not None
        for index, case in enumerate(self.patterns):
            own = case.sparsities is not None or case.compression_ratios is not None
            if case.needs_sparsity and not own and not study_level:
                problems.append(
                    f"patterns[{index}] ({case.pattern}) needs a sparsity: give sparsities or "
                    "compression_ratios, in the study or in the pattern (no default applies)"
                )
        if problems:
            raise ValueError("; ".join(problems))
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
        if sparsities is None:  # the validator refuses this; kept for a clear message
            raise StudySpecError(f"pattern {case.pattern} has no sparsities")
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
                error,
                "study spec",
                source,
                "`cosim schema study` lists the valid keys",
                StudySpec,
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
                f"unknown study {text!r}{did_you_mean(text, builtins)}: expected a built-in "
                f"name ({names}) or a .yaml file"
            )
        try:  # bounded like a user's file, though shipped with the package
            data = parse_yaml(builtins[text].read_text(encoding="utf-8"))
        except (DocumentError, UnicodeDecodeError) as error:  # pragma: no cover - shipped
            raise StudySpecError(f"built-in study {text} {error}") from None
        return _validate(data, f"built-in study {text}"), BUILTIN_DIR
    if not is_file(path):
        raise StudySpecError(f"study spec file not found: {path}")
    try:
        data = read_yaml(path)  # bounded: size, depth, digits, aliases (safeio.documents)
    except DocumentError as error:
        raise StudySpecError(f"study spec {path} {error}") from None
    return _validate(data, str(path)), path.resolve().parent


def study_json_schema() -> dict[str, Any]:
    """The JSON Schema of a study spec file (``cosim schema study``)."""
    schema = StudySpec.model_json_schema()
    schema["title"] = "sparse-bert-cosim study spec"
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


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


def _check_model(index: int, model: str, batch: int, seq_len: int) -> None:
    """Refuse an unknown or non-BERT model when the spec expands, not once per design point;
    and a model whose largest point (``batch`` x ``seq_len``) passes the workload limits.
    Presets are checked as plain data (no transformers import)."""
    from workloads.bert import WorkloadError, build_workload, check_model, max_seq_len

    try:
        check_model(model)
        # seq_len past the model's positions fails its own points, one line each
        build_workload(model, batch=batch, seq_len=min(seq_len, max_seq_len(model)))
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
        where = limits.shorten(f"{source} with grid {json.dumps(params)}", 400)
        try:
            hw = hardware_from_dict(data, source=where)
        except HardwareConfigError as error:
            raise StudySpecError(limits.shorten(f"study spec field grid: {error}")) from None
        out.append((hw.model_dump(mode="json"), params))
    return out


def _artifact_digest(path: Path) -> str:
    from pruning.artifact import MANIFEST_FILE, MASKS_FILE, ArtifactError, load_artifact

    digest = hashlib.sha256()
    if not is_dir(path):
        raise StudySpecError(f"study spec field artifacts: {path} is not an artifact directory")
    try:
        load_artifact(path)  # a broken artifact fails here, not in every design point
    except ArtifactError as error:
        raise StudySpecError(f"study spec field artifacts: {error}") from None
    for name in (MANIFEST_FILE, MASKS_FILE):
        file = path / name
        if not is_file(file):
            raise StudySpecError(f"study spec field artifacts: {file} not found")
        digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def _checkpoint_digest(index: int, path: Path) -> str:
    """Refuse a checkpoint without weights or of an unknown model when the spec expands."""
    from pruning.zeros import CheckpointWeightsError, checkpoint_digest
    from workloads.bert import WorkloadError, check_model

    where = f"study spec field checkpoints[{index}]"
    try:
        check_model(path)
        return checkpoint_digest(path)
    except (CheckpointWeightsError, WorkloadError) as error:
        raise StudySpecError(f"{where}: {error}") from None


def point_label(point: dict) -> str:
    """A short human label of what varies in a point: pattern and grid values."""
    pattern = point.get("pattern") or "artifact"
    parts = [pattern]
    params = point.get("grid") or {}
    hw = point.get("hardware") or {}
    if "datapath" in params:
        parts.append(str(hw.get("datapath", "systolic")))
    if "pe_array" in params or "pe_array.rows" in params or "pe_array.cols" in params:
        parts.append(f"{hw['pe_array']['rows']}x{hw['pe_array']['cols']}")
    if any(k == "sram" or k.startswith("sram.") for k in params):
        total = sum(hw["sram"][b]["size_bytes"] for b in ("ifmap", "filter", "ofmap"))
        parts.append(f"{total // 1024}KiB")
    if "dram.bandwidth_bytes_per_s" in params:
        parts.append(f"{hw['dram']['bandwidth_bytes_per_s'] / 1e9:g}GB/s")
    if "sparse.zero_handling" in params:
        parts.append(str(hw["sparse"]["zero_handling"]))
    if "datapath" in params:
        parts.append(str(hw.get("datapath", "systolic")))
    if any(k == "crossbar" or k.startswith("crossbar.") for k in params):  # datapath: crossbar
        parts.append(f"xbar {hw['crossbar']['rows']}x{hw['crossbar']['cols']}")
    if "mapping.execution" in params:
        parts.append(str(hw["mapping"]["execution"]))
    if "mapping" in params or "mapping.search" in params:
        mapping = hw.get("mapping") or {}
        if "search" in mapping:
            parts.append(f"mapping {mapping['search']}")
    return " ".join(parts)


def count_points(spec: StudySpec) -> int:
    """How many design points ``spec`` expands to at most (before duplicates are dropped),
    counted without expanding anything."""
    hardware = len(spec.hardware)
    runs = len(spec.seq_lens) * len(spec.batches)
    total = 0
    for case in spec.patterns:
        grid = {**spec.grid, **case.grid}
        combos = math.prod(len(values) for values in grid.values())
        total += hardware * combos * len(spec.models) * runs * len(spec.case_sparsities(case))
    combos = math.prod(len(values) for values in spec.grid.values())
    return total + (len(spec.artifacts) + len(spec.checkpoints)) * hardware * combos * runs


def expand(
    spec: StudySpec,
    base: Path | None = None,
    overrides: dict[str, Any] | None = None,
    max_points: int = limits.MAX_POINTS,
) -> list[dict]:
    """The spec's design points, in a stable order, duplicates dropped.

    ``overrides`` (dotted hardware field -> value, ``cosim study run --set``) change every
    hardware spec the study names before its grid is applied. The points are counted first
    (:func:`count_points`): a spec that would expand to more than ``max_points`` is refused
    before any point is built.

    Each point: ``model``, ``batch``, ``seq_len``, ``pattern`` (None for an artifact),
    ``sparsity``, ``artifact`` (absolute directory or None) and ``artifact_digest``, ``seed``,
    ``grid`` (the grid values that made the hardware, for labels) and ``hardware`` (the full
    validated spec as a dict).
    """
    base = base or Path.cwd()
    count = count_points(spec)
    if count > max_points:
        raise StudySpecError(
            f"study spec {spec.name} expands to {count:,} design points, over the limit of "
            f"{max_points:,}: narrow the grid, patterns or sizes, or raise the limit "
            "(cosim study run --max-points)"
        )
    points: list[dict] = []
    seen: set[str] = set()

    def add(point: dict) -> None:
        canonical = json.dumps(point, sort_keys=True)
        if canonical not in seen:
            seen.add(canonical)
            points.append(point)

    problems: list[str] = []  # every problem is reported at once

    def attempt(check, *args):
        try:
            return check(*args)
        except StudySpecError as error:
            problems.append(str(error))
            return None

    hardware = []
    for name in spec.hardware:
        resolved = attempt(_resolve_hardware, name, base, overrides)
        if resolved is not None:
            hardware.append((name, resolved))
    for index, model in enumerate(spec.models):
        attempt(_check_model, index, model, max(spec.batches), max(spec.seq_lens))
    artifacts = []
    for entry in spec.artifacts:
        path = Path(entry)
        path = (path if path.is_absolute() else base / path).resolve()
        digest = attempt(_artifact_digest, path)
        if digest is not None:
            artifacts.append((str(path), digest))
    checkpoints = []
    for index, entry in enumerate(spec.checkpoints):
        path = Path(entry)
        path = (path if path.is_absolute() else base / path).resolve()
        digest = attempt(_checkpoint_digest, index, path)
        if digest is not None:
            checkpoints.append((str(path), digest))
    grid_points: dict[str, list[tuple[dict, dict]]] = {}

    def hardware_points(hw_name: str, hw_dict: dict, grid: Grid) -> list[tuple[dict, dict]]:
        key = json.dumps([hw_name, grid], sort_keys=True, default=str)
        if key not in grid_points:
            grid_points[key] = attempt(_hardware_points, hw_dict, grid, hw_name) or []
        return grid_points[key]

    for case in spec.patterns:
        for hw_name, hw_dict in hardware:
            hardware_points(hw_name, hw_dict, {**spec.grid, **case.grid})
    for hw_name, hw_dict in hardware:
        if artifacts or checkpoints:
            hardware_points(hw_name, hw_dict, spec.grid)
    if problems:
        unique = list(dict.fromkeys(problems))
        if len(unique) == 1:
            raise StudySpecError(unique[0])
        raise StudySpecError(f"{len(unique)} problems in the study spec: " + "; ".join(unique))

    for case in spec.patterns:
        grid = {**spec.grid, **case.grid}
        sparsities = spec.case_sparsities(case)
        for hw_name, hw_dict in hardware:
            for hw, params in hardware_points(hw_name, hw_dict, grid):
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
    # Checkpoints (masks read from their zeros) and artifacts (masks from their files): each
    # is the model of its points, named in its own pair of fields.
    sources = [(path, {"artifact": None, "artifact_digest": None, "checkpoint": path,
                       "checkpoint_digest": digest}) for path, digest in checkpoints]
    sources += [(path, {"artifact": path, "artifact_digest": digest})
                for path, digest in artifacts]  # fmt: skip
    for path, source_fields in sources:
        for hw_name, hw_dict in hardware:
            for hw, params in hardware_points(hw_name, hw_dict, spec.grid):
                for seq_len, batch in itertools.product(spec.seq_lens, spec.batches):
                    add(
                        {
                            "model": path,
                            "batch": batch,
                            "seq_len": seq_len,
                            "pattern": None,
                            "sparsity": None,
                            **source_fields,
                            "seed": spec.seed,
                            "grid": params,
                            "hardware": hw,
                        }
                    )
    return points
