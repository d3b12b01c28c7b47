"""The ``Datapath`` interface: what the engine asks of every kind of compute fabric.

A datapath prices a whole workload on one chip spec (``run``), names the chip it compares
against (``dense_baseline``: the same chip without sparse support), and describes the chip
for studies (area, energy components, peak throughput, study columns). The engine never
looks at mode strings: ``datapath_for(spec)`` picks the registered class that handles the
spec, and everything else is that class's business.

Registering (``@register``) is all a new datapath needs to be found by the engine and to be
checked by the contract test suite (``tests/test_datapath_contract.py``), which runs every
registered datapath on random GEMMs and masks against the same invariants.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

from accel_sim.results import SimResult
from workloads.ops import GemmOp, Workload

__all__ = ["REGISTRY", "Datapath", "datapath_for", "register"]


class Datapath(ABC):
    """One kind of compute fabric, bound to one chip spec (``self.hw``)."""

    # Registry name, e.g. "dense-systolic"; also what study rows call the datapath.
    name: ClassVar[str]

    def __init__(self, hw: Any) -> None:
        self.hw = hw

    @classmethod
    @abstractmethod
    def handles(cls, hw: Any) -> bool:
        """Whether this class runs chips like ``hw``."""

    @abstractmethod
    def run(self, workload: Workload, seed: int = 0) -> SimResult:
        """Every op of ``workload`` in order, without a dense baseline."""

    @abstractmethod
    def dense_baseline(self) -> Datapath:
        """The datapath this one is compared with: the same chip, same datapath family, with
        no sparse support (weights stored dense, zeros multiplied)."""

    @property
    @abstractmethod
    def exploits_sparsity(self) -> bool:
        """Whether weight masks can change anything on this chip."""

    @abstractmethod
    def area_mm2(self) -> dict[str, float]:
        """Chip area by component."""

    @property
    @abstractmethod
    def energy_components(self) -> tuple[str, ...]:
        """The keys of this datapath's energy breakdowns."""

    @abstractmethod
    def peak_ops_per_s(self) -> float:
        """Peak arithmetic throughput (2 ops per MAC), the roofline's flat roof."""

    @abstractmethod
    def study_columns(self, result: SimResult) -> dict[str, Any]:
        """Hardware columns of a study row: ``zero_handling``, ``weight_format``,
        ``pe_rows``, ``pe_cols``, ``sram_bytes``, ``dram_bandwidth_bytes_per_s`` first, then
        any columns of the datapath's own."""

    @abstractmethod
    def compulsory_dram_bytes(self, op: GemmOp) -> float:
        """The least DRAM traffic any schedule of ``op`` can have on this chip."""

    def is_sparse_run(self, workload: Workload) -> bool:
        """Whether ``workload`` runs differently here than on the dense baseline."""
        return self.exploits_sparsity or any(op.mask is not None for op in workload.gemms)

    @staticmethod
    def useful_macs(op: GemmOp) -> int:
        """MACs of ``op`` with a nonzero weight."""
        nnz = op.weight_nnz if op.weight_nnz is not None else op.n * op.k
        return nnz * op.m * op.count


REGISTRY: dict[str, type[Datapath]] = {}


def register(cls: type[Datapath]) -> type[Datapath]:
    """Class decorator: make ``cls`` findable by ``datapath_for`` and the contract tests."""
    if cls.name in REGISTRY:
        raise ValueError(f"datapath {cls.name!r} is registered twice")
    REGISTRY[cls.name] = cls
    return cls


def datapath_for(hw: Any) -> Datapath:
    """The registered datapath that runs ``hw``."""
    matches = [cls for cls in REGISTRY.values() if cls.handles(hw)]
    if len(matches) != 1:
        names = ", ".join(cls.name for cls in matches) or "none"
        raise ValueError(f"{getattr(hw, 'name', hw)!r}: expected one datapath, found {names}")
    return matches[0](hw)


def registered() -> Mapping[str, type[Datapath]]:
    return dict(REGISTRY)
