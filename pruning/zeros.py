"""Masks of an externally pruned checkpoint, read from its weights' exact zeros.

nn_pruning, ``torch.ao.pruning`` (after ``squash_mask``), ``torch.nn.utils.prune`` (after
``remove``) and SparseML leave a pruned model as an ordinary checkpoint whose pruned weights
are exact zeros, with no mask file and no manifest. Simulated as is, such a model runs
dense. :func:`masks_from_zeros` turns each linear weight's zeros into its keep-mask (``cosim
simulate --masks-from-zeros``, a study's ``checkpoints:``); :func:`warn_if_mostly_zeros` says
so when a checkpoint that is mostly zeros is about to be simulated without them.

Weights are read without pickle where possible: ``model.safetensors`` (and sharded
``model-*.safetensors``) as numpy arrays; only a ``pytorch_model.bin`` needs torch, loaded
with ``weights_only=True``. A weight is matched to the workload's GEMM by its Hugging Face
name, with or without the model-family prefix (``bert.``, ``roberta.``, ``distilbert.``),
since a base model's checkpoint has no prefix.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from safeio.documents import read_json
from safeio.errors import InputWarning

__all__ = [
    "MOSTLY_ZEROS",
    "CheckpointWeightsError",
    "MostlyZerosWarning",
    "checkpoint_digest",
    "has_weights",
    "masks_from_zeros",
    "warn_if_mostly_zeros",
    "zero_fraction",
]

MOSTLY_ZEROS = 0.5  # warn above this fraction of zeros in the linear weights
SAFETENSORS = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
PICKLED = "pytorch_model.bin"
PICKLED_INDEX = "pytorch_model.bin.index.json"
FAMILY_PREFIXES = ("bert.", "roberta.", "distilbert.")


class CheckpointWeightsError(ValueError):
    """A checkpoint whose weights cannot be read; the message names the file."""


class MostlyZerosWarning(InputWarning):
    """A checkpoint simulated without masks although most of its linear weights are zero."""


def _weight_files(path: Path) -> tuple[str, list[Path]]:
    """("safetensors" or "pickle", the weight files) of checkpoint directory ``path``."""
    for kind, single, index in (
        ("safetensors", SAFETENSORS, SAFETENSORS_INDEX),
        ("pickle", PICKLED, PICKLED_INDEX),
    ):
        if (path / single).is_file():
            return kind, [path / single]
        if (path / index).is_file():
            try:
                mapping = read_json(path / index)["weight_map"]  # bounded, strict
                files = sorted({path / str(name) for name in mapping.values()})
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
                raise CheckpointWeightsError(
                    f"{path / index}: not a weight index ({error})"
                ) from None
            return kind, files
    raise CheckpointWeightsError(
        f"{path}: no weights ({SAFETENSORS} or {PICKLED}): expected a checkpoint with weights"
    )


def has_weights(path: str | Path) -> bool:
    try:
        _weight_files(Path(path))
    except CheckpointWeightsError:
        return False
    return True


def _read(path: Path, wanted: set[str]) -> dict[str, np.ndarray]:
    """The 2-D tensors named in ``wanted`` (checkpoint names) as numpy arrays."""
    kind, files = _weight_files(path)
    found: dict[str, np.ndarray] = {}
    for file in files:
        try:
            if kind == "safetensors":
                found.update(_read_safetensors(file, wanted))
            else:
                found.update(_read_pickled(file, wanted))
        except CheckpointWeightsError:
            raise
        except Exception as error:  # safetensors/torch raise many kinds for a bad file
            raise CheckpointWeightsError(f"{file}: cannot read the weights ({error})") from None
    return found


def _read_safetensors(file: Path, wanted: set[str]) -> dict[str, np.ndarray]:
    from safetensors import safe_open

    out = {}
    try:
        with safe_open(str(file), framework="numpy") as handle:
            for name in handle.keys():  # noqa: SIM118 - safe_open is not a mapping
                if name in wanted:
                    out[name] = handle.get_tensor(name)
    except TypeError:  # a dtype numpy lacks (bfloat16): read through torch
        import torch
        from safetensors.torch import load_file

        tensors = load_file(str(file))
        out = {n: t.to(torch.float32).numpy() for n, t in tensors.items() if n in wanted}
    return out


def _read_pickled(file: Path, wanted: set[str]) -> dict[str, np.ndarray]:
    import torch

    state = torch.load(file, map_location="cpu", weights_only=True)
    return {n: t.to(torch.float32).numpy() for n, t in state.items() if n in wanted}


def _names(weight_names: Iterable[str], available: Iterable[str]) -> dict[str, str]:
    """Workload weight name -> checkpoint name, with or without the family prefix."""
    available = set(available)
    matched = {}
    for name in weight_names:
        candidates = [name]
        for prefix in FAMILY_PREFIXES:
            if name.startswith(prefix):
                candidates.append(name[len(prefix) :])
        candidates += [prefix + name for prefix in FAMILY_PREFIXES]
        for candidate in candidates:
            if candidate in available:
                matched[name] = candidate
                break
    return matched


def _safetensors_names(files: list[Path]) -> list[str]:
    from safetensors import safe_open

    names: list[str] = []
    for file in files:
        try:
            with safe_open(str(file), framework="numpy") as handle:
                names.extend(handle.keys())
        except Exception as error:  # a truncated or foreign file
            raise CheckpointWeightsError(f"{file}: cannot read the weights ({error})") from None
    return names


class _Everything(set):
    def __contains__(self, item: object) -> bool:  # every name is wanted
        return True


def _weights(path: Path, shapes: Mapping[str, tuple[int, int]]) -> dict[str, np.ndarray]:
    """Workload weight name -> the checkpoint's array for it (shape-checked)."""
    kind, files = _weight_files(path)
    if kind == "pickle":  # one read of the whole state dict
        arrays = _read(path, _Everything())
        matched = _names(shapes, arrays)
    else:
        matched = _names(shapes, _safetensors_names(files))
        arrays = _read(path, set(matched.values()))
    out = {}
    for name, checkpoint_name in matched.items():
        array = arrays.get(checkpoint_name)
        if array is None:
            continue
        if tuple(array.shape) != tuple(shapes[name]):
            raise CheckpointWeightsError(
                f"{path}: weight {checkpoint_name} has shape {list(array.shape)}, but the "
                f"model's is {list(shapes[name])} ([out, in])"
            )
        out[name] = array
    return out


def _linear_shapes(workload) -> dict[str, tuple[int, int]]:
    return {op.weight_name: (op.n, op.k) for op in workload.gemms if op.weight_name is not None}


def masks_from_zeros(workload, path: str | Path) -> dict[str, np.ndarray]:
    """Keep-masks (``weight != 0``) of every GEMM weight of ``workload`` found in checkpoint
    ``path`` that has at least one exact zero, by the workload's weight names (ready for
    ``workloads.attach_masks``). Raises :class:`CheckpointWeightsError` when the weights
    cannot be read or no weight of the model is in the checkpoint."""
    path = Path(path)
    weights = _weights(path, _linear_shapes(workload))
    if not weights:
        raise CheckpointWeightsError(
            f"{path}: none of {workload.model_name}'s linear weights is in the checkpoint"
        )
    masks = {}
    for name, array in weights.items():
        mask = np.asarray(array) != 0
        if not mask.all():
            masks[name] = mask
    return masks


def zero_fraction(workload, path: str | Path, roles: Iterable[str] | None = None) -> float | None:
    """Fraction of exact zeros over the checkpoint's linear weights of ``workload`` (only the
    GEMMs whose role is in ``roles``, when given); None when none is found."""
    allowed = None if roles is None else {str(role) for role in roles}
    shapes = {
        op.weight_name: (op.n, op.k)
        for op in workload.gemms
        if op.weight_name is not None and (allowed is None or str(op.role) in allowed)
    }
    weights = _weights(Path(path), shapes)
    total = sum(array.size for array in weights.values())
    if not total:
        return None
    return sum(int(array.size - np.count_nonzero(array)) for array in weights.values()) / total


def warn_if_mostly_zeros(workload, path: str | Path, roles: Iterable[str] | None = None) -> float:
    """Warn (:class:`MostlyZerosWarning`) when over half the linear weights of checkpoint
    ``path`` are exact zeros; the fraction (0 when unknown)."""
    fraction = zero_fraction(workload, path, roles) or 0.0
    if fraction > MOSTLY_ZEROS:
        warnings.warn(
            MostlyZerosWarning(
                f"{path}: {100 * fraction:.1f} % of the model's linear weights are exact zeros, "
                "but no masks are attached, so it runs as a dense model; add "
                "--masks-from-zeros to simulate the zeros as pruned weights"
            ),
            stacklevel=2,
        )
    return fraction


def checkpoint_digest(path: str | Path) -> str:
    """sha256 (16 hex digits) of a checkpoint's weight files, for study point keys."""
    _, files = _weight_files(Path(path))
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.name.encode() + b"\0")
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]
