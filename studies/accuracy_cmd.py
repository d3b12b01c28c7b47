"""``cosim study accuracy``: the accuracy study of pruned MiniLM on GLUE, joined with the
simulated speedup of the same artifacts (library: :mod:`studies.accuracy`; table and summary
:mod:`studies.accuracy_table`; plots and report through the study framework)."""

from __future__ import annotations

import functools
import shlex
import time
from pathlib import Path
from typing import Annotated

import typer

from safeio.limits import MAX_JOBS
from studies.console import console, fail

DEFAULT_TASKS = "MRPC,RTE,STS-B"
DEFAULT_METHODS = "dense,magnitude,gradual,group-lasso,distill"
DEFAULT_SPARSITIES = "0.5,0.8,0.9,0.95"
DEFAULT_PATTERNS = "unstructured,block:4x4,block:16x16,block:32x32"
HEAD_CHOICES = ("auto", "cls", "mean", "bi-encoder")
CHOICES = {
    "--lr-schedule": ("linear", "constant"),
    "--student-init": ("pre-trained", "fine-tuned"),
    "--kd-mode": ("full", "logits"),
    "--kd-cache": ("off", "logits", "hidden"),
    "--schedule-shape": ("cubic", "geometric"),
    "--optimizer-preset": ("sparsebert",),
}


def _split(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _number(text: str, option: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{option}: {text!r} is not a number: expected e.g. 0.5,0.8") from None


def _seed(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"--seeds: {text!r} is not an integer: expected e.g. 0,1,2") from None


def _limit(text: str, option: str) -> int | None:
    """A positive example count, or ``all`` (the whole split)."""
    if text.strip().lower() == "all":
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{option}: {text!r}: expected a positive integer or 'all'")
    return value


def _check_choices(given: dict[str, str | None]) -> None:
    for option, value in given.items():
        if value is not None and value not in CHOICES[option]:
            raise ValueError(f"{option}: {value!r}: expected one of {', '.join(CHOICES[option])}")


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
        str,
        typer.Option(help="dense, magnitude, gradual, group-lasso, distill, distill-mixkd"),
    ] = DEFAULT_METHODS,
    sparsities: Annotated[str, typer.Option(help="target sparsities")] = DEFAULT_SPARSITIES,
    patterns: Annotated[str, typer.Option(help="mask patterns")] = DEFAULT_PATTERNS,
    heads: Annotated[
        str,
        typer.Option(
            help="task heads: auto (the model's own: mean for all-MiniLM-L6-v2), cls, mean, "
            "bi-encoder (pair tasks only)"
        ),
    ] = "auto",
    seeds: Annotated[
        str, typer.Option(help="seeds, comma-separated: each its own dense model and cells")
    ] = "0",
    seed: Annotated[int | None, typer.Option(help="one seed (same as --seeds N)")] = None,
    model: Annotated[str, typer.Option(help="model (real weights by default)")] = (
        "all-MiniLM-L6-v2"
    ),
    max_train_examples: Annotated[
        str, typer.Option(help="seeded train subset size, or 'all'")
    ] = "1000",
    max_eval_examples: Annotated[
        str, typer.Option(help="seeded dev subset size, or 'all'")
    ] = "1000",
    epochs: Annotated[float, typer.Option(help="epochs of the dense fine-tune")] = 3.0,
    prune_epochs: Annotated[
        float | None, typer.Option(help="epochs of each pruning phase (default --epochs)")
    ] = None,
    distill_epochs: Annotated[
        float | None,
        typer.Option(help="epochs of pruning at distilling (default --prune-epochs)"),
    ] = None,
    seq_len: Annotated[
        int, typer.Option(help="max tokens per example, a pair's two sentences together")
    ] = 128,
    batch_size: Annotated[int, typer.Option(help="training batch size")] = 32,
    lr: Annotated[float, typer.Option(help="learning rate")] = 5e-5,
    prune_lr: Annotated[
        float | None, typer.Option(help="learning rate of the pruning phases (default --lr)")
    ] = None,
    optimizer_preset: Annotated[
        str | None, typer.Option(help="sparsebert: SparseBERT's optimiser settings")
    ] = None,
    warmup_ratio: Annotated[float, typer.Option(help="fraction of steps of warm-up")] = 0.1,
    lr_schedule: Annotated[str, typer.Option(help="linear | constant")] = "linear",
    student_init: Annotated[
        str,
        typer.Option(help="distill: pre-trained (SparseBERT) | fine-tuned (the dense model)"),
    ] = "pre-trained",
    kd_mode: Annotated[str, typer.Option(help="distill: full | logits")] = "full",
    kd_cache: Annotated[
        str, typer.Option(help="distill: off | logits | hidden (teacher outputs cached)")
    ] = "logits",
    mixkd_weight: Annotated[
        float, typer.Option(help="weight of the MixKD term in distill-mixkd cells")
    ] = 1.0,
    schedule_shape: Annotated[
        str, typer.Option(help="gradual/distill ramp: cubic | geometric")
    ] = "cubic",
    update_every: Annotated[
        int | None, typer.Option(help="gradual/distill: steps between mask updates")
    ] = None,
    checkpoint_every: Annotated[
        int, typer.Option(help="steps between checkpoints inside a cell (resumable)")
    ] = 200,
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

    One cell per (task, head, seed, method, pattern, sparsity); a killed study resumes per
    cell, and inside a cell from its last checkpoint.
    """
    from studies import accuracy, accuracy_table
    from studies.runner import run_points
    from studies.store import TIMING_FIELDS, ResultStore, StoreError, point_key

    started = time.perf_counter()
    if jobs < 1:
        raise fail("--jobs must be at least 1")
    if jobs > MAX_JOBS:
        raise fail(f"--jobs {jobs}: over the limit of {MAX_JOBS} worker processes")
    if checkpoint_every < 1:
        raise fail("--checkpoint-every must be at least 1")
    if seed is not None and seeds != "0":
        raise fail("give --seeds or --seed, not both")
    try:
        _check_choices(
            {
                "--lr-schedule": lr_schedule,
                "--student-init": student_init,
                "--kd-mode": kd_mode,
                "--kd-cache": kd_cache,
                "--schedule-shape": schedule_shape,
                "--optimizer-preset": optimizer_preset,
            }
        )
        head_list = _split(heads)
        unknown = [h for h in head_list if h not in HEAD_CHOICES]
        if unknown:
            raise ValueError(
                f"--heads: {unknown[0]!r} is not a head: expected some of {', '.join(HEAD_CHOICES)}"
            )
        seed_list = [seed] if seed is not None else [_seed(s) for s in _split(seeds)]
        settings = accuracy.AccuracySettings(
            model=model,
            max_train_examples=_limit(max_train_examples, "--max-train-examples"),
            max_eval_examples=_limit(max_eval_examples, "--max-eval-examples"),
            seq_len=seq_len,
            epochs=epochs,
            prune_epochs=prune_epochs,
            distill_epochs=distill_epochs,
            batch_size=batch_size,
            lr=lr,
            prune_lr=prune_lr,
            optimizer_preset=optimizer_preset,
            warmup_ratio=warmup_ratio,
            lr_schedule=lr_schedule,
            student_init=student_init,
            kd_mode=kd_mode,
            kd_cache=kd_cache,
            mixkd_weight=mixkd_weight,
            schedule_shape=schedule_shape,
            update_every=update_every,
            checkpoint_every=checkpoint_every,
            hw=hw,
            data_dir=None if data_dir is None else str(data_dir.resolve()),
        )
        sparsity_values = [_number(s, "--sparsities") for s in _split(sparsities)]
        points = accuracy.cell_points(
            _split(tasks), _split(methods), _split(patterns), sparsity_values, settings,
            heads=head_list, seeds=seed_list,
        )  # fmt: skip
        accuracy.check_cells(points)  # before any training, dry run or not
    except ValueError as error:
        raise fail(str(error)) from None
    if not points:
        raise fail(
            "no cells: give at least one task, method, pattern and sparsity (head bi-encoder "
            "needs a pair task)"
        )
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
        f"{estimate['total'] / 3600:.1f} h on one thread for all of them (dense fine-tunes "
        f"{estimate['teachers'] / 60:.0f} min, largest cell {estimate['per_cell_max'] / 60:.1f} "
        f"min); heads {head_list}, seeds {seed_list}, settings {settings.record()}; output "
        f"{out}, artifacts {work_dir}",
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
    table = accuracy_table.add_majority(
        accuracy_table.finish_table(frame, work_dir), settings.record()
    )
    # wall times: beside the table in run.json, never in it (the table is reproducible)
    timings = store.point_timing(list(table["key"]))
    cell_timing = [
        {name: row[name] for name in ("task", "head", "seed", "method", "pattern", "sparsity")}
        | {"key": row["key"]}
        | timings.get(row["key"], {})
        for _, row in table.iterrows()
    ]
    run_info = {
        "study": "accuracy",
        "kind": "accuracy",
        "description": "Accuracy of pruned models relative to dense, joined with the "
        "simulated speedup of the same artifacts.",
        "command": _command_line(
            tasks=tasks,
            methods=methods,
            sparsities=sparsities,
            patterns=patterns,
            heads=heads,
            seeds=",".join(map(str, seed_list)),
            model=model,
            max_train_examples=max_train_examples,
            max_eval_examples=max_eval_examples,
            epochs=epochs,
            prune_epochs=prune_epochs,
            distill_epochs=distill_epochs,
            seq_len=seq_len,
            batch_size=batch_size,
            lr=lr,
            prune_lr=prune_lr,
            optimizer_preset=optimizer_preset,
            warmup_ratio=warmup_ratio,
            lr_schedule=lr_schedule,
            student_init=student_init,
            kd_mode=kd_mode,
            kd_cache=kd_cache,
            mixkd_weight=mixkd_weight,
            schedule_shape=schedule_shape,
            update_every=update_every,
            checkpoint_every=checkpoint_every,
            hw=hw,
            data_dir=data_dir,
            out=out,
            work_dir=work_dir,
            jobs=jobs,
        ),
        "settings": settings.record(),
        "tasks": _split(tasks),
        "heads": head_list,
        "seeds": seed_list,
        "methods": _split(methods),
        "method_labels": accuracy.METHOD_LABELS,
        "patterns": _split(patterns),
        "sparsities": sparsity_values,
        "hardware": hw
        or {"block": accuracy.BLOCK_HW, "unstructured and dense": accuracy.UNSTRUCTURED_HW},
        "simulated_workload": f"batch 1 x {seq_len} tokens under each artifact's head (a "
        f"bi-encoder: two sentences of {seq_len // 2}), the artifact's own config",
        "dense_reference": "the dense model fine-tuned for --epochs on the same subset and "
        "seed; it is also the starting point of magnitude / gradual / group-lasso and the "
        "teacher of distill (whose student starts from the pre-trained weights, or from the "
        "dense model with --student-init fine-tuned)",
        "standard_errors": "results.csv metric_se: bootstrap over the dev examples; "
        "summary.csv metric_se: over seeds where a cell has several, else the bootstrap one",
        "estimate_s": estimate,
        "evaluated": summary.done,
        "skipped": summary.skipped,
        "failed": len(summary.failed),
        "dense_fine_tune_s": accuracy.dense_fine_tune_seconds(points, work_dir),
        "cell_timing": cell_timing,
        "wall_s": time.perf_counter() - started,
    }
    written = _write_outputs(store, out, run_info, keys, table)
    console.print(
        f"{summary.done} cells evaluated, {summary.skipped} reused, {len(summary.failed)} "
        f"failed; wrote {out / 'results.csv'}, summary.csv, report.md, run.json and "
        f"{len(written)} plot files in {time.perf_counter() - started:.0f} s",
        highlight=False,
        soft_wrap=True,
    )
    if summary.failed:
        raise typer.Exit(code=1)


def _write_outputs(store, out: Path, run_info: dict, keys: list[str], table) -> list[Path]:
    """The per-cell table through the store's export (results.parquet/.csv, run.json), the
    summary over seeds, and the framework's plots and report."""
    from safeio.atomic import atomic_write_text
    from safeio.documents import read_json
    from studies.accuracy_table import summarise
    from studies.study_cmd import write_plots_and_report

    exported = store.export(out, run_info, keys, table=table)
    atomic_write_text(
        out / "summary.csv", summarise(table).to_csv(index=False, lineterminator="\n")
    )
    return write_plots_and_report(out, table, read_json(exported["run"]))
