"""``cosim study accuracy``: the accuracy study of pruned MiniLM on GLUE, joined with the
simulated speedup of the same artifacts (library: :mod:`studies.accuracy`)."""

from __future__ import annotations

import functools
import shlex
import time
from pathlib import Path
from typing import Annotated

import typer

from studies.console import console, fail

DEFAULT_TASKS = "MRPC,RTE,STS-B"
DEFAULT_METHODS = "dense,magnitude,gradual,group-lasso,distill"
DEFAULT_SPARSITIES = "0.5,0.8,0.9,0.95"
DEFAULT_PATTERNS = "unstructured,block:4x4,block:16x16,block:32x32"


def _split(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _number(text: str, option: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{option}: {text!r} is not a number: expected e.g. 0.5,0.8") from None


def _command_line(**options: object) -> str:
    """The exact equivalent command line (every option spelled out, defaults included)."""
    words = ["cosim", "study", "accuracy"]
    for name, value in options.items():
        if value is not None:
            words += [f"--{name.replace('_', '-')}", str(value)]
    return " ".join(shlex.quote(word) for word in words)


def accuracy_command(
    tasks: Annotated[str, typer.Option(help="GLUE tasks, comma-separated")] = DEFAULT_TASKS,
    methods: Annotated[
        str, typer.Option(help="dense, magnitude, gradual, group-lasso, distill")
    ] = DEFAULT_METHODS,
    sparsities: Annotated[str, typer.Option(help="target sparsities")] = DEFAULT_SPARSITIES,
    patterns: Annotated[str, typer.Option(help="mask patterns")] = DEFAULT_PATTERNS,
    model: Annotated[str, typer.Option(help="model (real weights by default)")] = (
        "all-MiniLM-L6-v2"
    ),
    max_train_examples: Annotated[int, typer.Option(help="seeded train subset")] = 1000,
    max_eval_examples: Annotated[int, typer.Option(help="seeded dev subset")] = 1000,
    epochs: Annotated[float, typer.Option(help="fine-tune / prune epochs per phase")] = 3.0,
    distill_epochs: Annotated[
        float | None, typer.Option(help="epochs of pruning at distilling (default --epochs)")
    ] = None,
    seq_len: Annotated[int, typer.Option(help="max sequence length (train and simulate)")] = 128,
    batch_size: Annotated[int, typer.Option(help="training batch size")] = 32,
    lr: Annotated[float, typer.Option(help="learning rate")] = 5e-5,
    seed: Annotated[int, typer.Option(help="seed of subsets and training")] = 0,
    hw: Annotated[
        str | None,
        typer.Option(
            help="hardware preset for every cell (default: systolic-32x32-ws-skip for block "
            "patterns, eie-64pe for unstructured)"
        ),
    ] = None,
    data_dir: Annotated[Path | None, typer.Option(help="GLUE TSV directory")] = None,
    out: Annotated[Path, typer.Option(help="results directory")] = Path("results/accuracy"),
    work_dir: Annotated[
        Path, typer.Option(help="artifacts (weights) directory, keep outside results")
    ] = Path("out/accuracy-work"),
    jobs: Annotated[int, typer.Option(help="cells in parallel (local processes)")] = 1,
    dry_run: Annotated[bool, typer.Option(help="print the cells and estimate only")] = False,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
) -> None:
    """Accuracy of pruned models relative to dense, joined with simulated speedup.

    One cell per (task, method, pattern, sparsity); a killed study resumes per cell.
    """
    from safeio.atomic import atomic_write_text
    from studies import accuracy
    from studies.runner import run_points
    from studies.store import TIMING_FIELDS, ResultStore, StoreError, point_key

    started = time.perf_counter()
    if jobs < 1:
        raise fail("--jobs must be at least 1")
    settings = accuracy.AccuracySettings(
        model=model,
        max_train_examples=max_train_examples,
        max_eval_examples=max_eval_examples,
        seq_len=seq_len,
        epochs=epochs,
        distill_epochs=distill_epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        hw=hw,
        data_dir=None if data_dir is None else str(data_dir.resolve()),
    )
    try:
        sparsity_values = [_number(s, "--sparsities") for s in _split(sparsities)]
        points = accuracy.cell_points(
            _split(tasks), _split(methods), _split(patterns), sparsity_values, settings
        )
        accuracy.check_cells(points)  # before any training, dry run or not
    except ValueError as error:
        raise fail(str(error)) from None
    if not points:
        raise fail("no cells: give at least one task, method, pattern and sparsity")
    estimate = accuracy.estimate_seconds(points)
    try:
        if not dry_run or (work_dir / "store").is_dir():  # a dry run creates nothing
            out.mkdir(parents=True, exist_ok=True)
            work_dir.mkdir(parents=True, exist_ok=True)
            store = ResultStore(
                work_dir / "store", timing_fields=TIMING_FIELDS | accuracy.WALL_TIME_FIELDS
            )
        else:
            store = None
        keys = [point_key(p) for p in points]
    except (OSError, StoreError) as error:
        raise fail(f"{error}") from None
    stored = 0 if store is None else sum(store.has(k) for k in keys)
    console.print(
        f"accuracy study: {len(points)} cells ({stored} already stored); estimate "
        f"{estimate['total'] / 3600:.1f} h on 2 cores for all of them (dense fine-tunes "
        f"{estimate['teachers'] / 60:.0f} min, largest cell {estimate['per_cell_max'] / 60:.1f} "
        f"min); settings {settings.record()}; output {out}, artifacts {work_dir}",
        highlight=False,
        soft_wrap=True,
    )
    if dry_run or store is None:
        return
    todo = [p for p, k in zip(points, keys, strict=True) if not store.has(k)]
    try:
        accuracy.prepare_teachers(
            todo, work_dir, report=lambda line: console.print(line, highlight=False)
        )
    except (ValueError, OSError) as error:
        raise fail(f"dense fine-tune: {error}") from None
    evaluate = functools.partial(accuracy.evaluate_cell, work_dir=str(work_dir.resolve()))
    summary = run_points(
        points, evaluate, store, jobs=jobs, progress=progress, description="accuracy"
    )
    for key, message in summary.failed[:5]:
        console.print(f"[bold red]failed[/] cell {key}: {message}", highlight=False)
    frame = store.frame(keys)
    if frame.empty:
        raise fail("no cell finished; see the errors above")
    table = accuracy.add_majority(accuracy.finish_table(frame, work_dir), settings.record())
    # wall times: beside the table in run.json, never in it (the table is reproducible)
    timings = store.point_timing(list(table["key"]))
    cell_timing = [
        {name: row[name] for name in ("task", "method", "pattern", "sparsity", "key")}
        | timings.get(row["key"], {})
        for _, row in table.iterrows()
    ]
    run_info = {
        "study": "accuracy",
        "command": _command_line(
            tasks=tasks,
            methods=methods,
            sparsities=sparsities,
            patterns=patterns,
            model=model,
            max_train_examples=max_train_examples,
            max_eval_examples=max_eval_examples,
            epochs=epochs,
            distill_epochs=distill_epochs,
            seq_len=seq_len,
            batch_size=batch_size,
            lr=lr,
            seed=seed,
            hw=hw,
            data_dir=data_dir,
            out=out,
            work_dir=work_dir,
            jobs=jobs,
        ),
        "settings": settings.record(),
        "tasks": _split(tasks),
        "methods": _split(methods),
        "method_labels": accuracy.METHOD_LABELS,
        "patterns": _split(patterns),
        "sparsities": sparsity_values,
        "hardware": hw
        or {"block": accuracy.BLOCK_HW, "unstructured and dense": accuracy.UNSTRUCTURED_HW},
        "simulated_workload": f"batch 1 x {seq_len} tokens, the artifact's own config",
        "dense_reference": "the dense model fine-tuned for --epochs on the same subset; it is "
        "also the starting point of magnitude / gradual / group-lasso and the teacher of "
        "distill (whose student starts from the pre-trained weights)",
        "estimate_s": estimate,
        "evaluated": summary.done,
        "skipped": summary.skipped,
        "failed": len(summary.failed),
        "dense_fine_tune_s": accuracy.dense_fine_tune_seconds(points, work_dir),
        "cell_timing": cell_timing,
        "wall_s": time.perf_counter() - started,
    }
    # the tidy table below is the study's result; the store adds only run.json
    store.write_run_info(out, run_info, keys)
    atomic_write_text(out / "results.csv", table.to_csv(index=False, lineterminator="\n"))
    atomic_write_text(out / "results.md", accuracy.render_markdown(table) + "\n")
    plots = accuracy.save_plots(table, out / "plots")
    console.print(
        f"{summary.done} cells evaluated, {summary.skipped} reused, {len(summary.failed)} "
        f"failed; wrote {out / 'results.csv'}, results.md, run.json and {len(plots)} plots "
        f"in {time.perf_counter() - started:.0f} s",
        highlight=False,
        soft_wrap=True,
    )
    if summary.failed:
        raise typer.Exit(code=1)
