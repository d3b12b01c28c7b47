"""The SparseModel artifact: a pruned model on disk, readable by transformers and the simulator.

A directory holding

- the Hugging Face checkpoint (``config.json``, ``model.safetensors``) with masks folded in,
  so ``AutoModelForSequenceClassification.from_pretrained(dir)`` loads the pruned model;
- ``masks.safetensors``: one uint8 tensor per weight name, ``numpy.packbits`` of the
  flattened (row-major) bool keep-mask; the shape is in the manifest;
- ``manifest.json``: provenance (source model, pattern, method, schedule) and per-matrix
  statistics (role, shape ``[out, in]``, density, nnz, block occupancy for block patterns).

:func:`save_artifact` writes into a temporary sibling directory and renames it into place,
so a killed writer never leaves a half artifact. :func:`load_artifact` reads only JSON and
``safetensors.numpy`` (no pickle, no torch) and checks the manifest against the masks; every
problem raises :class:`ArtifactError` naming the file and field.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from safeio.atomic import replace_dir

if TYPE_CHECKING:
    from torch import Tensor, nn

    from pruning.patterns import Pattern

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST_FILE",
    "MASKS_FILE",
    "ArtifactError",
    "SparseArtifact",
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


class ArtifactError(ValueError):
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
) -> dict[str, Any]:
    from pruning.masks import block_occupancy
    from pruning.patterns import Block
    from pruning.targets import weight_roles

    pattern_text, parsed = _pattern_string(pattern)
    roles = weight_roles(model.config)
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
) -> Path:
    """Write ``model`` (masks already folded in) and ``masks`` as an artifact at ``out_dir``.

    ``schedule`` (the method's schedule and settings) and ``training`` (task, data, metrics)
    must be JSON-serialisable (or None); ``head`` says how the task head reads the encoder
    (``{"kind": "cls" | "mean" | "bi-encoder", "num_labels": n}``; None: unknown, read as the
    Hugging Face ``cls`` head), so the simulator builds the matching workload;
    ``synthetic_weights`` says whether the weights were
    randomly initialised rather than pre-trained (None: unknown). A ``tokenizer`` with
    ``save_pretrained`` is saved beside the weights so the artifact is self-contained. An
    existing ``out_dir`` is replaced as a whole (``safeio.atomic.replace_dir``, an atomic
    swap on Linux); a crash leaves either the old artifact or the new one plus a hidden
    temporary sibling, never a torn ``out_dir``. Returns the artifact path.
    """
    from safetensors.numpy import save_file

    target = Path(out_dir)
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
    )
    manifest_text = json.dumps(manifest, indent=2, allow_nan=False) + "\n"
    packed = {name: np.packbits(mask.reshape(-1)) for name, mask in arrays.items()}

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        _save_model(model, tmp)
        if tokenizer is not None and hasattr(tokenizer, "save_pretrained"):
            tokenizer.save_pretrained(tmp)
        save_file(packed, str(tmp / MASKS_FILE))
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
    if not manifest_path.is_file():
        raise ArtifactError(f"{manifest_path} not found: expected a SparseModel artifact")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ArtifactError(f"{manifest_path} is not valid JSON ({err})") from None
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


def _read_packed(path: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    masks_path = path / MASKS_FILE
    if not masks_path.is_file():
        raise ArtifactError(f"{masks_path} not found: expected bit-packed masks")
    try:
        return load_file(str(masks_path))
    # safetensors raises its own SafetensorError (and OSError/ValueError) on torn files.
    except Exception as err:
        raise ArtifactError(f"{masks_path} could not be read as safetensors: {err}") from None


def _unpack(masks_path: Path, entry: dict[str, Any], packed: np.ndarray) -> np.ndarray:
    name, shape = entry["name"], entry["shape"]
    size = math.prod(shape)
    if packed.dtype != np.uint8 or packed.ndim != 1:
        raise ArtifactError(
            f"{masks_path}: mask {name!r} is {packed.dtype} with shape {list(packed.shape)}: "
            "expected a 1-D uint8 bit-packed array"
        )
    if packed.size != -(-size // 8):
        raise ArtifactError(
            f"{masks_path}: mask {name!r} unpacks to {packed.size * 8} bits, which does not "
            f"fit manifest shape {shape} ({size} entries)"
        )
    bits = np.unpackbits(packed)
    if bits[size:].any():
        raise ArtifactError(f"{masks_path}: mask {name!r} has nonzero padding bits")
    mask = bits[:size].astype(bool).reshape(shape)
    nnz = int(mask.sum())
    if nnz != entry["nnz"]:
        raise ArtifactError(
            f"{masks_path.parent / MANIFEST_FILE}: nnz of {name!r} is {entry['nnz']} but "
            f"the mask in {MASKS_FILE} keeps {nnz}"
        )
    return mask


def load_artifact(path: str | os.PathLike[str]) -> SparseArtifact:
    """Read and validate the artifact at ``path`` (manifest and masks; not the weights)."""
    root = Path(path)
    if not root.is_dir():
        raise ArtifactError(f"{root} is not a directory: expected a SparseModel artifact")
    manifest = _read_manifest(root)
    packed = _read_packed(root)
    masks_path = root / MASKS_FILE
    names = [entry["name"] for entry in manifest["matrices"]]
    missing = [name for name in names if name not in packed]
    extra = sorted(set(packed) - set(names))
    if missing or extra:
        raise ArtifactError(
            f"{masks_path}: masks do not match {MANIFEST_FILE} field matrices "
            f"(missing: {missing or 'none'}, unlisted: {extra or 'none'})"
        )
    masks = {
        entry["name"]: _unpack(masks_path, entry, packed[entry["name"]])
        for entry in manifest["matrices"]
    }
    nnz = sum(int(m.sum()) for m in masks.values())
    if nnz != manifest["nnz"]:
        raise ArtifactError(
            f"{root / MANIFEST_FILE}: field nnz is {manifest['nnz']} but the masks keep {nnz}"
        )
    return SparseArtifact(path=root, manifest=manifest, masks=masks)
