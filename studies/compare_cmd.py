"""``cosim compare A.json B.json ...``: results of ``cosim simulate --json`` side by side.

Totals (cycles, latency, energy, throughput, DRAM traffic, utilisation), each run's speedup
and energy ratio against the first file, and cycles and energy per op kind (BERT role, or
vector-op kind), with each kind's share of the run.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer

from safeio.limits import SHOWN_VALUE_CHARS, shorten
from studies.console import console, fail, is_stdout, si, tables_to_stderr, write_output

__all__ = ["compare_command", "compare_rows", "load_result"]

_TOTALS = (
    ("cycles", "cycles", lambda v: f"{v:,.0f}"),
    ("latency", "latency_s", lambda v: si(v, "s")),
    ("energy", "energy_j", lambda v: si(v, "J")),
    ("sequences/s", "sequences_per_s", lambda v: f"{v:,.2f}"),
    ("DRAM traffic", "dram_bytes", lambda v: si(v, "B")),
    ("PE utilisation", "utilisation", lambda v: f"{100 * v:.1f} %"),
)


def load_result(path: Path) -> dict[str, Any]:
    """A ``cosim simulate --json`` document, or ValueError saying why not."""
    from safeio.documents import DocumentError, is_file, read_json

    if not is_file(path):
        raise ValueError(f"{path}: file not found")
    try:  # bounded (safeio.documents); NaN allowed, as older result files may hold it
        document = read_json(path, allow_nan=True)
    except DocumentError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None
    if not (
        isinstance(document, dict)
        and isinstance(document.get("total"), dict)
        and isinstance(document.get("ops"), list)
    ):
        raise ValueError(f"{path}: expected the JSON `cosim simulate --json` writes (total, ops)")
    _check_fields(path, document)
    return document


def _shown(value: Any) -> str:
    """A field's value in an error line, bounded (``safeio.limits.shorten``)."""
    return shorten(repr(value), SHOWN_VALUE_CHARS)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_fields(path: Path, document: dict[str, Any]) -> None:
    """ValueError naming the first field the table reads that has the wrong type or value."""
    total = document["total"]
    for key in ("cycles", "energy_j"):
        value = total.get(key)
        if not (_is_number(value) and math.isfinite(value) and value > 0):
            raise ValueError(f"{path}: total.{key} is {_shown(value)}: expected a positive number")
    for key in ("latency_s", "sequences_per_s", "dram_bytes", "utilisation", "speedup"):
        value = total.get(key)
        if value is not None and not _is_number(value):
            raise ValueError(f"{path}: total.{key} is {_shown(value)}: expected a number or null")
    for index, op in enumerate(document["ops"]):
        if not isinstance(op, dict):
            raise ValueError(f"{path}: ops[{index}] is {_shown(op)}: expected an object")
        for key in ("cycles", "energy_j"):
            value = op.get(key)
            if value is not None and not _is_number(value):
                raise ValueError(
                    f"{path}: ops[{index}].{key} is {_shown(value)}: expected a number or null"
                )
        for key in ("role", "kind", "name"):
            value = op.get(key)
            if value is not None and not isinstance(value, str):
                raise ValueError(
                    f"{path}: ops[{index}].{key} is {_shown(value)}: expected a string or null"
                )


def _labels(paths: list[Path], documents: list[dict]) -> list[str]:
    labels = [f"{d.get('model', '?')} on {d.get('hardware', '?')}" for d in documents]
    if len(set(labels)) < len(labels):  # the same run twice, or different settings
        labels = [f"{path.stem}: {label}" for path, label in zip(paths, labels, strict=True)]
    if len(set(labels)) < len(labels):
        labels = [str(path) for path in paths]
    return labels


def _kinds(document: dict) -> dict[str, tuple[float, float]]:
    """Op kind -> (cycles, energy_j), in first-seen order."""
    kinds: dict[str, tuple[float, float]] = {}
    for op in document["ops"]:
        kind = op.get("role") or op.get("kind") or "?"
        if kind == "layer":
            kind = op.get("name", kind)
        cycles, energy = kinds.get(kind, (0.0, 0.0))
        cycles += float(op.get("cycles") or 0)
        kinds[kind] = (cycles, energy + float(op.get("energy_j") or 0))
    return kinds


def compare_rows(documents: list[dict]) -> list[tuple[str, list[str]]]:
    """(row label, one cell per document) for every row of the comparison table."""
    first = documents[0]["total"]
    rows: list[tuple[str, list[str]]] = []
    for label, key, shown in _TOTALS:
        cells = []
        for document in documents:
            value = document["total"].get(key)
            cells.append("-" if value is None else shown(float(value)))
        rows.append((label, cells))
    rows.append(
        (
            "speedup vs first",
            [f"{float(first['cycles']) / float(d['total']['cycles']):.3f}x" for d in documents],
        )
    )
    rows.append(
        (
            "energy vs first",
            [f"{float(d['total']['energy_j']) / float(first['energy_j']):.3f}x" for d in documents],
        )
    )
    for document in documents:
        if document.get("baseline"):
            rows.append(
                (
                    "speedup vs own dense",
                    [
                        "-" if d.get("total", {}).get("speedup") is None
                        else f"{float(d['total']['speedup']):.3f}x"
                        for d in documents
                    ],
                )
            )
            break
    per_run = [_kinds(d) for d in documents]
    kinds = list(dict.fromkeys(kind for run in per_run for kind in run))
    for kind in kinds:
        cycles, energy = [], []
        for document, run in zip(documents, per_run, strict=True):
            if kind not in run:
                cycles.append("-")
                energy.append("-")
                continue
            c, e = run[kind]
            total_c = float(document["total"]["cycles"]) or 1.0
            total_e = float(document["total"]["energy_j"]) or 1.0
            cycles.append(f"{c:,.0f} ({100 * c / total_c:.0f} %)")
            energy.append(f"{si(e, 'J')} ({100 * e / total_e:.0f} %)")
        rows.append((f"{kind}: cycles", cycles))
        rows.append((f"{kind}: energy", energy))
    return rows


def compare_command(
    results: Annotated[
        list[Path], typer.Argument(help="two or more JSON files of `cosim simulate --json`")
    ],
    csv_path: Annotated[
        Path | None,
        typer.Option("--csv", help="also write the table as CSV ('-': standard output)"),
    ] = None,
) -> None:
    """Compare simulate results side by side: totals, speedups, energy, per-op-kind breakdown.

    Speedup and energy ratios are against the first file.
    """
    from rich.table import Table

    if len(results) < 2:
        raise fail("give at least two result files to compare")
    if is_stdout(csv_path):
        tables_to_stderr()
    try:
        documents = [load_result(path) for path in results]
    except ValueError as error:
        raise fail(str(error)) from None
    labels = _labels(results, documents)
    rows = compare_rows(documents)
    table = Table(title="comparison (ratios against the first run)")
    table.add_column("")
    for label in labels:
        table.add_column(label, justify="right")
    for name, cells in rows:
        table.add_row(name, *cells)
    console.print(table)
    if csv_path is not None:
        import csv
        import io

        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["", *labels])
        for name, cells in rows:
            writer.writerow([name, *cells])
        write_output(csv_path, buffer.getvalue(), "--csv")
