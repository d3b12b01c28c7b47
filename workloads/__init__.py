"""BERT-family models as ordered operation lists for the accelerator simulator.

``build_workload(model, batch, seq_len)`` is the entry point: ``model`` is a preset name
(plain data, no torch), a checkpoint directory, a hub id or a transformers config.
"""

from workloads.bert import (
    HEADS,
    HUB_ALIASES,
    PRESETS,
    ShapeConfig,
    WorkloadError,
    build_workload,
    check_model,
    load_config,
    preset_config,
    preset_shape,
    resolve_hub_dir,
)
from workloads.masks import (
    artifact_head,
    artifact_workload,
    attach_activations,
    attach_artifact,
    attach_masks,
)
from workloads.ops import (
    ENCODER_LINEAR_ROLES,
    GemmOp,
    GemmRole,
    Op,
    VectorKind,
    VectorOp,
    Workload,
)

__all__ = [
    "ENCODER_LINEAR_ROLES",
    "HEADS",
    "HUB_ALIASES",
    "PRESETS",
    "GemmOp",
    "GemmRole",
    "Op",
    "ShapeConfig",
    "VectorKind",
    "VectorOp",
    "Workload",
    "WorkloadError",
    "artifact_head",
    "artifact_workload",
    "attach_activations",
    "attach_artifact",
    "attach_masks",
    "build_workload",
    "check_model",
    "load_config",
    "preset_config",
    "preset_shape",
    "resolve_hub_dir",
]
