"""The mapper: per GEMM, the loop order, M tiling, split across cores and preload that the
spec's objective likes best (``space``, ``search``), costed by the fold kernels
(``compose``); and what stays on chip between ops (``residency``).

It serves the systolic datapaths. The PE array's dataflow is fixed by its design (tokens
broadcast in order, output rows interleaved over the PEs), so it only takes ``residency``;
crossbar chips map weights onto crossbars their own way (``datapaths/crossbar/mapping.py``).
"""

from accel_sim.mapping.compose import Composite, compose
from accel_sim.mapping.residency import OpResidency, plan_residency
from accel_sim.mapping.search import best_of, cache
from accel_sim.mapping.space import Mapping, tile_candidates

__all__ = [
    "Composite",
    "Mapping",
    "OpResidency",
    "best_of",
    "cache",
    "compose",
    "plan_residency",
    "tile_candidates",
]
