"""Operations a BERT-family forward pass is made of, as plain frozen data.

The simulator consumes these without torch: a GEMM carries its shape (M, K, N), how many
independent instances run (``count``, e.g. batch x heads for attention GEMMs) and, for
linear layers, the name of the weight tensor it multiplies by, so masks from a pruned
artifact can be attached (``workloads.masks.attach_masks``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import cached_property
from typing import Any

import numpy as np


class GemmRole(StrEnum):
    """What a GEMM computes; the pruning package prunes encoder roles by default."""

    QUERY = "query"
    KEY = "key"
    VALUE = "value"
    ATTENTION_OUTPUT = "attention_output"
    FFN_IN = "ffn_in"
    FFN_OUT = "ffn_out"
    POOLER = "pooler"
    CLASSIFIER = "classifier"
    ATTENTION_SCORES = "attention_scores"  # Q K^T per head
    ATTENTION_CONTEXT = "attention_context"  # softmax(QK^T) V per head
    LAYER = "layer"  # a GEMM layer of an imported topology (workloads.topology), no BERT role


ENCODER_LINEAR_ROLES = frozenset(
    {
        GemmRole.QUERY,
        GemmRole.KEY,
        GemmRole.VALUE,
        GemmRole.ATTENTION_OUTPUT,
        GemmRole.FFN_IN,
        GemmRole.FFN_OUT,
    }
)


class VectorKind(StrEnum):
    """Non-GEMM operations, executed on the vector unit."""

    EMBEDDING_GATHER = "embedding_gather"
    SOFTMAX = "softmax"
    GELU = "gelu"
    LAYERNORM = "layernorm"
    RESIDUAL_ADD = "residual_add"
    TANH = "tanh"  # the BERT / RoBERTa pooler activation
    RELU = "relu"  # the DistilBERT pre-classifier activation
    MEAN_POOL = "mean_pool"  # sentence-transformers pooling: one add per token value
    COSINE = "cosine"  # bi-encoder score: u.v, u.u, v.v per hidden dimension
    PAIR_FEATURES = "pair_features"  # bi-encoder classifier input (u, v, |u - v|, u * v)


def _enum_member(enum: type[StrEnum], value: object, name: str, field_name: str) -> StrEnum:
    """``value`` (a member or its string) as a member of ``enum``, or a ValueError naming the
    op, the field and the valid values."""
    try:
        return enum(value)
    except ValueError:
        valid = ", ".join(member.value for member in enum)
        raise ValueError(
            f"op {name!r}: {field_name} {value!r} is not a {enum.__name__}: expected one of "
            f"{valid}"
        ) from None


def _extents_changed(op: GemmOp | VectorOp, extents: dict[str, int]) -> Any:
    """``op`` with other positive integer ``extents`` (rows, instances, elements), its other
    fields (the mask, its digest and count among them) shared: they were checked when ``op``
    was made, and ``dataclasses.replace`` checking them again for every op of every
    micro-batch took 1 ms a micro-batch of BERT-base."""
    for name, value in extents.items():
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{op.kind} op {op.name!r}: {name} must be a positive int, got "
                             f"{value!r}")  # fmt: skip
    return _copied(op, extents)


def _copied(op: Any, changed: dict[str, Any], dropped: tuple[str, ...] = ()) -> Any:
    """A copy of the frozen ``op`` with the ``changed`` fields set and the ``dropped``
    attributes removed (back to their class default or, for a cached property, uncounted),
    every other attribute shared; the caller vouches for the fields it changes."""
    copy = object.__new__(type(op))
    copy.__dict__.update(op.__dict__)
    copy.__dict__.update(changed)
    for name in dropped:
        copy.__dict__.pop(name, None)
    return copy


@dataclass(frozen=True)
class GemmOp:
    """``count`` independent products (M x K) @ (K x N).

    For a linear layer the weight is ``weight[out=N, in=K]`` in torch orientation and
    ``weight_name`` is its parameter name in the Hugging Face model (e.g.
    ``bert.encoder.layer.0.attention.self.query.weight``). Attention GEMMs have no weight:
    both operands are activations, and ``count`` = batch x heads.

    ``mask`` is the weight's keep-mask when one is attached (a read-only bool array of shape
    ``(n, k)`` = ``[out, in]``; see ``workloads.masks.attach_masks``), else None. It takes no
    part in equality or hashing: two ops of the same shape are the same op whatever their
    mask, so ``weight_density``/``weight_nnz`` must be read off the op itself.

    ``reads`` names the activation tensors the op reads (the left operand first, then, for
    attention, the right one) and ``writes`` the tensor it produces, so the simulator can keep
    a tensor on chip from its producer to its readers. Neither takes part in equality.

    ``activation_density`` is the fraction of nonzero entries in the left operand (the input
    activations; 1.0: dense, the honest default for GELU BERT, whose activations are almost
    never exactly zero); ``workloads.masks.attach_activations`` sets it. Datapaths that skip
    zero activations use it; the others ignore it and say so per op.
    """

    name: str
    role: GemmRole
    m: int
    k: int
    n: int
    layer: int | None = None
    count: int = 1
    weight_name: str | None = None
    mask: object | None = field(default=None, compare=False, repr=False)
    reads: tuple[str, ...] = field(default=(), compare=False, repr=False)
    writes: str | None = field(default=None, compare=False, repr=False)
    activation_density: float = 1.0
    # sha256 of the bit-packed mask: results depend on where the zeros are, not only how many.
    mask_digest: str | None = field(default=None, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.role, GemmRole):
            object.__setattr__(self, "role", _enum_member(GemmRole, self.role, self.name, "role"))
        for dim in ("m", "k", "n", "count"):
            value = getattr(self, dim)
            if not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"GemmOp {self.name!r}: {dim} must be a positive int, got {value!r}"
                )
        density = self.activation_density
        if isinstance(density, bool) or not isinstance(density, int | float) or not (
            0.0 <= density <= 1.0
        ):
            raise ValueError(
                f"GemmOp {self.name!r}: activation_density must be a number in [0, 1], "
                f"got {density!r}"
            )
        if self.mask is not None:
            if self.weight_name is None:
                raise ValueError(f"GemmOp {self.name!r}: has no weight, so it cannot take a mask")
            mask = self.mask
            if not (isinstance(mask, np.ndarray) and mask.dtype == np.bool_):
                raise ValueError(
                    f"GemmOp {self.name!r}: mask must be a bool numpy array, "
                    f"got {type(mask).__name__}"
                )
            if mask.shape != (self.n, self.k):
                raise ValueError(
                    f"GemmOp {self.name!r}: mask shape {list(mask.shape)} is not the weight's "
                    f"[{self.n}, {self.k}] ([out, in])"
                )
            digest = hashlib.sha256(np.packbits(mask, axis=None).tobytes()).hexdigest()
            object.__setattr__(self, "mask_digest", digest[:32])

    kind = "gemm"

    @property
    def macs(self) -> int:
        return self.count * self.m * self.k * self.n

    def rescaled(self, *, m: int | None = None, count: int | None = None) -> GemmOp:
        """This op with other rows or instances (a micro-batch's share), its mask, digest and
        count carried over instead of worked out again: the mask is the same array, and
        hashing it again for every micro-batch took a sixth of a batch-8 point."""
        changes = {}
        if m is not None:
            changes["m"] = m
        if count is not None:
            changes["count"] = count
        return _extents_changed(self, changes)

    def unmasked(self) -> GemmOp:
        """This op without its mask (a dense baseline's), as ``replace(op, mask=None)``
        builds it, its other fields shared: checked when this op was made."""
        if self.mask is None:
            return self
        return _copied(self, {"mask": None}, dropped=("mask_digest", "_mask_nnz"))

    @cached_property
    def _mask_nnz(self):
        """The mask's True count, counted once (numpy's integer, as before it was cached)."""
        return np.count_nonzero(self.mask)

    @property
    def weight_nnz(self) -> int | None:
        """Kept weight entries: the mask's True count, n x k when dense, None if weightless."""
        if self.weight_name is None:
            return None
        if self.mask is None:
            return self.n * self.k
        return int(self._mask_nnz)

    @property
    def weight_density(self) -> float:
        """Kept fraction of the weight: 1.0 without a mask (and for weightless GEMMs)."""
        if self.mask is None:
            return 1.0
        return self._mask_nnz / (self.n * self.k)


@dataclass(frozen=True)
class VectorOp:
    """An element-wise or reduction op over ``elements`` values (all instances together);
    ``reads`` and ``writes`` name its tensors as for ``GemmOp``.

    ``output_elements`` is how many values it writes when that differs from ``elements``
    (a reduction such as mean pooling writes one value per sequence and hidden unit); None
    means one per element.
    """

    name: str
    kind: VectorKind
    elements: int
    layer: int | None = None
    reads: tuple[str, ...] = field(default=(), compare=False, repr=False)
    writes: str | None = field(default=None, compare=False, repr=False)
    output_elements: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.kind, VectorKind):
            object.__setattr__(self, "kind", _enum_member(VectorKind, self.kind, self.name, "kind"))
        if not isinstance(self.elements, int) or self.elements < 1:
            raise ValueError(
                f"VectorOp {self.name!r}: elements must be a positive int, got {self.elements!r}"
            )
        outputs = self.output_elements
        if outputs is not None and (not isinstance(outputs, int) or outputs < 1):
            raise ValueError(
                f"VectorOp {self.name!r}: output_elements must be a positive int or None, "
                f"got {outputs!r}"
            )

    @property
    def outputs(self) -> int:
        """Values written: ``output_elements``, else ``elements``."""
        return self.elements if self.output_elements is None else self.output_elements

    macs = 0


Op = GemmOp | VectorOp


@dataclass(frozen=True)
class Workload:
    """An ordered forward pass of one model at one batch size and sequence length."""

    model_name: str
    batch: int
    seq_len: int
    ops: tuple[Op, ...]
    family: str = "bert"
    synthetic_weights: bool = True
    head: str = "cls"  # workloads.bert.HEADS: how the task head reads the encoder

    def __iter__(self) -> Iterator[Op]:
        return iter(self.ops)

    def __len__(self) -> int:
        return len(self.ops)

    @property
    def gemms(self) -> tuple[GemmOp, ...]:
        return tuple(op for op in self.ops if isinstance(op, GemmOp))

    @property
    def vector_ops(self) -> tuple[VectorOp, ...]:
        return tuple(op for op in self.ops if isinstance(op, VectorOp))

    @property
    def total_macs(self) -> int:
        return sum(op.macs for op in self.gemms)

    def micro_batch(self, size: int) -> Workload | None:
        """The same forward pass for ``size`` of its ``batch`` sequences (``size`` divides
        ``batch``): every op's batch-proportional extent (a GEMM's instances or rows, a
        vector op's elements) scaled by ``size / batch``; None when an op does not divide."""
        if size < 1 or self.batch % size:
            return None
        parts = self.batch // size
        ops: list[Op] = []
        for op in self.ops:
            if isinstance(op, GemmOp):
                if op.count % parts == 0 and op.count >= parts:
                    ops.append(op.rescaled(count=op.count // parts))
                elif op.m % parts == 0:
                    ops.append(op.rescaled(m=op.m // parts))
                else:
                    return None
            elif op.elements % parts == 0:
                ops.append(_extents_changed(op, {"elements": op.elements // parts}))
            else:
                return None
        return replace(self, batch=size, ops=tuple(ops))
