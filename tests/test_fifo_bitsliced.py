"""The PE array stepped 64 FIFOs a word (``kernels.fifo_bitsliced``, one row a PE) against
literal cycle stepping and the event recurrence: its numbers, its periodic summary (read
back by ``repeated_finish``) and its refusal past the caller's pass bound."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accel_sim.datapaths.pe_array.fifo_array import simulate_unstructured
from accel_sim.kernels import sparse_pe
from accel_sim.kernels.fifo_bitsliced import CHECK_EVERY, fifo_bitsliced_one_row

DENSITIES = (0.0, 0.05, 0.2, 0.5, 0.9, 1.0)


def _inputs(rng, out, n_in, idle, density, stream):
    """(mask, simulated PEs, the PE table the other engines read, the stream's columns)."""
    mask = rng.random((out, n_in)) < density
    simulated = out + idle
    table = np.zeros((simulated, n_in), dtype=np.int64)
    table[:out] = mask
    cols = np.arange(n_in, dtype=np.int64)
    if stream == "nonempty":  # empty columns filtered, as the PE array's option does
        cols = np.flatnonzero(mask.any(axis=0)).astype(np.int64)
    elif stream == "any":  # some columns, some of them more than once (activation streams)
        cols = rng.integers(0, n_in, size=int(rng.integers(1, 2 * n_in + 1))).astype(np.int64)
    return mask, simulated, table, cols


def _after_passes(table, cols, passes, depth, width):
    """The event recurrence (``sparse_pe``'s docstring) in plain Python over ``passes``
    passes: the last broadcast and each PE's free time (its last entry's finish, 0 if
    none)."""
    finishes = [[] for _ in range(table.shape[0])]
    free = [0] * table.shape[0]
    broadcasts: list[int] = []
    for e, col in enumerate(list(cols) * passes):
        takers = [p for p in range(table.shape[0]) if table[p, col] > 0]
        bounds = [broadcasts[-1] if broadcasts else 0]
        bounds.append(broadcasts[e - width] + 1 if e >= width else 0)
        bounds += [finishes[p][-depth] for p in takers if len(finishes[p]) >= depth]
        sent = max(bounds)
        for p in takers:
            free[p] = max(sent + 1, free[p]) + int(table[p, col])
            finishes[p].append(free[p])
        broadcasts.append(sent)
    return (broadcasts[-1] if broadcasts else -1), free


def _numbers(result):
    return int(result[0]), int(result[1]), [int(x) for x in result[2]]


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 150), st.integers(1, 3 * CHECK_EVERY + 5), st.integers(0, 2),
    st.sampled_from(DENSITIES), st.integers(1, 12), st.integers(1, 6), st.integers(1, 6),
    st.sampled_from(("all", "nonempty", "any")), st.integers(0, 2**32 - 1),
)  # fmt: skip
def test_the_bitsliced_fifos_equal_cycle_stepping(
    out, n_in, idle, density, depth, width, repeats, stream, seed
):
    """Cycles, broadcast stall and every PE's busy cycles equal literal cycle stepping, for
    1 to 3 row words, FIFO depths that are and are not powers of two, streams of every
    column, of the non-empty ones, or of any columns repeated; the summary's pass count is
    at most the recurrence's, its last broadcast and free times are those after that many
    passes, and ``repeated_finish`` reads more repeats off it exactly."""
    rng = np.random.default_rng(seed)
    mask, simulated, table, cols = _inputs(rng, out, n_in, idle, density, stream)
    depth = max(1, min(depth, cols.shape[0] * repeats))
    got = fifo_bitsliced_one_row(
        sparse_pe.column_bits(mask), simulated, cols, repeats, depth, width, repeats
    )
    stepping = sparse_pe.fifo_cycle_stepping(table, cols, repeats, depth, width)
    assert _numbers(got) == _numbers(stepping)
    event = sparse_pe.fifo_event_periodic(table, cols, repeats, depth, width, repeats)
    passes = got[3][0]
    if passes < 0:
        assert event[3][0] < 0
        return
    assert passes <= repeats
    if event[3][0] >= 0:
        assert passes <= event[3][0]
    _, last_broadcast, _, free, _ = got[3]
    assert (last_broadcast, free.tolist()) == _after_passes(table, cols, passes, depth, width)
    for more in (repeats + 1, repeats + 7):
        again = sparse_pe.repeated_finish(got[3], cols.shape[0], more, width)
        whole = sparse_pe.fifo_event_periodic(table, cols, more, depth, width, more)
        assert _numbers(again) == _numbers(whole)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 130), st.integers(1, 40), st.sampled_from(DENSITIES), st.integers(1, 10),
    st.integers(1, 5), st.integers(2, 8), st.integers(1, 6), st.integers(0, 2**32 - 1),
)  # fmt: skip
def test_a_refusal_past_the_pass_bound_is_the_recurrences(
    out, n_in, density, depth, width, repeats, max_passes, seed
):
    """Past ``max_passes`` without a repeat the kernel refuses as the recurrence does (the
    same values); it never refuses where the recurrence answers, and an answer is exact."""
    rng = np.random.default_rng(seed)
    mask, simulated, table, cols = _inputs(rng, out, n_in, 1, density, "all")
    got = fifo_bitsliced_one_row(
        sparse_pe.column_bits(mask), simulated, cols, repeats, depth, width, max_passes
    )
    event = sparse_pe.fifo_event_periodic(table, cols, repeats, depth, width, max_passes)
    if got[0] < 0:
        assert repr(got) == repr(event)
    else:
        stepping = sparse_pe.fifo_cycle_stepping(table, cols, repeats, depth, width)
        assert _numbers(got) == _numbers(stepping)


@pytest.mark.parametrize(("depth", "width", "density"), [(8, 16, 0.1), (3, 2, 0.3), (5, 7, 0.6)])
def test_a_bert_sized_layer_repeats_within_two_passes(depth, width, density):
    """On a 768 x 768 layer at 769 PEs (BERT-base's attention projections on the 1,024-PE
    array), 40 passes repeat after two at most and equal cycle stepping PE for PE."""
    mask = np.random.default_rng(11).random((768, 768)) < density
    table = np.zeros((769, 768), dtype=np.int64)
    table[:768] = mask
    cols = np.arange(768, dtype=np.int64)
    got = fifo_bitsliced_one_row(sparse_pe.column_bits(mask), 769, cols, 40, depth, width, 40)
    assert 1 <= got[3][0] <= 2
    stepping = sparse_pe.fifo_cycle_stepping(table, cols, 40, depth, width)
    assert _numbers(got) == _numbers(stepping)


def test_the_pe_array_takes_the_bitsliced_kernel_with_one_row_a_pe(monkeypatch):
    """``simulate_unstructured`` on at least as many PEs as rows, each entry a kept weight
    (no minimum cost, no run-length padding), runs this kernel, and its stats equal the
    cycle-stepping engine's."""
    import accel_sim.kernels.fifo_bitsliced as bitsliced

    calls = []
    original = bitsliced.fifo_bitsliced_one_row
    monkeypatch.setattr(
        bitsliced, "fifo_bitsliced_one_row", lambda *a: calls.append(1) or original(*a)
    )
    mask = np.random.default_rng(2).random((70, 33)) < 0.3
    kwargs = {"broadcast_width": 2, "min_cycles_per_entry": 0}
    fast = simulate_unstructured(mask, 9, 80, 3, **kwargs)
    assert calls == [1]
    assert fast == simulate_unstructured(mask, 9, 80, 3, engine="cycle_stepping", **kwargs)
