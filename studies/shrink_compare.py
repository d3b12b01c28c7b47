"""``cosim simulate --artifact`` on a shrunk model: the unshrunk dense model beside it.

A shrunk artifact's own dense baseline is already the smaller model, so its speedup says
nothing about what removing heads and FFN neurons bought. This runs the original shapes
(the artifact's config without its shrink record, no masks) on the same hardware, as
MLPruning (Yao et al., 2021) reports its speedups against the dense original.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from accel_sim.results import SimResult
    from accel_sim.spec import ChipConfig
    from pruning.artifact import SparseArtifact
    from workloads.ops import Workload

__all__ = ["unshrunk_comparison"]


def unshrunk_comparison(
    artifact: SparseArtifact, workload: Workload, result: SimResult, hardware: ChipConfig
) -> dict[str, Any] | None:
    """The ``structure`` block of ``--json``: latency, energy and MACs of the unshrunk dense
    model, the shrunk dense model and the shrunk artifact as run; None for an artifact that
    was not shrunk."""
    from accel_sim import simulate
    from accel_sim.engine import without_masks
    from workloads import build_workload, load_config
    from workloads.structure import unshrunk_config

    block = artifact.manifest.get("structure")
    if block is None:
        return None
    full = build_workload(
        unshrunk_config(load_config(artifact.path)),
        workload.batch,
        workload.seq_len,
        head=workload.head,
    )
    unshrunk = simulate(full, hardware, baseline=False)
    shrunk_dense = result.baseline or simulate(without_masks(workload), hardware, baseline=False)
    return {
        "heads_per_layer": block["heads_per_layer"],
        "intermediate_per_layer": block["intermediate_per_layer"],
        "unshrunk_dense": _figures(unshrunk),
        "shrunk_dense": _figures(shrunk_dense),
        "shrunk": _figures(result),
        "speedup_shrinking": unshrunk.latency_s / shrunk_dense.latency_s,
        "speedup_vs_unshrunk_dense": unshrunk.latency_s / result.latency_s,
    }


def _figures(run: SimResult) -> dict[str, float]:
    return {"latency_s": run.latency_s, "energy_j": run.energy_j, "macs": run.macs}
