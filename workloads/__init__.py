"""BERT-family models as ordered operation lists for the accelerator simulator."""

from workloads.bert import (
    HEADS,
    PRESETS,
    WorkloadError,
    build_workload,
    load_config,
    preset_config,
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
    "PRESETS",
    "GemmOp",
    "GemmRole",
    "Op",
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
    "load_config",
    "preset_config",
]
