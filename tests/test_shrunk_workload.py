"""A shrunk model's workload (workloads.build_workload): narrower Q/K/V and FFN GEMMs, one
attention instance per kept head, and no attention or FFN GEMMs in an emptied layer."""

from __future__ import annotations

import pytest

from pruning.shrink import KEPT_HEADS_KEY, StructuredKeep, shrink_model
from tests.tiny_bert import tiny_model
from workloads import WorkloadError, build_workload
from workloads.ops import GemmRole

KEEP = StructuredKeep(heads=((1, 3), ()), neurons=(tuple(range(0, 100, 2)), ()))
BATCH, SEQ = 2, 8


def _shrunk_config():
    model = tiny_model()
    shrink_model(model, KEEP)
    return model.config


def _shapes(workload, layer):
    return {op.role: (op.m, op.k, op.n, op.count) for op in workload.gemms if op.layer == layer}


def test_shrunk_layer_gemm_shapes():
    workload = build_workload(_shrunk_config(), BATCH, SEQ)
    tokens = BATCH * SEQ
    assert _shapes(workload, 0) == {
        GemmRole.QUERY: (tokens, 64, 32, 1),  # 2 kept heads x head size 16
        GemmRole.KEY: (tokens, 64, 32, 1),
        GemmRole.VALUE: (tokens, 64, 32, 1),
        GemmRole.ATTENTION_SCORES: (SEQ, 16, SEQ, BATCH * 2),
        GemmRole.ATTENTION_CONTEXT: (SEQ, SEQ, 16, BATCH * 2),
        GemmRole.ATTENTION_OUTPUT: (tokens, 32, 64, 1),
        GemmRole.FFN_IN: (tokens, 64, 50, 1),
        GemmRole.FFN_OUT: (tokens, 50, 64, 1),
    }
    assert _shapes(workload, 1) == {}  # no heads, no neurons: residuals and LayerNorms only
    layer1 = [op.name for op in workload.ops if op.layer == 1]
    assert layer1 == [
        "layer.1.attention_residual",
        "layer.1.attention_layernorm",
        "layer.1.ffn_residual",
        "layer.1.ffn_layernorm",
    ]
    assert "layer.1.softmax" not in {op.name for op in workload.ops}


def test_shrunk_workload_has_fewer_macs():
    full = build_workload(tiny_model().config, BATCH, SEQ)
    shrunk = build_workload(_shrunk_config(), BATCH, SEQ)
    per_layer_full = sum(op.macs for op in full.gemms if op.layer == 0)
    per_layer_shrunk = sum(op.macs for op in shrunk.gemms if op.layer == 0)
    tokens = BATCH * SEQ
    expected = tokens * (3 * 64 * 32 + 32 * 64 + 2 * 64 * 50) + 2 * BATCH * 2 * SEQ * SEQ * 16
    assert per_layer_shrunk == expected
    assert per_layer_shrunk < per_layer_full
    assert shrunk.total_macs < full.total_macs


def test_bad_shrink_record_is_a_workload_error():
    config = _shrunk_config()
    setattr(config, KEPT_HEADS_KEY, [[0, 7], []])
    with pytest.raises(WorkloadError, match=r"cosim_kept_heads\[0\] holds index 7"):
        build_workload(config, BATCH, SEQ)
