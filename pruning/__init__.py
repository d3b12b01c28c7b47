"""pruning: patterns, masks, pruning methods, GLUE training and the sparse-model artifact.

Names are imported lazily (PEP 562) so that ``pruning.artifact``'s loader, which the
simulator uses, does not pull in torch through the mask code.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "block_occupancy": "pruning.masks",
    "compute_masks": "pruning.masks",
    "density": "pruning.masks",
    "NM": "pruning.patterns",
    "Block": "pruning.patterns",
    "Column": "pruning.patterns",
    "Crossbar": "pruning.patterns",
    "Head": "pruning.patterns",
    "Pattern": "pruning.patterns",
    "PatternError": "pruning.patterns",
    "RankedPattern": "pruning.patterns",
    "Row": "pruning.patterns",
    "Unstructured": "pruning.patterns",
    "parse_pattern": "pruning.patterns",
    "magnitude_prune": "pruning.oneshot",
    "apply_masks": "pruning.oneshot",
    "prunable_weights": "pruning.targets",
    "ArtifactError": "pruning.artifact",
    "SparseArtifact": "pruning.artifact",
    "load_artifact": "pruning.artifact",
    "save_artifact": "pruning.artifact",
    "SparsitySchedule": "pruning.schedule",
    "GradualMagnitude": "pruning.gradual",
    "CyclicMagnitude": "pruning.gradual",
    "DistillConfig": "pruning.distill",
    "DistillationLoss": "pruning.distill",
    "CheckpointConfig": "pruning.checkpoint",
    "GroupLassoPenalty": "pruning.group_lasso",
    "AdmmPruning": "pruning.admm",
    "TrainConfig": "pruning.train",
    "train": "pruning.train",
    "evaluate": "pruning.train",
    "PruneJob": "pruning.job",
    "PruneJobError": "pruning.job",
    "prune_job": "pruning.job",
    "run_prune": "pruning.pipeline",
    "load_model": "pruning.models",
    "load_split": "pruning.glue",
    "get_task": "pruning.glue",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'pruning' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
