"""studies.store: point keys, atomic point files, torn files, frames and exports."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from studies import store as store_module
from studies.source_digest import PACKAGES, source_digest
from studies.store import ResultStore, StoreError, point_key
from tests.sweep_fixtures import cheap_evaluate, cheap_points

CONFIG = {"hardware": {"rows": 32, "cols": 32, "dataflow": "ws"}, "sparsity": 0.5, "seed": 0}


def _filled(directory: Path, n: int = 5) -> tuple[ResultStore, list[str]]:
    store = ResultStore(directory)
    points = cheap_points(n)
    keys = [point_key(point) for point in points]
    for key, point in zip(keys, points, strict=True):
        store.put(key, point, cheap_evaluate(point))
    return store, keys


def test_key_is_stable_across_processes() -> None:
    code = (
        "import json, sys; from studies.store import point_key; "
        "print(point_key(json.loads(sys.argv[1])))"
    )
    other = subprocess.run(
        [sys.executable, "-c", code, json.dumps(CONFIG)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
        env={**os.environ, "PYTHONHASHSEED": "123"},
    )
    assert other.stdout.strip() == point_key(CONFIG)
    assert len(point_key(CONFIG)) == 20
    assert all(c in "0123456789abcdef" for c in point_key(CONFIG))


def test_key_ignores_key_order_and_accepts_numpy_scalars() -> None:
    reordered = {"seed": 0, "sparsity": 0.5, "hardware": {"dataflow": "ws", "cols": 32, "rows": 32}}
    assert point_key(reordered) == point_key(CONFIG)
    numpy_config = {**CONFIG, "sparsity": np.float64(0.5), "seed": np.int64(0)}
    assert point_key(numpy_config) == point_key(CONFIG)


@pytest.mark.parametrize(
    "change",
    [
        {"sparsity": 0.5000000000000001},
        {"sparsity": 0.25},
        {"seed": 1},
        {"seed": 0.0},  # 0 and 0.0 are different configurations
        {"seed": False},
        {"hardware": {"rows": 32, "cols": 32, "dataflow": "os"}},
        {"extra": None},
    ],
)
def test_key_changes_with_any_value(change: dict) -> None:
    assert point_key({**CONFIG, **change}) != point_key(CONFIG)


def test_key_changes_with_the_package_version(monkeypatch: pytest.MonkeyPatch) -> None:
    before = point_key(CONFIG)
    monkeypatch.setattr(store_module, "__version__", "999.0.0")
    assert point_key(CONFIG) != before


def _copy_packages(target: Path) -> Path:
    root = Path(__file__).resolve().parent.parent
    for package in PACKAGES:
        shutil.copytree(
            root / package, target / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    return target


def _key_in(site: Path, cwd: Path) -> dict:
    code = (
        "import json, sys; from studies.store import point_key; "
        "from studies.source_digest import source_digest; "
        "print(json.dumps({'key': point_key(json.loads(sys.argv[1])), 'src': source_digest()}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(CONFIG)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(site)},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_key_changes_when_a_source_file_changes(tmp_path: Path) -> None:
    """Two copies of the packages give the same key; multiplying the MAC energy by 100 in
    one of them (the same version number) gives another key, so no stale point is reused."""
    first = _copy_packages(tmp_path / "first")
    second = _copy_packages(tmp_path / "second")
    same = _key_in(first, tmp_path), _key_in(second, tmp_path)
    assert same[0] == same[1]
    energy = second / "accel_sim" / "energy.py"
    energy.write_text(energy.read_text() + "\nMAC_ENERGY_SCALE = 100.0\n")
    edited = _key_in(second, tmp_path)
    assert edited["src"] != same[0]["src"]
    assert edited["key"] != same[0]["key"]
    assert _key_in(first, tmp_path) == same[0]


def test_a_point_stored_by_other_sources_is_not_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ResultStore(tmp_path)
    old = point_key(CONFIG)
    store.put(old, CONFIG, {"x": 1})
    monkeypatch.setattr(store_module, "source_digest", lambda: "0" * 16)
    new = point_key(CONFIG)
    assert new != old
    assert not store.has(new)
    assert store.has(old)  # the old point is still readable (and consistent), just not hit


def test_run_json_records_the_source_digest(tmp_path: Path) -> None:
    store, _ = _filled(tmp_path / "store")
    run = json.loads(store.write_run_info(tmp_path, {"study": "x"}).read_text())
    assert run["source_digest"] == source_digest()
    assert len(run["source_digest"]) == 16


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ({"a": 1, "when": object()}, "when"),
        ({"hw": {"rows": {1, 2}}}, "rows"),
        ({"sparsity": float("nan")}, "sparsity"),
        ({"hw": {"bandwidth": float("inf")}}, "bandwidth"),
        ({"path": Path("x")}, "path"),
    ],
)
def test_non_json_config_names_the_key(config: dict, named: str) -> None:
    with pytest.raises(StoreError, match=named):
        point_key(config)


def test_put_and_read_back(tmp_path: Path) -> None:
    store, keys = _filled(tmp_path)
    assert store.keys() == set(keys)
    assert all(store.has(key) for key in keys)
    document = json.loads((tmp_path / "points" / f"{keys[0]}.json").read_text())
    assert set(document) == {"key", "config", "row", "version", "source_digest", "timing"}
    assert document["key"] == keys[0]
    assert document["config"] == cheap_points(1)[0]


def test_put_rejects_a_key_that_is_not_the_configs(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    with pytest.raises(StoreError, match="does not match"):
        store.put(point_key({"a": 2}), {"a": 1}, {"x": 1})


@pytest.mark.parametrize("key", ["../../escape", "/etc/passwd", "ABCDEF", "0" * 19, "g" * 20])
def test_keys_cannot_become_paths_outside_the_store(tmp_path: Path, key: str) -> None:
    store = ResultStore(tmp_path / "store")
    with pytest.raises(StoreError, match="invalid point key"):
        store.put(key, {"a": 1}, {"x": 1})
    with pytest.raises(StoreError, match="invalid point key"):
        store.has(key)
    with pytest.raises(StoreError, match="invalid point key"):
        store.frame([key])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]


def test_non_json_row_names_the_column(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    key = point_key({"a": 1})
    with pytest.raises(StoreError, match="latency"):
        store.put(key, {"a": 1}, {"cycles": 3, "latency": object()})
    assert not store.has(key)


def test_crash_during_put_keeps_the_old_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ResultStore(tmp_path)
    config = {"a": 1}
    key = point_key(config)
    store.put(key, config, {"cycles": 1})
    before = (tmp_path / "points" / f"{key}.json").read_bytes()

    def crash(*args, **kwargs):
        raise OSError("simulated crash at the rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        store.put(key, config, {"cycles": 2})
    other = {"a": 2}
    with pytest.raises(OSError, match="simulated crash"):
        store.put(point_key(other), other, {"cycles": 3})
    monkeypatch.undo()

    assert (tmp_path / "points" / f"{key}.json").read_bytes() == before
    assert store.keys() == {key}
    assert store.frame()["cycles"].tolist() == [1]
    assert sorted(p.name for p in (tmp_path / "points").iterdir()) == [f"{key}.json"]


def test_leftover_temp_files_are_ignored(tmp_path: Path) -> None:
    store, keys = _filled(tmp_path, 3)
    # what a writer SIGKILLed between write and rename leaves behind
    (tmp_path / "points" / f".{keys[0]}.json.abc123.tmp").write_text('{"key": ')
    (tmp_path / "points" / "notes.json").write_text("{}")
    assert store.keys() == set(keys)
    assert len(store.frame()) == 3


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b'{"key": "trunc',
        b"\xff\xfe garbage",
        b"[1, 2, 3]",
        b'{"key": "0000", "config": {}, "row": {}, "version": "0.1.0"}',
    ],
)
def test_torn_point_file_reads_as_missing_and_is_rewritten(tmp_path: Path, content: bytes) -> None:
    store, keys = _filled(tmp_path, 3)
    (tmp_path / "points" / f"{keys[1]}.json").write_bytes(content)
    assert not store.has(keys[1])
    assert store.keys() == {keys[0], keys[2]}
    assert len(store.frame(keys)) == 2
    point = cheap_points(3)[1]
    store.put(keys[1], point, cheap_evaluate(point))
    assert store.keys() == set(keys)


def test_tampered_config_reads_as_missing(tmp_path: Path) -> None:
    store, keys = _filled(tmp_path, 2)
    path = tmp_path / "points" / f"{keys[0]}.json"
    document = json.loads(path.read_text())
    document["config"]["a"] = 999
    path.write_text(json.dumps(document))
    assert store.keys() == {keys[1]}


def test_frame_follows_the_given_order(tmp_path: Path) -> None:
    store, keys = _filled(tmp_path, 6)
    order = [keys[4], keys[0], keys[4], keys[2]]
    frame = store.frame(order)
    assert frame["key"].tolist() == [keys[4], keys[0], keys[2]]
    assert frame["a"].tolist() == [4, 0, 2]
    assert store.frame()["key"].tolist() == sorted(keys)
    assert list(frame.columns[:5]) == ["a", "b", "scale", "hw.name", "product"]
    assert frame.columns[-1] == "key"


def test_frame_dtypes_depend_only_on_values(tmp_path: Path) -> None:
    store, keys = _filled(tmp_path, 6)
    frame = store.frame(keys)
    assert frame["a"].dtype == np.int64
    assert frame["ratio"].dtype == np.float64
    assert frame["even"].dtype == bool
    assert frame["maybe"].dtype == "Int64"
    assert frame["never"].isna().all()
    reversed_frame = store.frame(keys[::-1])
    assert dict(reversed_frame.dtypes) == dict(frame.dtypes)


def test_row_column_named_like_config_is_kept_apart(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    config = {"a": 1, "hw": {"rows": 8, "shape": [8, 8]}}
    key = point_key(config)
    store.put(key, config, {"a": 10, "key": "x", "cycles": 5})
    frame = store.frame()
    assert frame.loc[0, "a"] == 1
    assert frame.loc[0, "row.a"] == 10
    assert frame.loc[0, "row.key"] == "x"
    assert frame.loc[0, "key"] == key
    assert frame.loc[0, "hw.shape"] == "[8,8]"


def test_empty_store_frame(tmp_path: Path) -> None:
    frame = ResultStore(tmp_path).frame()
    assert len(frame) == 0
    assert list(frame.columns) == ["key"]


def test_export_round_trips(tmp_path: Path) -> None:
    store, keys = _filled(tmp_path / "store", 7)
    order = keys[::-1]
    run_info = {"spec": {"name": "demo"}, "seeds": [0, 1]}
    paths = store.export(tmp_path / "out", run_info, order)
    assert set(paths) == {"parquet", "csv", "run"}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "results.csv",
        "results.parquet",
        "run.json",
    ]
    frame = store.frame(order)
    pd.testing.assert_frame_equal(pd.read_parquet(paths["parquet"]), frame, check_exact=True)

    from_csv = pd.read_csv(paths["csv"], keep_default_na=False)
    assert from_csv.columns.tolist() == frame.columns.tolist()
    for column in ["a", "b", "scale", "ratio", "scaled", "product", "even", "label", "key"]:
        assert from_csv[column].tolist() == frame[column].tolist(), column

    run = json.loads(paths["run"].read_text())
    assert run["spec"] == {"name": "demo"}
    assert run["seeds"] == [0, 1]
    assert run["n_points"] == 7
    assert run["config_hashes"] == order
    assert run["package_version"] == store_module.__version__
    assert {"python", "numpy", "pandas", "pyarrow", "numba", "torch"} <= set(run["versions"])
    assert "created" in run


def test_export_is_byte_identical_for_the_same_points(tmp_path: Path) -> None:
    store, keys = _filled(tmp_path / "a", 5)
    again, _ = _filled(tmp_path / "b", 5)
    first = store.export(tmp_path / "out1", {}, keys)
    second = again.export(tmp_path / "out2", {}, keys)
    for name in ("parquet", "csv"):
        assert first[name].read_bytes() == second[name].read_bytes()


def test_export_rejects_non_json_run_info(tmp_path: Path) -> None:
    store, keys = _filled(tmp_path, 2)
    with pytest.raises(StoreError, match="seed"):
        store.export(tmp_path / "out", {"seed": object()}, keys)


def test_missing_values_survive_parquet(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "store")
    rows = [
        ({"a": 1}, {"label": "x", "flag": True, "count": 3, "shape": [1, 2]}),
        ({"a": 2}, {"extra": 0.5}),
    ]
    keys = []
    for config, row in rows:
        keys.append(point_key(config))
        store.put(keys[-1], config, row)
    frame = store.frame(keys)
    assert frame["label"].isna().tolist() == [False, True]
    assert frame["flag"].dtype == "boolean"
    assert frame["count"].dtype == "Int64"
    assert frame["shape"].tolist()[0] == "[1,2]"
    paths = store.export(tmp_path / "out", {}, keys)
    pd.testing.assert_frame_equal(pd.read_parquet(paths["parquet"]), frame, check_exact=True)


def test_timing_fields_live_beside_the_row_and_legacy_rows_move_out(tmp_path: Path) -> None:
    store = ResultStore(tmp_path, timing_fields={"seconds", "simulation_s"})
    new, old = {"a": 1}, {"a": 2}
    store.put(point_key(new), new, {"cycles": 1, "seconds": 2.0, "simulation_s": 0.5})
    document = json.loads(store._path(point_key(new)).read_text())
    assert document["row"] == {"cycles": 1}
    assert document["timing"] == {"seconds": 2.0, "simulation_s": 0.5}
    # a point written by a version that kept its wall time in the row (and no timing record)
    store.put(point_key(old), old, {"cycles": 3})
    path = store._path(point_key(old))
    legacy = json.loads(path.read_text())
    legacy["row"]["seconds"] = 4.0
    del legacy["timing"]
    path.write_text(json.dumps(legacy))
    keys = [point_key(new), point_key(old)]
    frame = store.frame(keys)
    assert "seconds" not in frame.columns and frame["cycles"].tolist() == [1, 3]
    assert store.point_timing(keys) == {
        keys[0]: {"seconds": 2.0, "simulation_s": 0.5},
        keys[1]: {"seconds": 4.0},
    }
    assert store.timing(keys) == {"seconds": 6.0, "simulation_s": 0.5}
    assert "seconds" in ResultStore(tmp_path).frame(keys).columns  # not a default field
