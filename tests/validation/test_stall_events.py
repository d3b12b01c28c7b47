"""The kernel's stall model against an event-driven (SimPy) replay of the same fold schedule.

SCALE-Sim's stall model is not a reference (its USER-bandwidth mode inflates DRAM traffic up
to 55x, ../shared/reference/scalesim.md), so stalls are checked against our own event model:
loader, array and writer processes sharing one first-come-first-served DRAM channel, with no
fold barriers coded in. It must land on the same cycle as the kernel's windowed closed form.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings

from accel_sim.kernels import fold_memory as fm
from accel_sim.validation.event_replay import event_driven_cycles
from tests.gemm_cases import gemm_cases, run_schedule


@settings(max_examples=150, deadline=None)
@given(gemm_cases)
def test_event_replay_matches_the_windowed_stall_model(case):
    _, prefetch, inflight, writeback, busy = run_schedule(case)
    dram_bpc, double_buffered = case["dram_bpc"], case["double_buffered"]
    closed_form = fm.pipeline_elapsed(
        prefetch, inflight, writeback, busy, double_buffered, dram_bpc
    )
    events = event_driven_cycles(prefetch, inflight, writeback, busy, double_buffered, dram_bpc)
    assert math.isclose(events, closed_form, rel_tol=1e-9, abs_tol=1e-6)
    # both respect the roofline: no faster than compute alone or than DRAM alone
    total_bytes = prefetch.sum() + inflight.sum() + writeback.sum()
    assert events >= max(busy.sum(), total_bytes / dram_bpc) - 1e-6


def test_two_fold_hand_example():
    """Loads of 100 B, 1 B/cycle, folds of 10 cycles, 50 B write-backs, double buffered.

    t=0..100 load fold 0; fold 0 computes while fold 1 loads (100 cycles); fold 1 computes
    while fold 0's outputs leave (50 cycles, > 10); then fold 1's outputs leave (50).
    """
    prefetch = np.array([100.0, 100.0, 0.0])
    zeros = np.zeros(2)
    writeback = np.array([50.0, 50.0])
    busy = np.array([10.0, 10.0])
    assert event_driven_cycles(prefetch, zeros, writeback, busy, True, 1.0) == 300.0
    assert fm.pipeline_elapsed(prefetch, zeros, writeback, busy, True, 1.0) == 300.0
    # single-buffered: 100 + 10 + 50, twice
    assert event_driven_cycles(prefetch, zeros, writeback, busy, False, 1.0) == 320.0
