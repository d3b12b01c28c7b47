"""A mapping of one GEMM onto an array chip, and the bounded space the mapper searches.

A mapping is the loop order over the array's row and column folds, how many tiles M is cut
into (balanced: their sizes differ by at most one row; they run one after another,
outermost), the split of the GEMM across cores (along M or along N) and whether the
stationary operand's preload overlaps the previous fold.

The space, per GEMM: both loop orders (where the datapath supports both), 1 to
``MAX_M_TILES`` tiles of at least ``MIN_TILE_ROWS`` rows, and, with several cores, both
splits. It is searched exhaustively, except that under the latency objective the tilings of
one order and split are tried from one tile up and the search stops at the first whose
compute cycles alone reach the best latency found (``accel_sim.mapping.search``): more tiles
only add fold fill, drain and weight reloads. Two consequences the property tests check:
with the same number of tiles, one more row of M never makes a tile smaller, so a longer GEMM
never runs faster; and a batch of B sequences can always be cut into B (or B x t) tiles that
each repeat one sequence's best tiling, so the best mapping of a batch never costs more per
sequence than one sequence alone (for B x t up to ``MAX_M_TILES``).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "MAX_M_TILES",
    "MIN_TILE_ROWS",
    "Mapping",
    "balanced",
    "dimension_names",
    "tile_candidates",
]

MIN_TILE_ROWS = 8
MAX_M_TILES = 128

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


def tile_candidates(m: int) -> range:
    """Numbers of M tiles to try: 1 up to ``MAX_M_TILES``, tiles of ``MIN_TILE_ROWS`` rows or
    more (one tile when M is shorter)."""
    return range(1, max(1, min(MAX_M_TILES, m // MIN_TILE_ROWS)) + 1)


def balanced(extent: int, parts: int) -> list[tuple[int, int]]:
    """(size, how many) of ``parts`` pieces of ``extent`` whose sizes differ by at most one,
    larger first (pieces of 0 dropped)."""
    base, extra = divmod(extent, parts)
    pieces = ((base + 1, extra), (base, parts - extra))
    return [(size, count) for size, count in pieces if size and count]
