"""pruning: sparsity patterns, masks and (later) pruning methods for BERT weights."""

from pruning.masks import block_occupancy, compute_masks, density
from pruning.patterns import (
    NM,
    Block,
    Column,
    Crossbar,
    Head,
    Pattern,
    PatternError,
    RankedPattern,
    Row,
    Unstructured,
    parse_pattern,
)

__all__ = [
    "NM",
    "Block",
    "Column",
    "Crossbar",
    "Head",
    "Pattern",
    "PatternError",
    "RankedPattern",
    "Row",
    "Unstructured",
    "block_occupancy",
    "compute_masks",
    "density",
    "parse_pattern",
]
