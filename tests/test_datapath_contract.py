"""One contract over every registered datapath (as scikit-learn's estimator checks).

Each registered datapath is exercised through the hardware presets it runs
(``accel_sim/presets``): every datapath must have one. Hypothesis draws the GEMM, its mask and,
where the spec has them, the array size, buffer sizes and DRAM bandwidth, and every run must keep:

- cycles x PEs >= useful MACs (per GEMM and in total);
- the energy breakdown has the datapath's components, each finite and >= 0, summing to the
  total;
- DRAM bytes >= the datapath's compulsory traffic;
- a sparse run performs no more MACs than its dense baseline (same datapath family, same
  chip without sparse support);
- identical inputs give identical results.

A new datapath gets all of this by being registered and shipping a preset.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accel_sim import simulate
from accel_sim.datapaths import REGISTRY, datapath_for
from accel_sim.engine import without_masks
from accel_sim.spec import hardware_from_dict, list_presets, preset_dir
from workloads import GemmOp, GemmRole, VectorKind, VectorOp, Workload


def preset_specs() -> dict[str, list[dict]]:
    """Preset dicts by the name of the datapath that runs them."""
    by_datapath: dict[str, list[dict]] = {}
    for name in list_presets():
        data = yaml.safe_load((preset_dir() / f"{name}.yaml").read_text())
        by_datapath.setdefault(datapath_for(hardware_from_dict(data)).name, []).append(data)
    return by_datapath


PRESETS = preset_specs()


def test_every_registered_datapath_has_a_preset() -> None:
    assert set(REGISTRY) <= set(PRESETS), set(REGISTRY) - set(PRESETS)


def _set(data: dict, dotted: str, value) -> None:
    """Set ``dotted`` in ``data`` when its parent exists (a knob the spec has)."""
    *parents, leaf = dotted.split(".")
    node = data
    for part in parents:
        node = node.get(part)
        if not isinstance(node, dict):
            return
    if leaf in node:
        node[leaf] = value


@st.composite
def chips(draw, datapath: str):
    data = copy.deepcopy(draw(st.sampled_from(PRESETS[datapath])))
    side = draw(st.sampled_from([2, 4, 8, 16]))
    _set(data, "pe_array.rows", side)
    _set(data, "pe_array.cols", draw(st.sampled_from([2, 4, 8, 16])))
    if datapath != "flexible":  # the flexible array keeps its weights stationary by design
        _set(data, "pe_array.dataflow", draw(st.sampled_from(["ws", "os", "is"])))
    for buffer in ("ifmap", "filter", "ofmap"):
        _set(data, f"sram.{buffer}.size_bytes", draw(st.sampled_from([512, 8192, 1 << 20])))
    _set(data, "dram.bandwidth_bytes_per_s", draw(st.sampled_from([1e8, 4e9, 256e9])))
    _set(data, "tiles", draw(st.sampled_from([1, 4, 168])))
    hw = hardware_from_dict(data)
    assert datapath_for(hw).name == datapath
    return hw


@st.composite
def workloads(draw):
    """One weight GEMM with a drawn mask, one weightless (attention) GEMM, one vector op."""
    m, k, n = draw(st.integers(1, 40)), draw(st.integers(4, 64)), draw(st.integers(1, 64))
    k -= k % 4  # so N:M masks fit
    kind = draw(st.sampled_from(["none", "random", "empty", "full", "blocks", "2:4"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "none":
        mask = None
    elif kind == "random":
        mask = rng.random((n, k)) < draw(st.floats(0.0, 1.0))
    elif kind == "empty":
        mask = np.zeros((n, k), dtype=bool)
    elif kind == "full":
        mask = np.ones((n, k), dtype=bool)
    elif kind == "blocks":
        grid = rng.random((-(-n // 4), -(-k // 4))) < 0.4
        mask = np.kron(grid, np.ones((4, 4), dtype=bool))[:n, :k]
    else:
        keep = np.argsort(rng.random((n, k // 4, 4)), axis=2) < 2
        mask = keep.reshape(n, k)
    ops = (
        GemmOp("w", GemmRole.FFN_IN, m=m, k=k, n=n, count=draw(st.integers(1, 2)),
               weight_name="layer.w", mask=mask),
        GemmOp("scores", GemmRole.ATTENTION_SCORES, m=m, k=draw(st.integers(1, 32)), n=m,
               count=draw(st.integers(1, 3))),
        VectorOp("softmax", VectorKind.SOFTMAX, elements=m * m),
    )  # fmt: skip
    return Workload(model_name="contract", batch=1, seq_len=m, ops=ops)


def check_run(result, workload: Workload, datapath) -> None:
    hw = datapath.hw
    breakdown = result.energy_breakdown_j
    assert tuple(breakdown) == datapath.energy_components
    assert all(math.isfinite(v) and v >= 0 for v in breakdown.values())
    assert math.isclose(sum(breakdown.values()), result.energy_j, rel_tol=1e-9, abs_tol=1e-30)
    assert result.cycles * result.pe_count >= result.effective_macs
    assert result.stall_cycles >= 0
    assert result.latency_s == pytest.approx(result.cycles / hw.clock_hz)
    for op, source in zip(result.ops, workload, strict=True):
        assert op.cycles * result.pe_count >= op.effective_macs, op.name
        assert op.effective_macs <= op.macs or op.kind != "gemm", op.name
        if isinstance(source, GemmOp):
            assert op.dram_bytes >= datapath.compulsory_dram_bytes(source) * (1 - 1e-12), op.name


SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_contract(name: str) -> None:
    @SETTINGS
    @given(chips(name), workloads())
    def run(hw, workload):
        datapath = datapath_for(hw)
        result = simulate(workload, hw, baseline=True)
        again = simulate(workload, hw, baseline=True)
        assert result == again and result.baseline == again.baseline  # deterministic
        assert result.to_dict()["ops"] == again.to_dict()["ops"]
        dense = result.baseline
        check_run(result, workload, datapath)
        check_run(dense, without_masks(workload), datapath.dense_baseline())
        assert datapath.dense_baseline().name in (name, *REGISTRY)
        # a sparse run never performs more MACs than the dense baseline, op by op
        for sparse_op, dense_op in zip(result.ops, dense.ops, strict=True):
            assert sparse_op.macs <= dense_op.macs, sparse_op.name
        assert result.effective_macs <= dense.macs == dense.effective_macs

    run()
