"""Hash the per-op result frame of the benchmark's flexible and EIE-style points, so two
checkouts can be compared: the RLE-coded EIE-style weights take a kernel path (the
run-length entry table, ``sparse_pe.entry_cost_columns``; ``per_pe_entries`` in older
checkouts) that the identity-check study's CSC points do not.

Run from a checkout's root: python results/sparse-point-speed/identity_frames.py
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path.cwd() / "benchmarks"))
import bench_sparse_point as bench

from accel_sim import load_hardware, simulate
from accel_sim.spec import derive
from pruning.masks import compute_masks
from workloads import attach_masks, build_workload

CASES = ("EIE 64 PEs", "EIE 1024 PEs width 16", "SIGMA-style flexible")


def main() -> None:
    weights = bench.encoder_weights()
    masks = {n: np.asarray(m) for n, m in compute_masks(weights, "unstructured", 0.9).items()}
    workload = attach_masks(build_workload(bench.MODEL, batch=1, seq_len=128), masks)
    for name, preset, overrides, _ in bench.CASES:
        if name not in CASES:
            continue
        hw = derive(load_hardware(preset), overrides) if overrides else load_hardware(preset)
        result = simulate(workload, hw, baseline=True)
        frame = result.to_frame().to_csv(index=False)
        print(name, result.cycles, hashlib.sha256(frame.encode()).hexdigest()[:16])


if __name__ == "__main__":
    main()
