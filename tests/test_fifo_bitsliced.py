"""The PE array stepped 64 FIFOs a word (``kernels.fifo_bitsliced``: one row a PE, or a
multiple of 64 PEs with several rows each) against literal cycle stepping and the event
recurrence: its numbers, its periodic summary (read back by ``repeated_finish``), its
refusal past the caller's pass bound, and where the PE array takes it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accel_sim.datapaths.pe_array.fifo_array import per_pe_work, simulate_unstructured
from accel_sim.kernels import sparse_pe
from accel_sim.kernels.fifo_bitsliced import CHECK_EVERY, applies, fifo_bitsliced

DENSITIES = (0.0, 0.05, 0.2, 0.5, 0.9, 1.0)


def _inputs(rng, rows, n_in, pes, density, stream):
    """(mask, simulated PEs, the PE table the other engines read, the stream's columns):
    ``pes`` >= 0 is the PE count past the rows (one row a PE), else ``-pes`` words of 64 PEs
    and ``rows`` more rows than PEs."""
    if pes >= 0:
        out, simulated = rows, rows + pes
    else:
        simulated = -64 * pes
        out = simulated + rows
    mask = rng.random((out, n_in)) < density
    if simulated >= out:
        table = np.zeros((simulated, n_in), dtype=np.int64)
        table[:out] = mask
    else:
        table = per_pe_work(mask, simulated)
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


LAYOUTS = st.one_of(st.integers(0, 2), st.integers(-2, -1))  # PEs past the rows, or 64-PE words


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 150), st.integers(1, 3 * CHECK_EVERY + 5), LAYOUTS,
    st.sampled_from(DENSITIES), st.integers(1, 12), st.integers(1, 6), st.integers(1, 6),
    st.sampled_from(("all", "nonempty", "any")), st.integers(0, 2**32 - 1),
)  # fmt: skip
def test_the_bitsliced_fifos_equal_cycle_stepping(
    rows, n_in, pes, density, depth, width, repeats, stream, seed
):
    """Cycles, broadcast stall and every PE's busy cycles equal literal cycle stepping: one
    row a PE on 1 to 3 row words (PEs past the rows or not), and 64 or 128 PEs with up to 4
    rows each (entries of several cycles, rows cut mid-PE); FIFO depths that are and are not
    powers of two; streams of every column, of the non-empty ones, or of any columns
    repeated. The summary's pass count is at most the recurrence's, its last broadcast and
    free times are those after that many passes, and ``repeated_finish`` reads more repeats
    off it exactly."""
    rng = np.random.default_rng(seed)
    mask, simulated, table, cols = _inputs(rng, rows, n_in, pes, density, stream)
    depth = max(1, min(depth, cols.shape[0] * repeats))
    got = fifo_bitsliced(
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
    st.integers(1, 130), st.integers(1, 40), LAYOUTS, st.sampled_from(DENSITIES),
    st.integers(1, 10), st.integers(1, 5), st.integers(2, 8), st.integers(1, 6),
    st.integers(0, 2**32 - 1),
)  # fmt: skip
def test_a_refusal_past_the_pass_bound_is_the_recurrences(
    rows, n_in, pes, density, depth, width, repeats, max_passes, seed
):
    """Past ``max_passes`` without a repeat the kernel refuses as the recurrence does (the
    same values); it never refuses where the recurrence answers, and an answer is exact."""
    rng = np.random.default_rng(seed)
    mask, simulated, table, cols = _inputs(rng, rows, n_in, pes, density, "all")
    got = fifo_bitsliced(
        sparse_pe.column_bits(mask), simulated, cols, repeats, depth, width, max_passes
    )
    event = sparse_pe.fifo_event_periodic(table, cols, repeats, depth, width, max_passes)
    if got[0] < 0:
        assert repr(got) == repr(event)
    else:
        stepping = sparse_pe.fifo_cycle_stepping(table, cols, repeats, depth, width)
        assert _numbers(got) == _numbers(stepping)


@pytest.mark.parametrize(
    ("n_pes", "out", "depth", "width", "density"),
    [
        (769, 768, 8, 16, 0.1),
        (769, 768, 3, 2, 0.3),
        (1024, 3072, 8, 16, 0.1),
        (256, 768, 5, 7, 0.3),
    ],
)
def test_bert_sized_layers_repeat_within_two_passes(n_pes, out, depth, width, density):
    """BERT-base-sized layers (768 inputs) on the 1,024-PE array (one row a PE, and 3 rows
    a PE) and on 256 PEs: 40 passes repeat after two at most and equal cycle stepping PE for
    PE."""
    mask = np.random.default_rng(11).random((out, 768)) < density
    if n_pes > out:
        table = np.zeros((n_pes, 768), dtype=np.int64)
        table[:out] = mask
    else:
        table = per_pe_work(mask, n_pes)
    cols = np.arange(768, dtype=np.int64)
    got = fifo_bitsliced(sparse_pe.column_bits(mask), n_pes, cols, 40, depth, width, 40)
    assert 1 <= got[3][0] <= 2
    stepping = sparse_pe.fifo_cycle_stepping(table, cols, 40, depth, width)
    assert _numbers(got) == _numbers(stepping)


def test_where_the_bitsliced_fifos_apply():
    """Always with one row a PE; on a multiple of 64 PEs with at most a sixteenth as many
    rows a PE as PEs, and 8-deep FIFOs' queued costs within the slot planes; never on other
    PE counts."""
    assert applies(769, 768, 8) and applies(1024, 768, 10**6)
    assert applies(1024, 3072, 8) and applies(128, 768, 8) and applies(256, 3072, 8)
    assert not applies(128, 3072, 8)  # 24 rows a PE on 128 PEs: measured slower
    assert not applies(64, 768, 8) and not applies(64, 3072, 8)
    assert not applies(1000, 3072, 8)  # not a multiple of 64
    assert not applies(1024, 3072, 64)  # 64 slots of 2 bits


@pytest.mark.parametrize(("n_pes", "out"), [(80, 70), (128, 300)])
def test_the_pe_array_takes_the_bitsliced_kernel_where_it_applies(monkeypatch, n_pes, out):
    """``simulate_unstructured`` with each entry a kept weight (no minimum cost, no
    run-length padding) runs this kernel with one row a PE and on 128 PEs with 3 rows each,
    and its stats equal the cycle-stepping engine's."""
    import accel_sim.kernels.fifo_bitsliced as bitsliced

    calls = []
    original = bitsliced.fifo_bitsliced
    monkeypatch.setattr(bitsliced, "fifo_bitsliced", lambda *a: calls.append(1) or original(*a))
    mask = np.random.default_rng(2).random((out, 33)) < 0.3
    kwargs = {"broadcast_width": 2, "min_cycles_per_entry": 0}
    fast = simulate_unstructured(mask, 9, n_pes, 3, **kwargs)
    assert calls == [1]
    assert fast == simulate_unstructured(mask, 9, n_pes, 3, engine="cycle_stepping", **kwargs)


def test_a_pe_count_it_cannot_map_is_refused():
    """Fewer PEs than rows and not a multiple of 64 is refused by name, not mapped to the
    wrong PEs (``applies`` never sends it)."""
    mask = np.ones((100, 8), dtype=bool)
    cols = np.arange(8, dtype=np.int64)
    with pytest.raises(ValueError, match="n_pes"):
        fifo_bitsliced(sparse_pe.column_bits(mask), 50, cols, 2, 4, 1, 2)
    assert not applies(50, 100, 4)


def test_a_single_pass_of_a_long_stream_equals_cycle_stepping():
    """One pass (a stream of per-token activation masks keeps no state to compare) of 600
    entries equals cycle stepping."""
    rng = np.random.default_rng(4)
    mask, simulated, table, cols = _inputs(rng, 70, 30, 1, 0.3, "all")
    cols = rng.integers(0, 30, size=600).astype(np.int64)
    got = fifo_bitsliced(sparse_pe.column_bits(mask), simulated, cols, 1, 3, 2, 1)
    assert _numbers(got) == _numbers(sparse_pe.fifo_cycle_stepping(table, cols, 1, 3, 2))
