"""studies.sqlite_store: the per-point JSON store's results and guarantees in one database.

Same frames and exported bytes as the JSON store; batches commit whole or not at all (a
SIGKILL and a full disk lose the open batch only, which a rerun recomputes); a resume
recomputes nothing; a per-point JSON directory is imported once; a foreign, corrupt or
linked database file is one StoreError naming it, and is left as it was.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from studies.runner import run_points
from studies.sqlite_store import DB_FILE, SqliteStore
from studies.store import ResultStore, StoreError, point_key
from tests import sweep_fixtures as fx

ROOT = Path(__file__).resolve().parent.parent


def _documents(store: ResultStore, points: list[dict]) -> list[dict]:
    return [store.document(point_key(p), p, fx.cheap_evaluate(p)) for p in points]


def test_same_frame_and_exported_bytes_as_the_json_store(tmp_path: Path) -> None:
    points = fx.cheap_points(12)
    keys = [point_key(point) for point in points]
    json_store = ResultStore(tmp_path / "json")
    run_points(points, fx.cheap_evaluate, json_store, progress=False)
    with SqliteStore(tmp_path / "sqlite") as store:
        summary = run_points(points, fx.cheap_evaluate, store, progress=False)
        assert (summary.done, summary.failed) == (12, ())
        assert store.keys() == set(keys)
        pd.testing.assert_frame_equal(store.frame(keys), json_store.frame(keys), check_exact=True)
        assert store.point_timing(keys) == json_store.point_timing(keys)
        ours = store.export(tmp_path / "out-sqlite", {"seed": 0}, keys)
    theirs = json_store.export(tmp_path / "out-json", {"seed": 0}, keys)
    for kind in ("parquet", "csv"):
        assert ours[kind].read_bytes() == theirs[kind].read_bytes()
    assert sorted(p.name for p in (tmp_path / "sqlite").iterdir()) == [DB_FILE]


def test_a_rerun_skips_every_stored_point_and_writes_nothing(tmp_path: Path) -> None:
    points = fx.cheap_points(6)
    with SqliteStore(tmp_path) as store:
        run_points(points, fx.cheap_evaluate, store, progress=False)
    before = (tmp_path / DB_FILE).read_bytes()
    with SqliteStore(tmp_path) as store:  # failing_evaluate would fail point a == 3
        again = run_points(points, fx.failing_evaluate, store, jobs=2, progress=False)
    assert (again.done, again.skipped, again.failed) == (0, 6, ())
    assert (tmp_path / DB_FILE).read_bytes() == before


def test_a_batch_is_one_transaction_and_put_checks_its_key(tmp_path: Path) -> None:
    points = fx.cheap_points(3)
    with SqliteStore(tmp_path) as store:
        store.write(_documents(store, points))
        assert store.keys() == {point_key(p) for p in points}
        assert all(store.has(point_key(p)) for p in points)
        with pytest.raises(StoreError, match="does not match its config"):
            store.put(point_key({"a": 2}), {"a": 1}, {"x": 1})
        assert len(store.keys()) == 3


def test_a_row_that_is_not_a_whole_point_reads_as_missing_and_is_rewritten(
    tmp_path: Path,
) -> None:
    points = fx.cheap_points(3)
    keys = [point_key(p) for p in points]
    with SqliteStore(tmp_path) as store:
        store.write(_documents(store, points))
    connection = sqlite3.connect(tmp_path / DB_FILE)
    with connection:
        connection.execute("UPDATE points SET document = '{\"key\": ' WHERE key = ?", [keys[0]])
        edited = json.loads(
            connection.execute("SELECT document FROM points WHERE key = ?", [keys[1]]).fetchone()[0]
        )
        edited["config"]["a"] = 99  # no longer hashes to its key
        connection.execute(
            "UPDATE points SET document = ? WHERE key = ?", [json.dumps(edited), keys[1]]
        )
    connection.close()
    with SqliteStore(tmp_path) as store:
        assert store.keys() == {keys[2]}
        assert len(store.frame(keys)) == 1
        summary = run_points(points, fx.cheap_evaluate, store, progress=False)
        assert (summary.done, summary.skipped) == (2, 1)
        assert store.keys() == set(keys)


def test_sigkilled_sweep_loses_only_the_open_batch_and_resumes(tmp_path: Path) -> None:
    n = 60
    store_dir = tmp_path / "store"
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.sweep_fixtures", str(store_dir), str(n), "0.05", "sqlite"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if (store_dir / DB_FILE).is_file():
                with SqliteStore(store_dir) as watcher:  # a reader beside the writer (WAL)
                    if len(watcher.keys()) >= 5:
                        break
            assert process.poll() is None, "the sweep ended before it could be killed"
            time.sleep(0.05)
        else:
            pytest.fail("the sweep committed nothing within 60 s")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL

    keys = [point_key(point) for point in fx.cheap_points(n)]
    with SqliteStore(store_dir) as store:
        before = store.keys()
        assert 5 <= len(before) < n and before <= set(keys)
        summary = run_points(fx.cheap_points(n), fx.cheap_evaluate, store, progress=False)
        assert (summary.done, summary.skipped, summary.failed) == (n - len(before), len(before), ())
        with SqliteStore(tmp_path / "clean") as clean:
            run_points(fx.cheap_points(n), fx.cheap_evaluate, clean, progress=False)
            pd.testing.assert_frame_equal(store.frame(keys), clean.frame(keys), check_exact=True)


def test_a_full_disk_keeps_every_committed_batch_and_none_of_the_failed_one(
    tmp_path: Path,
) -> None:
    points = fx.cheap_points(40)
    with SqliteStore(tmp_path) as store:
        store.write(_documents(store, points[:5]))
        pages = store._connection.execute("PRAGMA page_count").fetchone()[0]
        store._connection.execute(f"PRAGMA max_page_count={pages}")  # SQLite's own full disk
        big = [{**p, "padding": "x" * 20_000} for p in points[5:]]
        with pytest.raises(OSError) as raised:
            store.write(
                [store.document(point_key(p), p, fx.cheap_evaluate(p)) for p in big]
            )
        assert raised.value.errno == errno.ENOSPC and DB_FILE in str(raised.value)
        assert store.keys() == {point_key(p) for p in points[:5]}


def test_a_per_point_json_directory_is_imported_once(tmp_path: Path) -> None:
    points = fx.cheap_points(6)
    keys = [point_key(p) for p in points]
    old = ResultStore(tmp_path)
    for point in points[:4]:
        old.put(point_key(point), point, fx.cheap_evaluate(point))
    (old.points_dir / f"{keys[4]}.json").write_text('{"key": ')  # torn: not imported
    with SqliteStore(tmp_path) as store:
        assert store.keys() == set(keys[:4])
        pd.testing.assert_frame_equal(store.frame(keys), old.frame(keys), check_exact=True)
        summary = run_points(points, fx.cheap_evaluate, store, progress=False)
        assert (summary.done, summary.skipped) == (2, 4)
    old.put(keys[5], points[5], {"late": 1})  # written after the import: not read again
    with SqliteStore(tmp_path) as store:
        assert store.keys() == set(keys)
        assert "late" not in store.frame(keys).columns


@pytest.mark.parametrize(
    "content",
    [b"not a database at all, just text" * 100, b"SQLite format 3\x00" + b"\xff" * 4000],
    ids=["text", "torn-header"],
)
def test_a_corrupt_database_file_is_one_error_naming_it(tmp_path: Path, content: bytes) -> None:
    (tmp_path / DB_FILE).write_bytes(content)
    with pytest.raises(StoreError, match=f"{DB_FILE} is not a result store of this program"):
        SqliteStore(tmp_path)
    assert (tmp_path / DB_FILE).read_bytes() == content


def test_another_programs_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    connection = sqlite3.connect(tmp_path / DB_FILE)
    with connection:
        connection.execute("CREATE TABLE notes (text TEXT)")
        connection.execute("INSERT INTO notes VALUES ('keep')")
    connection.close()
    before = (tmp_path / DB_FILE).read_bytes()
    with pytest.raises(StoreError, match="application_id 0x0"):
        SqliteStore(tmp_path)
    assert (tmp_path / DB_FILE).read_bytes() == before


@pytest.mark.parametrize("name", [DB_FILE, f"{DB_FILE}-wal", f"{DB_FILE}-shm"])
def test_a_linked_database_file_cannot_carry_writes_outside(tmp_path: Path, name: str) -> None:
    outside = tmp_path / "outside"
    outside.write_bytes(b"")
    store_dir = tmp_path / "store"
    store_dir.mkdir()
    (store_dir / name).symlink_to(outside)
    with pytest.raises(StoreError, match="is a symbolic link"):
        SqliteStore(store_dir)
    assert outside.read_bytes() == b""
