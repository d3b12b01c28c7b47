"""Attaching pruning masks to a workload's GEMMs, and the densities the simulator reports."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from accel_sim import simulate
from accel_sim.run_hash import run_config_hash
from pruning.artifact import load_artifact
from tests.conftest import make_hardware
from workloads import (
    ENCODER_LINEAR_ROLES,
    GemmOp,
    GemmRole,
    WorkloadError,
    attach_artifact,
    attach_masks,
    build_workload,
)

QUERY0 = "bert.encoder.layer.0.attention.self.query.weight"
FFN_IN1 = "bert.encoder.layer.1.intermediate.dense.weight"


@pytest.fixture(scope="module")
def artifact(pruned):
    return load_artifact(pruned[2])


@pytest.fixture(scope="module")
def dense(pruned):
    return build_workload(pruned[2], batch=1, seq_len=8)


@pytest.fixture(scope="module")
def masked(dense, artifact):
    return attach_artifact(dense, artifact)


def test_masks_attach_to_the_named_ops_with_manifest_densities(dense, masked, artifact) -> None:
    by_weight = {op.weight_name: op for op in masked.gemms if op.weight_name is not None}
    assert set(artifact.masks) <= set(by_weight)
    for entry in artifact.manifest["matrices"]:
        op = by_weight[entry["name"]]
        assert op.role in ENCODER_LINEAR_ROLES
        assert op.mask.dtype == np.bool_ and op.mask.shape == (op.n, op.k)
        assert not op.mask.flags.writeable
        np.testing.assert_array_equal(op.mask, artifact.masks[entry["name"]])
        assert op.weight_density == pytest.approx(entry["density"])
        assert op.weight_nnz == entry["nnz"]
    for op in masked.gemms:
        if op.weight_name not in artifact.masks:
            assert op.mask is None and op.weight_density == 1.0
    # the input workload is untouched, and only masks differ (they take no part in equality)
    assert all(op.mask is None for op in dense.gemms)
    assert masked == dense


def test_attention_gemms_have_no_weight_and_stay_dense(masked) -> None:
    attention = [
        op
        for op in masked.gemms
        if op.role in (GemmRole.ATTENTION_SCORES, GemmRole.ATTENTION_CONTEXT)
    ]
    assert attention
    for op in attention:
        assert op.weight_name is None and op.mask is None
        assert op.weight_nnz is None and op.weight_density == 1.0
    with pytest.raises(ValueError, match="has no weight"):
        dataclasses.replace(attention[0], mask=np.ones((attention[0].n, attention[0].k), bool))


def test_gemm_op_stays_frozen_and_hashable(masked, dense) -> None:
    op = next(op for op in masked.gemms if op.mask is not None)
    assert hash(op) == hash(next(d for d in dense.gemms if d.name == op.name))
    with pytest.raises(dataclasses.FrozenInstanceError):
        op.mask = None  # type: ignore[misc]
    dense_op = GemmOp("fc", GemmRole.FFN_IN, m=4, k=3, n=2, weight_name="w")
    assert dense_op.weight_density == 1.0 and dense_op.weight_nnz == 6


def test_attach_copies_and_accepts_zero_one_arrays(dense) -> None:
    op = next(op for op in dense.gemms if op.weight_name == QUERY0)
    mask = np.zeros((op.n, op.k), dtype=np.int64)
    mask[:, : op.k // 4] = 1
    attached = attach_masks(dense, {QUERY0: mask})
    mask[:] = 1  # the caller's array is copied, not aliased
    query = next(o for o in attached.gemms if o.weight_name == QUERY0)
    assert query.mask.dtype == np.bool_
    assert query.weight_density == pytest.approx(0.25)


def test_unknown_mask_name_lists_valid_weight_names(dense) -> None:
    op = next(op for op in dense.gemms if op.weight_name == QUERY0)
    name = "bert.encoder.layer.0.attention.self.querry.weight"
    with pytest.raises(WorkloadError) as info:
        attach_masks(dense, {name: np.ones((op.n, op.k), bool)}, source="my-masks")
    message = str(info.value)
    assert message.startswith("my-masks: ")
    assert repr(name) in message and "matches no GEMM weight" in message
    assert repr(QUERY0) in message  # the close match is suggested


def test_wrong_shape_names_weight_and_expected_shape(dense, artifact) -> None:
    op = next(op for op in dense.gemms if op.weight_name == FFN_IN1)
    assert (op.n, op.k) == (128, 64)
    with pytest.raises(WorkloadError) as info:
        attach_masks(dense, {FFN_IN1: np.ones((64, 128), bool)}, source="art")
    assert str(info.value) == (
        f"art: mask {FFN_IN1!r} has shape [64, 128] but the model's weight is [128, 64] ([out, in])"
    )


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (np.ones(64, bool), r"is 1-D with shape \[64\]"),
        (np.ones((2, 64, 64), bool), r"is 3-D"),
        (None, r"is 0-D"),
        (np.full((64, 64), "x"), r"dtype <U1, not boolean"),
        (np.full((64, 64), 0.5), r"values other than 0 and 1"),
    ],
)
def test_malformed_masks(dense, value, match: str) -> None:
    with pytest.raises(WorkloadError, match=match) as info:
        attach_masks(dense, {QUERY0: value}, source="src")
    message = str(info.value)
    assert message.startswith(f"src: mask {QUERY0!r}")
    assert "expected a 2-D bool keep-mask [out, in] = [64, 64]" in message


def test_artifact_errors_name_its_directory(artifact) -> None:
    other = build_workload("bert-tiny", batch=1, seq_len=8)  # hidden 128, not 64
    with pytest.raises(WorkloadError) as info:
        attach_artifact(other, artifact)
    assert str(info.value).startswith(f"{artifact.path}: mask ")
    assert "but the model's weight is [128, 128] ([out, in])" in str(info.value)


def test_results_carry_weight_density(masked, dense, artifact) -> None:
    hw = make_hardware()
    sparse_result, dense_result = simulate(masked, hw), simulate(dense, hw)
    assert sparse_result.weight_density == pytest.approx(artifact.density)
    assert dense_result.weight_density == 1.0
    # hardware without sparse support multiplies the zeros: only the density columns differ
    assert sparse_result.cycles == dense_result.cycles
    assert sparse_result.energy_j == dense_result.energy_j
    frame = sparse_result.to_frame()
    by_op = dict(zip(frame["op"], frame["weight_density"], strict=True))
    for op in masked.gemms:
        assert by_op[op.name] == pytest.approx(op.weight_density)
    for op in masked.vector_ops:
        assert by_op[op.name] == 1.0
    rows = sparse_result.to_dict()["ops"]
    assert [row["weight_density"] for row in rows] == list(frame["weight_density"])
    assert (dense_result.to_frame()["weight_density"] == 1.0).all()
    # the masks change the result, so they change its hash; dense hashes are as before
    assert run_config_hash(masked, hw) != run_config_hash(dense, hw)


def test_attaching_masks_does_not_import_torch(pruned) -> None:
    """Artifact loading and mask attaching stay torch-free (building from a config may not)."""
    code = f"""
import sys
import numpy as np
from pruning.artifact import load_artifact
from workloads import GemmOp, GemmRole, Workload, attach_artifact, attach_masks
artifact = load_artifact({str(pruned[2])!r})
ops = tuple(
    GemmOp(name, GemmRole.QUERY, m=8, k=m.shape[1], n=m.shape[0], weight_name=name)
    for name, m in artifact.masks.items()
)
workload = attach_artifact(Workload("w", 1, 8, ops), artifact)
attach_masks(workload, {{ops[0].weight_name: np.ones((ops[0].n, ops[0].k), bool)}})
sys.exit(1 if "torch" in sys.modules or "transformers" in sys.modules else 0)
"""
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
