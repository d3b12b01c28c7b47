"""Result store for large sweeps: every finished point a row of one SQLite database.

Layout of a store directory::

    points.sqlite        table points(key, document): the JSON document of each point
    points.sqlite-wal    SQLite's write-ahead log (and -shm, its index) while it is open

The documents, keys and checks are :class:`~studies.store.ResultStore`'s (same key, same
``config``/``row``/``timing`` split, same frames and exports); only where they live
differs. One JSON file per point costs a file, an fsync and a directory fsync each: on two
cores that dominates a sweep of millisecond points (issue 18). Here the runner commits a
batch of points in one transaction (``commit_points`` or ``commit_seconds``, whichever comes
first), with ``synchronous=FULL`` in WAL mode (https://sqlite.org/wal.html): a committed
batch survives a killed process or a power cut, an uncommitted one is rolled back whole,
so a point is either stored whole or missing, and a rerun recomputes only the missing
ones.

A study directory written by the per-point JSON store (``points/<key>.json``) is imported
once, the first time this store opens it: every readable point goes into the database in one
transaction (the files stay as they were and are no longer read). A file at
``points.sqlite`` that is not such a database (another program's, a corrupt one) is refused
with one :class:`~studies.store.StoreError` naming it; nothing is written to it. Neither the
database nor its ``-wal``/``-shm``/``-journal`` companions may be a symbolic link or a special
file, so a planted link cannot carry a write out of the directory.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import stat
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from studies.store import (
    MAX_POINT_BYTES,
    POINTS_DIR,
    TIMING_FIELDS,
    ResultStore,
    StoreError,
    consistent_document,
)

DB_FILE = "points.sqlite"
# PRAGMA application_id marks the file as ours ("SBCS"); user_version is the schema version.
APPLICATION_ID = 0x53424353
SCHEMA_VERSION = 1
_COMPANIONS = ("", "-wal", "-shm", "-journal")
_SCHEMA = (
    "CREATE TABLE points (key TEXT PRIMARY KEY, document TEXT NOT NULL) WITHOUT ROWID",
    "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
)
# Wait this long for another process's write lock (a second run on the same directory).
BUSY_TIMEOUT_S = 30.0
# SQLite's limit on the variables of one statement is 32,766 by default; stay well under.
_KEYS_PER_QUERY = 500


def _refuse_links(path: Path) -> None:
    for suffix in _COMPANIONS:
        candidate = path.with_name(path.name + suffix)
        try:
            mode = candidate.lstat().st_mode
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(mode):
            kind = "a symbolic link" if stat.S_ISLNK(mode) else "not a regular file"
            raise StoreError(
                f"result store file {candidate} is {kind}: expected a plain file written by "
                "this program (move it away)"
            )


class SqliteStore(ResultStore):
    """Finished design points in one SQLite database (WAL mode), written in batches.

    Same interface and results as :class:`~studies.store.ResultStore`; :meth:`write` stores
    a whole batch in one transaction. Close it with :meth:`close` (or use it as a context
    manager); a store left open is closed when it is garbage collected.
    """

    commit_points = 1000
    commit_seconds = 1.0

    def __init__(self, directory: str | Path, timing_fields: Iterable[str] = TIMING_FIELDS) -> None:
        self.directory = Path(directory)
        self.timing_fields = frozenset(timing_fields)
        self.path = self.directory / DB_FILE
        self.directory.mkdir(parents=True, exist_ok=True)
        _refuse_links(self.path)
        self._connection = self._open()
        try:
            self._import_json_points()
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.directory)!r})"

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        connection = getattr(self, "_connection", None)
        if connection is not None:
            connection.close()
            self._connection = None

    def _foreign(self, why: str) -> StoreError:
        return StoreError(
            f"{self.path} is not a result store of this program ({why}): move it away or "
            "choose another output directory"
        )

    def _open(self) -> sqlite3.Connection:
        # isolation_level=None: transactions are the explicit BEGIN ... COMMIT below.
        connection = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        try:
            identity = self._identity(connection)
            if identity == (APPLICATION_ID, SCHEMA_VERSION, True):
                if connection.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                    raise self._foreign("its integrity check fails")
            elif identity != (0, 0, False):  # anything but an empty database is not ours
                application_id, version, _ = identity
                raise self._foreign(
                    f"application_id {application_id:#x}, user_version {version}; expected "
                    f"{APPLICATION_ID:#x}, {SCHEMA_VERSION}"
                )
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")
            if identity == (0, 0, False):
                self._create_schema(connection)
        except sqlite3.DatabaseError as error:
            connection.close()
            raise self._foreign(" ".join(str(error).split())) from None
        except BaseException:
            connection.close()
            raise
        return connection

    @staticmethod
    def _identity(connection: sqlite3.Connection) -> tuple[int, int, bool]:
        """(application_id, user_version, whether the file holds any table)."""
        application_id = connection.execute("PRAGMA application_id").fetchone()[0]
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        tables = connection.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        return application_id, version, tables > 0

    def _create_schema(self, connection: sqlite3.Connection) -> None:
        """Make an empty database ours, unless another process did it first."""
        connection.execute("BEGIN IMMEDIATE")
        if self._identity(connection) == (APPLICATION_ID, SCHEMA_VERSION, True):
            connection.execute("COMMIT")
            return
        for statement in _SCHEMA:
            connection.execute(statement)
        connection.execute(f"PRAGMA application_id={APPLICATION_ID}")
        connection.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        connection.execute("COMMIT")

    def _query(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        if self._connection is None:
            raise StoreError(f"{self!r} is closed")
        try:
            return self._connection.execute(sql, parameters).fetchall()
        except sqlite3.DatabaseError as error:
            raise self._foreign(" ".join(str(error).split())) from None

    def _import_json_points(self) -> None:
        """Points of the per-point JSON layout, once (marked in ``meta``)."""
        legacy = self.directory / POINTS_DIR
        if not legacy.is_dir() or self._query("SELECT 1 FROM meta WHERE name = 'json_imported'"):
            return
        old = ResultStore(self.directory, self.timing_fields)
        documents = list(old.documents(sorted(old.keys())).values())
        self._commit(documents, ("json_imported", str(len(documents))))

    def _commit(
        self, documents: Sequence[Mapping[str, Any]], meta: tuple[str, str] | None = None
    ) -> None:
        rows = [
            (document["key"], json.dumps(document, separators=(",", ":"))) for document in documents
        ]
        if self._connection is None:
            raise StoreError(f"{self!r} is closed")
        try:
            self._connection.execute("BEGIN IMMEDIATE")
            try:
                self._connection.executemany("INSERT OR REPLACE INTO points VALUES (?, ?)", rows)
                if meta is not None:
                    self._connection.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", meta)
                self._connection.execute("COMMIT")
            except BaseException:
                if self._connection.in_transaction:  # SQLite ends some failed ones itself
                    self._connection.execute("ROLLBACK")
                raise
        except sqlite3.DatabaseError as error:
            message = " ".join(str(error).split())
            if isinstance(error, sqlite3.OperationalError) and "full" in message:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path)) from None
            raise OSError(
                errno.EIO, f"cannot write the result store ({message})", str(self.path)
            ) from None

    def write(self, documents: Sequence[Mapping[str, Any]]) -> None:
        """Store documents made by :meth:`document`, all in one transaction."""
        if documents:
            self._commit(documents)

    def _read(self, key: str) -> dict[str, Any] | None:
        return self.documents([key]).get(key)

    def documents(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        wanted = list(dict.fromkeys(keys))
        documents: dict[str, dict[str, Any]] = {}
        for start in range(0, len(wanted), _KEYS_PER_QUERY):
            chunk = wanted[start : start + _KEYS_PER_QUERY]
            marks = ",".join("?" * len(chunk))
            rows = self._query(f"SELECT key, document FROM points WHERE key IN ({marks})", chunk)
            documents.update(self._parsed(rows))
        return documents

    @staticmethod
    def _parsed(rows: Iterable[tuple[Any, Any]]) -> dict[str, dict[str, Any]]:
        """The consistent documents of ``(key, text)`` rows; others read as missing.

        Rows are parsed with plain ``json.loads``, not ``safeio.documents.parse_json``, whose
        walk over every value costs three times the parse itself on 10,000 points: a row is
        at most ``MAX_POINT_BYTES``, and CPython bounds the rest (an integer past
        ``sys.get_int_max_str_digits()`` digits is a ValueError, deep nesting a
        RecursionError), so a hostile row still reads as missing, never as a crash.
        """
        documents = {}
        for key, text in rows:
            if not isinstance(text, str) or len(text) > MAX_POINT_BYTES:
                continue
            try:
                document = json.loads(text)
            except (ValueError, RecursionError):
                continue
            if consistent_document(key, document):
                documents[key] = document
        return documents

    def keys(self) -> set[str]:
        """Keys of every readable finished point."""
        return set(self._parsed(self._query("SELECT key, document FROM points")))
