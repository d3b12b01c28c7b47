"""Determinism: the same spec and seed give bit-identical result tables, run after run and on
every backend (in-process, loky processes, Dask), with the real point evaluation."""

from __future__ import annotations

import functools
from pathlib import Path

import pandas as pd

from studies.evaluate import evaluate_point, prepare_masks
from studies.runner import run_points
from studies.spec import expand, spec_from_dict
from studies.store import TIMING_FIELDS, ResultStore

SPEC = {
    "name": "determinism",
    "models": ["bert-tiny"],
    "seq_lens": [8],
    "seed": 3,
    "hardware": ["systolic-32x32-ws"],
    "grid": {"pe_array": [{"rows": 8, "cols": 8}], "sparse.zero_handling": ["skipping"]},
    "sparsities": [0.5],
    "patterns": [
        "block:4x4",
        "unstructured",
        "dense",
        {"pattern": "nm:2:4", "grid": {"sparse.zero_handling": ["nm"]}},
    ],
}


def _sweep(directory: Path, **backend) -> tuple[pd.DataFrame, dict[str, bytes]]:
    points = expand(spec_from_dict(SPEC))
    mask_dir = directory / "masks"
    prepare_masks(points, mask_dir)
    store = ResultStore(directory / "store")
    evaluate = functools.partial(evaluate_point, mask_dir=str(mask_dir))
    summary = run_points(points, evaluate, store, progress=False, **backend)
    assert summary.failed == () and summary.done == len(points)
    paths = store.export(directory / "out", {"spec": SPEC}, summary.keys)
    files = {kind: paths[kind].read_bytes() for kind in ("parquet", "csv")}
    return store.frame(summary.keys), files


def test_same_spec_and_seed_give_identical_tables_across_runs_and_backends(tmp_path: Path):
    frame, files = _sweep(tmp_path / "first")
    assert len(frame) == 4 and not (set(frame.columns) & TIMING_FIELDS)
    assert frame["speedup"].notna().all()
    for name, backend in {
        "second": {},
        "loky": {"jobs": 2},
        "dask": {"dask_workers": 1},
    }.items():
        other, other_files = _sweep(tmp_path / name, **backend)
        pd.testing.assert_frame_equal(other, frame, check_exact=True)
        assert other_files == files, name  # byte-identical results.parquet and results.csv


def test_wall_times_live_in_run_json_not_in_the_table(tmp_path: Path) -> None:
    import json

    frame, files = _sweep(tmp_path)
    assert b"simulation_s" not in files["csv"]
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["timing"]["simulation_s"] > 0
    assert run["n_points"] == len(frame)
