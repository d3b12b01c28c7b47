"""The dual-side sparse outer-product array, as a timing model (after Wang et al., "Dual-side
Sparse Tensor Core", ISCA 2021: DSTC).

A GEMM ``Y[M, N] = X[M, K] @ W[N, K]^T`` (``X`` the input activations, ``W`` the weight in
torch orientation) runs as outer products over k: column k of ``X`` times column k of ``W``.
Both operands are bitmap-coded (a bit per entry, values of the nonzeros only), so only
nonzero pairs are multiplied. The rules, per core (``rows x cols`` multipliers):

- *Tiles.* The outputs are cut into tiles of ``tile_m x tile_n`` (``outer_product.tile_steps``
  times the array); a tile's partial sums live in the accumulation buffer from its first k
  to its last. Tiles are numbered M-tile-major and dealt to the cores round-robin.
- *Gather* (per tile and k, ``g`` cycles): decode the two bitmaps (``tile_m + tile_n`` bits
  at ``gather_bits_per_cycle``) and read the nonzero values through the ifmap and filter
  buffer ports (``bytes_per_cycle``; values are read only when the k has a nonzero pair,
  bitmaps always). ``g = max(1, bitmap cycles, ifmap port cycles, filter port cycles)``.
- *Multiply and merge* (``c`` cycles): the ``a`` nonzero activations are cut into chunks of
  ``rows`` and the ``b`` nonzero weights into chunks of ``cols``; each chunk pair is one step
  of the array. The merge stage adds at most ``merge_width`` partial sums per cycle, a step at
  a time (a step of ``p`` products takes ``ceil(p / merge_width)`` cycles), and each bank of
  the accumulation buffer takes one partial sum per cycle: a k whose partial sums put ``L``
  in one bank takes at least ``L`` cycles (its steps' accesses are combined over the k, as
  DSTC's operand collector combines non-conflicting accesses). So
  ``c = max(sum over steps of ceil(p / merge_width), most per bank)``, and 0 when the k has
  no nonzero pair (the bitmaps say so; DSTC skips such steps after a popcount).
- *Drain* (per tile, ``d`` cycles): the finished tile leaves the accumulation buffer through
  the ofmap buffer's port (``tile_m x tile_n`` words, plus its bitmap when coded).
- *Overlap.* Gather runs ahead of merge through two slots (the gather of item i waits for the
  merge of item i - 2); the accumulation buffer holds two tiles (a tile's first merge waits
  for the drain of the tile two before it on the core).

The dense baseline (``zero_handling: none``) is the same array, tiles, ports and buffer
computing every pair: no bitmaps, ``a = tile_m``, ``b = tile_n``.

Engines: ``accel_sim.kernels.outer_product`` (counts per tile and k, then the recurrence) and
the cycle-stepping twin ``tests/naive/outer_product.py``; they agree exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from accel_sim.kernels import outer_product as kernels

__all__ = ["OuterProductGeometry", "OuterProductStats", "simulate_outer_product"]


@dataclass(frozen=True)
class OuterProductGeometry:
    """Everything of the chip the timing depends on (one core's array, and the cores)."""

    rows: int
    cols: int
    tile_m: int
    tile_n: int
    merge_width: int
    bank_rows: int
    bank_cols: int
    gather_bits: int
    bitmaps: bool  # operands bitmap-coded and zeros skipped (zero_handling: skipping)
    word_bytes: int
    ifmap_bytes_per_cycle: float
    filter_bytes_per_cycle: float
    ofmap_bytes_per_cycle: float
    cores: int = 1

    def __post_init__(self) -> None:
        for name in ("rows", "cols", "tile_m", "tile_n", "merge_width", "bank_rows",
                     "bank_cols", "gather_bits", "word_bytes", "cores"):  # fmt: skip
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        for name in ("ifmap_bytes_per_cycle", "filter_bytes_per_cycle", "ofmap_bytes_per_cycle"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")


@dataclass(frozen=True)
class OuterProductStats:
    """Cycles and action counts of one GEMM instance on the outer-product array."""

    cycles: int
    steps: int  # chunk-pair steps issued
    pairs: int  # nonzero pairs multiplied (MACs)
    merge_cycles: int  # multiply/merge stage busy cycles
    gather_cycles: int  # gather stage busy cycles
    values_a: int  # activation values read from the ifmap buffer
    values_b: int  # weight values read from the filter buffer
    bitmap_bits: int  # bitmap bits decoded
    drain_cycles: int
    bank_limited: int  # (tile, k) items whose merge the bank conflicts set
    tiles: int
    items: int  # (tile, k) items


def _operand(mask, shape: tuple[int, int], name: str) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.dtype != np.bool_ or mask.shape != shape:
        raise ValueError(
            f"{name} must be a bool mask of shape {shape}, got dtype {mask.dtype}, "
            f"shape {mask.shape}"
        )
    return mask


def _loads(mask, shape: tuple[int, int], tile: int, banks: int, name: str):
    """``column_loads`` of one operand; a dense one (None) from its shape alone."""
    if mask is None:
        return kernels.dense_column_loads(shape[0], shape[1], tile, banks)
    return kernels.column_loads(np.ascontiguousarray(_operand(mask, shape, name)), tile, banks)


def simulate_outer_product(
    activations, weights, m: int, n: int, k: int, geometry: OuterProductGeometry
) -> OuterProductStats:
    """One instance of ``Y[m, n] = X[m, k] @ W[n, k]^T`` on the array.

    ``activations``: bool ``[m, k]`` mask of nonzero inputs (None: dense); ``weights``: bool
    ``[n, k]`` keep-mask (None: dense). With ``geometry.bitmaps`` False (the dense baseline)
    the masks are ignored and every pair is computed.
    """
    g = geometry
    nnz_a, most_a = _loads(activations if g.bitmaps else None, (m, k), g.tile_m, g.bank_rows,
                           "activations")  # fmt: skip
    nnz_b, most_b = _loads(weights if g.bitmaps else None, (n, k), g.tile_n, g.bank_cols,
                           "weights")  # fmt: skip
    s = kernels.schedule(
        nnz_a, most_a, nnz_b, most_b, m, n, g.tile_m, g.tile_n, g.rows, g.cols,
        g.merge_width, g.gather_bits, g.bitmaps, g.word_bytes,
        float(g.ifmap_bytes_per_cycle), float(g.filter_bytes_per_cycle),
        float(g.ofmap_bytes_per_cycle), g.cores,
    )  # fmt: skip
    tiles = nnz_a.shape[0] * nnz_b.shape[0]
    return OuterProductStats(
        cycles=int(s[kernels.CYCLES]),
        steps=int(s[kernels.STEPS]),
        pairs=int(s[kernels.PAIRS]),
        merge_cycles=int(s[kernels.MERGE_CYCLES]),
        gather_cycles=int(s[kernels.GATHER_CYCLES]),
        values_a=int(s[kernels.VALUES_A]),
        values_b=int(s[kernels.VALUES_B]),
        bitmap_bits=int(s[kernels.BITMAP_BITS]),
        drain_cycles=int(s[kernels.DRAIN_CYCLES]),
        bank_limited=int(s[kernels.BANK_LIMITED]),
        tiles=tiles,
        items=tiles * k,
    )


def warm_up() -> None:
    """Compile (or load from the on-disk cache) the kernels, so timings exclude JIT."""
    geometry = OuterProductGeometry(2, 2, 2, 2, 4, 2, 2, 4, True, 1, 1.0, 1.0, 1.0)
    simulate_outer_product(None, None, 2, 2, 2, geometry)
