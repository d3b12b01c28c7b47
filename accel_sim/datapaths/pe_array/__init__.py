"""The unstructured-sparse PE array (``datapath: pe-array``): the FIFO-array timing model
(``fifo_array``) and the datapath that runs workloads on it (``datapath``)."""

from accel_sim.datapaths.pe_array.datapath import UnstructuredPEArray

__all__ = ["UnstructuredPEArray"]
