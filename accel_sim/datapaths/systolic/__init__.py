"""Systolic arrays (``datapath: systolic``): the dense array with optional zero gating
(``dense``) and the compacting array for block skipping and N:M mode (``compacting``)."""

from accel_sim.datapaths.systolic.compacting import CompactingSystolicArray
from accel_sim.datapaths.systolic.dense import DenseSystolicArray

__all__ = ["CompactingSystolicArray", "DenseSystolicArray"]
