"""Datapaths: one folder each, behind one interface (``base.Datapath``).

- ``systolic``: the dense systolic array (with zero gating) and the compacting array (block
  skipping, N:M mode);
- ``pe_array``: the unstructured-sparse PE array (EIE / SparTen style);
- ``crossbar``: ReRAM crossbar chips (ISAAC class).

``array`` holds what the array datapaths share. Importing this package registers every
datapath; ``datapath_for(spec)`` returns the one that runs a chip.
"""

from accel_sim.datapaths import crossbar, pe_array, systolic
from accel_sim.datapaths.base import REGISTRY, Datapath, datapath_for, register

__all__ = ["REGISTRY", "Datapath", "crossbar", "datapath_for", "pe_array", "register", "systolic"]
