"""``report.md`` for a finished study: its key table, its plots and how it was run."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from studies.pareto import ParetoSettings, pareto_front
from studies.plots import _prepared

__all__ = ["key_table", "markdown_table", "render_report"]

# column -> (header, formatter)
_FORMATS: dict[str, tuple[str, Any]] = {
    "machine": ("hardware", str),
    "label": ("design point", str),
    "pattern": ("pattern", str),
    "zero_handling": ("sparse mode", str),
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
    "area_mm2": ("area [mm^2]", lambda v: f"{v:.2f}"),
    "pareto": ("Pareto front", lambda v: "yes" if v else ""),
}

_KEY_COLUMNS = {
    "block-size": [
        "pattern",
        "zero_handling",
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
    table = _prepared(frame) if len(frame) else frame.copy()
    settings = pareto or ParetoSettings()
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
    if "machine" in table:
        columns = ["machine", *columns]
    return table[columns]


def _cell(column: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    formatter = _FORMATS.get(column, (column, str))[1]
    try:
        return formatter(value)
    except (TypeError, ValueError):
        return str(value)


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
    lines += [markdown_table(table), ""]
    if plots:
        lines += ["## Plots", ""]
        for path in plots:
            relative = Path(path).relative_to(report_path.parent).as_posix()
            lines += [f"![{Path(path).stem}]({relative})", ""]
    versions = run_info.get("versions", {})
    lines += [
        "## Run",
        "",
        f"- points: {len(frame)} (evaluated this run: {run_info.get('evaluated', '-')}, "
        f"reused from the store: {run_info.get('skipped', '-')}, "
        f"failed: {run_info.get('failed', 0)})",
        f"- wall time of the run: {run_info.get('wall_s', float('nan')):.1f} s; "
        f"simulation time summed over points: "
        f"{float(run_info.get('timing', {}).get('simulation_s', 0.0)):.1f} s",
        f"- seed: {run_info.get('seed')}",
        f"- masks: {run_info.get('masks', '-')}",
        f"- Pareto front: {pareto.describe()}",
        f"- package version: {run_info.get('package_version', '-')}; "
        + ", ".join(f"{k} {v}" for k, v in versions.items() if v),
        f"- spec: `{run_info.get('spec_source', '-')}` (copied to `spec.yaml`)",
        "- results: `results.parquet`, `results.csv`; run info and the config hash of every "
        "point (the `key` column): `run.json`",
        "",
    ]
    return "\n".join(lines)
