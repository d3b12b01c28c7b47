"""Which weights of a Hugging Face sequence classifier get pruned.

Names come from :func:`workloads.build_workload`'s GEMM ops (``weight_name``), so the masks a
pruning method produces are keyed exactly like the weights the simulator looks up.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from workloads import build_workload
from workloads.ops import ENCODER_LINEAR_ROLES, GemmRole

if TYPE_CHECKING:
    from torch import Tensor, nn
    from transformers import PretrainedConfig

__all__ = ["TARGET_GROUPS", "prunable_weights", "target_shapes", "weight_roles"]

# include-name -> GEMM roles it selects.
TARGET_GROUPS: dict[str, frozenset[GemmRole]] = {
    "encoder": ENCODER_LINEAR_ROLES,
    "pooler": frozenset({GemmRole.POOLER}),
    "classifier": frozenset({GemmRole.CLASSIFIER}),
}


def _workload(config: PretrainedConfig):
    """The one-token workload of ``config``'s model under the head it records (a bi-encoder
    needs two tokens: one a sentence)."""
    head = str(getattr(config, "cosim_head", None) or "cls")
    return build_workload(config, batch=1, seq_len=2 if head == "bi-encoder" else 1, head=head)


def weight_roles(config: PretrainedConfig) -> dict[str, GemmRole]:
    """Every linear weight of the model described by ``config`` -> its GEMM role, in
    forward-pass order."""
    workload = _workload(config)
    return {op.weight_name: op.role for op in workload.gemms if op.weight_name is not None}


def target_shapes(
    config: PretrainedConfig, include: Iterable[str] = ("encoder",)
) -> dict[str, tuple[int, int]]:
    """Name -> ``(out, in)`` of the weights :func:`prunable_weights` would select from the
    model described by ``config``, without building the model."""
    roles = _roles(include)
    workload = _workload(config)
    return {
        op.weight_name: (op.n, op.k)
        for op in workload.gemms
        if op.weight_name is not None and op.role in roles
    }


def _roles(include: Iterable[str]) -> frozenset[GemmRole]:
    if isinstance(include, str):
        include = (include,)
    roles: set[GemmRole] = set()
    for group in include:
        if group not in TARGET_GROUPS:
            raise ValueError(
                f"unknown target group {group!r}: expected any of {', '.join(TARGET_GROUPS)}"
            )
        roles |= TARGET_GROUPS[group]
    return frozenset(roles)


def prunable_weights(model: nn.Module, include: Iterable[str] = ("encoder",)) -> dict[str, Tensor]:
    """HF parameter name -> weight parameter of the linear layers selected by ``include``.

    ``"encoder"`` selects Q, K, V, attention output and FFN in/out of every layer;
    ``"pooler"`` and ``"classifier"`` add the head's dense and output projections. The
    returned tensors are the model's own parameters (no copies), in forward-pass order.
    """
    roles = _roles(include)
    params = dict(model.named_parameters())
    selected: dict[str, Tensor] = {}
    for name, role in weight_roles(model.config).items():
        if role not in roles:
            continue
        if name not in params:
            raise ValueError(
                f"model has no parameter {name!r} ({role}): expected a BERT, RoBERTa or "
                "DistilBERT *ForSequenceClassification model"
            )
        selected[name] = params[name]
    return selected
