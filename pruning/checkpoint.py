"""Training checkpoints that survive a kill: tensors in safetensors, everything else in JSON.

A checkpoint is a directory ``step-NNNNNNNN/`` holding ``tensors.safetensors`` (model,
optimizer moments, RNG byte states, masks, data order) and ``state.json`` (step, optimizer
and scheduler scalars, Python/NumPy RNG scalars, hook and log state). It is written into a
temporary sibling directory and renamed into place, so a run killed mid-write leaves the
previous checkpoint intact; :func:`latest_checkpoint` only ever sees complete ones. Nothing
is pickled: the optimizer's ``state_dict`` is flattened into named tensors plus JSON scalars.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from pruning.maskfile import safetensors_write
from safeio.atomic import replace_dir
from safeio.documents import read_json
from safeio.limits import BoundedError

__all__ = [
    "CheckpointConfig",
    "CheckpointError",
    "latest_checkpoint",
    "load_checkpoint",
    "optimizer_from_flat",
    "optimizer_to_flat",
    "restore_rng",
    "rng_to_flat",
    "save_checkpoint",
    "tensors_like",
]

TENSORS_FILE = "tensors.safetensors"
STATE_FILE = "state.json"
_PREFIX = "step-"


class CheckpointError(BoundedError):  # a ValueError, message bounded
    """A checkpoint directory that is unreadable or belongs to a different run."""


@dataclass(frozen=True)
class CheckpointConfig:
    """Where and how often :func:`pruning.train.train` checkpoints.

    ``every``: optimizer steps between checkpoints (``None``: only at the end of the run, so
    a finished phase is skipped on resume). ``resume``: start from the newest checkpoint in
    ``directory`` when there is one. ``keep``: how many of the newest checkpoints to keep.
    """

    directory: Path
    every: int | None = None
    resume: bool = False
    keep: int = 2

    def __post_init__(self) -> None:
        object.__setattr__(self, "directory", Path(self.directory))
        if self.every is not None and (isinstance(self.every, bool) or self.every < 1):
            raise ValueError(f"checkpoint every must be a positive integer, got {self.every!r}")
        if self.keep < 1:
            raise ValueError(f"checkpoint keep must be at least 1, got {self.keep!r}")

    def is_due(self, step: int, total_steps: int) -> bool:
        return step == total_steps or (self.every is not None and step % self.every == 0)

    def sub(self, name: str) -> CheckpointConfig:
        """The same settings for one phase of a pipeline, under ``directory/name``."""
        return CheckpointConfig(self.directory / name, self.every, self.resume, self.keep)


# ----------------------------------------------------------------------------- files


def save_checkpoint(
    directory: str | Path,
    step: int,
    tensors: Mapping[str, Tensor],
    state: Mapping[str, Any],
    keep: int = 2,
) -> Path:
    """Write checkpoint ``step`` atomically under ``directory``; keep the ``keep`` newest."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{_PREFIX}{step:08d}"
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{target.name}-", dir=directory))
    try:
        flat = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
        safetensors_write(lambda: save_file(flat, str(tmp / TENSORS_FILE)), tmp / TENSORS_FILE)
        text = json.dumps({"step": step, **state}, indent=1, allow_nan=False)
        (tmp / STATE_FILE).write_text(text + "\n", encoding="utf-8")
        for name in (TENSORS_FILE, STATE_FILE):
            with open(tmp / name, "rb") as handle:
                os.fsync(handle.fileno())
        replace_dir(tmp, target)  # an atomic swap when re-saving the same step
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in _checkpoints(directory)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def _checkpoints(directory: Path) -> list[Path]:
    found = []
    for path in directory.glob(f"{_PREFIX}*"):
        suffix = path.name[len(_PREFIX) :]
        if path.is_dir() and suffix.isdigit() and (path / STATE_FILE).is_file():
            found.append((int(suffix), path))
    return [path for _, path in sorted(found)]


def latest_checkpoint(directory: str | Path) -> Path | None:
    """The newest complete checkpoint under ``directory``, or ``None``."""
    directory = Path(directory)
    if not directory.is_dir():
        return None
    found = _checkpoints(directory)
    return found[-1] if found else None


def load_checkpoint(path: str | Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Tensors and JSON state of one checkpoint directory."""
    path = Path(path)
    try:
        tensors = load_file(str(path / TENSORS_FILE))
        state = read_json(path / STATE_FILE)
    # missing files: OSError; torn, truncated or foreign tensor files: safetensors' own
    # SafetensorError (not an OSError); bad state.json: JSONDecodeError or UnicodeDecodeError
    # (both ValueErrors). Anything else is a bug and propagates as itself.
    except (OSError, ValueError, json.JSONDecodeError, SafetensorError) as error:
        raise CheckpointError(f"{path}: unreadable checkpoint ({error})") from None
    return tensors, state


def with_prefix(prefix: str, tensors: Mapping[str, Tensor]) -> dict[str, Tensor]:
    return {f"{prefix}{name}": value for name, value in tensors.items()}


def strip_prefix(prefix: str, tensors: Mapping[str, Tensor]) -> dict[str, Tensor]:
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def tensors_like(
    prefix: str, tensors: Mapping[str, Tensor], like: Mapping[str, Tensor]
) -> dict[str, Tensor]:
    """``tensors["<prefix>.<name>"]`` (copied) for every name of ``like``, in ``like``'s order;
    a missing, extra or misshapen tensor is a :class:`CheckpointError`."""
    found = {k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
    if found.keys() != like.keys():
        missing, extra = sorted(like.keys() - found.keys()), sorted(found.keys() - like.keys())
        raise CheckpointError(
            f"checkpoint {prefix} tensors do not match: missing {missing}, unexpected {extra}"
        )
    for name, value in found.items():
        if value.shape != like[name].shape:
            raise CheckpointError(
                f"checkpoint {prefix} for {name!r} has shape {tuple(value.shape)}, "
                f"expected {tuple(like[name].shape)}"
            )
    return {name: found[name].clone() for name in like}


# ----------------------------------------------------------------------------- optimizer


def optimizer_to_flat(optimizer: torch.optim.Optimizer) -> tuple[dict[str, Tensor], dict]:
    """``optimizer.state_dict()`` as tensors ``{"<param index>.<field>": t}`` and JSON
    (param groups and non-tensor per-parameter fields)."""
    state_dict = optimizer.state_dict()
    tensors: dict[str, Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, fields in state_dict["state"].items():
        for key, value in fields.items():
            if isinstance(value, Tensor):
                tensors[f"{index}.{key}"] = value
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state_dict["param_groups"], "scalars": scalars}


def optimizer_from_flat(
    optimizer: torch.optim.Optimizer, tensors: Mapping[str, Tensor], state: Mapping[str, Any]
) -> None:
    """Inverse of :func:`optimizer_to_flat`, loaded into ``optimizer``."""
    per_param: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        index, field = key.split(".", 1)
        per_param.setdefault(int(index), {})[field] = value
    for index, fields in state["scalars"].items():
        per_param.setdefault(int(index), {}).update(fields)
    groups = [dict(group) for group in state["param_groups"]]
    for group in groups:
        if isinstance(group.get("betas"), list):
            group["betas"] = tuple(group["betas"])
    optimizer.load_state_dict({"state": per_param, "param_groups": groups})


# ----------------------------------------------------------------------------- RNG


def rng_to_flat() -> tuple[dict[str, Tensor], dict[str, Any]]:
    """The global torch, NumPy and Python RNG states as tensors and JSON."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    tensors = {
        "torch": torch.get_rng_state(),
        "numpy": torch.from_numpy(np.asarray(keys, dtype=np.uint32).view(np.int32).copy()),
    }
    state = {
        "numpy": {"name": name, "pos": int(pos), "has_gauss": int(has_gauss), "cached": cached},
        "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next},
    }
    return tensors, state


def restore_rng(tensors: Mapping[str, Tensor], state: Mapping[str, Any]) -> None:
    """Inverse of :func:`rng_to_flat`."""
    torch.set_rng_state(tensors["torch"])
    numpy = state["numpy"]
    keys = tensors["numpy"].numpy().view(np.uint32)
    np.random.set_state(
        (numpy["name"], keys, numpy["pos"], numpy["has_gauss"], float(numpy["cached"]))
    )
    python = state["python"]
    random.setstate((python["version"], tuple(python["internal"]), python["gauss_next"]))
