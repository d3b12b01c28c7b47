"""EIE (Han et al., ISCA 2016), section IV, "Activation Queue and Load Balancing" and its
Figure 8: with 64 PEs, "at FIFO size = 1, around half of the total cycles are idle"; "load
imbalance is reduced as FIFO depth is increased but with diminishing returns beyond a depth
of 8". Load-balance efficiency there is 1 - starvation bubbles / total cycles.

Reproduced on EIE's Alex-7 layer (4096 -> 4096, 9 % of the weights and 35.3 % of the input
activations nonzero, EIE's Table III) with random masks at those densities (EIE measured its
pruned AlexNet, whose masks are less balanced), RLE with 4-bit runs, 64 PEs.
"""

from __future__ import annotations

import numpy as np

from accel_sim.datapaths.pe_array.fifo_array import simulate_unstructured


def efficiency(depth: int) -> float:
    rng = np.random.default_rng(0)
    mask = rng.random((4096, 4096)) < 0.09
    activations = rng.random((1, 4096)) < 0.353
    stats = simulate_unstructured(mask, 1, 64, depth, activations=activations, run_bits=4)
    return 1.0 - stats.idle_fraction


def test_depth_one_idles_about_half_the_cycles_and_returns_diminish_beyond_eight():
    one, eight, deep = efficiency(1), efficiency(8), efficiency(256)
    assert 0.35 <= one <= 0.65  # "around half of the total cycles are idle"
    assert eight - one > 0.3  # the queue absorbs most of the imbalance by depth 8
    assert deep - eight < 0.03  # "diminishing returns beyond a depth of 8"
    assert one < efficiency(2) < efficiency(4) < eight <= deep
