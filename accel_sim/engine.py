"""``simulate(workload, hardware) -> SimResult``: a thin evaluator over the datapaths.

The chip's datapath (``accel_sim.datapaths.datapath_for``) prices every op; a sparse run
(sparse support in the spec, or masks attached) is compared with the datapath's own dense
baseline: the same chip without sparse support, running the same model without masks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import math
import threading
import time
from collections.abc import Iterator

from accel_sim.datapaths import datapath_for
from accel_sim.results import SimResult
from accel_sim.spec import ChipConfig
from safeio.limits import SizeLimitError, check_exact
from workloads.ops import GemmOp, Workload

__all__ = ["collector_paused", "simulate", "without_masks"]


_pause_lock = threading.Lock()
_pauses = 0  # blocks inside ``collector_paused``, all threads
_was_enabled = True  # the collector's state when the first of them entered


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for the block, as it was after. A run keeps tens
    of thousands of small objects alive for its length (schedules, fold lists, candidate
    costs) and frees them by reference count at its end, making no cycles worth collecting.
    With the collector on, its young passes promote them while they live, and every few
    batch-8 BERT-base points the promotions set off a full pass over every object in the
    process (170,000 for torch alone): 100+ ms, about a tenth of such a point on average.
    Threads share the collector: it stays off while any of them is inside, and the last one
    out leaves it as the first one in found it."""
    global _pauses, _was_enabled
    with _pause_lock:  # threads may run simulations at once: the first pause decides
        if _pauses == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _pause_lock:  # the last one out restores what the first one found
            _pauses -= 1
            if _pauses == 0 and _was_enabled:
                # The young objects the block left (its results) are collected here. Left to
                # the next allocation, that pass takes the oldest generation due, which the
                # caller's own earlier allocations can make a full pass over its whole heap
                # (200+ ms with torch and a model loaded), charged to the block's exit.
                gc.collect(0)
                gc.enable()


def without_masks(workload: Workload) -> Workload:
    """The same model with every mask removed."""
    ops = tuple(op.unmasked() if isinstance(op, GemmOp) else op for op in workload)
    return dataclasses.replace(workload, ops=ops)


def simulate(
    workload: Workload, hw: ChipConfig, seed: int = 0, *, baseline: bool | None = None
) -> SimResult:
    """Run every op of ``workload`` on ``hw`` in order.

    A sparse run also simulates the dense baseline, reachable as ``result.baseline`` with
    ``speedup`` and ``energy_ratio``; ``baseline`` forces it on or off.
    """
    started = time.perf_counter()
    with collector_paused():  # the whole call: a collection between its runs walks the heap
        datapath = datapath_for(hw)
        result = datapath.run(workload, seed)
        dense_run = None
        if baseline if baseline is not None else datapath.is_sparse_run(workload):
            baseline_started = time.perf_counter()
            dense_run = datapath.dense_baseline().run(without_masks(workload), seed)
            baseline_s = time.perf_counter() - baseline_started
            dense_run = dataclasses.replace(dense_run, simulation_s=baseline_s)
        for run in (result, dense_run):
            if run is not None:
                check_counts(run)
        return dataclasses.replace(
            result, baseline=dense_run, simulation_s=time.perf_counter() - started
        )


def check_counts(result: SimResult) -> None:
    """Refuse a result whose counts float64 no longer holds exactly (``safeio.limits``) or
    whose latency or energy is not finite: only combinations of extreme fields get here
    (each field alone is bounded by the spec), e.g. a huge batch on a very slow DRAM."""
    where = f"{result.model_name} (batch {result.batch:,}) on {result.hardware_name}"
    hint = "lower the batch or seq_len, or raise the bandwidths and clock"
    for name, value in (("cycles", result.cycles), ("DRAM bytes", result.dram_bytes),
                        ("MACs", result.macs)):  # fmt: skip
        check_exact(f"the {name} of {where}", value, hint)
    for name, value in (("latency in s", result.latency_s), ("energy in J", result.energy_j)):
        if not math.isfinite(value):
            raise SizeLimitError(f"the {name} of {where} is not finite: {hint}")
