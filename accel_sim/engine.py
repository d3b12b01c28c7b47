"""``simulate(workload, hardware) -> SimResult``: a thin evaluator over the datapaths.

The chip's datapath (``accel_sim.datapaths.datapath_for``) prices every op; a sparse run
(sparse support in the spec, or masks attached) is compared with the datapath's own dense
baseline: the same chip without sparse support, running the same model without masks.
"""

from __future__ import annotations

import dataclasses
import time

from accel_sim.datapaths import datapath_for
from accel_sim.results import SimResult
from accel_sim.spec import ChipConfig
from workloads.ops import GemmOp, Workload

__all__ = ["simulate", "without_masks"]


def without_masks(workload: Workload) -> Workload:
    """The same model with every mask removed."""
    ops = tuple(
        dataclasses.replace(op, mask=None) if isinstance(op, GemmOp) else op for op in workload
    )
    return dataclasses.replace(workload, ops=ops)


def simulate(
    workload: Workload, hw: ChipConfig, seed: int = 0, *, baseline: bool | None = None
) -> SimResult:
    """Run every op of ``workload`` on ``hw`` in order.

    A sparse run also simulates the dense baseline, reachable as ``result.baseline`` with
    ``speedup`` and ``energy_ratio``; ``baseline`` forces it on or off.
    """
    started = time.perf_counter()
    datapath = datapath_for(hw)
    result = datapath.run(workload, seed)
    dense_run = None
    if baseline if baseline is not None else datapath.is_sparse_run(workload):
        baseline_started = time.perf_counter()
        dense_run = datapath.dense_baseline().run(without_masks(workload), seed)
        baseline_s = time.perf_counter() - baseline_started
        dense_run = dataclasses.replace(dense_run, simulation_s=baseline_s)
    return dataclasses.replace(
        result, baseline=dense_run, simulation_s=time.perf_counter() - started
    )
