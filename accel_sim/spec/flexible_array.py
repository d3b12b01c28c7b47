"""The ``flexible:`` section of a ``datapath: flexible`` chip: a SIGMA-style array.

SIGMA (Qin et al., "SIGMA: A Sparse and Irregular GEMM Accelerator with Flexible
Interconnects for DNN Training", HPCA 2020) builds its array from Flexible Dot Product
Engines (Flex-DPEs): ``k`` multipliers in a logical 1-D line, a non-blocking Benes
distribution network with multicast in front of them and a Forwarding Adder Network (FAN)
behind them (Sec. IV-A, Fig. 5). Several Flex-DPEs joined by a bus-like NoC form one
Flex-DPU that runs one GEMM (Sec. IV-B). The multiplier count is the chip's
``pe_array.rows x pe_array.cols`` (per core; the grid shape is not used, only the count).

Source tags: [P] the paper, [R] the authors' RTL (github.com/georgia-tech-synergy-lab/SIGMA),
[A] an assumption of this model.
"""

from __future__ import annotations

from pydantic import Field

from accel_sim.spec.units import SpecModel

__all__ = ["FlexibleArray"]


class FlexibleArray(SpecModel):
    """Flex-DPE size and the distribution network's bandwidths."""

    # Multipliers per Flex-DPE, each with a Benes network of 2 log2(k) + 1 levels of k 2x2
    # switches and a FAN of k - 1 adders (log2(k) levels). [P] Sec. V, Fig. 9: 128 is the
    # most energy-efficient size of a 16,384-multiplier SIGMA and the one the paper builds.
    dpe_size: int = Field(default=128, gt=0, le=65536, strict=True)
    # Distinct words the distribution network delivers per cycle, each multicast to every
    # multiplier that needs it; it carries the stationary load (unicast) and the streaming
    # operand. [P] Sec. V / VI-A: 128 words per cycle for 16,384 multipliers, equal to the
    # 128x128 TPU's input bandwidth. None: the ifmap SRAM port's words per cycle [A].
    distribution_bandwidth: int | None = Field(default=None, gt=0, le=1 << 20, strict=True)
    # Stationary words loaded per cycle. [P] Sec. IV-E step iv: a bus as wide as a Flex-DPE
    # fills one Flex-DPE a cycle; Sec. VI-A lets the streaming side be wider than that in the
    # evaluation. None: the distribution bandwidth (one network carries both).
    load_bandwidth: int | None = Field(default=None, gt=0, le=1 << 20, strict=True)
