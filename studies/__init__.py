"""Design-space studies of sparse BERT on accelerators: specs, sweeps, the result store,
plots and the ``cosim`` command line.

From Python, :func:`run` sweeps a study and returns its table::

    import studies
    table = studies.run("block-size")            # a built-in, a YAML file or a mapping
    table.groupby("pattern")["speedup"].max()

Names are imported on first use, so ``import studies`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from studies.api import StudyRunError, run
    from studies.spec import StudySpec, StudySpecError, builtin_names, expand, load_spec
    from studies.store import ResultStore, point_key

_EXPORTS = {
    "run": "studies.api",
    "StudyRunError": "studies.api",
    "StudySpec": "studies.spec",
    "StudySpecError": "studies.spec",
    "builtin_names": "studies.spec",
    "expand": "studies.spec",
    "load_spec": "studies.spec",
    "ResultStore": "studies.store",
    "point_key": "studies.store",
}

__all__ = [
    "ResultStore",
    "StudyRunError",
    "StudySpec",
    "StudySpecError",
    "builtin_names",
    "expand",
    "load_spec",
    "point_key",
    "run",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'studies' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
