"""Documents that parse but would break their readers, and manifests that lie (issue 17,
families 2 and 9).

Family 2: every YAML and JSON entry point (hardware YAML, study specs, ``manifest.json``,
model ``config.json``, ``run.json`` and the result store) reads through the one bounded
loader, ``safeio.documents``. Hypothesis draws the whole class of hostile structure - nesting
past the depth limit (flow and block YAML, JSON), integers of hundreds to tens of thousands
of digits (YAML, JSON), YAML alias bombs of any shape, NaN and Infinity in JSON, documents
past the size limit - and each entry point answers with its own error class in one line,
quickly, or (the store) treats the file as missing.

Family 9: every figure a manifest states is checked against the masks; hypothesis perturbs
any one of them (overall nnz, total, density, compression ratio; a matrix's nnz, density or
block occupancy; the list of matrices) and the artifact is refused naming the figure.
Manifests and ``--json`` outputs are strict JSON.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from accel_sim.spec import HardwareConfigError, load_hardware
from pruning.artifact import MANIFEST_FILE, ArtifactError, load_artifact
from safeio import documents
from safeio.documents import DocumentError, parse_json, parse_yaml, read_json
from studies.cli import app
from studies.spec import StudySpecError, load_spec
from studies.store import ResultStore, point_key
from workloads import WorkloadError, build_workload

runner = CliRunner()
SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# ----------------------------------------------------------------------------- documents


def _deep_flow(depth: int) -> str:
    return "a: " + "[" * depth + "]" * depth + "\n"


def _deep_block(depth: int) -> str:
    return "".join(" " * i + "k:\n" for i in range(depth)) + " " * depth + "v: 1\n"


def _alias_bomb(levels: int, fanout: int) -> str:
    lines = [f"l0: &l0 [{', '.join(['1'] * fanout)}]"]
    for level in range(1, levels):
        refs = ", ".join([f"*l{level - 1}"] * fanout)
        lines.append(f"l{level}: &l{level} [{refs}]")
    return "\n".join(lines) + "\n"


yaml_hostile = st.one_of(
    st.integers(documents.MAX_DEPTH + 1, 3000).map(lambda d: ("depth", _deep_flow(d))),
    st.integers(documents.MAX_DEPTH + 1, 600).map(lambda d: ("depth", _deep_block(d))),
    st.integers(documents.MAX_INT_DIGITS + 1, 20000).map(lambda n: ("digits", f"a: {'7' * n}\n")),
    st.integers(documents.MAX_INT_DIGITS + 1, 5000).map(
        lambda n: ("digits", f"a: [1, -{'3' * n}]\n")
    ),
    st.tuples(st.integers(2, 40), st.integers(2, 50))
    .filter(lambda lf: lf[1] ** lf[0] > 2 * documents.MAX_VALUES)
    .map(lambda lf: ("aliases", _alias_bomb(*lf))),
)
json_hostile = st.one_of(
    st.integers(documents.MAX_DEPTH + 1, 5000).map(
        lambda d: ("depth", '{"a": ' + "[" * d + "]" * d + "}")
    ),
    st.integers(documents.MAX_INT_DIGITS + 1, 20000).map(
        lambda n: ("digits", '{"a": ' + "8" * n + "}")
    ),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "-2.5e400"]).map(
        lambda c: ("not JSON", '{"density": ' + c + "}")
    ),
    st.sampled_from(["NaN", "1e999"]).map(
        lambda c: ("not JSON", '{"matrices": [{"name": "q", "density": ' + c + "}]}")
    ),
)
EXPECTED = {
    "depth": "nested deeper than",
    "digits": "digits",
    "aliases": "expands to more than",
    "not JSON": "not JSON",
    "size": "larger than",
}


def _one_line(error: BaseException, kind: str) -> None:
    message = str(error)
    assert "\n" not in message, message
    assert EXPECTED[kind] in message, message
    assert len(message) < 3000


# ----------------------------------------------------------------------------- entry points


def _hardware(tmp: Path, text: str) -> BaseException:
    path = tmp / "hw.yaml"
    path.write_text(text)
    with pytest.raises(HardwareConfigError) as caught:
        load_hardware(path)
    assert str(path) in str(caught.value)
    return caught.value


def _study(tmp: Path, text: str) -> BaseException:
    path = tmp / "spec.yaml"
    path.write_text(text)
    with pytest.raises(StudySpecError) as caught:
        load_spec(path)
    return caught.value


def _manifest(tmp: Path, text: str, artifact: Path) -> BaseException:
    copy = tmp / "artifact"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(artifact, copy)
    (copy / MANIFEST_FILE).write_text(text)
    with pytest.raises(ArtifactError) as caught:
        load_artifact(copy)
    return caught.value


def _config(tmp: Path, text: str) -> BaseException:
    directory = tmp / "model"
    directory.mkdir(exist_ok=True)
    (directory / "config.json").write_text(text)
    with pytest.raises(WorkloadError) as caught:
        build_workload(str(directory))
    return caught.value


def _run_json(tmp: Path, text: str) -> BaseException:
    directory = tmp / "study"
    directory.mkdir(exist_ok=True)
    pd.DataFrame({"key": ["0" * 20]}).to_parquet(directory / "results.parquet")
    (directory / "run.json").write_text(text)
    result = runner.invoke(app, ["study", "plot", str(directory)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines[0].startswith("error:")
    return DocumentError(" ".join(result.output.split()).removeprefix("error: "))


def _store(tmp: Path, text: str) -> None:
    store = ResultStore(tmp / "store")
    key = point_key({"x": 1})
    (store.points_dir / f"{key}.json").write_text(text)
    assert store._read(key) is None  # a hostile point file reads as missing
    assert key not in store.keys()  # noqa: SIM118 (a method of the store, not a dict)


@SETTINGS
@given(case=yaml_hostile)
def test_hostile_yaml_is_one_error_at_every_yaml_entry_point(tmp_path: Path, case) -> None:
    kind, text = case
    for load in (_hardware, _study):
        started = time.perf_counter()
        _one_line(load(tmp_path, text), kind)
        assert time.perf_counter() - started < 10


@SETTINGS
@given(case=json_hostile)
def test_hostile_json_is_one_error_at_every_json_entry_point(tmp_path: Path, pruned, case):
    kind, text = case
    started = time.perf_counter()
    _one_line(_manifest(tmp_path, text, pruned[2]), kind)
    _one_line(_config(tmp_path, text), kind)
    _one_line(_run_json(tmp_path, text), kind)
    _store(tmp_path, text)
    assert time.perf_counter() - started < 20


def test_documents_past_the_size_limit_are_refused_unread(tmp_path: Path, pruned, monkeypatch):
    monkeypatch.setattr(documents, "MAX_JSON_BYTES", 4096)
    big_yaml = "# " + "x" * documents.MAX_YAML_BYTES + "\nname: n\n"
    for load in (_hardware, _study):
        _one_line(load(tmp_path, big_yaml), "size")
    big_json = json.dumps({"pad": "x" * 8192})
    _one_line(_manifest(tmp_path, big_json, pruned[2]), "size")
    _one_line(_config(tmp_path, big_json), "size")
    _one_line(_run_json(tmp_path, big_json), "size")


def test_documents_within_the_limits_still_load() -> None:
    assert parse_yaml(_deep_flow(documents.MAX_DEPTH - 2))["a"] is not None
    assert parse_yaml(_alias_bomb(3, 10))["l2"][0][0] == [1] * 10
    assert parse_yaml(f"a: {'9' * documents.MAX_INT_DIGITS}\n")["a"] == int("9" * 100)
    assert parse_json('{"a": [1.5, 2, "x"]}') == {"a": [1.5, 2, "x"]}
    assert math.isnan(parse_json('{"a": NaN}', allow_nan=True)["a"])
    assert parse_json('{"a": 1e999}', allow_nan=True)["a"] == math.inf


def test_non_finite_json_numbers_are_named_where_they_are() -> None:
    with pytest.raises(DocumentError, match=r"at matrices\[1\]\.density"):
        parse_json('{"matrices": [{"density": 0.5}, {"density": 1e999}]}')
    with pytest.raises(DocumentError, match=r"holds -inf at a"):
        parse_json('{"a": -Infinity}')


def test_special_files_are_not_read_as_documents(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "hw.yaml"
    os.mkfifo(fifo)
    started = time.perf_counter()
    with pytest.raises(DocumentError, match="not a regular file"):
        read_json(fifo)
    assert time.perf_counter() - started < 5


# ----------------------------------------------------------------------------- manifests


def _perturbations(manifest: dict) -> list[tuple[str, callable]]:
    """(figure named in the error, change) for every figure a manifest states."""
    out = []
    for field, change in (
        ("nnz", lambda m: m.update(nnz=m["nnz"] + 1)),
        ("total", lambda m: m.update(total=m["total"] - 1)),
        ("density", lambda m: m.update(density=m["density"] * 0.5)),
        ("density", lambda m: m.update(density=0.01)),
        ("compression_ratio", lambda m: m.update(compression_ratio=m["compression_ratio"] + 1)),
        ("compression_ratio", lambda m: m.update(compression_ratio=None)),
    ):
        out.append((field, change))
    for index, entry in enumerate(manifest["matrices"]):
        name = entry["name"]

        def nnz(m, i=index):
            m["matrices"][i]["nnz"] -= 1

        def density(m, i=index):
            m["matrices"][i]["density"] = m["matrices"][i]["density"] / 2 + 0.01

        def occupancy(m, i=index):
            m["matrices"][i]["block_occupancy"] = min(
                1.0, m["matrices"][i]["block_occupancy"] + 0.1
            )

        def dropped(m, i=index):
            del m["matrices"][i]

        def doubled(m, i=index):
            m["matrices"].append(dict(m["matrices"][i]))

        out += [
            (f"nnz of {name!r}", nnz),
            (f"density of {name!r}", density),
            (f"block_occupancy of {name!r}", occupancy),
            ("masks do not match", dropped),
            (f"{name!r} more than once", doubled),
        ]
    return out


@pytest.fixture
def manifest_of(pruned) -> dict:
    """The shared block:4x4 artifact (read only) and its manifest."""
    path = pruned[2]
    return {"path": path, "manifest": json.loads((path / MANIFEST_FILE).read_text())}


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_a_manifest_figure_that_lies_is_refused(tmp_path: Path, manifest_of, data) -> None:
    options = _perturbations(manifest_of["manifest"])
    figure, change = data.draw(st.sampled_from(options))
    manifest = json.loads(json.dumps(manifest_of["manifest"]))
    change(manifest)
    error = _manifest(tmp_path, json.dumps(manifest), manifest_of["path"])
    assert figure in str(error) and "\n" not in str(error)


def test_the_issue_lies(tmp_path: Path, manifest_of) -> None:
    """Density 0.01 over masks keeping 25 %, and no matrices with density 0.2."""
    manifest = json.loads(json.dumps(manifest_of["manifest"]))
    manifest["density"] = 0.01
    error = _manifest(tmp_path, json.dumps(manifest), manifest_of["path"])
    assert "field density is 0.01 but the" in str(error)
    empty = {**manifest_of["manifest"], "matrices": [], "nnz": 0, "total": 0, "density": 0.2}
    shutil.rmtree(tmp_path / "artifact")
    shutil.copytree(manifest_of["path"], tmp_path / "artifact")
    from safetensors.numpy import save_file

    save_file({}, str(tmp_path / "artifact" / "masks.safetensors"), metadata={"shapes": "{}"})
    (tmp_path / "artifact" / MANIFEST_FILE).write_text(json.dumps(empty))
    with pytest.raises(ArtifactError, match=r"no matrices listed.*every weight is dense"):
        load_artifact(tmp_path / "artifact")


def test_honest_manifests_load_and_every_json_written_is_strict(
    tmp_path: Path, manifest_of
) -> None:
    artifact = load_artifact(manifest_of["path"])
    read_json(manifest_of["path"] / MANIFEST_FILE)  # strict: no NaN, no Infinity
    summary = tmp_path / "summary.json"
    result = runner.invoke(
        app,
        ["simulate", "--artifact", str(manifest_of["path"]), "--seq-len", "8",
         "--json", str(summary)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    document = read_json(summary)
    assert document["artifact"]["density"] == artifact.density
