"""The checked preconditions of every kernel entry: sizes the Numba kernels can take safely.

Numba kernels do int64 arithmetic without overflow checks and allocate what they are told:
a fold count that wraps around, or a product past 2**63, writes out of bounds or returns
numbers several times too small with no error. So every Python wrapper that calls a kernel
first calls one of these functions with the sizes it is about to pass; each computes the
products the kernel will form (fold counts, the bytes of the arrays it allocates, the
inner-loop steps, the operand bytes that go into float64 statistics) and raises
:class:`~safeio.limits.SizeLimitError` naming the quantity and its limit
(``safeio.limits``) before any kernel runs. Pure Python: no Numba here.
"""

from __future__ import annotations

import functools

from safeio.limits import (
    EXACT_COUNT,
    MAX_FOLDS,
    MAX_KERNEL_ARRAY_BYTES,
    MAX_KERNEL_INT,
    MAX_KERNEL_STEPS,
    SizeLimitError,
    check_exact,
    check_limit,
)

__all__ = [
    "SizeLimitError",
    "check_crossbar_schedule",
    "check_fifo_array",
    "check_gemm_schedule",
    "check_strips",
    "check_ticks",
    "check_token_arrays",
    "dense_folds",
]

_HINT = "lower the batch, seq_len or model size, or use a larger array"
_SLOW = "the clock, ADC rate or bandwidths are too slow for these sizes"


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def dense_folds(dataflow: str, rows: int, cols: int, m: int, k: int, n: int) -> int:
    """Folds of a dense (m x k) @ (k x n) schedule: SCALE-Sim's spatial split per dataflow
    (``ws``, ``os``, ``is``); compacted schedules never have more."""
    spatial = {"ws": (k, n), "os": (m, n), "is": (k, m)}[dataflow]
    return _ceil_div(spatial[0], rows) * _ceil_div(spatial[1], cols)


@functools.lru_cache(maxsize=4096)
def check_gemm_schedule(
    what: str, dataflow: str, rows: int, cols: int, m: int, k: int, n: int,
    word_bytes: int, acc_bytes: int,
) -> None:  # fmt: skip
    """Before a fold kernel (``dense_folds``, ``sparse_folds``) runs one (m x k) @ (k x n)
    GEMM on a ``rows x cols`` array: its folds (the kernel allocates per-fold arrays and
    loops over them), its MACs and the operand bytes its statistics accumulate. Sizes that
    passed are remembered (the mapper asks again for every candidate); a refusal raises
    every time."""
    where = f"of {what} (a {m:,}x{k:,}x{n:,} GEMM on a {rows}x{cols} {dataflow} array)"
    folds = dense_folds(dataflow, rows, cols, m, k, n)
    check_limit(f"the fold count {where}", folds, MAX_FOLDS, _HINT)
    for name, value in (
        ("MACs", m * k * n),
        ("input bytes", m * k * word_bytes),
        ("weight bytes", k * n * word_bytes),
        ("partial-sum bytes", m * n * acc_bytes),
    ):
        check_exact(f"the {name} {where}", value)


def check_strips(what: str, strips: int, length: int) -> None:
    """Before the compaction kernels list live indices: ``strips`` strips of up to ``length``
    int64 indices each (``skipping_folds``, ``live_strips``, ``nm_folds``)."""
    check_limit(f"the index lists of {what} ({strips:,} strips of {length:,}) in bytes",
                strips * length * 8, MAX_KERNEL_ARRAY_BYTES, _HINT)  # fmt: skip


def check_fifo_array(what: str, n_pes: int, n_in: int, entries: int, fifo_depth: int) -> None:
    """Before the PE-array kernels: the per-PE work table (``n_pes x n_in`` int64; the paths
    that read a dense layer's or a mask's kept weights without it are held to the same
    bound, so a size is refused or run whichever path takes it), the FIFO rings
    (``fifo_depth x n_pes``) and the event loop (``entries x n_pes`` steps)."""
    where = f"of {what} on {n_pes:,} PEs"
    check_limit(f"the per-PE work table ({n_in:,} inputs) {where} in bytes", n_pes * n_in * 8,
                MAX_KERNEL_ARRAY_BYTES, "use fewer PEs")  # fmt: skip
    check_limit(f"the FIFO rings (depth {fifo_depth:,}) {where} in bytes",
                n_pes * fifo_depth * 8, MAX_KERNEL_ARRAY_BYTES,
                "use fewer PEs or a shallower FIFO")  # fmt: skip
    check_limit(f"the kernel steps ({entries:,} broadcast entries) {where}", n_pes * entries,
                MAX_KERNEL_STEPS, _HINT)  # fmt: skip


def check_ticks(what: str, value: float) -> int:
    """A duration in whole ticks (``int``) that the int64 kernels can add up safely."""
    check_limit(f"{what} in ticks", value, MAX_KERNEL_INT >> 12, _SLOW)
    return int(value)


def check_crossbar_schedule(
    what: str, vectors: int, slices: int, classes: int, per_vector_ticks: int, latest: int
) -> None:
    """Before ``crossbar_tiles``: its loop (vectors x slices x IMA classes), its per-vector
    arrays, and its tick sums in int64 (each vector adds at most ``per_vector_ticks`` after
    the ``latest`` arrival)."""
    check_limit(f"the kernel steps of {what} ({vectors:,} vectors x {slices} slices x "
                f"{classes} IMA classes)", vectors * slices * classes, MAX_KERNEL_STEPS,
                _HINT)  # fmt: skip
    check_token_arrays(what, vectors)
    check_limit(f"the last finish tick of {what}", latest + vectors * per_vector_ticks,
                MAX_KERNEL_INT, _SLOW)  # fmt: skip


def check_token_arrays(what: str, tokens: int) -> None:
    """Arrays of one int64 per token or vector."""
    check_limit(f"the per-token arrays of {what} ({tokens:,} tokens) in bytes", tokens * 8,
                MAX_KERNEL_ARRAY_BYTES, "lower the batch or seq_len")  # fmt: skip


assert EXACT_COUNT < MAX_KERNEL_INT  # float64-exact counts are always safe int64 values
