"""What one operation costs on the hardware, before energy is priced."""

from __future__ import annotations

from dataclasses import dataclass, fields

from accel_sim.energy import ActionCounts


@dataclass(frozen=True)
class OpCost:
    """Cycles and action counts of one op (all instances of it).

    ``counts.macs`` are the MACs the datapath performs (compacted blocks still multiply the
    zeros inside them); ``useful_macs`` are those with a nonzero weight (None: all of them).
    """

    compute_cycles: int
    stall_cycles: int
    counts: ActionCounts
    folds: int = 0
    sram_limited_cycles: int = 0
    mode: str = "dense"  # how the GEMM ran: dense, gating, skipping, nm, unstructured-pe, ...
    useful_macs: int | None = None
    load_imbalance: float | None = None  # busiest PE / mean PE work (unstructured-pe)
    bank_conflict: float | None = None  # mean cycles per streamed row (skipping)
    note: str | None = None  # e.g. why a sparse mode or format could not be used
    mapping: str | None = None  # the mapping the GEMM ran under (accel_sim.mapping)
    dram_bytes_avoided: float = 0.0  # DRAM traffic of operands kept on chip (residency)

    @property
    def cycles(self) -> int:
        return self.compute_cycles + self.stall_cycles

    def with_mode(self, mode: str, note: str | None = None, **changes: object) -> OpCost:
        """A copy labelled with how it ran (keeps an existing note unless given one)."""
        return self.replaced(mode=mode, note=note or self.note, **changes)

    def replaced(self, **changes: object) -> OpCost:
        """``dataclasses.replace`` without running ``__init__`` again (there is nothing to
        check): the fields copied, then ``changes``. A frozen dataclass's ``__init__`` sets
        each field through ``object.__setattr__``, and the mapper copies hundreds of costs a
        design point, so this is several times faster."""
        cls = type(self)
        names = _FIELDS.get(cls)
        if names is None:  # a subclass adds fields (the dual-side array's accumulator bytes)
            names = _FIELDS[cls] = frozenset(field.name for field in fields(cls))
        unknown = changes.keys() - names
        if unknown:
            raise TypeError(f"{cls.__name__} has no field {sorted(unknown)[0]!r}")
        copy = object.__new__(cls)
        copy.__dict__.update(self.__dict__)
        copy.__dict__.update(changes)
        return copy


_FIELDS: dict[type, frozenset[str]] = {}  # each cost class's field names
