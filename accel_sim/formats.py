"""Exact storage size of one sparse weight matrix in each compressed format.

Sparse weights travel between DRAM, SRAM and the PEs compressed, as values plus metadata, so
memory-bound layers gain from pruning even without compute skipping. ``format_size`` returns,
for one weight matrix's keep-mask ``[out, in]`` (torch orientation, True = weight kept), the
bytes a format needs, split into values and each kind of metadata. Which format the
accelerator uses is a hardware choice (``sparse.weight_format``); how sparse the mask is
belongs to the workload.

Conventions (``nnz`` = number of True entries, ``b(x)`` = bits to address ``x`` positions
= ``max(1, ceil(log2 x))``):

- **Byte rounding.** Each stored array (values, indices or run counts, pointers, bitmap) is
  packed at its own bit width and rounded up to whole bytes separately, as it would be laid
  out in DRAM: ``value_bytes = ceil(stored_values * value_bits / 8)`` and likewise for each
  metadata array. ``stored_values`` counts every value slot kept, stored zeros included.
- **dense**: ``out*in`` values, no metadata.
- **bitmap**: ``nnz`` values plus one presence bit per element, ``ceil(out*in/8)`` bytes
  (bitmask compression: SparTen, Eyeriss v2's sparse input buffer). The bitmap covers the
  whole matrix; values follow in row-major order.
- **csr**: ``nnz`` values, a column index of ``index_bits`` (default ``b(in)``) per value,
  and ``out+1`` row pointers of ``pointer_bits`` (default 32).
- **csc**: the transpose: ``nnz`` values, a row index of ``index_bits`` (default ``b(out)``)
  per value, ``in+1`` column pointers.
- **bsr**: block compressed sparse row with ``block=(r, c)``, as ``scipy.sparse.bsr_matrix``:
  the matrix is tiled from (0, 0) into ``ceil(out/r) x ceil(in/c)`` blocks; every block
  holding a nonzero is stored whole, ``r*c`` values with its zeros (a partial block at the
  bottom or right edge is padded and stored full size, ``r*c``), plus one block-column index
  of ``index_bits`` (default ``b(ceil(in/c))``) per stored block and ``ceil(out/r)+1``
  block-row pointers.
- **nm**: ``nm=(N, M)`` structured sparsity along ``in`` (NVIDIA sparse tensor cores: 2:4):
  each group of ``M`` consecutive weights of a row stores exactly ``N`` value slots (a group
  with fewer nonzeros pads with zeros) and ``N`` in-group indices of ``index_bits`` (default
  ``b(M)``; 2 bits for 2:4). No pointers: the layout is fixed. ``in`` must be a multiple of
  ``M`` and no group may hold more than ``N`` nonzeros (``ValueError`` naming the first
  offending row and group).
- **rle**: zero-run-length encoding as in EIE (Han et al., ISCA 2016). Each line (a column
  by default, EIE's CSC-like layout; ``rle_order="row"`` for rows) is encoded separately as
  entries (value, zeros-before-it), the zero run counted in ``run_bits`` (default 4, as EIE).
  A run of ``L`` zeros before a nonzero takes ``L >> run_bits`` padding entries, each a stored
  zero that accounts for ``2**run_bits - 1`` zeros plus itself, before the nonzero's own
  entry (EIE's example: 18 zeros with 4-bit runs is one padding entry of run 15 and the value
  with run 2). Zeros after a line's last nonzero are not stored. Each entry stores one value
  and one run count; ``in+1`` column (or ``out+1`` row) pointers of ``pointer_bits`` index
  the entry stream. EIE's interleaving of rows over PEs is not modelled (one PE's view).

Pointers index the stored entries (values, blocks or RLE entries), so ``pointer_bits`` must
hold their number; an explicit ``index_bits`` must address its dimension. Both raise
``ValueError`` otherwise. A 0-size mask (``out`` or ``in`` zero) is valid: it stores nothing
but the pointer arrays' single sentinel entry. Arguments a format does not use are validated
when given and otherwise ignored, so one hardware spec can carry settings for several formats.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

import numpy as np

from accel_sim.kernels import format_sizes as kernels
from accel_sim.spec.array_chip import WeightFormat

__all__ = ["FormatSize", "RleOrder", "WeightFormat", "format_size"]

_E = TypeVar("_E", bound=StrEnum)


class RleOrder(StrEnum):
    """Which lines run-length encoding walks: columns (EIE, the default) or rows."""

    COLUMN = "column"
    ROW = "row"


@dataclass(frozen=True)
class FormatSize:
    """Bytes one weight matrix takes in one format, each array rounded up to whole bytes.

    ``index_bytes`` holds per-value or per-block position metadata (CSR/CSC/BSR indices, N:M
    in-group indices, RLE zero-run counts); ``pointer_bytes`` the row/column/block-row
    pointers; ``bitmap_bytes`` the presence bitmap.
    """

    format: WeightFormat
    stored_values: int  # value slots stored, explicit zeros (block, N:M, RLE padding) included
    value_bytes: int
    index_bytes: int = 0
    pointer_bytes: int = 0
    bitmap_bytes: int = 0

    @property
    def metadata_bytes(self) -> int:
        return self.index_bytes + self.pointer_bytes + self.bitmap_bytes

    @property
    def total_bytes(self) -> int:
        return self.value_bytes + self.metadata_bytes


def format_size(
    mask: np.ndarray,
    fmt: WeightFormat | str,
    *,
    value_bits: int = 8,
    index_bits: int | None = None,
    pointer_bits: int = 32,
    block: tuple[int, int] | None = None,
    nm: tuple[int, int] | None = None,
    run_bits: int = 4,
    rle_order: RleOrder | str = RleOrder.COLUMN,
    nnz: int | None = None,
    column_bits: np.ndarray | None = None,
) -> FormatSize:
    """Exact bytes to store the weights kept by ``mask`` ``[out, in]`` in format ``fmt``.

    ``mask`` is a 2-D bool array (a numeric array counts its nonzeros as kept). See the
    module docstring for each format's layout. ``block=(r, c)`` is required for ``bsr``,
    ``nm=(N, M)`` for ``nm``; ``index_bits=None`` takes the fewest bits that address the
    indexed dimension. ``nnz``: the mask's True count when the caller has already counted it
    (a GEMM op counts its mask once), saving a pass over the mask. ``column_bits``: the
    mask's columns as 64-row words (``sparse_pe.column_words``) when the caller
    has them: run-length entries along columns are then counted 64 rows at a time.
    """
    weight_format = _as_enum(WeightFormat, fmt, "fmt")
    keep = _as_mask(mask)
    value_bits = _positive_int(value_bits, "value_bits")
    pointer_bits = _positive_int(pointer_bits, "pointer_bits")
    run_bits = _positive_int(run_bits, "run_bits")
    if index_bits is not None:
        index_bits = _positive_int(index_bits, "index_bits")
    order = _as_enum(RleOrder, rle_order, "rle_order")
    block_rc = None if block is None else _positive_pair(block, "block", "(rows, cols)")
    nm_pair = None if nm is None else _nm_pair(nm)

    out, inp = keep.shape
    nnz = int(np.count_nonzero(keep)) if nnz is None else _count(nnz, keep.size)

    def values(count: int) -> int:
        return _bytes(count * value_bits)

    def pointers(count: int, largest: int) -> int:
        if largest >= 1 << pointer_bits:
            raise ValueError(
                f"pointer_bits={pointer_bits} cannot hold pointer value {largest} "
                f"({weight_format} of a {out}x{inp} mask); use more pointer bits"
            )
        return _bytes(count * pointer_bits)

    if weight_format is WeightFormat.DENSE:
        return FormatSize(weight_format, out * inp, values(out * inp))
    if weight_format is WeightFormat.BITMAP:
        return FormatSize(weight_format, nnz, values(nnz), bitmap_bytes=_bytes(out * inp))
    if weight_format in (WeightFormat.CSR, WeightFormat.CSC):
        lines, positions = (out, inp) if weight_format is WeightFormat.CSR else (inp, out)
        bits = _index_bits(index_bits, positions, "columns" if lines == out else "rows")
        return FormatSize(
            weight_format,
            nnz,
            values(nnz),
            index_bytes=_bytes(nnz * bits),
            pointer_bytes=pointers(lines + 1, nnz),
        )
    if weight_format is WeightFormat.BSR:
        if block_rc is None:
            raise ValueError("bsr needs block=(rows, cols), e.g. block=(4, 4)")
        r, c = block_rc
        block_rows, block_cols = _ceil_div(out, r), _ceil_div(inp, c)
        bits = _index_bits(index_bits, block_cols, "block columns")
        if nnz == keep.size:  # every weight kept (a dense baseline's): every block
            blocks = block_rows * block_cols
        else:
            blocks = int(kernels.occupied_blocks(np.ascontiguousarray(keep), r, c)) if nnz else 0
        return FormatSize(
            weight_format,
            blocks * r * c,
            values(blocks * r * c),
            index_bytes=_bytes(blocks * bits),
            pointer_bytes=pointers(block_rows + 1, blocks),
        )
    if weight_format is WeightFormat.NM:
        if nm_pair is None:
            raise ValueError("nm needs nm=(N, M), e.g. nm=(2, 4) for 2:4 sparsity")
        n, m = nm_pair
        if inp % m:
            raise ValueError(f"nm={n}:{m} needs in ({inp}) to be a multiple of M={m}")
        bits = _index_bits(index_bits, m, "positions in a group of M")
        _check_nm(keep, n, m, nnz)
        slots = out * (inp // m) * n
        return FormatSize(weight_format, slots, values(slots), index_bytes=_bytes(slots * bits))
    # RLE
    lines = inp if order is RleOrder.COLUMN else out
    if nnz == 0 or nnz == keep.size:  # no weight, or no zero: one entry a weight
        entries = nnz
    elif order is RleOrder.COLUMN and column_bits is not None:
        if column_bits.shape != (_ceil_div(out, 64), inp) or column_bits.dtype != np.uint64:
            raise ValueError(
                f"column_bits must be the mask's uint64 column words, shape "
                f"({_ceil_div(out, 64)}, {inp}); got {column_bits.dtype} {column_bits.shape}"
            )
        entries = int(kernels.rle_entries_from_column_bits(column_bits, run_bits))
    elif order is RleOrder.COLUMN:
        entries = int(kernels.rle_entries_along_columns(np.ascontiguousarray(keep), run_bits))
    else:
        entries = int(kernels.rle_entries_along_rows(np.ascontiguousarray(keep), run_bits))
    return FormatSize(
        weight_format,
        entries,
        values(entries),
        index_bytes=_bytes(entries * run_bits),
        pointer_bytes=pointers(lines + 1, entries),
    )


def _check_nm(keep: np.ndarray, n: int, m: int, nnz: int) -> None:
    """Raise ``ValueError`` naming the first group of ``keep`` with more than ``n`` kept."""
    if nnz <= n:  # no group can exceed n
        return
    flat = int(kernels.first_nm_violation(np.ascontiguousarray(keep), n, m))
    if flat < 0:
        return
    groups = keep.shape[1] // m
    row, group = divmod(flat, groups)
    kept = int(np.count_nonzero(keep[row, group * m : (group + 1) * m]))
    raise ValueError(
        f"mask violates {n}:{m} sparsity: row {row}, group {group} "
        f"(columns {group * m}-{group * m + m - 1}) keeps {kept} > {n} weights"
    )


def _as_mask(mask: object) -> np.ndarray:
    """A 2-D bool array (no copy when ``mask`` already is one, whatever its layout: the
    kernels that read it take ``np.ascontiguousarray`` of it, and a size from the shape and
    the count alone, as every format's is when every weight is kept, reads no cell, so a
    broadcast all-ones view of any shape costs nothing)."""
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise ValueError(f"mask must be a 2-D [out, in] array, got shape {arr.shape}")
    if arr.dtype != np.bool_:
        if not np.issubdtype(arr.dtype, np.number):
            raise ValueError(f"mask must be bool or numeric (nonzero = kept), got {arr.dtype}")
        arr = arr != 0
    return arr


def _as_enum(kind: type[_E], value: object, name: str) -> _E:
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(repr(member.value) for member in kind)
        raise ValueError(f"{name} must be one of {choices}, got {value!r}") from None


def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _count(value: object, size: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not 0 <= value <= size:
        raise ValueError(f"nnz must be an int in [0, {size}] (the mask's entries), got {value!r}")
    return int(value)


def _positive_pair(value: object, name: str, form: str) -> tuple[int, int]:
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise ValueError(f"{name} must be a pair {form} of positive ints, got {value!r}")
    first, second = (_positive_int(v, f"{name} entries") for v in value)
    return first, second


def _nm_pair(value: object) -> tuple[int, int]:
    n, m = _positive_pair(value, "nm", "(N, M)")
    if m < 2 or n > m:
        raise ValueError(f"nm=(N, M) needs 1 <= N <= M and M >= 2, got {value!r}")
    return n, m


def _address_bits(positions: int) -> int:
    """Bits to address ``positions`` distinct positions: ceil(log2), at least 1."""
    return max(1, (positions - 1).bit_length())


def _index_bits(index_bits: int | None, positions: int, what: str) -> int:
    needed = _address_bits(positions)
    if index_bits is None:
        return needed
    if index_bits < needed:
        raise ValueError(
            f"index_bits={index_bits} cannot address {positions} {what}; need >= {needed}"
        )
    return index_bits


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _bytes(bits: int) -> int:
    return _ceil_div(bits, 8)
