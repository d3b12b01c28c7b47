"""``report.md`` for a finished study: its key table, its plots and how it was run."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from studies.pareto import ParetoSettings, pareto_front
from studies.plots import _prepared, short_labels

__all__ = ["NUMERIC_COLUMNS", "key_table", "markdown_table", "render_report"]

# column -> (header, formatter)
_FORMATS: dict[str, tuple[str, Any]] = {
    "machine": ("hardware", str),
    "label": ("design point", str),
    "pattern": ("pattern", str),
    "zero_handling": ("sparse mode", str),
    "datapath": ("datapath", str),  # named by datapaths that add it to their study columns
    "sparsity": ("sparsity", lambda v: f"{v:.2f}"),
    "weight_density": ("weight density", lambda v: f"{v:.3f}"),
    "compression_ratio": ("compression [x]", lambda v: f"{v:.1f}"),
    "pe_rows": ("PE rows", lambda v: f"{int(v)}"),
    "pe_cols": ("PE cols", lambda v: f"{int(v)}"),
    "sram_bytes": ("SRAM [KiB]", lambda v: f"{v / 1024:,.0f}"),
    "dram_bandwidth_bytes_per_s": ("DRAM [GB/s]", lambda v: f"{v / 1e9:,.0f}"),
    "latency_s": ("latency [ms]", lambda v: f"{v * 1e3:,.3f}"),
    "energy_j": ("energy [mJ]", lambda v: f"{v * 1e3:,.3f}"),
    "sequences_per_s": ("sequences/s", lambda v: f"{v:,.1f}"),
    "baseline_sequences_per_s": ("dense sequences/s", lambda v: f"{v:,.1f}"),
    "ideal_sequences_per_s": ("ideal sequences/s", lambda v: f"{v:,.1f}"),
    "fraction_of_ideal": ("of ideal", lambda v: f"{100 * v:.0f} %"),
    "speedup": ("speedup [x]", lambda v: f"{v:.2f}"),
    "energy_ratio": ("energy vs dense [x]", lambda v: f"{v:.3f}"),
    "utilisation": ("PE util", lambda v: f"{100 * v:.1f} %"),
    "effective_utilisation": ("effective util", lambda v: f"{100 * v:.1f} %"),
    "seq_len": ("tokens", lambda v: f"{int(v)}"),
    "batch": ("batch", lambda v: f"{int(v)}"),
    "area_mm2": ("area [mm^2]", lambda v: f"{v:.2f}"),
    "pareto": ("Pareto front", lambda v: "yes" if v else ""),
    "linear_share": ("linear layers", lambda v: f"{100 * v:.1f} %"),
    "attention_share": ("attention GEMMs", lambda v: f"{100 * v:.1f} %"),
    "vector_share": ("vector ops", lambda v: f"{100 * v:.1f} %"),
    "stall_share": ("stalls", lambda v: f"{100 * v:.1f} %"),
    # accuracy study (studies.accuracy_table.SUMMARY_COLUMNS)
    "task": ("task", str),
    "head": ("head", str),
    "method": ("method", str),
    "seeds": ("seeds", lambda v: f"{int(v)}"),
    "metric_name": ("metric", str),
    "metric": ("dev metric", lambda v: f"{v:.4f}"),
    "metric_se": ("SE", lambda v: f"{v:.4f}"),
    "se_kind": ("SE over", str),
    "dense_metric": ("dense", lambda v: f"{v:.4f}"),
    "majority_metric": ("majority class", lambda v: f"{v:.4f}"),
    "relative_to_dense": ("of dense", lambda v: f"{v:.3f}"),
    "gain_retained": ("gain kept", lambda v: f"{v:.2f}"),
    "density": ("density", lambda v: f"{v:.3f}"),
    "phase_steps": ("steps", lambda v: f"{int(v)}"),
    "hw": ("hardware", str),
}

# Columns the report and plots format as numbers (``study plot`` checks a table it reads).
NUMERIC_COLUMNS = frozenset(c for c, (_, formatter) in _FORMATS.items() if formatter is not str)

_KEY_COLUMNS = {
    "block-size": [
        "pattern",
        "zero_handling",
        "datapath",
        "sparsity",
        "weight_density",
        "speedup",
        "energy_ratio",
        "utilisation",
        "effective_utilisation",
        "sequences_per_s",
    ],
    "compression": [
        "pattern",
        "zero_handling",
        "datapath",
        "compression_ratio",
        "sequences_per_s",
        "baseline_sequences_per_s",
        "ideal_sequences_per_s",
        "fraction_of_ideal",
        "energy_ratio",
    ],
    "dse": [
        "label",
        "pe_rows",
        "pe_cols",
        "sram_bytes",
        "dram_bandwidth_bytes_per_s",
        "latency_s",
        "energy_j",
        "area_mm2",
        "speedup",
        "pareto",
    ],
    "accuracy": [
        "task",
        "head",
        "method",
        "pattern",
        "sparsity",
        "seeds",
        "metric_name",
        "metric",
        "metric_se",
        "se_kind",
        "dense_metric",
        "majority_metric",
        "relative_to_dense",
        "gain_retained",
        "phase_steps",
        "hw",
        "speedup",
        "energy_ratio",
    ],
    "custom": [
        "label",
        "compression_ratio",
        "latency_s",
        "energy_j",
        "sequences_per_s",
        "speedup",
        "energy_ratio",
        "effective_utilisation",
        "area_mm2",
    ],
}


def key_table(
    frame: pd.DataFrame, kind: str, pareto: ParetoSettings | None = None
) -> pd.DataFrame:
    """The columns a study of ``kind`` is about, with the machine of every row first (DSE:
    the Pareto front of ``pareto``, best first objective first)."""
    if kind == "accuracy":  # a summary over seeds: its own columns, hardware in ``hw``
        table = frame.copy()
        if "label" in table and len(table):
            table["label"] = short_labels(table["label"])
    else:
        table = _prepared(frame) if len(frame) else frame.copy()
    settings = pareto or ParetoSettings()
    if "datapath" in table:
        table["datapath"] = table["datapath"].fillna("")
    if "compression_ratio" in table and "baseline_sequences_per_s" in table:
        table["ideal_sequences_per_s"] = (
            table["baseline_sequences_per_s"] * table["compression_ratio"]
        )
        table["fraction_of_ideal"] = table["sequences_per_s"] / table["ideal_sequences_per_s"]
    if len(table) and set(settings.columns()) <= set(table):
        table["pareto"] = pareto_front(table, settings)
    if kind == "dse" and "pareto" in table:
        table = table[table["pareto"]].sort_values(settings.columns()[0])
    if kind == "compression":
        order = [c for c in ("machine", "zero_handling", "pattern_family", "compression_ratio")
                 if c in table]  # fmt: skip
        table = table.sort_values(order, kind="stable")
    columns = [c for c in _KEY_COLUMNS.get(kind, _KEY_COLUMNS["custom"]) if c in table]
    if kind != "accuracy":  # the workload sizes a study sweeps, beside the design point
        varied = [c for c in ("seq_len", "batch")
                  if c in table and c not in columns and table[c].nunique() > 1]  # fmt: skip
        at = columns.index("label") + 1 if "label" in columns else 0
        columns = [*columns[:at], *varied, *columns[at:]]
    if "machine" in table and "hw" not in columns:  # accuracy: its own hardware column
        columns = ["machine", *columns]
    return table[columns]


BREAKDOWN_PARTS = ("linear", "attention", "vector")
MAX_REPORT_ROWS = 200  # rows of the report's key table; results.csv has them all


def breakdown_table(frame: pd.DataFrame) -> pd.DataFrame | None:
    """At each pattern's highest compression: the sparse run's cycles split into linear
    layers, attention GEMMs, vector ops and stalls (shares of its cycles), with its speedup,
    so a report says what stops each datapath short of the ideal line."""
    needed = {f"{p}_compute_cycles" for p in BREAKDOWN_PARTS} | {"cycles", "compression_ratio"}
    if not needed <= set(frame) or not len(frame):
        return None
    keys = ["machine", "label_group"] if "machine" in frame else ["label_group"]
    top = frame.loc[frame.groupby(keys)["compression_ratio"].idxmax()]
    rows = []
    for _, row in top.sort_values("speedup", ascending=False).iterrows():
        cycles = row["cycles"]
        rows.append({
            **({"machine": row["machine"]} if "machine" in row else {}),
            "pattern": row["label_group"],
            "compression_ratio": row["compression_ratio"],
            "speedup": row["speedup"],
            **{f"{p}_share": row[f"{p}_compute_cycles"] / cycles for p in BREAKDOWN_PARTS},
            "stall_share": row["stall_cycles"] / cycles,
        })  # fmt: skip
    return pd.DataFrame(rows)


def _cell(column: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    formatter = _FORMATS.get(column, (column, str))[1]
    try:
        return formatter(value)
    except (TypeError, ValueError):
        return str(value)


def _with_label_group(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with ``label_group`` (the pattern) and ``machine`` (what it ran on,
    :func:`studies.plots.machine_names`), the two keys of a pattern's series."""
    from studies.plots import machine_names

    out = frame.copy()
    group = out["pattern"].astype(str) if "pattern" in out else pd.Series("-", index=out.index)
    out["label_group"] = group
    out["machine"] = machine_names(out)
    return out


def markdown_table(table: pd.DataFrame) -> str:
    headers = [_FORMATS.get(c, (c, str))[0] for c in table.columns]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for _, row in table.iterrows():
        cells = [_cell(c, row[c]).replace("|", "\\|") for c in table.columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_report(
    frame: pd.DataFrame,
    run_info: Mapping[str, Any],
    plots: Sequence[Path],
    report_path: Path,
) -> str:
    """The report's markdown; plot paths are written relative to the report's directory."""
    kind = run_info.get("kind", "custom")
    name = run_info.get("study", "study")
    lines = [f"# Study `{name}` ({kind})", ""]
    if run_info.get("description"):
        lines += [str(run_info["description"]), ""]
    if "synthetic_weights" in frame and frame["synthetic_weights"].fillna(False).astype(bool).any():
        lines += [
            "> **Note:** masks were computed from **synthetic (random-init) weights** "
            "(column `synthetic_weights`). Where the nonzeros fall follows a random "
            "magnitude ranking, not a trained model's, so load imbalance and block "
            "occupancy may differ from a real pruned model's.",
            "",
        ]
    lines += ["## Key results", ""]
    pareto = ParetoSettings.from_mapping(run_info.get("pareto"))
    table = key_table(frame, kind, pareto)
    if kind == "dse":
        lines += [
            f"Pareto front ({pareto.describe()}): {len(table)} of {len(frame)} design points.",
            "",
        ]
    if len(table) > MAX_REPORT_ROWS:  # a study of thousands of points: its table is the CSV
        lines += [
            f"The first {MAX_REPORT_ROWS} of {len(table)} rows; `results.csv` has every row.",
            "",
        ]
        table = table.head(MAX_REPORT_ROWS)
    lines += [markdown_table(table), ""]
    breakdown = breakdown_table(_with_label_group(frame)) if kind == "compression" else None
    if breakdown is not None:
        lines += [
            "## Where the cycles go at the highest compression",
            "",
            "Shares of each sparse run's cycles: compute of the linear (weight) layers, of the "
            "attention GEMMs and of the vector ops, which weight sparsity does not shrink, and "
            "stalls.",
            "",
            markdown_table(breakdown),
            "",
        ]
    if plots:
        lines += ["## Plots", ""]
        for path in plots:
            relative = Path(path).relative_to(report_path.parent).as_posix()
            lines += [f"![{Path(path).stem}]({relative})", ""]
    versions = run_info.get("versions", {})
    lines += [
        "## Run",
        "",
        f"- points: {run_info.get('n_points', len(frame))} (evaluated this run: "
        f"{run_info.get('evaluated', '-')}, reused from the store: "
        f"{run_info.get('skipped', '-')}, failed: {run_info.get('failed', 0)})",
        f"- wall time of the run: {run_info.get('wall_s', float('nan')):.1f} s"
        + _summed_times(run_info.get("timing", {})),
    ]
    if "command" in run_info:
        lines.append(f"- command: `{run_info['command']}`")
    if "seed" in run_info or "seeds" in run_info:
        lines.append(f"- seed: {run_info.get('seed', run_info.get('seeds'))}")
    if "masks" in run_info:
        lines.append(f"- masks: {run_info['masks']}")
    if kind != "accuracy":
        lines.append(f"- Pareto front: {pareto.describe()}")
    lines.append(
        f"- package version: {run_info.get('package_version', '-')}; "
        + ", ".join(f"{k} {v}" for k, v in versions.items() if v)
    )
    if "spec_source" in run_info:
        lines.append(f"- spec: `{run_info['spec_source']}` (copied to `spec.yaml`)")
    lines += [
        "- results: `results.parquet`, `results.csv`"
        + (", `summary.csv` (cells over seeds)" if kind == "accuracy" else "")
        + "; run info and the config hash of every point (the `key` column): `run.json`",
        "",
    ]
    return "\n".join(lines)


def _summed_times(timing: dict) -> str:
    """The per-point times a run recorded (a sweep's simulation, an accuracy study's training),
    each only when recorded: an accuracy run printed a simulation time of 0.0 s."""
    names = (("simulation_s", "simulation time summed over points"),
             ("train_s", "training time summed over cells"))  # fmt: skip
    return "".join(
        f"; {label}: {float(timing[key]):.1f} s" for key, label in names if key in timing
    )
