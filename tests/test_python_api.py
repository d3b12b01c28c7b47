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
