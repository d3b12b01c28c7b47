"""Storage sizes of sparse weight formats: hand-worked cases, scipy, and naive encoders."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from accel_sim.formats import FormatSize, RleOrder, WeightFormat, format_size
from accel_sim.kernels import format_sizes as kernels
from accel_sim.kernels.sparse_pe import column_bits

# 4x6 mask used by the hand-worked cases: nnz = 5, out = 4, in = 6.
MASK = np.array(
    [
        [1, 0, 0, 0, 1, 0],
        [0, 0, 0, 0, 0, 0],
        [0, 1, 1, 0, 0, 0],
        [0, 0, 0, 0, 0, 1],
    ],
    dtype=bool,
)
SPARSE_FORMATS = ["bitmap", "csr", "csc", "bsr", "rle"]


def _ceil8(bits: int) -> int:
    return -(-bits // 8)


# --- naive twins -------------------------------------------------------------------------


def naive_occupied_blocks(mask: np.ndarray, r: int, c: int) -> int:
    padded = np.pad(mask, ((0, -mask.shape[0] % r), (0, -mask.shape[1] % c)))
    rows, cols = padded.shape[0] // r, padded.shape[1] // c
    return int(padded.reshape(rows, r, cols, c).any(axis=(1, 3)).sum())


def naive_first_nm_violation(mask: np.ndarray, n: int, m: int) -> int:
    groups = mask.shape[1] // m
    for row in range(mask.shape[0]):
        for g in range(groups):
            if mask[row, g * m : (g + 1) * m].sum() > n:
                return row * groups + g
    return -1


def rle_encode(mask: np.ndarray, run_bits: int, order: str) -> list[list[tuple[int, bool]]]:
    """EIE-style stream per line: (zeros before this entry, entry is a real nonzero)."""
    lines = mask.T if order == "column" else mask
    limit = 2**run_bits - 1
    streams = []
    for line in lines:
        stream, run = [], 0
        for kept in line:
            if not kept:
                run += 1
                continue
            while run > limit:  # padding entry: `limit` zeros, then a stored zero
                stream.append((limit, False))
                run -= limit + 1
            stream.append((run, True))
            run = 0
        streams.append(stream)
    return streams


def rle_decode(stream: list[tuple[int, bool]], length: int) -> np.ndarray:
    line = []
    for run, kept in stream:
        line += [False] * run + [kept]
    return np.array(line + [False] * (length - len(line)), dtype=bool)


# --- strategies ----------------------------------------------------------------------------


@st.composite
def masks(draw, max_side: int = 64, min_side: int = 1) -> np.ndarray:
    out = draw(st.integers(min_side, max_side))
    inp = draw(st.integers(min_side, max_side))
    density = draw(st.sampled_from([0.0, 0.02, 0.1, 0.3, 0.7, 1.0]))
    seed = draw(st.integers(0, 2**32 - 1))
    return np.random.default_rng(seed).random((out, inp)) < density


@st.composite
def nm_masks(draw) -> tuple[np.ndarray, int, int]:
    m = draw(st.integers(2, 8))
    n = draw(st.integers(1, m))
    out = draw(st.integers(1, 32))
    groups = draw(st.integers(1, 64 // m))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    rank = rng.random((out, groups, m)).argsort(axis=2).argsort(axis=2)
    kept_per_group = rng.integers(0, n + 1, size=(out, groups, 1))
    return (rank < kept_per_group).reshape(out, groups * m), n, m


# --- hand-worked examples ------------------------------------------------------------------


def test_dense_hand_worked():
    # 4*6 = 24 int8 values, no metadata; 4-bit values: 24*4/8 = 12 bytes
    assert format_size(MASK, "dense") == FormatSize(WeightFormat.DENSE, 24, 24)
    assert format_size(MASK, "dense", value_bits=4).value_bytes == 12


def test_bitmap_hand_worked():
    # values: 5 nonzeros * 8 bits = 5 B; bitmap: ceil(24/8) = 3 B; total 8 B
    size = format_size(MASK, "bitmap")
    assert (size.value_bytes, size.bitmap_bytes, size.metadata_bytes) == (5, 3, 3)
    assert size.total_bytes == 8
    # 12-bit values: ceil(5*12/8) = ceil(7.5) = 8 B
    assert format_size(MASK, "bitmap", value_bits=12).value_bytes == 8


def test_csr_hand_worked():
    # values 5 B; column index b(6) = 3 bits: ceil(5*3/8) = 2 B; 5 row pointers * 4 B = 20 B
    size = format_size(MASK, "csr")
    assert (size.value_bytes, size.index_bytes, size.pointer_bytes) == (5, 2, 20)
    assert size.total_bytes == 27
    # 8-bit indices and 8-bit pointers: 5 + 5 + 5 = 15 B
    assert format_size(MASK, "csr", index_bits=8, pointer_bits=8).total_bytes == 15


def test_csc_hand_worked():
    # values 5 B; row index b(4) = 2 bits: ceil(5*2/8) = 2 B; 7 column pointers * 4 B = 28 B
    size = format_size(MASK, "csc")
    assert (size.value_bytes, size.index_bytes, size.pointer_bytes) == (5, 2, 28)
    assert size.total_bytes == 35


def test_bsr_hand_worked_divisible():
    # 2x2 blocks, grid 2x3. Occupied: (0,0) (0,2) | (1,0) (1,1) (1,2) -> 5 blocks.
    # values 5*4 = 20 B; block-column index b(3) = 2 bits: ceil(5*2/8) = 2 B;
    # block-row pointers (2+1) * 4 B = 12 B; total 34 B
    size = format_size(MASK, "bsr", block=(2, 2))
    assert size.stored_values == 20
    assert (size.value_bytes, size.index_bytes, size.pointer_bytes) == (20, 2, 12)
    assert size.total_bytes == 34


def test_bsr_hand_worked_padded_edges():
    # 3x4 blocks on 4x6: grid ceil(4/3) x ceil(6/4) = 2x2, edge blocks padded to 3x4.
    # rows 0-2: cols 0-3 has (0,0), cols 4-5 has (0,4); row 3: cols 4-5 has (3,5) -> 3 blocks
    # values 3*12 = 36 B; index b(2) = 1 bit: ceil(3/8) = 1 B; pointers 3 * 4 B = 12 B
    size = format_size(MASK, "bsr", block=(3, 4))
    assert (size.stored_values, size.index_bytes, size.pointer_bytes) == (36, 1, 12)
    assert size.total_bytes == 49


def test_nm_hand_worked():
    # 1:2 on 4x6: 4 rows * 3 groups * 1 slot = 12 values = 12 B;
    # index b(2) = 1 bit per slot: ceil(12/8) = 2 B; total 14 B
    size = format_size(MASK, "nm", nm=(1, 2))
    assert (size.stored_values, size.value_bytes, size.index_bytes) == (12, 12, 2)
    assert size.pointer_bytes == 0
    # 2:3: 4 rows * 2 groups * 2 slots = 16 values; index b(3) = 2 bits: 32 bits = 4 B
    assert format_size(MASK, "nm", nm=(2, 3)).total_bytes == 20


def test_nm_two_four_like_sparse_tensor_cores():
    # 2x8 at 2:4: 2 rows * 2 groups * 2 slots = 8 fp16 values = 16 B; 8 * 2-bit index = 2 B.
    # Row 1 group 1 keeps only one weight: its second slot is a stored zero.
    mask = np.array([[1, 1, 0, 0, 0, 1, 0, 1], [0, 1, 0, 1, 0, 0, 1, 0]], dtype=bool)
    size = format_size(mask, "nm", nm=(2, 4), value_bits=16)
    assert (size.stored_values, size.value_bytes, size.index_bytes) == (8, 16, 2)


def test_nm_violation_names_row_and_group():
    mask = np.zeros((3, 8), dtype=bool)
    mask[2, 4:7] = True  # row 2, group 1 keeps 3 > 2
    mask[2, 0:2] = True  # group 0 is fine
    with pytest.raises(ValueError, match=r"row 2, group 1 \(columns 4-7\) keeps 3 > 2"):
        format_size(mask, "nm", nm=(2, 4))
    with pytest.raises(ValueError, match="multiple of M=4"):
        format_size(MASK, "nm", nm=(2, 4))  # in = 6


def test_rle_hand_worked_columns():
    # run_bits = 1 (runs up to 1). Columns top-down:
    # col0 [1,0,0,0]: 1 entry; col1 [0,0,1,0]: run 2 -> 2>>1 = 1 padding + 1 = 2 entries;
    # col2 [0,0,1,0]: 2; col3 empty: 0; col4 [1,0,0,0]: 1; col5 [0,0,0,1]: 3>>1 = 1 + 1 = 2.
    # 8 entries: values 8 B; runs 8*1 bit = 1 B; 7 column pointers * 4 B = 28 B; total 37 B
    size = format_size(MASK, "rle", run_bits=1)
    assert (size.stored_values, size.value_bytes, size.index_bytes) == (8, 8, 1)
    assert (size.pointer_bytes, size.total_bytes) == (28, 37)
    # run_bits = 2 (runs up to 3): no padding, 5 entries; runs ceil(10/8) = 2 B
    assert format_size(MASK, "rle", run_bits=2).total_bytes == 5 + 2 + 28


def test_rle_hand_worked_rows():
    # run_bits = 2, rows: row0 [1,0,0,0,1,0]: runs 0 and 3 -> 2 entries; row1: 0;
    # row2 [0,1,1,...]: 2; row3 [0,0,0,0,0,1]: run 5 -> 5>>2 = 1 padding + 1 = 2 entries.
    # 6 entries: values 6 B; runs ceil(12/8) = 2 B; 5 row pointers * 4 B = 20 B; total 28 B
    size = format_size(MASK, "rle", run_bits=2, rle_order="row")
    assert (size.stored_values, size.index_bytes, size.pointer_bytes) == (6, 2, 20)
    assert size.total_bytes == 28


def test_rle_eie_paper_example():
    # EIE (Han et al. 2016) Fig. 3 style column: 2 zeros, a, b, 18 zeros, c with 4-bit runs
    # -> v = [a, b, 0, c], z = [2, 0, 15, 2]: 4 entries, 4 B values, 16 bits = 2 B runs,
    # 2 column pointers * 4 B = 8 B.
    column = np.zeros((23, 1), dtype=bool)
    column[[2, 3, 22], 0] = True
    size = format_size(column, "rle")
    assert (size.stored_values, size.index_bytes, size.pointer_bytes) == (4, 2, 8)
    assert [run for run, _ in rle_encode(column, 4, "column")[0]] == [2, 0, 15, 2]


def test_rle_removing_a_nonzero_can_keep_the_size():
    # run_bits = 1: [0,1,0,1] is runs 1, 1 -> 2 entries; dropping row 1 gives a run of 3 ->
    # one padding zero + the last value -> still 2 entries.
    before = np.array([[0], [1], [0], [1]], dtype=bool)
    after = np.array([[0], [0], [0], [1]], dtype=bool)
    assert format_size(before, "rle", run_bits=1) == format_size(after, "rle", run_bits=1)


@pytest.mark.parametrize("fmt", list(WeightFormat))
def test_all_zero_and_all_one(fmt):
    kwargs = {"block": (2, 3), "nm": (2, 2)}
    zeros, ones = np.zeros((4, 6), dtype=bool), np.ones((4, 6), dtype=bool)
    empty = format_size(zeros, fmt, **kwargs)
    full = format_size(ones, fmt, **kwargs)
    if fmt in ("dense", "nm"):
        assert empty.stored_values == full.stored_values == 24  # fixed layouts
    else:
        assert empty.stored_values == 0
        assert empty.index_bytes == 0
        assert full.stored_values == 24
    assert full.total_bytes >= format_size(ones, "dense").total_bytes


@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (40, 17), (70, 33)])
@pytest.mark.parametrize("run_bits", [1, 2, 4])
def test_an_all_kept_mask_is_sized_without_reading_it_as_the_kernels_count_it(shape, run_bits):
    """Every weight kept: run-length entries are the weights (no zero runs) and every block
    is occupied, the closed forms ``format_size`` takes instead of scanning the mask."""
    ones = np.ones(shape, dtype=bool)
    for order, count in (("column", kernels.rle_entries_along_columns),
                         ("row", kernels.rle_entries_along_rows)):  # fmt: skip
        size = format_size(ones, "rle", run_bits=run_bits, rle_order=order)
        assert size.stored_values == count(ones, run_bits) == ones.size
    for block in ((1, 1), (2, 3), (5, 4)):
        size = format_size(ones, "bsr", block=block)
        assert size.stored_values == kernels.occupied_blocks(ones, *block) * block[0] * block[1]


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 200), st.integers(1, 24),
    st.sampled_from([0.0, 0.005, 0.02, 0.1, 0.4, 1.0]), st.integers(1, 9),
    st.integers(0, 2**32 - 1),
)  # fmt: skip
def test_run_length_entries_from_column_words_are_the_encoders(out, inp, density, bits, seed):
    """Counted 64 rows at a time from the mask's column words (both paths: runs of four bits
    or more branch-free, narrower ones a loop per multiple of the run), the run-length
    entries along columns are the encoder's stream length: runs across word boundaries,
    several paddings inside one word, empty columns, zeros after a column's last weight."""
    mask = np.random.default_rng(seed).random((out, inp)) < density
    words = column_bits(mask)[0]
    expected = sum(len(stream) for stream in rle_encode(mask, bits, "column"))
    assert kernels.rle_entries_from_column_bits(words, bits) == expected
    by_words = format_size(mask, "rle", run_bits=bits, column_bits=words)
    assert by_words == format_size(mask, "rle", run_bits=bits)


@pytest.mark.parametrize("bits", [1, 3, 4, 5, 6])
def test_run_length_entries_from_column_words_at_every_gap_length(bits):
    """One column per gap length: a kept weight at row 0 and one after ``gap`` zeros, placed
    so that the gap lies inside a word or crosses one or two word boundaries; the count is
    the encoder's (a padding entry every ``2**bits`` zeros)."""
    gaps = range(0, 200)
    out = 3 + max(gaps) + 70
    for offset in (0, 1, 40, 63):
        mask = np.zeros((out, len(gaps)), dtype=bool)
        for j, gap in enumerate(gaps):
            mask[offset, j] = mask[offset + gap + 1, j] = True
        expected = sum(len(stream) for stream in rle_encode(mask, bits, "column"))
        assert kernels.rle_entries_from_column_bits(column_bits(mask)[0], bits) == expected


def test_column_words_of_another_shape_are_refused():
    mask = np.eye(70, 9, dtype=bool)
    with pytest.raises(ValueError, match=r"column words, shape \(2, 9\)"):
        format_size(mask, "rle", column_bits=column_bits(mask[:64])[0])


@pytest.mark.parametrize("shape", [(1, 9), (9, 1), (1, 1)])
@pytest.mark.parametrize("fmt", SPARSE_FORMATS)
def test_vectors(shape, fmt):
    mask = np.zeros(shape, dtype=bool)
    mask.flat[[0, -1]] = True
    size = format_size(mask, fmt, block=(1, 1))
    assert size.stored_values == np.count_nonzero(mask)  # no runs > 15, blocks of one


@pytest.mark.parametrize("shape", [(0, 5), (5, 0), (0, 0)])
@pytest.mark.parametrize("fmt", list(WeightFormat))
def test_zero_size_mask_stores_only_sentinel_pointers(shape, fmt):
    size = format_size(np.zeros(shape, dtype=bool), fmt, block=(2, 2), nm=(1, 5))
    assert size.value_bytes == size.index_bytes == size.bitmap_bytes == 0
    lines = {"csr": shape[0] + 1, "csc": shape[1] + 1, "bsr": -(-shape[0] // 2) + 1}
    lines["rle"] = shape[1] + 1
    assert size.pointer_bytes == 4 * lines.get(fmt, 0)


def test_numeric_and_strided_masks_match_bool():
    rng = np.random.default_rng(3)
    weights = rng.standard_normal((12, 20)) * (rng.random((12, 20)) < 0.3)
    mask = weights != 0
    for fmt in SPARSE_FORMATS:
        expected = format_size(mask, fmt, block=(3, 4))
        assert format_size(weights, fmt, block=(3, 4)) == expected
        assert format_size(mask.T.copy().T, fmt, block=(3, 4)) == expected
        assert format_size(mask.tolist(), fmt, block=(3, 4)) == expected
    assert format_size(mask[:, ::2], "bsr", block=(2, 2)) == format_size(
        np.ascontiguousarray(mask[:, ::2]), "bsr", block=(2, 2)
    )


# --- argument validation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fmt": "coo"}, "fmt must be one of"),
        ({"value_bits": 0}, "value_bits must be a positive int"),
        ({"value_bits": 8.0}, "value_bits must be a positive int"),
        ({"value_bits": True}, "value_bits must be a positive int"),
        ({"pointer_bits": -1}, "pointer_bits must be a positive int"),
        ({"index_bits": 0}, "index_bits must be a positive int"),
        ({"run_bits": 0, "fmt": "rle"}, "run_bits must be a positive int"),
        ({"fmt": "bsr"}, r"bsr needs block=\(rows, cols\)"),
        ({"fmt": "bsr", "block": (2,)}, "block must be a pair"),
        ({"fmt": "bsr", "block": (2, 0)}, "block entries must be a positive int"),
        ({"fmt": "nm"}, r"nm needs nm=\(N, M\)"),
        ({"fmt": "nm", "nm": (3, 2)}, "1 <= N <= M"),
        ({"fmt": "nm", "nm": (1, 1)}, "M >= 2"),
        ({"fmt": "rle", "rle_order": "diagonal"}, "rle_order must be one of"),
        ({"fmt": "csr", "index_bits": 2}, "cannot address 6 columns; need >= 3"),
        ({"fmt": "csc", "index_bits": 1}, "cannot address 4 rows; need >= 2"),
        ({"fmt": "csr", "pointer_bits": 2}, "pointer_bits=2 cannot hold pointer value 5"),
        ({"fmt": "bitmap", "block": (2, 0)}, "block entries"),  # validated even if unused
        ({"nnz": -1}, r"nnz must be an int in \[0, 24\]"),
        ({"nnz": 25}, r"nnz must be an int in \[0, 24\]"),
        ({"nnz": 2.0}, "nnz must be an int"),
    ],
)
def test_invalid_arguments(kwargs, message):
    kwargs = {"fmt": "csr", **kwargs}
    with pytest.raises(ValueError, match=message):
        format_size(MASK, **kwargs)


@pytest.mark.parametrize("fmt", list(WeightFormat))
def test_a_count_given_by_the_caller_gives_the_same_size(fmt):
    """A GEMM op passes its cached mask count (``nnz``): the size is the one counted here."""
    extra = {"block": (2, 2)} if fmt == WeightFormat.BSR else {}
    extra |= {"nm": (2, 4)} if fmt == WeightFormat.NM else {}
    mask = np.random.default_rng(3).random((8, 12)) < 0.4
    if fmt == WeightFormat.NM:
        mask = np.tile([True, False, True, False], (8, 3))
    counted = format_size(mask, fmt, **extra)
    assert format_size(mask, fmt, nnz=int(mask.sum()), **extra) == counted
    assert format_size(mask, fmt, nnz=np.int64(mask.sum()), **extra) == counted


@pytest.mark.parametrize(
    ("mask", "message"),
    [
        (np.zeros(5, dtype=bool), "2-D"),
        (np.zeros((2, 2, 2), dtype=bool), "2-D"),
        (np.array([["a", "b"]]), "bool or numeric"),
    ],
)
def test_invalid_masks(mask, message):
    with pytest.raises(ValueError, match=message):
        format_size(mask, "bitmap")


def test_enum_and_string_spellings_agree():
    assert format_size(MASK, WeightFormat.RLE, rle_order=RleOrder.ROW) == format_size(
        MASK, "rle", rle_order="row"
    )


# --- properties ----------------------------------------------------------------------------

block_shapes = st.tuples(st.integers(1, 9), st.integers(1, 9))


@settings(max_examples=200, deadline=None)
@given(masks(), st.integers(1, 32), block_shapes, st.integers(1, 6))
def test_sizes_follow_their_definitions(mask, value_bits, block, run_bits):
    nnz = int(mask.sum())
    out, inp = mask.shape
    kw = {"value_bits": value_bits, "block": block, "run_bits": run_bits}
    sizes = {fmt: format_size(mask, fmt, **kw) for fmt in ["dense", *SPARSE_FORMATS]}
    for size in sizes.values():
        assert size.value_bytes >= 0
        assert size.metadata_bytes >= 0
        assert size.total_bytes == size.value_bytes + size.metadata_bytes
        assert size.value_bytes == _ceil8(size.stored_values * value_bits)
    assert sizes["dense"] == format_size(np.zeros_like(mask), "dense", **kw)
    assert sizes["dense"].metadata_bytes == 0
    for fmt in ("bitmap", "csr", "csc"):
        assert sizes[fmt].stored_values == nnz
    assert sizes["bitmap"].bitmap_bytes == _ceil8(out * inp)
    assert sizes["csr"].index_bytes == _ceil8(nnz * max(1, math.ceil(math.log2(inp))))
    assert sizes["csc"].index_bytes == _ceil8(nnz * max(1, math.ceil(math.log2(out))))
    r, c = block
    blocks = naive_occupied_blocks(mask, r, c)
    assert sizes["bsr"].stored_values == blocks * r * c >= nnz
    assert sizes["rle"].stored_values >= nnz


@settings(max_examples=200, deadline=None)
@given(masks(max_side=32), st.sampled_from([(1, 1), (2, 2), (4, 4), (1, 4), (4, 1), (8, 2)]))
def test_bsr_and_csr_agree_with_scipy(mask, block):
    r, c = block
    mask = mask[: mask.shape[0] // r * r, : mask.shape[1] // c * c]  # scipy needs divisibility
    if mask.size == 0:
        return
    bsr = sp.bsr_matrix(mask.astype(np.int8), blocksize=block)
    size = format_size(mask, "bsr", block=block, index_bits=32)
    assert size.stored_values == bsr.data.size
    assert size.index_bytes == 4 * bsr.indices.size
    assert size.pointer_bytes == 4 * bsr.indptr.size
    csr = sp.csr_matrix(mask.astype(np.int8))
    size = format_size(mask, "csr", index_bits=32)
    assert size.stored_values == csr.nnz
    assert (size.index_bytes, size.pointer_bytes) == (4 * csr.indices.size, 4 * csr.indptr.size)
    csc = sp.csc_matrix(mask.astype(np.int8))
    assert format_size(mask, "csc", index_bits=32).pointer_bytes == 4 * csc.indptr.size


@settings(max_examples=200, deadline=None)
@given(nm_masks())
def test_valid_nm_masks_store_n_of_every_m(case):
    mask, n, m = case
    out, inp = mask.shape
    size = format_size(mask, "nm", nm=(n, m))
    assert size.stored_values * m == out * inp * n
    assert size.index_bytes == _ceil8(size.stored_values * max(1, math.ceil(math.log2(m))))
    assert kernels.first_nm_violation(mask, n, m) == -1


@settings(max_examples=200, deadline=None)
@given(masks(max_side=32), st.integers(2, 8), st.integers(1, 8))
def test_nm_violation_kernel_matches_naive(mask, m, n):
    n = min(n, m)
    mask = np.ascontiguousarray(mask[:, : mask.shape[1] // m * m])
    expected = naive_first_nm_violation(mask, n, m)
    assert kernels.first_nm_violation(mask, n, m) == expected
    if expected >= 0 and mask.size:
        row, group = divmod(expected, mask.shape[1] // m)
        with pytest.raises(ValueError, match=f"row {row}, group {group} "):
            format_size(mask, "nm", nm=(n, m))


@settings(max_examples=200, deadline=None)
@given(masks(), st.integers(1, 6), st.sampled_from(["column", "row"]))
def test_rle_counts_match_reference_encoder(mask, run_bits, order):
    streams = rle_encode(mask, run_bits, order)
    lines = mask.T if order == "column" else mask
    for stream, line in zip(streams, lines, strict=True):
        assert np.array_equal(rle_decode(stream, line.size), line)
        assert all(0 <= run < 2**run_bits for run, _ in stream)
    entries = sum(len(stream) for stream in streams)
    size = format_size(mask, "rle", run_bits=run_bits, rle_order=order)
    assert size.stored_values == entries
    assert size.index_bytes == _ceil8(entries * run_bits)
    assert size.pointer_bytes == 4 * (len(streams) + 1)


@settings(max_examples=200, deadline=None)
@given(masks(), block_shapes)
def test_block_kernel_matches_naive(mask, block):
    assert kernels.occupied_blocks(mask, *block) == naive_occupied_blocks(mask, *block)


@settings(max_examples=200, deadline=None)
@given(masks(max_side=40), st.data())
def test_removing_nonzeros_never_grows_sparse_formats(mask, data):
    """Bitmap, CSR, CSC and BSR sizes are non-decreasing functions of nnz / occupied blocks.

    RLE too: dropping a nonzero between zero runs L1 and L2 merges them into one run of
    L1 + L2 + 1, and floor((L1 + L2 + 1) / 2^b) <= floor(L1 / 2^b) + floor(L2 / 2^b) + 1, so
    the entry count never rises (it can stay equal: the dropped value becomes a padding zero,
    see test_rle_removing_a_nonzero_can_keep_the_size); dropping a line's last nonzero
    removes its entry and padding. Pointer arrays do not depend on the mask.
    """
    kept = np.flatnonzero(mask)
    if kept.size == 0:
        return
    drop = data.draw(st.lists(st.sampled_from(kept.tolist()), min_size=1, max_size=5))
    smaller = mask.copy()
    smaller.flat[drop] = False
    run_bits = data.draw(st.integers(1, 5))
    kw = {"block": data.draw(block_shapes), "run_bits": run_bits}
    for order in ("column", "row"):
        for fmt in SPARSE_FORMATS:
            big = format_size(mask, fmt, rle_order=order, **kw)
            small = format_size(smaller, fmt, rle_order=order, **kw)
            assert small.total_bytes <= big.total_bytes, fmt
            assert small.stored_values <= big.stored_values, fmt


@settings(max_examples=40, deadline=None)
@given(masks(max_side=40), st.integers(1, 5))
def test_a_mask_of_any_layout_sizes_as_its_contiguous_copy(mask, run_bits) -> None:
    """``format_size`` keeps the caller's layout and the kernels read a contiguous copy: a
    transposed view, and a broadcast all-ones view of the shape, give exactly what their
    contiguous copies give, every format and run-length order."""
    view = np.ascontiguousarray(mask.T).T  # the same cells, column-major
    ones = np.broadcast_to(np.True_, mask.shape)
    for fmt in (*SPARSE_FORMATS, "nm", "dense"):
        for order in ("column", "row"):
            kw = {"block": (2, 2), "nm": (1, 2), "run_bits": run_bits, "rle_order": order}
            for layout, copy in ((view, mask), (ones, np.ones(mask.shape, dtype=bool))):
                try:
                    expected = format_size(copy, fmt, **kw)
                except ValueError as error:
                    with pytest.raises(ValueError, match=re.escape(str(error))):
                        format_size(layout, fmt, **kw)
                    continue
                assert format_size(layout, fmt, **kw) == expected


@pytest.mark.parametrize(
    ("preset", "fmt", "bits"),
    [("sigma-1024", "bitmap", None), ("eie-64pe", "rle", None), ("eie-64pe", "csr", 4),
     ("dual-side-32x32", "bitmap", None), ("sigma-1024", "dense", None)],
)  # fmt: skip
def test_a_datapaths_all_kept_storage_scale_is_the_all_ones_masks(preset, fmt, bits) -> None:
    """``ArrayDatapath.all_kept_storage_scale`` (once per shape, for dense baselines and
    weights stored whole) equals ``weight_storage_scale`` of the all-ones mask, per shape
    and value width."""
    from accel_sim import load_hardware
    from accel_sim.datapaths import datapath_for
    from accel_sim.spec import derive
    from accel_sim.traffic import weight_storage_scale

    hw = derive(load_hardware(preset), {"sparse.weight_format": fmt})
    datapath = datapath_for(hw)
    for n, k in ((3, 5), (64, 40), (40, 64)):
        for width in (bits, None, 3):  # the value width is part of what is cached
            expected = weight_storage_scale(np.ones((n, k), dtype=bool), hw, width)
            assert datapath.all_kept_storage_scale(n, k, width) == expected
            assert datapath.all_kept_storage_scale(n, k, width) == expected  # from its cache
