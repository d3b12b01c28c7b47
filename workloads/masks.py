"""Attach pruning keep-masks to a workload's linear GEMMs, by Hugging Face weight name.

How sparse the weights are belongs to the workload: ``attach_masks`` returns a new
:class:`~workloads.ops.Workload` whose GEMMs carry their weight's bool keep-mask
(``[out, in]`` = ``(n, k)``, read-only). What the hardware does with the zeros is the
simulator's business, not this module's. No torch here: masks arrive as numpy arrays (as
``pruning.load_artifact`` returns them); anything ``numpy.asarray`` accepts is converted.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Protocol

import numpy as np

from workloads.bert import HEADS, WorkloadError, build_workload
from workloads.ops import GemmOp, Workload

__all__ = [
    "artifact_head",
    "artifact_workload",
    "attach_activations",
    "attach_artifact",
    "attach_masks",
]

_SHOWN_NAMES = 4  # valid weight names quoted in an unknown-name error


def _unknown_name_message(source: str, name: str, workload: Workload, valid: list[str]) -> str:
    shown = difflib.get_close_matches(name, valid, n=_SHOWN_NAMES, cutoff=0.6)
    shown += [v for v in valid if v not in shown][: _SHOWN_NAMES - len(shown)]
    more = f", ... ({len(valid)} in all)" if len(valid) > len(shown) else ""
    return (
        f"{source}: mask {name!r} matches no GEMM weight of {workload.model_name}: "
        f"expected a weight name such as {', '.join(repr(v) for v in shown)}{more}"
    )


def _as_mask(source: str, name: str, value: Any, op: GemmOp) -> np.ndarray:
    """``value`` as a read-only bool ``(n, k)`` array, or a WorkloadError saying why not."""
    expected = f"expected a 2-D bool keep-mask [out, in] = [{op.n}, {op.k}]"
    try:
        array = np.asarray(value)
    except Exception as err:  # arbitrary objects may fail to convert in any way
        raise WorkloadError(
            f"{source}: mask {name!r} cannot be read as an array ({err}): {expected}"
        ) from None
    if array.ndim != 2:
        raise WorkloadError(
            f"{source}: mask {name!r} is {array.ndim}-D with shape {list(array.shape)}: {expected}"
        )
    if array.dtype != np.bool_:
        if array.dtype.kind not in "biuf":
            raise WorkloadError(
                f"{source}: mask {name!r} has dtype {array.dtype}, not boolean: {expected}"
            )
        if not np.isin(array, (0, 1)).all():
            raise WorkloadError(
                f"{source}: mask {name!r} holds values other than 0 and 1: {expected}"
            )
    if array.shape != (op.n, op.k):
        raise WorkloadError(
            f"{source}: mask {name!r} has shape {list(array.shape)} but the model's weight is "
            f"[{op.n}, {op.k}] ([out, in])"
        )
    if array.dtype == np.bool_ and not array.flags.writeable:
        return array  # already frozen (e.g. re-attached from another workload): share it
    mask = np.array(array, dtype=bool, copy=True)  # never alias, or freeze, the caller's array
    mask.flags.writeable = False
    return mask


def attach_masks(
    workload: Workload, masks: Mapping[str, Any], *, source: str = "masks"
) -> Workload:
    """A copy of ``workload`` whose GEMMs named in ``masks`` carry their keep-mask.

    ``masks`` maps a Hugging Face weight name (a GEMM's ``weight_name``) to a 2-D bool
    keep-mask in torch orientation ``[out, in]``; GEMMs not named keep their current mask.
    Every problem (a name that matches no weight, a wrong shape, a mask that is not a 2-D
    bool/0-1 array) raises :class:`WorkloadError` naming ``source`` and the weight.
    Attention GEMMs have no weight and never take a mask. ``workload`` is not modified.
    """
    by_weight: dict[str, list[int]] = {}
    for index, op in enumerate(workload.ops):
        if isinstance(op, GemmOp) and op.weight_name is not None:
            by_weight.setdefault(op.weight_name, []).append(index)
    ops = list(workload.ops)
    for name, value in masks.items():
        if name not in by_weight:
            raise WorkloadError(_unknown_name_message(source, name, workload, list(by_weight)))
        indices = by_weight[name]
        mask = _as_mask(source, name, value, ops[indices[0]])
        for index in indices:  # one weight may feed several GEMMs (tied weights)
            ops[index] = replace(ops[index], mask=mask)
    return replace(workload, ops=tuple(ops))


class MaskedArtifact(Protocol):
    """What ``attach_artifact`` reads of a pruned artifact (``pruning.artifact.SparseArtifact``
    has both): its masks by weight name and the directory it came from."""

    @property
    def masks(self) -> Mapping[str, Any]: ...

    @property
    def path(self) -> Any: ...


def attach_artifact(workload: Workload, artifact: MaskedArtifact) -> Workload:
    """``attach_masks`` with a loaded artifact's masks, errors naming its directory."""
    return attach_masks(workload, artifact.masks, source=str(artifact.path))


def attach_activations(
    workload: Workload, densities: float | Mapping[str, float], *, source: str = "activations"
) -> Workload:
    """A copy of ``workload`` whose linear GEMMs carry the density (nonzero fraction) of
    their input activations: one number for every weighted GEMM, or a mapping from weight
    name to density (for instance measured by ``pruning.activations``). Attention GEMMs
    (activations on both sides, softmax probabilities and projections that are almost
    never exactly zero) keep 1.0."""
    def checked(name: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not (
            0.0 <= float(value) <= 1.0
        ):
            raise WorkloadError(
                f"{source}: density of {name!r} is {value!r}: expected a number in [0, 1]"
            )
        return float(value)

    by_weight = {op.weight_name for op in workload.gemms if op.weight_name is not None}
    if isinstance(densities, Mapping):
        for name in densities:
            if name not in by_weight:
                raise WorkloadError(_unknown_name_message(source, name, workload,
                                                          sorted(by_weight)))  # fmt: skip
        table = {name: checked(name, value) for name, value in densities.items()}
    else:
        value = checked("every linear GEMM", densities)
        table = dict.fromkeys(by_weight, value)
    ops = tuple(
        replace(op, activation_density=table[op.weight_name])
        if isinstance(op, GemmOp) and op.weight_name in table
        else op
        for op in workload.ops
    )
    return replace(workload, ops=ops)


def artifact_head(manifest: Mapping[str, Any], source: str = "manifest.json") -> str:
    """The task head an artifact's manifest records (``head.kind``); ``cls`` for artifacts
    written before heads were recorded."""
    head = manifest.get("head")
    kind = head.get("kind", "cls") if isinstance(head, Mapping) else "cls"
    if kind not in HEADS:
        raise WorkloadError(f"{source}: head {kind!r} is not one of {', '.join(HEADS)}")
    return kind


class HeadedArtifact(MaskedArtifact, Protocol):
    """What ``artifact_workload`` reads: also the manifest, for the head it records."""

    @property
    def manifest(self) -> Mapping[str, Any]: ...


def artifact_workload(
    artifact: HeadedArtifact, batch: int, seq_len: int, model: str | None = None
) -> Workload:
    """The workload of ``artifact`` (or ``model``, default the artifact's own directory)
    under the head its manifest records, with its masks attached: a bi-encoder artifact runs
    its pair as two sequences of ``seq_len / 2`` tokens."""
    head = artifact_head(artifact.manifest, f"{artifact.path}/manifest.json")
    source = str(artifact.path) if model is None else model
    return attach_artifact(build_workload(source, batch, seq_len, head=head), artifact)
