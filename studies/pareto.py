"""The Pareto front of a study table: user-chosen objectives, an epsilon, constraints.

:func:`pareto_front` is the one definition the report's table and the Pareto plot share, so
the plotted front is the reported one.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = [
    "ParetoColumnError",
    "ParetoSettings",
    "check_numeric_columns",
    "holds_numbers",
    "pareto_front",
    "pareto_mask",
    "parse_constraint",
]


class ParetoColumnError(ValueError):
    """A Pareto objective or constraint names a column that holds no numbers."""


@dataclass(frozen=True)
class ParetoSettings:
    """Which front a study reports and plots.

    ``objectives``: columns, each minimised, or maximised when written ``max:column``.
    ``epsilon``: relative tolerance: a design leaves the front when another front design is
    worse than it by at most ``epsilon`` (relative) in every objective, so at 0.01 a design
    that saves 0.05 % area but is 3x slower and uses 3x the energy goes; of two designs
    within epsilon of each other everywhere, the first in objective order stays (0: the
    exact front). ``constraints``: column -> (``"<="`` or ``">="``, bound); rows that break
    one are never on the front (an area budget, a throughput floor).
    """

    objectives: tuple[str, ...] = ("latency_s", "energy_j", "area_mm2")
    epsilon: float = 0.01
    constraints: Mapping[str, tuple[str, float]] = field(default_factory=dict)

    def columns(self) -> list[str]:
        return [objective.removeprefix("max:") for objective in self.objectives]

    def describe(self) -> str:
        names = ", ".join(
            f"max {o[4:]}" if o.startswith("max:") else o for o in self.objectives
        )
        text = f"objectives {names}; epsilon {self.epsilon:g}"
        if self.constraints:
            limits = ", ".join(f"{c} {op} {v:g}" for c, (op, v) in self.constraints.items())
            text += f"; constraints {limits}"
        return text

    @classmethod
    def from_mapping(cls, data: Mapping | None) -> ParetoSettings:
        """From a study spec's ``pareto`` section (or run.json's copy of it)."""
        if not data:
            return cls()
        constraints = {}
        for column, rule in (data.get("constraints") or {}).items():
            op, bound = parse_constraint(rule)
            constraints[column] = (op, bound)
        return cls(
            objectives=tuple(data.get("objectives") or cls.objectives),
            epsilon=float(data.get("epsilon", cls.epsilon)),
            constraints=constraints,
        )


def parse_constraint(rule: object) -> tuple[str, float]:
    """``"<= 5"`` / ``">= 100"`` / a bare number (an upper bound) -> (op, bound). A bound
    that is not finite (nan, inf) is refused: ``<= nan`` kept no design and emptied the
    front without a word."""
    parsed: tuple[str, float] | None = None
    if isinstance(rule, int | float) and not isinstance(rule, bool):
        parsed = "<=", float(rule)
    else:
        text = str(rule).strip()
        for op in ("<=", ">="):
            if text.startswith(op):
                with contextlib.suppress(ValueError):
                    parsed = op, float(text[len(op) :])
                break
    if parsed is None or not math.isfinite(parsed[1]):
        raise ValueError(f"constraint {rule!r}: expected '<= number' or '>= number' (finite)")
    return parsed


def holds_numbers(values: pd.Series) -> bool:
    """A numeric column, or one of Python objects that are all real numbers (missing values
    aside): the one rule the front and the report's number formatting both apply."""
    import numbers

    if pd.api.types.is_numeric_dtype(values):
        return True
    return bool(values.dropna().map(lambda v: isinstance(v, numbers.Real)).all())


def check_numeric_columns(frame: pd.DataFrame, settings: ParetoSettings) -> None:
    """ParetoColumnError when an objective or constraint names a column of ``frame`` that
    does not hold numbers (``model``, ``hardware``: text a front cannot rank)."""
    named = dict.fromkeys([*settings.columns(), *settings.constraints])
    text = [c for c in named if c in frame and not holds_numbers(frame[c])]
    if text:
        raise ParetoColumnError(
            f"pareto objective or constraint {', '.join(text)} is a text column: expected a "
            "numeric result column such as latency_s, energy_j or area_mm2"
        )


def _objective_values(frame: pd.DataFrame, settings: ParetoSettings) -> np.ndarray:
    columns = []
    for objective in settings.objectives:
        column = objective.removeprefix("max:")
        values = frame[column].to_numpy(dtype=float)
        columns.append(-values if objective.startswith("max:") else values)
    return np.column_stack(columns) if columns else np.zeros((len(frame), 0))


def _feasible(frame: pd.DataFrame, settings: ParetoSettings) -> np.ndarray:
    ok = np.ones(len(frame), dtype=bool)
    for column, (op, bound) in settings.constraints.items():
        values = frame[column].to_numpy(dtype=float)
        ok &= values <= bound if op == "<=" else values >= bound
    return ok


def pareto_mask(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """True for rows no other row beats in every column (all minimised) and strictly in one."""
    values = frame[columns].to_numpy(dtype=float)
    keep = np.ones(len(values), dtype=bool)
    for i, row in enumerate(values):
        dominated = np.all(values <= row, axis=1) & np.any(values < row, axis=1)
        keep[i] = not dominated.any()
    return keep


def _eps_dominates(a: np.ndarray, b: np.ndarray, epsilon: float) -> bool:
    """``a`` within ``epsilon`` (relative) of ``b`` or better in every objective."""
    slack = epsilon * np.abs(b)
    return bool(np.all(a <= b + slack))


def pareto_front(frame: pd.DataFrame, settings: ParetoSettings | None = None) -> np.ndarray:
    """True for the rows on the epsilon-Pareto front of ``settings`` (see
    :class:`ParetoSettings`): feasible, not dominated, and not within ``epsilon`` of a
    front design that is no worse than that anywhere (of two within epsilon of each other,
    the one first in objective order stays)."""
    settings = settings or ParetoSettings()
    values = _objective_values(frame, settings)
    feasible = _feasible(frame, settings)
    front = np.zeros(len(frame), dtype=bool)
    candidates = np.flatnonzero(feasible)
    if not len(candidates):
        return front
    sub = values[candidates]
    exact = np.ones(len(candidates), dtype=bool)
    for i, row in enumerate(sub):
        dominated = np.all(sub <= row, axis=1) & np.any(sub < row, axis=1)
        exact[i] = not dominated.any()
    on_front = candidates[exact]
    if settings.epsilon > 0 and len(on_front) > 1:
        order = {row: rank for rank, row in enumerate(np.lexsort(values[on_front].T[::-1]))}
        ranked = {row: order[i] for i, row in enumerate(on_front)}
        kept = []
        for i in on_front:
            beaten = False
            for j in on_front:
                if i == j or not _eps_dominates(values[j], values[i], settings.epsilon):
                    continue
                mutual = _eps_dominates(values[i], values[j], settings.epsilon)
                if not mutual or ranked[j] < ranked[i]:
                    beaten = True
                    break
            if not beaten:
                kept.append(i)
        on_front = np.array(kept or on_front, dtype=int)
    front[on_front] = True
    return front
