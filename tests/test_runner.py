"""studies.runner: every backend gives the same table; kills lose nothing, duplicate nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from studies.runner import (
    WORKER_GROWTH_BYTES,
    RunSummary,
    _chunk_outcomes,
    local_cluster,
    loky_pool,
    run_points,
)
from studies.store import ResultStore, point_key
from tests import sweep_fixtures as fx

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    """One 2-worker LocalCluster shared by the Dask tests of this module."""
    with local_cluster(2, retries=2) as cluster:
        yield cluster.scheduler_address


def _run(points, evaluate, directory: Path, **kwargs) -> tuple[RunSummary, ResultStore]:
    store = ResultStore(directory)
    summary = run_points(points, evaluate, store, progress=False, **kwargs)
    return summary, store


def _point_files(store: ResultStore) -> list[Path]:
    return sorted(store.points_dir.glob("*.json"))


def test_inline_loky_and_dask_give_identical_tables(tmp_path: Path, scheduler: str) -> None:
    points = fx.sim_points(6)
    keys = [point_key(point) for point in points]
    frames, exports = {}, {}
    backends = {"inline": {}, "loky": {"jobs": 2}, "dask": {"scheduler": scheduler}}
    for name, options in backends.items():
        summary, store = _run(points, fx.simulate_evaluate, tmp_path / name, **options)
        assert summary == RunSummary(6, 6, 0, (), tuple(keys)), name
        frames[name] = store.frame(keys)
        exports[name] = store.export(tmp_path / f"out-{name}", {"backend": "any"}, keys)
    frame = frames["inline"]
    assert frame["pe_array.rows"].tolist() == [8, 16, 8, 32, 16, 4]
    assert (frame["cycles"] > 0).all()
    assert frame["hw_hash"].nunique() == 6
    for name in ("loky", "dask"):
        pd.testing.assert_frame_equal(frames[name], frame, check_exact=True)
        for kind in ("parquet", "csv"):
            assert exports[name][kind].read_bytes() == exports["inline"][kind].read_bytes()


def test_local_cluster_from_dask_workers_matches_inline(tmp_path: Path) -> None:
    points = fx.cheap_points(12)
    keys = [point_key(point) for point in points]
    _, inline = _run(points, fx.cheap_evaluate, tmp_path / "inline")
    summary, dask = _run(points, fx.cheap_evaluate, tmp_path / "dask", dask_workers=2)
    assert (summary.done, summary.failed) == (12, ())
    pd.testing.assert_frame_equal(dask.frame(keys), inline.frame(keys), check_exact=True)


def test_duplicates_run_once_and_a_rerun_skips_everything(tmp_path: Path) -> None:
    points = fx.cheap_points(5)
    summary, store = _run(points + points[:2] + [dict(points[0])], fx.cheap_evaluate, tmp_path)
    assert (summary.total, summary.done, summary.skipped) == (5, 5, 0)
    assert summary.keys == tuple(point_key(point) for point in points)
    again, _ = _run(points, fx.failing_evaluate, tmp_path, jobs=2)
    assert (again.total, again.done, again.skipped, again.failed) == (5, 0, 5, ())
    assert len(_point_files(store)) == 5


@pytest.mark.parametrize("backend", ["inline", "loky", "dask"])
def test_a_failing_point_does_not_stop_the_sweep(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    options = {"inline": {}, "loky": {"jobs": 2}}.get(backend)
    if options is None:
        options = {"scheduler": request.getfixturevalue("scheduler")}
    points = fx.cheap_points(6)
    summary, store = _run(points, fx.failing_evaluate, tmp_path, **options)
    bad = point_key(points[3])
    assert summary.failed == ((bad, "ValueError: bad point second line of the message"),)
    assert (summary.done, summary.skipped) == (5, 0)
    assert store.keys() == {point_key(p) for p in points} - {bad}
    # a rerun tries the failed point again and only that one
    rerun, _ = _run(points, fx.cheap_evaluate, tmp_path)
    assert (rerun.done, rerun.skipped, rerun.failed) == (1, 5, ())


def test_given_keys_are_used_and_a_wrong_one_fails_its_point(tmp_path: Path) -> None:
    points = fx.cheap_points(3)
    keys = [point_key(point) for point in points]
    summary, store = _run(points, fx.cheap_evaluate, tmp_path, keys=keys)
    assert (summary.done, summary.keys) == (3, tuple(keys))
    swapped, other = _run(points[:2], fx.cheap_evaluate, tmp_path / "b", keys=keys[1::-1])
    assert (swapped.done, [key for key, _ in swapped.failed]) == (0, keys[1::-1])
    assert all("does not match its config" in message for _, message in swapped.failed)
    assert other.keys() == set()
    with pytest.raises(ValueError, match="keys: expected one per point"):
        run_points(points, fx.cheap_evaluate, store, keys=keys[:2], progress=False)


def test_evaluate_returning_a_non_mapping_fails_that_point(tmp_path: Path) -> None:
    summary, store = _run([{"a": 1}], len, tmp_path)
    assert summary.failed[0][1] == "TypeError: evaluate returned int, not a mapping"
    assert store.keys() == set()


def test_sigkilled_sweep_resumes_with_every_point_once(tmp_path: Path) -> None:
    n = 40
    store_dir = tmp_path / "store"
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.sweep_fixtures", str(store_dir), str(n), "0.05"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    points_dir = store_dir / "points"
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if points_dir.is_dir() and len(list(points_dir.glob("*.json"))) >= 5:
                break
            assert process.poll() is None, "the sweep ended before it could be killed"
            time.sleep(0.01)
        else:
            pytest.fail("the sweep stored nothing within 60 s")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL

    store = ResultStore(store_dir)
    before = store.keys()
    assert 5 <= len(before) < n
    summary, _ = _run(fx.cheap_points(n), fx.cheap_evaluate, store_dir)
    assert (summary.done, summary.skipped, summary.failed) == (n - len(before), len(before), ())

    files = _point_files(store)
    assert len(files) == n
    assert sorted(json.loads(path.read_text())["key"] for path in files) == sorted(summary.keys)
    _, clean = _run(fx.cheap_points(n), fx.cheap_evaluate, tmp_path / "clean")
    pd.testing.assert_frame_equal(
        store.frame(summary.keys), clean.frame(summary.keys), check_exact=True
    )


def test_dask_worker_killed_mid_sweep_is_retried(tmp_path: Path, scheduler: str) -> None:
    points = [
        {**point, "crash_at": 4, "marker_dir": str(tmp_path)} for point in fx.cheap_points(10)
    ]
    summary, store = _run(points, fx.crash_once_evaluate, tmp_path / "store", scheduler=scheduler)
    assert (tmp_path / "crashed-4").exists(), "the worker was never killed"
    assert (summary.done, summary.failed) == (10, ())
    assert store.keys() == set(summary.keys)


class _LostThenRecomputed:
    """A Dask future as the client sees one whose result sat on a worker that died: its
    status reads "lost" while Dask recomputes it, and ``result()`` waits for that."""

    status = "lost"

    def __init__(self, outcomes):
        self._outcomes = outcomes

    def result(self):
        self.status = "finished"
        return self._outcomes


class _Failed:
    status = "error"

    def result(self):
        raise RuntimeError("cannot pickle the evaluate function\n(details)")


def test_a_chunk_lost_with_its_worker_is_read_after_its_recomputation() -> None:
    """A finished chunk whose worker another chunk killed is "lost" when the loop reads it;
    its recomputed outcomes count, not its status (this failed the killed-worker test above
    about one run in five, with the reason "finished")."""
    chunk = [("a", {}), ("b", {})]
    recomputed = [("a", True, {"x": 1}), ("b", True, {"x": 2})]
    assert _chunk_outcomes(_LostThenRecomputed(recomputed), chunk) == recomputed
    failed = _chunk_outcomes(_Failed(), chunk)
    assert failed == [
        ("a", False, "RuntimeError: cannot pickle the evaluate function (details)"),
        ("b", False, "RuntimeError: cannot pickle the evaluate function (details)"),
    ]


def test_loky_worker_killed_mid_sweep_is_retried(tmp_path: Path) -> None:
    points = [
        {**point, "crash_at": 4, "marker_dir": str(tmp_path)} for point in fx.cheap_points(10)
    ]
    summary, store = _run(points, fx.crash_once_evaluate, tmp_path / "store", jobs=2)
    assert (tmp_path / "crashed-4").exists(), "the worker was never killed"
    assert (summary.done, summary.failed) == (10, ())
    assert store.keys() == set(summary.keys)


def test_loky_gives_up_on_a_point_that_always_kills_its_worker(tmp_path: Path) -> None:
    # with retries=0 the first death of the pool, which finished nothing, is final
    points = [{**fx.cheap_points(1)[0], "crash_at": 0, "marker_dir": str(tmp_path)}]
    summary, store = _run(points, fx.crash_once_evaluate, tmp_path / "store", jobs=2, retries=0)
    assert summary.done == 0
    assert len(summary.failed) == 1
    assert "worker died" in summary.failed[0][1]
    assert store.keys() == set()


def test_loky_workers_grow_past_lokys_leak_threshold_and_are_reused(tmp_path: Path) -> None:
    """A worker's caches legitimately grow past loky's 300 MB leak heuristic (about 1 GB on
    BERT-base), so the sweep's workers restart only past ``WORKER_GROWTH_BYTES``; mask
    preparation and the sweep share one config, so the sweep keeps the pool (loky's one
    reusable executor) that a first pool call started."""
    from joblib import Parallel, delayed
    from joblib.externals.loky import reusable_executor

    with loky_pool():
        first = Parallel(n_jobs=2)(delayed(fx.worker_evaluate)({"i": i}) for i in range(4))
    pool = reusable_executor._executor
    _, store = _run([{"i": i} for i in range(8)], fx.worker_evaluate, tmp_path, jobs=2)
    frame = store.frame()
    assert {row["leak_bytes"] for row in first} == {WORKER_GROWTH_BYTES}
    assert set(frame["leak_bytes"]) == {WORKER_GROWTH_BYTES}
    assert pool is not None and reusable_executor._executor is pool
    assert os.getpid() not in set(frame["pid"])  # the points ran in the workers


def test_workers_run_single_threaded_numerics(
    tmp_path: Path, scheduler: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NUMBA_NUM_THREADS", "3")
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    points = [{"i": i} for i in range(4)]
    for name, options in {"loky": {"jobs": 2}, "dask": {"scheduler": scheduler}}.items():
        _, store = _run(points, fx.env_evaluate, tmp_path / name, **options)
        frame = store.frame()
        assert set(frame["numba_threads"]) == {"1"}, name
        assert set(frame["omp_threads"]) == {"1"}, name


def test_progress_bar_has_a_description_and_eta(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ResultStore(tmp_path)
    logged = ResultStore(tmp_path / "logged")
    run_points(fx.cheap_points(2), fx.cheap_evaluate, logged, description="in a log")
    assert capsys.readouterr().err == ""  # not a terminal: no bar in a redirected log
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # a terminal: the bar shows
    run_points(fx.cheap_points(3), fx.cheap_evaluate, store, description="demo sweep")
    err = capsys.readouterr().err
    assert "demo sweep" in err
    assert "3/3" in err
    run_points(fx.cheap_points(4), fx.cheap_evaluate, store, progress=False)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"jobs": 0}, "jobs"),
        ({"retries": -1}, "retries"),
        ({"scheduler": "tcp://x:1", "dask_workers": 2}, "not both"),
        ({"dask_workers": 0}, "dask_workers"),
    ],
)
def test_bad_options_are_rejected(tmp_path: Path, options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        run_points([{"a": 1}], fx.cheap_evaluate, ResultStore(tmp_path), **options)
