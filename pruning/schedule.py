"""Sparsity schedules of gradual magnitude pruning: cubic (Zhu & Gupta 2017) or geometric.

With progress ``p = (t - t0) / (n * dt)`` clipped to [0, 1] and masks updated only at
``t = t0 + j*dt`` (``j = 0..n``):

- ``cubic``: ``s_t = s_f + (s_i - s_f) * (1 - p)**3``. SparseBERT (Xu et al. 2021,
  ``task_distill_prune_simultaneously.py``) uses it with ``s_i = 0``, ``t0 = 0`` and
  ``dt = 800`` steps; see ``../shared/reference/pruning-algorithms.md`` section 1. It prunes
  hardest at the start: with 20 updates to 80 %, the first update removes 11.4 % of the
  weights and 58 % sparsity is reached after 35 % of the ramp.
- ``geometric``: the kept fraction decays geometrically, ``1 - s_t = (1 - s_i) *
  ((1 - s_f) / (1 - s_i))**p``, so every update removes the same share of the weights still
  kept (7.7 % of them per update with 20 updates to 80 %, 10.9 % to 90 %). Early updates
  are gentler than cubic's and the ramp spreads its damage: 58 % of an 80 % ramp is reached
  after 54 % of it. This is the spread for short CPU runs, where cubic's early updates come
  a few dozen steps apart and the model has no time to recover between them.

``t`` counts optimizer steps completed, so the update at ``t0 = 0`` happens before the first
step.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from pruning.patterns import check_sparsity

__all__ = ["SHAPES", "SparsitySchedule"]

SHAPES = ("cubic", "geometric")

# pruning-algorithms.md 7.1: ramp ending at 70-80% of training, 20-40 mask updates.
DEFAULT_RAMP_FRACTION = 0.7
DEFAULT_UPDATES = 20


def _non_negative_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return value


@dataclass(frozen=True)
class SparsitySchedule:
    """Sparsity as a function of the optimizer step, with mask updates every ``update_every``,
    along ``shape`` (``cubic`` or ``geometric``)."""

    final_sparsity: float
    initial_sparsity: float = 0.0
    start_step: int = 0
    update_every: int = 1
    n_updates: int = 1
    shape: str = "cubic"

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ValueError(f"shape must be one of {', '.join(SHAPES)}, got {self.shape!r}")
        check_sparsity(self.final_sparsity)
        check_sparsity(self.initial_sparsity)
        if self.initial_sparsity > self.final_sparsity:
            raise ValueError(
                f"initial_sparsity {self.initial_sparsity} must not exceed final_sparsity "
                f"{self.final_sparsity}"
            )
        _non_negative_int(self.start_step, "start_step")
        if _non_negative_int(self.update_every, "update_every") == 0:
            raise ValueError("update_every must be a positive integer, got 0")
        if _non_negative_int(self.n_updates, "n_updates") == 0:
            raise ValueError("n_updates must be a positive integer, got 0")

    @classmethod
    def fit(
        cls,
        total_steps: int,
        final_sparsity: float,
        *,
        initial_sparsity: float = 0.0,
        ramp_fraction: float = DEFAULT_RAMP_FRACTION,
        update_every: int | None = None,
        start_step: int = 0,
        shape: str = "cubic",
    ) -> SparsitySchedule:
        """A schedule whose ramp ends at ``ramp_fraction`` of ``total_steps``.

        ``update_every`` defaults to giving about 20 mask updates over the ramp.
        """
        if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 1:
            raise ValueError(f"total_steps must be a positive integer, got {total_steps!r}")
        if not 0.0 < ramp_fraction <= 1.0:
            raise ValueError(f"ramp_fraction must be in (0, 1], got {ramp_fraction!r}")
        ramp_steps = max(1, math.floor(ramp_fraction * total_steps) - start_step)
        if update_every is None:
            update_every = max(1, ramp_steps // DEFAULT_UPDATES)
        n_updates = max(1, ramp_steps // update_every)
        schedule = cls(final_sparsity, initial_sparsity, start_step, update_every, n_updates, shape)
        schedule.check_fits(total_steps)
        return schedule

    @property
    def end_step(self) -> int:
        """The step at which ``final_sparsity`` is reached."""
        return self.start_step + self.n_updates * self.update_every

    def check_fits(self, total_steps: int) -> None:
        """Raise if training of ``total_steps`` steps would end before the ramp does."""
        if self.end_step > total_steps:
            raise ValueError(
                f"the sparsity ramp ends at step {self.end_step} (start_step {self.start_step} "
                f"+ n_updates {self.n_updates} x update_every {self.update_every}) but "
                f"training has only {total_steps} steps: train longer or update more often"
            )

    def sparsity_at(self, step: int) -> float:
        """Target sparsity after ``step`` optimizer steps."""
        progress = (step - self.start_step) / (self.n_updates * self.update_every)
        progress = min(1.0, max(0.0, progress))
        s_i, s_f = self.initial_sparsity, self.final_sparsity
        if self.shape == "geometric":
            if progress >= 1.0:
                return s_f
            return 1.0 - (1.0 - s_i) * ((1.0 - s_f) / (1.0 - s_i)) ** progress
        return s_f + (s_i - s_f) * (1.0 - progress) ** 3

    def is_update_step(self, step: int) -> bool:
        """Whether masks are recomputed after ``step`` optimizer steps."""
        offset = step - self.start_step
        return 0 <= offset <= self.n_updates * self.update_every and offset % self.update_every == 0

    def update_steps(self) -> list[int]:
        return [self.start_step + j * self.update_every for j in range(self.n_updates + 1)]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.shape, **asdict(self), "end_step": self.end_step}
