"""Benchmark: magnitude-mask computation on BERT-base's 72 encoder matrices, every pattern.

Weights are random (normal, std 0.02, seed 0), drawn as the studies draw them. For each
pattern and scope it times ``pruning.masks.compute_masks`` (best of a few runs), and per
matrix also ``studies.evaluate.compute_masks_for``, the studies' entry point (which had its
own faster copy of the masking before the two were merged). The floor is one plain numpy
pass reading every weight (``np.abs(w).sum()`` per matrix), timed in the same run right
before each case. A SHA-256 of the bit-packed masks shows whether two trees compute the
same masks.

Run on the original tree first, to record its figures (``PYTHONPATH`` pointing at it):

    python benchmarks/bench_masks.py --record BEFORE.json --commit <sha>

then on this tree, to write the before/after table (``docs/results/bench_masks.md``, which
docs/speed.md includes; the figures of the tree before the vectorised masks are committed in
``benchmarks/bench_masks_before.json`` and used by default):

    python benchmarks/bench_masks.py
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import platform
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np
import torch
from _table_file import command_line, default_out

from safeio.atomic import atomic_write_text

MODEL = "bert-base-uncased"
SEED = 0
SPARSITY = 0.75
INIT_STD = 0.02
RANKED = [
    "unstructured",
    "block:1x4",
    "block:2x2",
    "block:4x4",
    "block:8x8",
    "block:16x16",
    "block:32x32",
    "block:32x1",
    "crossbar:32x32",
    "crossbar:128x128",
    "row",
    "column",
    "head:12",
]
NM = ["nm:2:4", "nm:1:4", "nm:2:8", "nm:1:16"]
STUDY_PATTERNS = ["unstructured", "block:4x4", "block:16x16", "nm:2:4"]
BUDGET_S = 3.0  # keep repeating a case until this much time is spent (at most REPEATS runs)
REPEATS = 10  # the best run is the one least disturbed by other work on the machine
DEFAULT_OUT = default_out(__file__)
BEFORE = Path(__file__).with_name("bench_masks_before.json")


def bert_base_weights() -> dict[str, torch.Tensor]:
    """BERT-base encoder linear weights, random as in ``studies.evaluate``."""
    from workloads import ENCODER_LINEAR_ROLES, build_workload

    workload = build_workload(MODEL, batch=1, seq_len=1)
    generator = torch.Generator().manual_seed(SEED)
    return {
        op.weight_name: torch.randn((op.n, op.k), generator=generator) * INIT_STD
        for op in workload.gemms
        if op.role in ENCODER_LINEAR_ROLES and op.weight_name is not None
    }


def best_ms(run: Callable[[], object]) -> tuple[float, object]:
    """Fastest of up to REPEATS runs (fewer once BUDGET_S is spent), and the last result."""
    times, spent, result = [], 0.0, None
    while len(times) < REPEATS and (spent < BUDGET_S or not times):
        started = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - started)
        spent += times[-1]
    return 1e3 * min(times), result


def digest(masks: dict[str, object]) -> str:
    sha = hashlib.sha256()
    for name, mask in masks.items():
        array = mask.numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
        sha.update(name.encode())
        sha.update(np.packbits(array.reshape(-1)).tobytes())
    return sha.hexdigest()[:16]


def floor_ms(weights: dict[str, torch.Tensor]) -> float:
    arrays = [w.numpy() for w in weights.values()]
    return best_ms(lambda: sum(float(np.abs(a).sum()) for a in arrays))[0]


def cases() -> list[tuple[str, str, str]]:
    """(entry point, pattern, scope)."""
    rows = [("compute_masks", p, scope) for p in RANKED for scope in ("per-matrix", "global")]
    rows += [("compute_masks", p, "per-matrix") for p in NM]
    rows += [("compute_masks_for", p, "per-matrix") for p in STUDY_PATTERNS]
    return rows


def measure() -> dict:
    from pruning.masks import compute_masks
    from studies.evaluate import compute_masks_for

    torch.set_num_threads(1)
    weights = bert_base_weights()
    compute_masks_for(MODEL, "block:4x4", SPARSITY, SEED)  # its weights cache, built once
    results = []
    for entry, pattern, scope in cases():
        floor = floor_ms(weights)  # right before the case: the machine's load drifts
        sparsity = None if pattern.startswith("nm:") else SPARSITY
        if entry == "compute_masks":
            run = functools.partial(compute_masks, weights, pattern, sparsity, scope)
            ms, masks = best_ms(run)
        else:
            run = functools.partial(compute_masks_for, MODEL, pattern, SPARSITY, SEED)
            ms, (masks, _) = best_ms(run)
        results.append(
            {
                "entry": entry,
                "pattern": pattern,
                "scope": scope,
                "ms": ms,
                "floor_ms": floor,
                "sha": digest(masks),
            }
        )
    return {
        "model": MODEL,
        "matrices": len(weights),
        "weights": sum(w.numel() for w in weights.values()),
        "sparsity": SPARSITY,
        "floor_ms": min(r["floor_ms"] for r in results),
        "cpu": _cpu(),
        "torch_threads": torch.get_num_threads(),
        "results": results,
    }


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_commit() -> str:
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha + (" (with uncommitted changes)" if dirty else "")


def table(after: dict, before: dict | None) -> str:
    floors = [row["floor_ms"] for row in after["results"]]
    old = {(r["entry"], r["pattern"], r["scope"]): r for r in (before or {}).get("results", [])}
    lines = [
        f"# Mask computation: {after['model']}, {after['matrices']} encoder matrices "
        f"({after['weights']:,} weights), sparsity {after['sparsity']} (N:M: fixed)",
        "",
        f"Written by `benchmarks/bench_masks.py`. CPU: {after['cpu']}, "
        f"{after['torch_threads']} torch thread. Floor: one `np.abs(w).sum()` pass over every "
        f"weight, timed right before each case (this shared machine's load drifts): "
        f"{min(floors):.0f}-{max(floors):.0f} ms; `after / floor` divides by that case's.",
        "",
    ]
    if before:
        lines += [
            f"Before: commit {before['commit']}, recorded on {before['cpu']} "
            f"(floor there {before['floor_ms']:.1f} ms). After: commit {after['commit']}.",
            "",
        ]
    lines += [
        "| entry point | pattern | scope | before ms | after ms | after / floor "
        "| speedup | same masks |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]
    for row in after["results"]:
        prior = old.get((row["entry"], row["pattern"], row["scope"]))
        before_ms = f"{prior['ms']:.0f}" if prior else "-"
        speedup = f"{prior['ms'] / row['ms']:.1f}x" if prior else "-"
        same = ("yes" if prior["sha"] == row["sha"] else "**no**") if prior else "-"
        lines.append(
            f"| `{row['entry']}` | `{row['pattern']}` | {row['scope']} | {before_ms} "
            f"| {row['ms']:.0f} | {row['ms'] / row['floor_ms']:.1f} | {speedup} | {same} |"
        )
    lines += ["", "N:M masks act within each group of M, so scope does not apply to them."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", type=Path, help="write this tree's figures as JSON here")
    parser.add_argument("--commit", help="commit to name in --record (default: git HEAD)")
    parser.add_argument(
        "--before",
        type=Path,
        default=BEFORE if BEFORE.is_file() else None,
        help="JSON written by --record on the old tree",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    figures = measure()
    figures["commit"] = args.commit or _git_commit()
    if args.record:
        args.record.parent.mkdir(parents=True, exist_ok=True)
        args.record.write_text(json.dumps(figures, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {args.record}")
        return
    before = json.loads(args.before.read_text(encoding="utf-8")) if args.before else None
    text = f"`$ {command_line()}`\n\n" + table(figures, before)
    atomic_write_text(args.out, text)
    print(text)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
