"""The SparseModel artifact: a pruned model on disk, readable by transformers and the simulator.

A directory holding

- the Hugging Face checkpoint (``config.json``, ``model.safetensors``) with masks folded in,
  so ``AutoModelForSequenceClassification.from_pretrained(dir)`` loads the pruned model (a
  model shrunk by :mod:`pruning.shrink` has per-layer shapes that ``from_pretrained`` cannot
  build: :func:`pruning.models.load_model` rebuilds it from its config);
- ``masks.safetensors``: the masks in :mod:`pruning.maskfile`'s format (one bit-packed uint8
  tensor per weight name); the manifest lists the shapes too, and is what the loader trusts
  (artifacts written before the file carried its own shapes load the same way);
- ``manifest.json``: provenance (source model, pattern, method, schedule) and per-matrix
  statistics (role, shape ``[out, in]``, density, nnz, block occupancy for block patterns);
  for a model quantized onto crossbar levels (:mod:`pruning.quantize`) a ``quantization``
  block: ``weight_bits``, ``cell_bits``, ``on_off_ratio`` and the per-matrix level scales,
  which the crossbar simulator reads (fewer weight bits, fewer bit slices); for a model
  shrunk by :mod:`pruning.shrink` a ``structure`` block (:mod:`pruning.shrink_manifest`):
  kept heads and FFN neurons per layer and the per-layer sizes, the masks at those shapes.

:func:`save_artifact` writes into a temporary sibling directory and renames it into place,
so a killed writer never leaves a half artifact. :func:`load_artifact` reads only JSON and
safetensors (no pickle, no torch) and checks every figure of the manifest against the
masks (the matrices listed, their shapes, nnz, density and block occupancy, and the overall
nnz, total, density and compression ratio); every problem raises :class:`ArtifactError`
naming the file and field. Manifests are strict JSON, written and read: no NaN or Infinity.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pruning.maskfile import MaskFileError, read_mask_file, safetensors_write, write_mask_file
from pruning.shrink_manifest import STRUCTURE_KEY, check_structure, structure_block
from safeio.atomic import replace_dir
from safeio.documents import DocumentError, is_dir, is_file, read_json
from safeio.limits import BoundedError

if TYPE_CHECKING:
    from torch import Tensor, nn

    from pruning.patterns import Pattern

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST_FILE",
    "MASKS_FILE",
    "ArtifactError",
    "SparseArtifact",
    "check_artifact_target",
    "load_artifact",
    "save_artifact",
]

FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
MASKS_FILE = "masks.safetensors"
REQUIRED_KEYS = (
    "format_version",
    "source_model",
    "pattern",
    "method",
    "matrices",
    "nnz",
    "total",
    "density",
    "compression_ratio",
)
REQUIRED_MATRIX_KEYS = ("name", "role", "shape", "density", "nnz")


class ArtifactError(BoundedError):  # a ValueError, message bounded
    """An artifact directory that is missing, malformed or inconsistent."""


@dataclass(frozen=True)
class SparseArtifact:
    """A loaded artifact: its directory, manifest and bool keep-masks (name -> [out, in])."""

    path: Path
    manifest: dict[str, Any]
    masks: dict[str, np.ndarray] = field(repr=False)

    @property
    def density(self) -> float:
        return self.manifest["density"]


# ----------------------------------------------------------------------------- saving


def _pattern_string(pattern: Pattern | str) -> tuple[str, Pattern]:
    from pruning.patterns import parse_pattern

    parsed = parse_pattern(pattern) if isinstance(pattern, str) else pattern
    return str(parsed), parsed


def _mask_array(name: str, mask: Tensor | np.ndarray) -> np.ndarray:
    if hasattr(mask, "detach"):
        mask = mask.detach().cpu().numpy()
    array = np.asarray(mask) != 0
    if array.ndim != 2:
        raise ValueError(f"mask {name!r} must be 2-D [out, in], got shape {array.shape}")
    return array


def _check_folded(model: nn.Module, masks: Mapping[str, np.ndarray]) -> None:
    """The checkpoint must equal the masked weights: every pruned entry already zero."""
    params = dict(model.named_parameters())
    for name, mask in masks.items():
        if name not in params:
            raise ValueError(f"mask {name!r} names no parameter of the model")
        weight = params[name].detach().cpu().numpy()
        if weight.shape != mask.shape:
            raise ValueError(
                f"mask {name!r} has shape {list(mask.shape)}, weight has {list(weight.shape)}"
            )
        if np.any(weight[~mask] != 0):
            raise ValueError(
                f"weight {name!r} is nonzero where its mask is False: fold the masks in "
                "first (pruning.oneshot.apply_masks)"
            )


def _manifest(
    model: nn.Module,
    masks: Mapping[str, np.ndarray],
    *,
    source_model: str,
    pattern: Pattern | str,
    method: str,
    sparsity: float | None,
    schedule: Any,
    synthetic_weights: bool | None,
    training: Any,
    head: Any,
    quantization: Any = None,
) -> dict[str, Any]:
    from pruning.masks import block_occupancy
    from pruning.patterns import Block
    from pruning.targets import weight_roles

    pattern_text, parsed = _pattern_string(pattern)
    roles = weight_roles(model.config)
    structure = structure_block(model.config)
    matrices = []
    nnz_all = total_all = 0
    for name, mask in masks.items():
        nnz, total = int(mask.sum()), int(mask.size)
        nnz_all, total_all = nnz_all + nnz, total_all + total
        entry: dict[str, Any] = {
            "name": name,
            "role": str(roles[name]) if name in roles else None,
            "shape": [int(d) for d in mask.shape],
            "density": nnz / total if total else 1.0,
            "nnz": nnz,
        }
        if isinstance(parsed, Block):
            entry["block_occupancy"] = block_occupancy(mask, parsed.rows, parsed.cols)
        matrices.append(entry)
    overall = nnz_all / total_all if total_all else 1.0
    return {
        "format_version": FORMAT_VERSION,
        "source_model": str(source_model),
        "pattern": pattern_text,
        "method": str(method),
        "sparsity": sparsity,
        "schedule": schedule,
        "synthetic_weights": synthetic_weights,
        "head": head,
        "training": training,
        "masks_file": MASKS_FILE,
        "matrices": matrices,
        "nnz": nnz_all,
        "total": total_all,
        "density": overall,
        "compression_ratio": 1.0 / overall if overall > 0 else None,
        **({} if quantization is None else {"quantization": quantization}),
        **({} if structure is None else {STRUCTURE_KEY: structure}),
    }


def _save_model(model: nn.Module, directory: Path) -> None:
    from transformers.utils import logging

    # transformers 5 always writes safetensors and dropped the flag; 4.x needs it.
    params = inspect.signature(model.save_pretrained).parameters
    options = {"safe_serialization": True} if "safe_serialization" in params else {}
    logging.disable_progress_bar()  # no "Writing model shards" bar inside a CLI run
    try:
        model.save_pretrained(directory, **options)
    finally:
        logging.enable_progress_bar()


def check_artifact_target(out_dir: str | os.PathLike[str]) -> None:
    """ArtifactError when ``out_dir`` is a directory holding files but no manifest.json:
    writing the artifact replaces the directory as a whole, which would delete files that
    are no artifact's. An absent or empty directory, or an artifact, may be replaced."""
    target = Path(out_dir)
    if target.is_symlink() or not target.is_dir() or (target / MANIFEST_FILE).is_file():
        return  # a link or a file is refused where it is written (safeio.atomic)
    if any(target.iterdir()):
        raise ArtifactError(
            f"{target} is a directory holding files but no {MANIFEST_FILE}: expected a new or "
            "empty directory, or an artifact to replace (writing would delete those files)"
        )


def save_artifact(
    model: nn.Module,
    masks: Mapping[str, Tensor | np.ndarray],
    out_dir: str | os.PathLike[str],
    *,
    source_model: str,
    pattern: Pattern | str,
    method: str,
    sparsity: float | None,
    schedule: Any = None,
    synthetic_weights: bool | None = None,
    training: Any = None,
    tokenizer: Any = None,
    head: Any = None,
    quantization: Any = None,
) -> Path:
    """Write ``model`` (masks already folded in) and ``masks`` as an artifact at ``out_dir``.

    ``schedule`` (the method's schedule and settings) and ``training`` (task, data, metrics)
    must be JSON-serialisable (or None); ``head`` says how the task head reads the encoder
    (``{"kind": "cls" | "mean" | "bi-encoder", "num_labels": n}``; None: unknown, read as the
    Hugging Face ``cls`` head), so the simulator builds the matching workload;
    ``synthetic_weights`` says whether the weights were
    randomly initialised rather than pre-trained (None: unknown). A ``tokenizer`` with
    ``save_pretrained`` is saved beside the weights so the artifact is self-contained. An
    existing ``out_dir`` (an artifact, or empty; other files are refused:
    :func:`check_artifact_target`) is replaced as a whole (``safeio.atomic.replace_dir``, an
    atomic swap on Linux); a crash leaves either the old artifact or the new one plus a hidden
    temporary sibling, never a torn ``out_dir``. Returns the artifact path.
    """
    target = Path(out_dir)
    check_artifact_target(target)
    arrays = {name: _mask_array(name, mask) for name, mask in masks.items()}
    _check_folded(model, arrays)
    manifest = _manifest(
        model,
        arrays,
        source_model=source_model,
        pattern=pattern,
        method=method,
        sparsity=sparsity,
        schedule=schedule,
        synthetic_weights=synthetic_weights,
        training=training,
        head=head,
        quantization=quantization,
    )
    manifest_text = json.dumps(manifest, indent=2, allow_nan=False) + "\n"

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        safetensors_write(lambda: _save_model(model, tmp), target / "model.safetensors")
        if tokenizer is not None and hasattr(tokenizer, "save_pretrained"):
            tokenizer.save_pretrained(tmp)
        write_mask_file(tmp / MASKS_FILE, arrays)
        (tmp / MANIFEST_FILE).write_text(manifest_text, encoding="utf-8")
        for child in tmp.iterdir():
            if child.is_file():
                with open(child, "rb") as handle:
                    os.fsync(handle.fileno())
        replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


# ----------------------------------------------------------------------------- loading


def _read_manifest(path: Path) -> dict[str, Any]:
    manifest_path = path / MANIFEST_FILE
    if not is_file(manifest_path):
        raise ArtifactError(f"{manifest_path} not found: expected a SparseModel artifact")
    try:
        manifest = read_json(manifest_path)  # strict JSON, bounded (safeio.documents)
    except DocumentError as err:
        raise ArtifactError(f"{manifest_path} {err}") from None
    if not isinstance(manifest, dict):
        raise ArtifactError(
            f"{manifest_path} holds a JSON {type(manifest).__name__}: expected an object"
        )
    missing = [key for key in REQUIRED_KEYS if key not in manifest]
    if missing:
        raise ArtifactError(f"{manifest_path}: missing field(s) {', '.join(missing)}")
    if manifest["format_version"] != FORMAT_VERSION:
        raise ArtifactError(
            f"{manifest_path}: format_version {manifest['format_version']!r} is not "
            f"supported: expected {FORMAT_VERSION}"
        )
    if "quantization" in manifest:
        _check_quantization(manifest_path, manifest["quantization"])
    for key in ("training", "head"):  # optional records: --activations, variation read them
        if manifest.get(key) is not None and not isinstance(manifest[key], dict):
            raise ArtifactError(
                f"{manifest_path}: field {key} is a JSON {type(manifest[key]).__name__}: "
                "expected an object or null"
            )
    if not isinstance(manifest["matrices"], list):
        raise ArtifactError(f"{manifest_path}: field matrices must be a list")
    for i, entry in enumerate(manifest["matrices"]):
        where = f"{manifest_path}: matrices[{i}]"
        if not isinstance(entry, dict):
            raise ArtifactError(f"{where} must be an object")
        missing = [key for key in REQUIRED_MATRIX_KEYS if key not in entry]
        if missing:
            raise ArtifactError(f"{where}: missing field(s) {', '.join(missing)}")
        if not isinstance(entry["name"], str) or not entry["name"]:
            raise ArtifactError(f"{where}: name {entry['name']!r} is not a parameter name string")
        shape = entry["shape"]
        if not (
            isinstance(shape, list)
            and len(shape) == 2
            and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
        ):
            raise ArtifactError(f"{where} ({entry['name']!r}): shape {shape!r} is not [out, in]")
        if not isinstance(entry["nnz"], int) or isinstance(entry["nnz"], bool):
            raise ArtifactError(f"{where} ({entry['name']!r}): nnz {entry['nnz']!r} is not an int")
    return manifest


def _check_quantization(where: Path, block: Any) -> None:
    """The manifest's ``quantization`` block: integer bits, a ratio above 1, scales."""

    def is_int(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    if not isinstance(block, dict):
        raise ArtifactError(f"{where}: field quantization must be an object")
    bits, cell = block.get("weight_bits"), block.get("cell_bits")
    if not (is_int(bits) and 2 <= bits <= 32):
        raise ArtifactError(f"{where}: quantization.weight_bits {bits!r} is not an int in [2, 32]")
    if not (is_int(cell) and 1 <= cell <= min(8, bits)):
        raise ArtifactError(
            f"{where}: quantization.cell_bits {cell!r} is not an int in [1, min(8, weight_bits)]"
        )
    ratio = block.get("on_off_ratio")
    if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not ratio > 1:
        raise ArtifactError(f"{where}: quantization.on_off_ratio {ratio!r} is not a number > 1")
    scales = block.get("scales")
    if not isinstance(scales, dict) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and v > 0 for v in scales.values()
    ):
        raise ArtifactError(f"{where}: quantization.scales must map names to positive numbers")


_BLOCK_PATTERN = re.compile(r"^(?:block|crossbar):(\d+)x(\d+)$")


def _same(stated: Any, actual: float) -> bool:
    """Whether a manifest figure ``stated`` is the number ``actual`` (to rounding)."""
    if isinstance(stated, bool) or not isinstance(stated, int | float):
        return False
    return math.isfinite(stated) and abs(stated - actual) <= 1e-9 * max(1.0, abs(actual))


def _occupancy(mask: np.ndarray, rows: int, cols: int) -> float:
    """Fraction of ``rows x cols`` blocks holding a kept weight (edge blocks partial), as
    ``pruning.masks.block_occupancy`` without torch; blocks cut to the matrix."""
    out, inn = mask.shape
    if mask.size == 0:
        return 1.0
    rows, cols = min(rows, out), min(cols, inn)
    grid_r, grid_c = -(-out // rows), -(-inn // cols)
    padded = np.zeros((grid_r * rows, grid_c * cols), dtype=bool)
    padded[:out, :inn] = mask
    return float(padded.reshape(grid_r, rows, grid_c, cols).any(axis=(1, 3)).mean())


def _read_masks(root: Path, manifest: dict[str, Any]) -> dict[str, np.ndarray]:
    """The masks, shaped and named as the manifest says, each checked against the figures
    its manifest entry states (nnz, density, block occupancy)."""
    masks_path = root / MASKS_FILE
    where = root / MANIFEST_FILE
    names = [entry["name"] for entry in manifest["matrices"]]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ArtifactError(f"{where}: matrices lists {repeated[0]!r} more than once")
    shapes = {entry["name"]: entry["shape"] for entry in manifest["matrices"]}
    try:
        masks, _ = read_mask_file(masks_path, shapes, "manifest")
    except MaskFileError as err:
        raise ArtifactError(str(err)) from None
    block = _BLOCK_PATTERN.match(str(manifest.get("pattern")))
    for entry in manifest["matrices"]:
        name, mask = entry["name"], masks[entry["name"]]
        nnz = int(np.count_nonzero(mask))
        if nnz != entry["nnz"]:
            raise ArtifactError(
                f"{where}: nnz of {name!r} is {entry['nnz']} but the mask in {MASKS_FILE} "
                f"keeps {nnz}"
            )
        density = nnz / mask.size if mask.size else 1.0
        if not _same(entry["density"], density):
            raise ArtifactError(
                f"{where}: density of {name!r} is {entry['density']!r} but the mask in "
                f"{MASKS_FILE} keeps {density:.6g} of its weights"
            )
        if block and "block_occupancy" in entry:
            occupancy = _occupancy(mask, int(block.group(1)), int(block.group(2)))
            if not _same(entry["block_occupancy"], occupancy):
                raise ArtifactError(
                    f"{where}: block_occupancy of {name!r} is {entry['block_occupancy']!r} "
                    f"but {occupancy:.6g} of the mask's {block.group(1)}x{block.group(2)} "
                    "blocks hold a kept weight"
                )
    return masks


def _check_totals(root: Path, manifest: dict[str, Any], masks: dict[str, np.ndarray]) -> None:
    """The manifest's overall figures against the masks: nnz, total, density, ratio."""
    where = root / MANIFEST_FILE
    nnz = sum(int(np.count_nonzero(m)) for m in masks.values())
    total = sum(int(m.size) for m in masks.values())
    if nnz != manifest["nnz"]:
        raise ArtifactError(f"{where}: field nnz is {manifest['nnz']} but the masks keep {nnz}")
    if total != manifest["total"]:
        raise ArtifactError(
            f"{where}: field total is {manifest['total']} but the masks hold {total} weights"
        )
    density = nnz / total if total else 1.0
    if not _same(manifest["density"], density):
        listed = f"the {len(masks)} masks keep" if masks else "with no matrices listed,"
        raise ArtifactError(
            f"{where}: field density is {manifest['density']!r} but {listed} "
            f"{density:.6g} of the weights" + (" (every weight is dense)" if not masks else "")
        )
    ratio = manifest["compression_ratio"]
    expected = 1.0 / density if density > 0 else None
    if (ratio is None) != (expected is None) or (
        expected is not None and not _same(ratio, expected)
    ):
        raise ArtifactError(
            f"{where}: field compression_ratio is {ratio!r} but the masks give "
            f"{'none (nothing kept)' if expected is None else f'{expected:.6g}'}"
        )


def load_artifact(path: str | os.PathLike[str]) -> SparseArtifact:
    """Read and validate the artifact at ``path`` (manifest and masks; not the weights)."""
    root = Path(path)
    if not is_dir(root):
        raise ArtifactError(f"{root} is not a directory: expected a SparseModel artifact")
    manifest = _read_manifest(root)
    masks = _read_masks(root, manifest)
    _check_totals(root, manifest, masks)
    _check_structure(root, manifest, masks)
    return SparseArtifact(path=root, manifest=manifest, masks=masks)


def _check_structure(root: Path, manifest: dict[str, Any], masks: dict[str, np.ndarray]) -> None:
    """A shrunk model's ``structure`` block against its config.json and masks; a config
    that records a shrink needs the block."""
    from workloads.structure import KEPT_HEADS_KEY, KEPT_NEURONS_KEY, ShrinkError

    where = root / MANIFEST_FILE
    config = None
    if is_file(root / "config.json"):
        try:
            config = read_json(root / "config.json")
        except DocumentError as err:
            raise ArtifactError(f"{root / 'config.json'} {err}") from None
        if not isinstance(config, dict):
            raise ArtifactError(f"{root / 'config.json'}: expected a JSON object")
    shrunk = config is not None and (KEPT_HEADS_KEY in config or KEPT_NEURONS_KEY in config)
    if STRUCTURE_KEY not in manifest:
        if shrunk:
            raise ArtifactError(
                f"{where}: config.json records a shrunk model ({KEPT_HEADS_KEY}) but the "
                f"manifest has no {STRUCTURE_KEY} field"
            )
        return
    try:
        check_structure(str(where), manifest[STRUCTURE_KEY], masks, config)
    except ShrinkError as err:
        raise ArtifactError(str(err)) from None
