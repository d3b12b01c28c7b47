"""The config hash of a simulation: everything that determines its result."""

from __future__ import annotations

import hashlib
import json

from pydantic import BaseModel

from accel_sim.version import __version__
from workloads.ops import GemmOp, Workload

__all__ = ["run_config_hash"]


def run_config_hash(workload: Workload, hw: BaseModel, seed: int = 0) -> str:
    """Hash of the hardware spec (systolic or crossbar), the workload's shapes, each mask's
    digest (where the zeros are decides sparse cycles, not only how many), the code version
    and the seed. Dense workloads hash as they did before masks existed."""
    shapes = [
        (
            op.name, op.m, op.k, op.n, op.count,
            *(() if op.mask is None else (op.mask_digest,)),
            *(() if op.activation_density == 1.0 else (op.activation_density,)),
        )
        if isinstance(op, GemmOp)
        else (op.name, op.kind.value, op.elements)
        for op in workload
    ]
    identity = {
        "hardware": hw.config_hash(),
        "model": workload.model_name,
        "batch": workload.batch,
        "seq_len": workload.seq_len,
        "ops": shapes,
        "version": __version__,
        "seed": seed,
    }
    canonical = json.dumps(identity, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
