"""The one mask-file format, read by the simulator side without torch.

A safetensors file with, per weight name, one 1-D uint8 tensor: ``numpy.packbits`` of the
flattened (row-major) bool keep-mask, padding bits zero. Its metadata holds ``shapes`` (JSON:
name -> ``[out, in]``) and, optionally, ``meta`` (any JSON the writer adds). Artifacts
(``pruning.artifact``) and the studies' shared mask cache (``studies.evaluate``) both use it;
an artifact's manifest also lists the shapes, and artifacts written before the file carried
them are read with the manifest's (``shapes=``).

Every problem with a file raises :class:`MaskFileError` naming the file and the mask.
"""

from __future__ import annotations

import errno
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from safeio.atomic import atomic_write_with
from safeio.documents import DocumentError, parse_json
from safeio.limits import BoundedError

__all__ = [
    "MaskFileError",
    "pack_masks",
    "read_mask_file",
    "safetensors_write",
    "unpack_mask",
    "write_mask_file",
]

SHAPES_KEY = "shapes"
META_KEY = "meta"


class MaskFileError(BoundedError):  # a ValueError, message bounded
    """A mask file that cannot be read or does not hold the masks it should."""


def pack_masks(masks: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Name -> bit-packed uint8 tensor of each bool mask (flattened row-major)."""
    return {
        name: np.packbits(np.asarray(mask, dtype=bool).reshape(-1)) for name, mask in masks.items()
    }


def safetensors_write(save: Callable[[], object], path: str | os.PathLike[str]) -> None:
    """Run ``save`` (a safetensors or ``save_pretrained`` write of ``path``); the
    ``SafetensorError`` safetensors raises when a write fails (a full disk, ...) becomes an
    ``OSError`` naming the path, like every other failed write."""
    from safetensors import SafetensorError

    try:
        save()
    except SafetensorError as error:
        text = " ".join(str(error).split())
        full = "StorageFull" in text or "No space left" in text or "code: 28" in text
        code = errno.ENOSPC if full else errno.EIO
        reason = os.strerror(code) if full else f"safetensors could not write it ({text})"
        raise OSError(code, reason, str(path)) from None


def write_mask_file(
    path: str | os.PathLike[str], masks: Mapping[str, np.ndarray], meta: Any = None
) -> Path:
    """Write ``masks`` (name -> 2-D bool array) and optional JSON ``meta`` to ``path``,
    atomically (``safeio.atomic``): readers never see half a file."""
    from safetensors.numpy import save_file

    shapes = {name: [int(d) for d in np.shape(mask)] for name, mask in masks.items()}
    metadata = {SHAPES_KEY: json.dumps(shapes)}
    if meta is not None:
        metadata[META_KEY] = json.dumps(meta, allow_nan=False)  # strict JSON
    packed = pack_masks(masks)

    def write(tmp: Path) -> None:
        safetensors_write(lambda: save_file(packed, str(tmp), metadata=metadata), path)

    return atomic_write_with(path, write)


def unpack_mask(
    path: str | os.PathLike[str],
    name: str,
    packed: np.ndarray,
    shape: Sequence[int],
    shapes_from: str = "given",
) -> np.ndarray:
    """The bool mask of ``shape`` packed in ``packed``; checks dtype, size and padding.
    ``path`` and ``shapes_from`` (where ``shape`` came from) only name things in errors."""
    size = math.prod(shape)
    if packed.dtype != np.uint8 or packed.ndim != 1:
        raise MaskFileError(
            f"{path}: mask {name!r} is {packed.dtype} with shape {list(packed.shape)}: "
            "expected a 1-D uint8 bit-packed array"
        )
    if packed.size != -(-size // 8):
        raise MaskFileError(
            f"{path}: mask {name!r} unpacks to {packed.size * 8} bits, which does not "
            f"fit the {shapes_from} shape {list(shape)} ({size} entries)"
        )
    bits = np.unpackbits(packed)
    if bits[size:].any():
        raise MaskFileError(f"{path}: mask {name!r} has nonzero padding bits")
    return bits[:size].view(bool).reshape(shape)


def _read_tensors(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    from safetensors import safe_open

    if not path.is_file():
        raise MaskFileError(f"{path} not found: expected bit-packed masks")
    try:
        with safe_open(str(path), framework="np") as handle:
            metadata = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
    # safetensors raises its own SafetensorError (and OSError/ValueError) on torn files.
    except Exception as err:
        raise MaskFileError(f"{path} could not be read as safetensors: {err}") from None
    return tensors, metadata


def _metadata_json(path: Path, metadata: Mapping[str, str], key: str) -> Any:
    try:
        return parse_json(metadata[key])
    except DocumentError as err:
        raise MaskFileError(f"{path}: metadata {key!r} {err}") from None


def _is_shape(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in value)
    )


def _file_shapes(path: Path, metadata: Mapping[str, str]) -> dict[str, list[int]]:
    if SHAPES_KEY not in metadata:
        raise MaskFileError(f"{path}: no {SHAPES_KEY!r} in its metadata and none given")
    shapes = _metadata_json(path, metadata, SHAPES_KEY)
    if not isinstance(shapes, dict) or not all(_is_shape(s) for s in shapes.values()):
        raise MaskFileError(f"{path}: metadata {SHAPES_KEY!r} is not name -> [out, in]")
    return shapes


def read_mask_file(
    path: str | os.PathLike[str],
    shapes: Mapping[str, Any] | None = None,
    shapes_from: str = "given",
) -> tuple[dict[str, np.ndarray], Any]:
    """(name -> bool mask, ``meta`` or None) from ``path``.

    ``shapes`` (name -> ``[out, in]``, described as ``shapes_from`` in errors) overrides
    the file's own, for files that predate them; the masks come in its order, and the file
    must hold exactly those names."""
    path = Path(path)
    tensors, metadata = _read_tensors(path)
    if shapes is None:
        shapes, shapes_from = _file_shapes(path, metadata), "metadata"
    missing = [name for name in shapes if name not in tensors]
    extra = sorted(set(tensors) - set(shapes))
    if missing or extra:
        raise MaskFileError(
            f"{path}: masks do not match the {shapes_from} names "
            f"(missing: {missing or 'none'}, unlisted: {extra or 'none'})"
        )
    masks = {
        name: unpack_mask(path, name, tensors[name], shape, shapes_from)
        for name, shape in shapes.items()
    }
    meta = _metadata_json(path, metadata, META_KEY) if META_KEY in metadata else None
    return masks, meta
