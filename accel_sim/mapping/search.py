"""Pick the best mapping of a GEMM by the spec's objective, and remember it.

Objectives (``mapping.objective``): ``latency`` (cycles; energy breaks ties), ``energy``
(joules, dynamic plus leakage over the op's latency; cycles break ties) or ``edp``
(their product). Ties left after that go to the earlier candidate, so the choice is
deterministic. Under ``latency`` the candidates of one loop order and split come largest
tile first, and the rest of them are skipped once a tile's compute cycles alone reach the
best latency found (smaller tiles only add fill, drain and reloads, so their compute cycles
are larger still; a heuristic where each tile size picks its own schedule, as the
SIGMA-style array's strip width and output block, whose compute can fall: docs/mapper.md).
A datapath that can give a candidate's compute cycles without scheduling its memory
(``compute_floor``) lets the search reach that conclusion without evaluating the
candidate: when they exceed the best latency, evaluating it could only have ended the group
(its latency is no better and cannot tie), so the group ends there, with the same choice.
Likewise a datapath that can give the DRAM bytes a candidate moves at least
(``compose.dram_floor``, which never falls as a group's tiles grow): once those take longer
than the best latency, neither it nor any later candidate of the group can be faster or tie,
and the group ends, again with the same choice.

Chosen mappings and their costs are cached per (datapath, spec, GEMM shape, mask digest,
on-chip operands), so a sweep that revisits a shape (every dense baseline, every layer of a
model) searches it once per process.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import TypeVar

from accel_sim.mapping.space import Mapping

__all__ = ["CACHE_SIZE", "DRAM_FLOOR_MARGIN", "FLOOR_GATE", "MappingCache", "best_of", "cache"]

CACHE_SIZE = 8192
T = TypeVar("T")


def best_of(
    groups: Iterable[Sequence[Mapping]],
    evaluate: Callable[[Mapping], T],
    cycles: Callable[[T], int],
    compute_cycles: Callable[[T], int],
    energy_j: Callable[[T], float],
    objective: str,
    compute_floor: Callable[[Mapping], int | None] | None = None,
    dram_floor: Callable[[Mapping], float] | None = None,
) -> tuple[Mapping, T]:
    """The best (mapping, cost) over ``groups`` (sequences of mappings, largest tile first).
    Under ``latency`` a candidate's energy is worked out only when its latency ties the best
    one's (the only time it decides). ``compute_floor``: a candidate's compute cycles at most
    (None: unknown) without evaluating it; ``dram_floor``: cycles its DRAM traffic takes at
    least, never falling along a group; both used under ``latency``."""
    if objective == "latency":
        return _fastest(groups, evaluate, cycles, compute_cycles, energy_j, compute_floor,
                        dram_floor)  # fmt: skip
    best: tuple[tuple, Mapping, T] | None = None
    order = 0
    for group in groups:
        for mapping in group:
            cost = evaluate(mapping)
            order += 1
            latency = cycles(cost)
            joules = energy_j(cost)
            if objective == "energy":
                score = (joules, latency, order)
            else:
                score = (joules * latency, latency, order)
            if best is None or score < best[0]:
                best = (score, mapping, cost)
    assert best is not None, "no candidate mapping"
    return best[1], best[2]


# A candidate's compute floor is asked for only once the previous candidate's compute cycles
# come within this share of the best latency: compute cycles grow slowly with the tiles, so
# only then can the next one's exceed it (elsewhere asking would cost more than it saves).
FLOOR_GATE = 0.9

# A DRAM floor ends a group only when it exceeds the best latency by more than a cycle and
# this share: its float sum of bytes may round differently from the kernels' own.
DRAM_FLOOR_MARGIN = 1e-9


def _fastest(
    groups: Iterable[Sequence[Mapping]],
    evaluate: Callable[[Mapping], T],
    cycles: Callable[[T], int],
    compute_cycles: Callable[[T], int],
    energy_j: Callable[[T], float],
    compute_floor: Callable[[Mapping], int | None] | None = None,
    dram_floor: Callable[[Mapping], float] | None = None,
) -> tuple[Mapping, T]:
    """``best_of`` under ``latency``: least cycles, then least energy, then the earlier."""
    best: tuple[int, Mapping, T] | None = None
    best_joules: float | None = None
    for group in groups:
        previous_compute = None
        for mapping in group:
            if (
                dram_floor is not None
                and best is not None
                and dram_floor(mapping) > best[0] * (1 + DRAM_FLOOR_MARGIN) + 1
            ):
                break  # it and every later tile count of the group are slower than the best
            if (
                compute_floor is not None
                and best is not None
                and previous_compute is not None
                and previous_compute >= FLOOR_GATE * best[0]
            ):
                floor = compute_floor(mapping)
                if floor is not None and floor > best[0]:
                    break  # what evaluating it would conclude: no faster, and compute >= best
            cost = evaluate(mapping)
            previous_compute = compute_cycles(cost)
            latency = cycles(cost)
            if best is None or latency < best[0]:
                best, best_joules = (latency, mapping, cost), None
                continue
            if latency == best[0]:
                if best_joules is None:
                    best_joules = energy_j(best[2])
                joules = energy_j(cost)
                if joules < best_joules:
                    best, best_joules = (latency, mapping, cost), joules
                    continue
            if previous_compute >= best[0]:
                break  # smaller tiles of this group cannot be faster
    assert best is not None, "no candidate mapping"
    return best[1], best[2]


class MappingCache:
    """A bounded least-recently-used map from a GEMM's identity to its chosen cost."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self._entries: OrderedDict[Hashable, object] = OrderedDict()
        self.hits = self.misses = 0

    def get_or_compute(self, key: Hashable, compute: Callable[[], T]) -> T:
        if key in self._entries:
            self._entries.move_to_end(key)
            self.hits += 1
            return self._entries[key]  # type: ignore[return-value]
        self.misses += 1
        value = compute()
        self._entries[key] = value
        if len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return value

    def clear(self) -> None:
        self._entries.clear()
        self.hits = self.misses = 0


cache = MappingCache()
