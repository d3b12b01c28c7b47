"""The Python API a notebook uses: ops built from plain strings, validated spec copies and
derivations."""

from __future__ import annotations

import pydantic
import pytest

from accel_sim import HardwareConfigError, load_hardware, simulate
from accel_sim.spec import derive
from workloads import GemmOp, GemmRole, VectorKind, VectorOp, Workload


def test_gemm_op_converts_a_string_role_at_construction() -> None:
    op = GemmOp("fc", role="ffn_in", m=4, k=8, n=16, weight_name="w")
    assert op.role is GemmRole.FFN_IN
    result = simulate(Workload("one", 1, 4, (op,)), load_hardware("systolic-32x32-ws"))
    assert result.ops[0].role == "ffn_in"


def test_gemm_op_refuses_an_unknown_role_naming_the_valid_ones() -> None:
    message = r"role 'ffn-in' is not a GemmRole: expected one of .*ffn_in"
    with pytest.raises(ValueError, match=message):
        GemmOp("fc", role="ffn-in", m=4, k=8, n=16)


def test_vector_op_converts_a_string_kind_at_construction() -> None:
    assert VectorOp("act", kind="gelu", elements=8).kind is VectorKind.GELU
    with pytest.raises(ValueError, match="kind 'swish' is not a VectorKind"):
        VectorOp("act", kind="swish", elements=8)


def test_model_copy_validates_the_update() -> None:
    hw = load_hardware("systolic-32x32-ws")
    with pytest.raises(pydantic.ValidationError):
        hw.model_copy(update={"pe_array": {"rows": -1}})
    with pytest.raises(pydantic.ValidationError):
        hw.model_copy(update={"no_such_field": 1})
    with pytest.raises(pydantic.ValidationError):
        hw.pe_array.model_copy(update={"rows": 0})


def test_model_copy_recomputes_the_spec_digest() -> None:
    hw = load_hardware("systolic-32x32-ws")
    before = hw.spec_digest
    bigger = hw.model_copy(update={"pe_array": hw.pe_array.model_copy(update={"rows": 64})})
    assert bigger.pe_array.rows == 64
    assert bigger.spec_digest != before
    assert bigger.spec_digest == derive(hw, {"pe_array.rows": 64}).spec_digest
    assert hw.model_copy().spec_digest == before


def test_derive_validates_and_names_the_field() -> None:
    hw = load_hardware("systolic-32x32-ws")
    assert derive(hw, {"pe_array.rows": 64}).pe_array.rows == 64
    with pytest.raises(HardwareConfigError, match=r"pe_array\.rows"):
        derive(hw, {"pe_array.rows": -1})
    with pytest.raises(HardwareConfigError, match=r"pe_array\.rowz"):
        derive(hw, {"pe_array.rowz": 64})


TINY = {
    "name": "tiny",
    "models": ["bert-tiny"],
    "seq_lens": [8],
    "sparsities": [0.5],
    "patterns": ["block:4x4", "dense"],
}


def test_studies_run_returns_the_table_and_resumes(tmp_path) -> None:
    import studies

    table = studies.run(TINY, tmp_path / "out")
    assert list(table["pattern"]) == ["block:4x4", "dense"]
    assert {"speedup", "latency_s", "energy_j", "key"} <= set(table.columns)
    from studies.sqlite_store import SqliteStore

    with SqliteStore(tmp_path / "out" / "store") as store:
        assert store.keys() == set(table["key"])
    database = tmp_path / "out" / "store" / "points.sqlite"
    mtime = database.stat().st_mtime_ns
    again = studies.run(TINY, tmp_path / "out")  # resumes: nothing evaluated again
    assert again.equals(table)
    assert database.stat().st_mtime_ns == mtime  # nothing written
    wider = studies.run(TINY, overrides={"pe_array.rows": 16})
    assert list(wider["pe_rows"]) == [16, 16]


def test_studies_run_takes_a_spec_object_and_reports_spec_errors() -> None:
    import studies

    spec = studies.StudySpec.model_validate({**TINY, "patterns": ["dense"]})
    assert len(studies.run(spec)) == 1
    with pytest.raises(studies.StudySpecError, match="needs a sparsity"):
        studies.run({**TINY, "sparsities": None})


def test_the_documented_example_runs() -> None:
    import doctest

    import studies.api

    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner()
    for test in finder.find(studies.api.run, "run", globs={}):
        runner.run(test)
    assert runner.failures == 0 and runner.tries >= 2


@pytest.mark.parametrize("package", ["accel_sim", "studies", "workloads", "pruning", "safeio"])
def test_packages_are_typed_and_documented(package: str) -> None:
    import importlib
    from pathlib import Path

    module = importlib.import_module(package)
    assert (Path(module.__file__).parent / "py.typed").is_file()
    assert module.__doc__
    if package in ("accel_sim", "studies"):
        assert module.__all__
        for name in module.__all__:
            value = getattr(module, name)
            if callable(value) and not name.startswith("_"):
                assert value.__doc__, f"{package}.{name} has no docstring"
    assert {"simulate", "load_hardware", "derive"} <= set(__import__("accel_sim").__all__)
    assert "run" in __import__("studies").__all__
