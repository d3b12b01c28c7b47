"""Tables of an MLPruning run (``cosim prune --method mlpruning``) for
``results/mlpruning-minilm-sst2``: dev accuracy per phase, kept heads and FFN rows per layer
and the remaining encoder weights (from the artifact's manifest), and the simulated
speedups (from ``cosim simulate --artifact ... --json`` files, their ``structure`` block).

    python benchmarks/mlpruning_results.py --artifact out/mlpruning-minilm-sst2 \\
        --sim "all-MiniLM-L6-v2 (SST-2 run)=out/sim-minilm-ws.json" ... \\
        --out results/mlpruning-minilm-sst2

writes ``results.md``, ``speedups.csv`` and ``run.json`` (the job, its wall time, package
versions) there. Nothing is computed here that the
manifest or the simulator did not report.
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from pruning.artifact import ArtifactError, load_artifact
from safeio.documents import DocumentError, read_json

PHASES = {
    "dense": "dense (teacher: fine-tuned, 1 epoch)",
    "mlpruning-heads-rows": "step 1: heads and FFN rows masked",
    "shrunk": "step 1, heads and rows removed (shrunk)",
    "mlpruning-blocks": "step 2: blocks (final artifact)",
}


def _accuracy_table(manifest: dict[str, Any]) -> list[str]:
    training = manifest["training"]
    lines = ["| phase | dev accuracy | standard error |", "|---|---:|---:|"]
    for phase, label in PHASES.items():
        metrics = training["metrics"].get(phase)
        if metrics is None:
            continue
        error = training["standard_errors"].get(phase, {}).get("accuracy")
        shown = "" if error is None else f"{error:.3f}"
        lines.append(f"| {label} | {metrics['accuracy']:.4f} | {shown} |")
    return lines


def _structure_table(manifest: dict[str, Any]) -> list[str]:
    schedule, structure = manifest["schedule"], manifest["structure"]
    heads = structure["num_attention_heads"]
    width = structure["intermediate_size"]
    lines = [
        f"| layer | kept heads (of {heads}) | kept FFN rows (of {width}) | block density |",
        "|---:|---|---:|---:|",
    ]
    densities = _layer_block_densities(manifest)
    for index, kept in enumerate(structure["kept_heads"]):
        rows = structure["intermediate_per_layer"][index]
        lines.append(
            f"| {index} | {len(kept)}: {', '.join(str(h) for h in kept) or '-'} | {rows} | "
            f"{densities.get(index, float('nan')):.3f} |"
        )
    counts = schedule["encoder_weights"]
    lines += [
        "",
        "| encoder linear weights | count | fraction of dense |",
        "|---|---:|---:|",
        f"| dense | {counts['dense']:,} | 1.000 |",
        f"| after step 1 (shrunk) | {counts['after_step1']:,} | "
        f"{counts['after_step1'] / counts['dense']:.3f} |",
        f"| after step 2 (kept in blocks) | {counts['after_step2']:,} | "
        f"{counts['remaining_fraction']:.3f} |",
    ]
    return lines


def _layer_block_densities(manifest: dict[str, Any]) -> dict[int, float]:
    """Kept fraction of each layer's weights under the step-2 masks, from the manifest's
    per-matrix ``nnz`` and ``shape``."""
    kept: dict[int, list[int]] = {}
    for entry in manifest["matrices"]:
        parts = entry["name"].split(".")
        if "layer" not in parts:
            continue
        index = int(parts[parts.index("layer") + 1])
        pair = kept.setdefault(index, [0, 0])
        pair[0] += int(entry["nnz"])
        rows, cols = entry["shape"]
        pair[1] += int(rows) * int(cols)
    return {i: nnz / total for i, (nnz, total) in kept.items() if total}


def _speedup_rows(sims: list[tuple[str, Path]]) -> list[dict[str, Any]]:
    rows = []
    for label, path in sims:
        document = read_json(path)
        structure = document.get("structure")
        if structure is None:
            raise SystemExit(f"{path}: no structure block (simulate a shrunk artifact)")
        rows.append(
            {
                "model": label,
                "hardware": document["hardware_config"]["name"],
                "seq_len": document["seq_len"],
                "unshrunk_dense_latency_s": structure["unshrunk_dense"]["latency_s"],
                "shrunk_dense_latency_s": structure["shrunk_dense"]["latency_s"],
                "as_run_latency_s": structure["shrunk"]["latency_s"],
                "speedup_shrinking": structure["speedup_shrinking"],
                "speedup_vs_unshrunk_dense": structure["speedup_vs_unshrunk_dense"],
            }
        )
    return rows


def _speedup_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| model | hardware | tokens | unshrunk dense | shrunk, dense | as run (block masks) | "
        "speedup from shrinking | speedup vs unshrunk dense |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['model']} | {row['hardware']} | {row['seq_len']} | "
            f"{row['unshrunk_dense_latency_s'] * 1e3:.3f} ms | "
            f"{row['shrunk_dense_latency_s'] * 1e3:.3f} ms | "
            f"{row['as_run_latency_s'] * 1e3:.3f} ms | {row['speedup_shrinking']:.2f}x | "
            f"{row['speedup_vs_unshrunk_dense']:.2f}x |"
        )
    return lines


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("torch", "transformers", "numpy", "sparse-bert-cosim"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifact", type=Path, required=True)
    parser.add_argument("--sim", action="append", default=[], help="LABEL=simulate.json")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    sims = []
    for item in args.sim:
        label, sep, path = item.partition("=")
        if not sep or not label or not path:
            raise SystemExit(f"--sim {item!r}: expected LABEL=PATH to a simulate --json file")
        sims.append((label, Path(path)))
    try:
        manifest = load_artifact(args.artifact).manifest
        rows = _speedup_rows(sims)
    except (ArtifactError, DocumentError) as error:
        raise SystemExit(str(error)) from None
    args.out.mkdir(parents=True, exist_ok=True)
    training = manifest["training"]
    lines = [
        f"Dev accuracy ({training['task']} dev, {training['dev']['examples']} examples) after "
        "each phase:",
        "",
        *_accuracy_table(manifest),
        "",
        "Kept attention heads and FFN rows per layer (step 1, removed from the model) and "
        f"the fraction of each shrunk layer's weights the {manifest['pattern']} masks keep "
        "(step 2):",
        "",
        *_structure_table(manifest),
        "",
        "Simulated latency of one 128-token sequence (`cosim simulate --artifact`), "
        "against the unshrunk dense model on the same hardware:",
        "",
        *_speedup_table(rows),
    ]
    (args.out / "results.md").write_text("\n".join(lines) + "\n")
    record = {
        "command": shlex.join(["python", "benchmarks/mlpruning_results.py", *sys.argv[1:]]),
        "job": manifest["schedule"]["job"],
        "seconds": manifest["schedule"]["seconds"],
        "versions": _versions(),
        "simulations": [{"label": label, "file": str(path)} for label, path in sims],
    }
    (args.out / "run.json").write_text(json.dumps(record, indent=1, allow_nan=False) + "\n")
    with (args.out / "speedups.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["model"])
        writer.writeheader()
        writer.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
