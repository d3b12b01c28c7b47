"""Result store for sweeps: one JSON file per finished design point, keyed by its config.

Layout of a store directory::

    points/<key>.json   {"key", "config", "row", "version", "timing"}, one per finished point

Result fields that measure the machine rather than the design point (``TIMING_FIELDS``: the
simulator's wall time; a store can be given others) are kept out of ``row`` in ``timing``, so
the result table of a spec is bit-identical across runs and backends; ``run.json`` carries
their sum. A point stored with such a field still in its row (by an older version) reads
back with it moved to ``timing``.

``key`` is :func:`point_key` of the point's full configuration (hardware, workload, pattern,
...), the package version and the digest of the package sources
(:func:`studies.source_digest.source_digest`), so a rerun skips finished points and a
changed simulator (any edited source file, not only a new version number) never reuses stale
numbers. Every file is written atomically (temporary file in the same directory, fsync,
rename): a process killed at any moment leaves the old file or the new one, never a torn
one. A file that is torn or corrupt anyway (a crash of some other tool, a full disk) reads
as missing and is rewritten by the next run; it never crashes a reader.

Keys are hex digests and are checked before they become file names, so nothing a spec says
can make the store write outside its directory.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from accel_sim.version import __version__
from safeio.atomic import atomic_write_bytes, atomic_write_text
from safeio.documents import DocumentError, parse_json, read_text
from safeio.limits import BoundedError
from studies.source_digest import source_digest

KEY_LENGTH = 20
POINTS_DIR = "points"
_KEY_RE = re.compile(f"^[0-9a-f]{{{KEY_LENGTH}}}$")
# Distribution names whose versions go into run.json (read from metadata, never imported).
# pandas 3's string dtype keeps None as missing; pandas 2's "str" would write the text "None"
_STR_DTYPE: Any = "str" if int(pd.__version__.split(".")[0]) >= 3 else object
_VERSIONED = ("numpy", "numba", "pandas", "pyarrow", "scipy", "torch", "transformers")
# Row fields that vary from run to run (wall times): stored beside the row, not in the table.
TIMING_FIELDS = frozenset({"simulation_s", "wall_s"})
# A point file holds one configuration and one row: a few kilobytes.
MAX_POINT_BYTES = 16 * 2**20


class StoreError(BoundedError):  # a ValueError, message bounded
    """A configuration or result that cannot be stored; the message names the field."""


def _plain(value: Any, where: str, *, allow_nan: bool) -> Any:
    """``value`` as plain JSON data (dict/list/str/int/float/bool/None), or StoreError."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.generic):
        value = value.item()
        if not isinstance(value, bool | int | float | str):
            raise StoreError(f"{where}: {type(value).__name__} is not JSON data")
        return _plain(value, where, allow_nan=allow_nan)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not allow_nan and not math.isfinite(value):
            raise StoreError(f"{where}: non-finite float {value!r} cannot be hashed")
        return float(value)
    if isinstance(value, Mapping):
        plain = {}
        for name, item in value.items():
            if not isinstance(name, str):
                raise StoreError(f"{where}: key {name!r} is not a string")
            plain[name] = _plain(item, f"{where}.{name}", allow_nan=allow_nan)
        return plain
    if isinstance(value, list | tuple):
        return [_plain(item, f"{where}[{i}]", allow_nan=allow_nan) for i, item in enumerate(value)]
    raise StoreError(f"{where}: {type(value).__name__} value {value!r} is not JSON data")


def _plain_mapping(value: Any, what: str, *, allow_nan: bool) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise StoreError(f"{what} must be a mapping, got {type(value).__name__}")
    plain = {}
    for name, item in value.items():
        if not isinstance(name, str):
            raise StoreError(f"{what}: key {name!r} is not a string")
        plain[name] = _plain(item, f"{what} key {name!r}", allow_nan=allow_nan)
    return plain


def _canonical_json(data: Any) -> str:
    # Python's json writes floats with repr(), the shortest string that reads back exactly.
    return json.dumps(data, sort_keys=True, allow_nan=False, separators=(",", ":"))


def _key_of(config: Mapping[str, Any], version: str, source: str | None = None) -> str:
    """The key of ``config`` computed by package ``version`` from sources ``source``
    (documents stored before the source digest existed have none)."""
    identity: dict[str, Any] = {"config": config, "version": version}
    if source is not None:
        identity["source"] = source
    canonical = _canonical_json(identity)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:KEY_LENGTH]


def point_key(config: Mapping[str, Any]) -> str:
    """A stable hex key for one design point: its full configuration, the package version and
    the digest of the package sources that compute it.

    The key is the same in every process and on every machine running the same code; it
    changes with any value in ``config`` (``1`` and ``1.0`` differ, key order does not
    matter), with the version and with any edit to a source file of the packages.
    """
    return _key_of(_plain_mapping(config, "config", allow_nan=False), __version__, source_digest())


def _check_key(key: str) -> str:
    if not isinstance(key, str) or not _KEY_RE.match(key):
        raise StoreError(f"invalid point key {key!r}: expected {KEY_LENGTH} hex digits")
    return key


def consistent_document(key: str, document: Any) -> bool:
    """Whether ``document`` is a whole stored point whose config hashes to ``key`` (a torn,
    edited or foreign document is not, and reads as missing)."""
    if not (
        isinstance(document, dict)
        and document.get("key") == key
        and isinstance(document.get("config"), dict)
        and isinstance(document.get("row"), dict)
        and isinstance(document.get("version"), str)
        and isinstance(document.get("source_digest", ""), str)
    ):
        return False
    try:
        stored = _key_of(document["config"], document["version"], document.get("source_digest"))
    except (TypeError, ValueError):
        return False
    return stored == key


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for name, value in data.items():
        column = f"{prefix}{name}"
        if isinstance(value, Mapping) and value:
            flat.update(_flatten(value, f"{column}."))
        else:
            flat[column] = value
    return flat


def _column(values: list[Any]) -> pd.Series:
    """One column with a dtype that depends only on the values (never on row order luck)."""
    present = [value for value in values if value is not None]
    missing = len(present) < len(values)
    kinds = {type(value) for value in present}
    if not present:
        return pd.Series(values, dtype=object)
    if kinds == {bool}:
        return pd.Series(values, dtype="boolean" if missing else bool)
    if kinds == {int} and all(-(2**63) <= value < 2**63 for value in present):
        return pd.Series(values, dtype="Int64" if missing else "int64")
    if kinds <= {int, float}:
        return pd.Series([math.nan if v is None else float(v) for v in values], dtype="float64")
    if kinds == {str}:
        return pd.Series(values, dtype=_STR_DTYPE)
    # lists, empty dicts, mixed kinds: canonical JSON text, readable back from CSV as well
    encoded = [None if value is None else _canonical_json(value) for value in values]
    return pd.Series(encoded, dtype=_STR_DTYPE)


def _versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    versions["sparse-bert-cosim"] = __version__
    return versions


class ResultStore:
    """Finished design points on disk, one atomically written JSON file per point.

    ``timing_fields`` names the row fields that are wall times (default ``TIMING_FIELDS``):
    :meth:`put` stores them beside the row, :meth:`frame` leaves them out, :meth:`timing`
    sums them.
    """

    def __init__(self, directory: str | Path, timing_fields: Iterable[str] = TIMING_FIELDS) -> None:
        self.directory = Path(directory)
        self.timing_fields = frozenset(timing_fields)
        self.points_dir = self.directory / POINTS_DIR
        self.points_dir.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"ResultStore({str(self.directory)!r})"

    def _path(self, key: str) -> Path:
        return self.points_dir / f"{_check_key(key)}.json"

    def _read(self, key: str) -> dict[str, Any] | None:
        """The stored document for ``key``, or None when missing, torn or inconsistent."""
        path = self._path(key)
        try:  # rows may hold NaN (a metric a point has not); bounded like every document
            document = parse_json(read_text(path, MAX_POINT_BYTES), allow_nan=True)
        except DocumentError:
            return None
        return document if consistent_document(key, document) else None

    def documents(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The readable stored documents of ``keys``, by key (a backend may read them at once)."""
        documents = {}
        for key in keys:
            document = self._read(key)
            if document is not None:
                documents[key] = document
        return documents

    def _split(self, document: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, float]]:
        """A stored document's row without wall times, and its wall times: the ``timing``
        record plus any timing field still in the row (points stored by older versions)."""
        row = {k: v for k, v in document["row"].items() if k not in self.timing_fields}
        timing = document.get("timing")
        fields = {
            **{k: v for k, v in document["row"].items() if k in self.timing_fields},
            **(timing if isinstance(timing, dict) else {}),
        }
        wall = {
            k: float(v)
            for k, v in fields.items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        }
        return row, wall

    # How the runner batches writes (``studies.runner.run_points``): here every point is
    # written the moment it arrives; a transactional backend commits batches.
    commit_points = 1
    commit_seconds = 0.0

    def has(self, key: str) -> bool:
        return self._read(key) is not None

    def document(
        self, key: str, config: Mapping[str, Any], row: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The document :meth:`write` stores for one finished point, checked: ``key`` must be
        ``point_key(config)`` and both must be plain data (else :class:`StoreError`)."""
        _check_key(key)
        plain_config = _plain_mapping(config, "config", allow_nan=False)
        expected = _key_of(plain_config, __version__, source_digest())
        if key != expected:
            raise StoreError(f"key {key} does not match its config (point_key gives {expected})")
        plain_row = _plain_mapping(row, f"result row of point {key}", allow_nan=True)
        return {
            "key": key,
            "config": plain_config,
            "row": {k: v for k, v in plain_row.items() if k not in self.timing_fields},
            "version": __version__,
            "source_digest": source_digest(),
            "timing": {k: v for k, v in plain_row.items() if k in self.timing_fields},
        }

    def write(self, documents: Sequence[Mapping[str, Any]]) -> None:
        """Store documents made by :meth:`document`; here each file is written atomically on
        its own (a backend with transactions stores the batch at once)."""
        for document in documents:
            atomic_write_text(self._path(document["key"]), json.dumps(document, indent=1) + "\n")

    def put(self, key: str, config: Mapping[str, Any], row: Mapping[str, Any]) -> None:
        """Store one finished point atomically; ``key`` must be ``point_key(config)``."""
        self.write([self.document(key, config, row)])

    def keys(self) -> set[str]:
        """Keys of every readable finished point (temporary and torn files are ignored)."""
        found = set()
        for path in self.points_dir.glob("*.json"):
            key = path.stem
            if _KEY_RE.match(key) and self._read(key) is not None:
                found.add(key)
        return found

    def frame(self, order: Sequence[str] | None = None) -> pd.DataFrame:
        """One row per finished point: flattened config columns, result columns, ``key``.

        With ``order`` (a sequence of keys) the rows follow it, keeping the first occurrence
        of each key and leaving out keys that are not stored (failed or not yet run); without
        it every stored point appears, sorted by key. Columns appear in the order first seen;
        a result column named like a config column is renamed ``row.<name>``. Dtypes depend
        only on the values, so the same points give the same frame whatever wrote them; wall
        times (``timing_fields``) are left out (see :meth:`timing`).
        """
        if order is None:
            wanted = sorted(self.keys())
        else:
            wanted = list(dict.fromkeys(_check_key(key) for key in order))
        records: list[dict[str, Any]] = []
        documents = self.documents(wanted)
        for key in wanted:
            document = documents.get(key)
            if document is None:
                continue
            record = _flatten(document["config"])
            row, _ = self._split(document)
            for name, value in _flatten(row).items():
                record[f"row.{name}" if name in record or name == "key" else name] = value
            record["key"] = key
            records.append(record)
        columns = list(dict.fromkeys(name for record in records for name in record))
        if "key" in columns:
            columns.remove("key")
            columns.append("key")
        data = {name: _column([record.get(name) for record in records]) for name in columns}
        if not data:
            return pd.DataFrame({"key": pd.Series([], dtype=_STR_DTYPE)})
        return pd.DataFrame(data)

    def point_timing(self, order: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
        """The wall times of each stored point (of ``order``), by key."""
        keys = sorted(self.keys()) if order is None else list(dict.fromkeys(order))
        documents = self.documents([_check_key(key) for key in keys])
        return {key: self._split(documents[key])[1] for key in keys if key in documents}

    def timing(self, order: Sequence[str] | None = None) -> dict[str, float]:
        """Each wall-time field summed over the stored points (of ``order``)."""
        totals: dict[str, float] = {}
        for fields in self.point_timing(order).values():
            for name, value in fields.items():
                totals[name] = totals.get(name, 0.0) + value
        return totals

    def export(
        self,
        out_dir: str | Path,
        run_info: Mapping[str, Any],
        order: Sequence[str] | None = None,
        *,
        table: pd.DataFrame | None = None,
    ) -> dict[str, Path]:
        """Write ``results.parquet``, ``results.csv`` and ``run.json`` into ``out_dir``.

        ``table`` is what to write (default: :meth:`frame` of ``order``): a study that
        derives columns from the stored rows (the accuracy study's majority-class floor)
        passes its own table, which must keep the ``key`` column. ``run.json`` is
        :meth:`write_run_info`'s. Each file is written atomically.
        """
        if table is None:
            table = self.frame(order)
        elif "key" not in table:
            raise StoreError("an exported table needs the key column of the stored points")
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"parquet": out / "results.parquet", "csv": out / "results.csv"}
        atomic_write_bytes(paths["parquet"], table.to_parquet(index=False, engine="pyarrow"))
        atomic_write_text(paths["csv"], table.to_csv(index=False, lineterminator="\n"))
        paths["run"] = self.write_run_info(out, run_info, table=table)
        return paths

    def write_run_info(
        self,
        out_dir: str | Path,
        run_info: Mapping[str, Any],
        order: Sequence[str] | None = None,
        *,
        table: pd.DataFrame | None = None,
    ) -> Path:
        """Write ``run.json`` alone (atomically): ``run_info`` (spec, seeds, ...) plus the
        versions of Python and the main libraries, the package version and source digest, the
        number of points, their config hashes (in row order), the summed wall times of the
        points (``timing``) and the creation time. For callers that write their own result table."""
        info = _plain_mapping(run_info, "run_info", allow_nan=False)
        if table is None:
            table = self.frame(order)
        path = Path(out_dir) / "run.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        run = {
            **info,
            "package_version": __version__,
            "source_digest": source_digest(),
            "versions": _versions(),
            "n_points": len(table),
            "config_hashes": [str(key) for key in table["key"]],
            "timing": self.timing([str(key) for key in table["key"]]),
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        atomic_write_text(path, json.dumps(run, indent=2, allow_nan=False) + "\n")
        return path
