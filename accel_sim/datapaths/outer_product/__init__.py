"""The dual-side sparse outer-product array (``datapath: outer-product``, DSTC style): the
timing model (``model``) and the datapath that runs workloads on it (``datapath``)."""

from accel_sim.datapaths.outer_product.datapath import OuterProductArray

__all__ = ["OuterProductArray"]
