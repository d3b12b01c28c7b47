"""The outer-product array's own parameters (``datapath: outer-product``, section
``outer_product:``): the dual-side sparse array of Wang et al., "Dual-side Sparse Tensor
Core", ISCA 2021 (DSTC).

The array (``pe_array.rows x pe_array.cols`` multipliers) multiplies, each cycle, up to
``rows`` nonzero input activations of one column of the input tile by up to ``cols`` nonzero
weights of the matching row of the weight tile (an outer product), and merges the partial
products into an accumulation buffer that holds one output tile. Sources and tags ([V] read
in a source, [D] derived, [A] assumption; the paper's full text was not available to this
project, so [V] here means read in second-hand descriptions of it, named in
``docs/dual-side.md``):

- ``tile_steps``: the output tile is ``tile_steps[0] x rows`` (tokens, the activation side)
  by ``tile_steps[1] x cols`` (outputs, the weight side): DSTC's warp computes a 32x32
  output tile per k in eight 8x16x1 outer-product steps (``OHMMA.8161``, its Fig. 5), four
  along its 8-wide A side and two along its 16-wide B side, B being the activations [V];
  so the weight side gets 4 steps and the activation side 2, ``(2, 4)``;
- ``merge_width``: partial sums the merge stage adds into the accumulation buffer per cycle;
  default ``rows x cols``, what a dense step produces [D: dense steps issue one per cycle];
- ``accumulator_banks``: ``[bank_rows, bank_cols]`` grid of single-ported banks, output
  ``(i, j)`` of the tile in bank ``(i mod bank_rows, j mod bank_cols)``; default: one bank
  per tile entry (no conflicts) [A: DSTC's bank count is not given in the sources we have];
- ``gather_bits_per_cycle``: bitmap bits the gather unit decodes per cycle (popcount and
  prefix sum); default: one k's bitmaps per cycle (``tile_m + tile_n`` bits) [A];
- per-action energies added to the chip's energy table (priced into the ``register``
  component): the accumulation buffer's read-modify-write per byte, 1.66 pJ [V: the 2048 x
  8 b register file read of Sparseloop's int8 tensor-core ERT, 45 nm,
  ../shared/reference/energy-tables.md 1.2]; the scatter network per byte moved, 0.072 pJ [A:
  one register stage, Aladdin 0.009 pJ/bit]; bitmap decode per bit, 0.00375 pJ [D: Horowitz
  int8 add 0.03 pJ over 8 bits, one adder bit per bitmap bit].
"""

from __future__ import annotations

from pydantic import Field, field_validator

from accel_sim.spec.cost_tables import PJ
from accel_sim.spec.units import Joules, SpecModel

__all__ = ["OuterProductSpec"]


class OuterProductSpec(SpecModel):
    """Tile, merge stage, gather unit and per-action energies of the outer-product array."""

    tile_steps: tuple[int, int] = (2, 4)  # DSTC Fig. 5: 32x32 tile on an 8x16 unit [V]
    merge_width: int | None = Field(default=None, gt=0, le=1 << 24, strict=True)
    accumulator_banks: tuple[int, int] | None = None
    gather_bits_per_cycle: int | None = Field(default=None, gt=0, le=1 << 20, strict=True)
    accumulator_j_per_byte: Joules = 1.66 * PJ  # [V] Sparseloop int8 tensor-core RF read
    merge_j_per_byte: Joules = 0.072 * PJ  # [A] one register stage (Aladdin 0.009 pJ/bit)
    bitmap_j_per_bit: Joules = 0.03 * PJ / 8  # [D] Horowitz int8 add over 8 bits

    @field_validator("tile_steps", "accumulator_banks")
    @classmethod
    def _positive_pair(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        if value is not None and not all(1 <= v <= 4096 for v in value):
            raise ValueError(f"expected [rows, cols] of ints in 1..4096, got {list(value)}")
        return value
