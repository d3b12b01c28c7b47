"""``studies.run``: a study from Python, for notebooks, returning its table."""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from studies.spec import StudySpec

__all__ = ["StudyRunError", "run"]


class StudyRunError(RuntimeError):
    """Some design points of a study failed; ``failed`` holds (key, one-line error) pairs
    and ``frame`` the table of the points that finished."""

    def __init__(self, message: str, failed: tuple[tuple[str, str], ...], frame: Any) -> None:
        super().__init__(message)
        self.failed = failed
        self.frame = frame


def run(
    spec: StudySpec | Mapping[str, Any] | str | Path,
    out: str | Path | None = None,
    *,
    jobs: int = 1,
    overrides: Mapping[str, Any] | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Run a study and return its table: one row per design point, the columns ``cosim study
    run`` writes to ``results.parquet`` (configuration, results and the ``key`` column).

    ``spec`` is a built-in study name (``"block-size"``), a YAML file, a mapping of spec
    fields or a :class:`studies.spec.StudySpec`; relative paths in a mapping start at the
    working directory. ``out``: a directory whose store (``out/store``) and masks
    (``out/masks``) keep finished points, so calling again resumes; without it they live in
    a temporary directory for the call. ``jobs``: local worker processes. ``overrides``:
    dotted hardware field -> value for every hardware spec, as ``--set``. Plots and the
    report are the command line's (``cosim study run``/``plot``); this returns the data.

    Raises :class:`studies.spec.StudySpecError` for a bad spec and :class:`StudyRunError`
    when some points fail.

    >>> import studies
    >>> table = studies.run({"name": "tiny", "models": ["bert-tiny"], "seq_lens": [8],
    ...                      "sparsities": [0.5], "patterns": ["block:4x4"]})
    >>> list(table[["pattern", "sparsity"]].itertuples(index=False, name=None))
    [('block:4x4', 0.5)]
    """
    from studies.evaluate import evaluate_point, mask_group, prepare_masks
    from studies.runner import run_points
    from studies.spec import StudySpec, expand, load_spec, spec_from_dict
    from studies.sqlite_store import SqliteStore
    from studies.store import point_key

    if isinstance(spec, StudySpec):
        study, base = spec, Path.cwd()
    elif isinstance(spec, Mapping):
        study, base = spec_from_dict(dict(spec)), Path.cwd()
    else:
        study, base = load_spec(spec)
    points = expand(study, base, overrides=dict(overrides) if overrides else None)
    with tempfile.TemporaryDirectory(prefix="cosim-study-") as scratch:
        root = Path(out) if out is not None else Path(scratch)
        masks = root / "masks"
        keys = [point_key(point) for point in points]
        with SqliteStore(root / "store") as store:
            stored = store.keys()
            prepare_masks([p for p, k in zip(points, keys, strict=True) if k not in stored], masks)
            evaluate = functools.partial(evaluate_point, mask_dir=str(masks.resolve()))
            summary = run_points(
                points,
                evaluate,
                store,
                jobs=jobs,
                progress=progress,
                description=study.name,
                group=mask_group,
                keys=keys,
            )
            frame = store.frame(keys)
    if summary.failed:
        raise StudyRunError(
            f"{len(summary.failed)} of {len(points)} points of study {study.name} failed: "
            + "; ".join(f"{key}: {message}" for key, message in summary.failed[:3]),
            summary.failed,
            frame,
        )
    return frame
