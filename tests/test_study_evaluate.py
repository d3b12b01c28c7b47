"""evaluate_point on a tiny point: documented columns, ratios against its own baseline."""

from __future__ import annotations

import math
import pickle
from functools import partial

import numpy as np
import pytest

from accel_sim.area import AREA_COMPONENTS, area_mm2
from accel_sim.energy import ENERGY_COMPONENTS
from pruning.maskfile import read_mask_file
from pruning.masks import compute_masks
from studies.evaluate import (
    _weights,
    compute_masks_for,
    evaluate_point,
    mask_file,
    op_frame,
    prepare_masks,
)
from studies.spec import expand, spec_from_dict
from tests.conftest import hardware_dict

COLUMNS = [
    "latency_s", "cycles", "energy_j", "sequences_per_s", "utilisation",
    "effective_utilisation", "load_imbalance", "dram_bytes", "weight_density",
    "compression_ratio", "baseline_cycles", "baseline_energy_j", "baseline_sequences_per_s",
    "speedup", "energy_ratio", "area_mm2", "simulation_s", "synthetic_weights",
    *(f"energy_{c}_j" for c in ENERGY_COMPONENTS),
    *(f"area_{c}_mm2" for c in AREA_COMPONENTS),
]  # fmt: skip


def tiny_points(mode: str = "gating", patterns=("block:4x4",)):
    spec = spec_from_dict(
        {"name": "tiny", "models": ["bert-tiny"], "seq_lens": [8], "sparsities": [0.75],
         "patterns": list(patterns), "grid": {"sparse.zero_handling": [mode]}}
    )  # fmt: skip
    hw = hardware_dict(rows=8, cols=8)
    return [{**p, "hardware": {**p["hardware"], **{k: hw[k] for k in ("pe_array", "sram")}}}
            for p in expand(spec)]  # fmt: skip


@pytest.mark.parametrize("pattern", ["unstructured", "block:4x4", "block:3x5", "nm:2:4"])
def test_study_masks_are_the_library_masks(pattern):
    """The studies mask each matrix with pruning.masks, on the weights they report."""
    weights, _ = _weights("bert-tiny", 0)
    sparsity = None if pattern.startswith("nm:") else 0.75
    expected = compute_masks(weights, pattern, sparsity, scope="per-matrix")
    masks, synthetic = compute_masks_for("bert-tiny", pattern, 0.75, 0)
    assert synthetic is True and list(masks) == list(expected)
    for name, mask in masks.items():
        assert isinstance(mask, np.ndarray) and np.array_equal(mask, expected[name].numpy())


def test_crossbar_tile_covering_some_matrices_still_prunes_the_rest():
    """bert-tiny's Q/K/V/O are [128, 128], one 128x128 tile each: they stay dense, while
    its FFN weights ([512, 128] and [128, 512]) are pruned to the target."""
    masks, _ = compute_masks_for("bert-tiny", "crossbar:128x128", 0.5, 0)
    square = [name for name, mask in masks.items() if mask.shape == (128, 128)]
    ffn = [name for name, mask in masks.items() if mask.shape != (128, 128)]
    assert square and ffn
    assert all(masks[name].all() for name in square)
    assert all(masks[name].mean() == 0.5 for name in ffn)


def test_evaluate_returns_documented_columns(tmp_path):
    point = tiny_points("gating")[0]
    row = evaluate_point(point, mask_dir=str(tmp_path))
    missing = [c for c in COLUMNS if c not in row]
    assert not missing
    assert row["synthetic_weights"] is True
    assert row["weight_density"] == pytest.approx(0.25)
    assert row["compression_ratio"] == pytest.approx(4.0)
    # gating saves energy, not time
    assert row["speedup"] == pytest.approx(row["baseline_cycles"] / row["cycles"]) == 1.0
    assert row["energy_ratio"] == pytest.approx(row["energy_j"] / row["baseline_energy_j"])
    assert row["energy_ratio"] < 1.0
    assert row["energy_j"] == pytest.approx(sum(row[f"energy_{c}_j"] for c in ENERGY_COMPONENTS))
    assert row["area_mm2"] == pytest.approx(sum(row[f"area_{c}_mm2"] for c in AREA_COMPONENTS))
    assert all(isinstance(v, (int, float, str, bool, type(None))) for v in row.values())


def test_masks_computed_in_workers_equal_those_computed_here(tmp_path):
    """``prepare_masks(jobs=2)`` computes the missing sets in loky workers; the files hold the
    same masks and metadata as the parent's (not the same bytes: safetensors orders the
    metadata map differently in each process)."""
    points = tiny_points("gating", ["block:4x4", "unstructured", "nm:2:4"])
    assert prepare_masks(points, tmp_path / "here") == {"mask_sets": 3, "computed": 3}
    assert prepare_masks(points, tmp_path / "workers", jobs=2)["computed"] == 3
    here = sorted((tmp_path / "here").iterdir())
    workers = sorted((tmp_path / "workers").iterdir())
    assert [p.name for p in here] == [p.name for p in workers] and len(here) == 3
    for a, b in zip(here, workers, strict=True):
        (masks_a, meta_a), (masks_b, meta_b) = read_mask_file(a), read_mask_file(b)
        assert meta_a == meta_b and masks_a.keys() == masks_b.keys()
        assert all(np.array_equal(masks_a[name], masks_b[name]) for name in masks_a)


def test_unstructured_pe_is_faster_than_dense(tmp_path):
    row = evaluate_point(tiny_points("unstructured-pe", ["unstructured"])[0], str(tmp_path))
    assert row["speedup"] > 1.0
    assert row["load_imbalance"] >= 1.0


def test_masks_computed_once_and_shared(tmp_path):
    points = tiny_points("gating", ["block:4x4", "dense"]) + tiny_points("none")
    stats = prepare_masks(points, tmp_path)
    assert stats == {"mask_sets": 1, "computed": 1}
    assert prepare_masks(points, tmp_path)["computed"] == 0
    masks, meta = read_mask_file(mask_file(tmp_path, "bert-tiny", "block:4x4", 0.75, 0))
    assert meta["synthetic_weights"] is True and len(masks) == 2 * 6
    rows = [evaluate_point(p, str(tmp_path)) for p in points]
    assert rows[0]["weight_density"] == rows[2]["weight_density"]
    assert rows[1]["weight_density"] == 1.0 and rows[1]["mask_source"] == "none"


def test_evaluate_is_picklable_and_deterministic(tmp_path):
    evaluate = pickle.loads(pickle.dumps(partial(evaluate_point, mask_dir=str(tmp_path))))
    point = tiny_points("gating")[0]
    first, second = evaluate(point), evaluate_point(point)  # file cache vs in-memory
    for column in ("cycles", "energy_j", "weight_density"):
        assert first[column] == second[column]


def test_op_frame_has_both_runs_and_roofs(tmp_path):
    frame = op_frame(tiny_points("gating")[0], tmp_path)
    assert set(frame["run"]) == {"sparse", "dense baseline"}
    assert (frame["peak_ops_per_s"] == 2 * 64 * 1e9).all()
    assert math.isfinite(frame["dram_bandwidth_bytes_per_s"].iloc[0])


def test_area_grows_with_the_array_and_sram():
    from accel_sim import hardware_from_dict

    small = area_mm2(hardware_from_dict(hardware_dict(rows=8, cols=8)))
    big = area_mm2(hardware_from_dict(hardware_dict(rows=16, cols=16, sram_bytes=128 * 1024)))
    assert big["pe_array"] == pytest.approx(4 * small["pe_array"])
    assert big["sram"] == pytest.approx(2 * small["sram"])
    custom = hardware_dict()
    custom["area"] = {"sram_um2_per_byte": 1.0}
    assert area_mm2(hardware_from_dict(custom))["sram"] == pytest.approx(3 * 64 * 1024 / 1e6)
