"""A mapping of one GEMM onto an array chip, and the bounded space the mapper searches.

A mapping is the loop order over the array's row and column folds, how many tiles M is cut
into (balanced: their sizes differ by at most one row; they run one after another,
outermost), the split of the GEMM across cores (along M or along N) and whether the
stationary operand's preload overlaps the previous fold.

The space, per GEMM: both loop orders (where the datapath supports both), ``TILE_COUNTS``
tiles (1, 2, 3, 4, 6, 8, 12, ... up to 128: every power of two and three times one), a count
above M meaning one-row tiles, and, with several cores, both splits. It is searched
exhaustively, except that under the latency objective the tilings of one order and split are
tried from one tile up and the search stops at the first whose
compute cycles alone reach the best latency found (``accel_sim.mapping.search``): more tiles
only add fold fill, drain and weight reloads. Because the tile counts do not depend on M
(only clamped to it) and one more row of M never makes a tile smaller, a longer GEMM never
runs faster (a property test checks it). An earlier floor of eight rows a tile made the
counts depend on M, and a 16-row GEMM ran faster than a 12-row one. Batches are covered a
level up: a batch can run as micro-batches of any
divisor of it (``accel_sim.datapaths.array``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

__all__ = [
    "TILE_COUNTS",
    "Mapping",
    "balanced",
    "dimension_names",
    "tile_candidates",
    "tilings",
]

TILE_COUNTS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128)

# (spatial-row dimension, spatial-column dimension) of each dataflow (SCALE-Sim's split).
_FOLD_DIMS = {"ws": ("K", "N"), "os": ("M", "N"), "is": ("K", "M")}


def dimension_names(dataflow: str) -> tuple[str, str]:
    return _FOLD_DIMS[dataflow]


@dataclass(frozen=True)
class Mapping:
    """One point of the space (module docstring)."""

    rows_outer: bool
    m_tiles: int = 1  # balanced tiles of M, run one after another
    split: str = "none"  # "none" | "m" | "n"
    cores: int = 1
    overlapped: bool = True

    def describe(self, dataflow: str, m: int) -> str:
        """E.g. ``N>K 4 M tiles of 32 overlapped`` or ``K>N 4 cores split m serial``."""
        rows, cols = dimension_names(dataflow)
        order = f"{rows}>{cols}" if self.rows_outer else f"{cols}>{rows}"
        parts = [order]
        if self.m_tiles > 1:
            parts.append(f"{self.m_tiles} M tiles of {-(-m // self.m_tiles)}")
        if self.cores > 1:
            parts.append(f"{self.cores} cores split {self.split}")
        parts.append("overlapped" if self.overlapped else "serial")
        return " ".join(parts)


@lru_cache(maxsize=4096)
def tile_candidates(m: int) -> tuple[int, ...]:
    """Numbers of M tiles to try: every ``TILE_COUNTS`` entry clamped to ``m`` (a count above
    M means M one-row tiles), so that one more row of M keeps every candidate of the shorter
    GEMM, each with tiles at least as long."""
    return tuple(sorted({min(count, max(1, m)) for count in TILE_COUNTS}))


@lru_cache(maxsize=4096)
def balanced(extent: int, parts: int) -> tuple[tuple[int, int], ...]:
    """(size, how many) of ``parts`` pieces of ``extent`` whose sizes differ by at most one,
    larger first (pieces of 0 dropped). Cached: the mapper asks it for every candidate."""
    base, extra = divmod(extent, parts)
    pieces = ((base + 1, extra), (base, parts - extra))
    return tuple((size, count) for size, count in pieces if size and count)


@lru_cache(maxsize=4096)
def tilings(
    rows_outer: bool, m: int, split: str, cores: int, overlapped: bool
) -> tuple[Mapping, ...]:
    """One group of the space: a mapping per ``tile_candidates(m)`` count, fewest tiles
    first. Made once per group's parameters and shared (mappings are frozen): a search
    usually ends a group after a few of them."""
    return tuple(Mapping(rows_outer, tiles, split, cores, overlapped)
                 for tiles in tile_candidates(m))  # fmt: skip
