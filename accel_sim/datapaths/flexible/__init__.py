"""The SIGMA-style flexible array (``datapath: flexible``): one weight's folds and schedule
(``model``) and the datapath that runs workloads on it (``datapath``)."""

from accel_sim.datapaths.flexible.datapath import FlexibleDatapath

__all__ = ["FlexibleDatapath"]
