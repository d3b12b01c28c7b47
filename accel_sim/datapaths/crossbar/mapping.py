"""Mapping masked weights onto crossbars: which blocks are mapped, how many copies fit, and
the passes a model that does not fit is reprogrammed in.

A weight ``[out, in]`` is stored transposed (crossbar rows are inputs, columns outputs) and cut
into ``rows x cols`` blocks (edge blocks padded); a block with no kept weight is never mapped.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from accel_sim.kernels import crossbar_blocks as kernel
from accel_sim.spec.crossbar_chip import CrossbarChipConfig, Tile
from workloads.ops import GemmOp

__all__ = ["BlockStats", "block_stats", "program_passes", "register_depth", "replication"]


@dataclass(frozen=True)
class BlockStats:
    """Crossbar blocks of one weight: ``[row_blocks, col_blocks]`` arrays (rows = inputs)."""

    mapped: np.ndarray  # bool: the block holds a kept weight
    active_rows: np.ndarray  # inputs of the block with a kept weight (DAC drives per slice)
    active_cols: np.ndarray  # outputs of the block with a kept weight (ADC conversions)
    busiest_adc: np.ndarray  # most active columns behind one ADC of the block
    adc_load: np.ndarray  # [row_blocks, col_blocks, adcs]: active columns behind each ADC
    active_inputs: int  # inputs of the whole weight with a kept weight
    active_outputs: int  # outputs of the whole weight with a kept weight

    @property
    def mapped_blocks(self) -> int:
        return int(self.mapped.sum())


def block_stats(
    mask: np.ndarray | None, n: int, k: int, rows: int, cols: int, adcs: int
) -> BlockStats:
    """Block statistics of a weight ``[out=n, in=k]`` (``mask`` None: dense) on
    ``rows x cols`` crossbars with ``adcs`` ADCs each (contiguous column groups)."""
    if mask is None:
        return _dense_block_stats(n, k, rows, cols, adcs)
    return _block_stats(np.asarray(mask, dtype=bool), n, k, rows, cols, adcs)


@functools.lru_cache(maxsize=256)
def _dense_block_stats(n: int, k: int, rows: int, cols: int, adcs: int) -> BlockStats:
    """A dense weight's statistics depend on its shape alone: computed once per shape (every
    dense baseline asks for each layer), their arrays read-only."""
    stats = _block_stats(np.ones((n, k), dtype=bool), n, k, rows, cols, adcs)
    for value in vars(stats).values():
        if isinstance(value, np.ndarray):
            value.setflags(write=False)
    return stats


def _block_stats(
    keep: np.ndarray, n: int, k: int, rows: int, cols: int, adcs: int
) -> BlockStats:
    if keep.shape != (n, k):
        raise ValueError(f"mask shape {keep.shape} is not the weight's ({n}, {k})")
    if cols % adcs:
        raise ValueError(f"{adcs} ADCs do not divide a crossbar's {cols} columns")
    active_rows, adc_load, active_inputs, active_outputs = kernel.block_counts(
        np.ascontiguousarray(keep), rows, cols, adcs
    )
    active_cols = adc_load.sum(axis=2)
    return BlockStats(
        mapped=active_cols > 0,
        active_rows=active_rows,
        active_cols=active_cols,
        busiest_adc=adc_load.max(axis=2),
        adc_load=adc_load,
        active_inputs=int(active_inputs),
        active_outputs=int(active_outputs),
    )


def program_passes(op: GemmOp, stats: BlockStats, chip: CrossbarChipConfig) -> list[BlockStats]:
    """The op's mapped blocks (row-major) in passes of at most the chip's crossbars, each
    pass as the block statistics of the weight with only that pass's blocks kept; none for
    a fully pruned weight (nothing to write, nothing to compute)."""
    xb = chip.crossbar
    per_pass = max(1, chip.chip_crossbars // chip.crossbars_per_block)
    blocks = np.argwhere(stats.mapped)
    if len(blocks) == 0:
        return []
    if len(blocks) <= per_pass:
        return [stats]
    keep = np.ones((op.n, op.k), dtype=bool) if op.mask is None else np.asarray(op.mask, bool)
    passes = []
    for first in range(0, len(blocks), per_pass):
        chosen = np.zeros_like(stats.mapped)
        chosen[tuple(blocks[first : first + per_pass].T)] = True
        # block [rb, cb] covers inputs rb * rows.. and outputs cb * cols..: [out, in] selector
        selector = np.kron(chosen.T, np.ones((xb.cols, xb.rows), dtype=bool))[: op.n, : op.k]
        kept = keep & selector
        passes.append(block_stats(kept, op.n, op.k, xb.rows, xb.cols, xb.adcs_per_crossbar))
    return passes


def replication(chip: CrossbarChipConfig, needed: int, max_vectors: int) -> int:
    option = chip.mapping.replication
    if needed == 0:
        return 1
    fit = chip.chip_crossbars // needed
    if option == "auto":
        return max(1, min(fit, chip.mapping.max_replication, max_vectors))
    return option if option * needed <= chip.chip_crossbars else 1


def register_depth(
    stats: BlockStats, per_block: int, ima_of: np.ndarray, tile: Tile, in_bytes: float
) -> int:
    """Vectors the input registers hold: ``input_register_bytes`` over the bytes one vector
    needs in the fullest IMA (the active rows of each distinct row block it holds; slice
    crossbars of a block share their inputs). At least 1."""
    if ima_of.size == 0:
        return 1
    row_block = np.repeat(np.nonzero(stats.mapped)[0], per_block)
    rows = np.repeat(stats.active_rows[stats.mapped], per_block)
    row_blocks = stats.mapped.shape[0]
    widest = np.zeros((int(ima_of[-1]) + 1, row_blocks), dtype=np.int64)  # [IMA, row block]
    np.maximum.at(widest.reshape(-1), ima_of * row_blocks + row_block, rows)
    per_ima = widest.sum(axis=1)
    return max(1, int(tile.input_register_bytes // (float(per_ima.max()) * in_bytes)))
