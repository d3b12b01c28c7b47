"""``cosim study run | plot | list``: sweep a study spec, plot it and write its report."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from safeio.atomic import atomic_write_bytes, atomic_write_text
from safeio.documents import MAX_YAML_BYTES, DocumentError, is_file, read_json, read_text
from safeio.errors import format_validation_error
from safeio.limits import MAX_JOBS, MAX_POINTS, SHOWN_VALUE_CHARS, shorten
from studies.console import console, fail, verbosity
from studies.options import SetOption, parse_set_options, with_verbosity

study_app = typer.Typer(
    help="Design-space studies: sweep a spec, plot the table, write a report.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

OPS_FILE = "ops.parquet"
MASKS_DIR = "masks"
STORE_DIR = "store"


def _representative(frame) -> int:
    """Row index of the point whose per-op roofline is drawn: the highest speedup."""
    if "speedup" in frame and frame["speedup"].notna().any():
        return int(frame["speedup"].astype(float).idxmax())
    return 0


def _output_path(out: Path, name: str, field: str) -> Path:
    """``out / name`` for an ``outputs`` name already validated as a plain name: refused
    when it is a symbolic link (which could lead out of ``out``)."""
    path = out / name
    if path.is_symlink():
        raise fail(f"outputs.{field}: {path} is a symbolic link: expected a plain name in {out}")
    return path


def write_plots_and_report(out: Path, frame, run_info: dict) -> list[Path]:
    """Plots and report into the names of ``run_info["outputs"]`` (already validated: plain,
    distinct, not the study's own files), never out of ``out``; an accuracy study's plots and
    report read its summary over seeds. A Pareto objective or constraint that is no column
    of the table raises KeyError, one that names a text column ParetoColumnError."""
    import pandas as pd

    from studies import plots as study_plots
    from studies.pareto import ParetoSettings, check_numeric_columns
    from studies.report import render_report

    if run_info.get("kind") == "accuracy":
        from studies.accuracy_table import summarise

        frame = summarise(frame)

    outputs = run_info.get("outputs", {})
    plots_dir = _output_path(out, outputs.get("plots_dir", "plots"), "plots_dir")
    report_path = _output_path(out, outputs.get("report", "report.md"), "report")
    ops = pd.read_parquet(out / OPS_FILE) if (out / OPS_FILE).is_file() else None
    pareto = ParetoSettings.from_mapping(run_info.get("pareto"))
    missing = [c for c in [*pareto.columns(), *pareto.constraints] if c not in frame]
    if missing and run_info.get("kind") != "accuracy":  # an accuracy study has no front
        raise KeyError(f"pareto objective or constraint {', '.join(missing)}")
    if run_info.get("kind") != "accuracy":
        check_numeric_columns(frame, pareto)
    written = study_plots.save_all(
        frame, plots_dir, run_info.get("kind", "custom"), ops, pareto=pareto
    )
    pngs = [paths[0] for paths in written.values()]
    text = render_report(frame, run_info, pngs, report_path)
    atomic_write_text(report_path, text + "\n", root=out)
    return [path for paths in written.values() for path in paths] + [report_path]


def _text_in_numeric_columns(frame) -> list[str]:
    """The columns the report and plots format as numbers that hold something else (a
    hand-edited or foreign results.parquet): formatting them raised a traceback."""
    from studies.pareto import holds_numbers
    from studies.report import NUMERIC_COLUMNS

    columns = sorted(NUMERIC_COLUMNS.intersection(frame.columns))
    return [column for column in columns if not holds_numbers(frame[column])]


def _cannot_write(out: Path | None, error: OSError) -> typer.Exit:
    """One line for a write that failed (a full disk, a read-only or special target)."""
    reason = error.strerror or str(error)
    where = f" ({error.filename})" if error.filename else ""
    place = f" in {out}" if out is not None else ""
    return fail(f"cannot write the study's outputs{place}{where}: {reason}; files written "
                "before stay as they were")  # fmt: skip


def _write_errors_are_one_line(command: Callable[..., None]) -> Callable[..., None]:
    """A command whose writes failing (``OSError``: a full disk, a read-only directory, a
    special file in the way; PIL and the store raise it too) ends in one error line; the
    atomic writers leave every file written before as it was."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> None:
        try:
            command(*args, **kwargs)
        except OSError as error:
            raise _cannot_write(kwargs.get("out") or kwargs.get("directory"), error) from None

    return run


def _with_pareto_options(
    run_info: dict,
    objectives: list[str] | None,
    epsilon: float | None,
    constraints: list[str] | None,
) -> dict:
    """``run_info`` with its ``pareto`` section changed by the ``study plot`` options."""
    from studies.spec import ParetoSpec

    pareto = dict(run_info.get("pareto") or {})
    if objectives:
        pareto["objectives"] = list(objectives)
    if epsilon is not None:
        pareto["epsilon"] = epsilon
    if constraints:
        parsed = dict(pareto.get("constraints") or {})
        for item in constraints:
            for op in ("<=", ">="):
                column, sep, bound = item.partition(op)
                if sep:
                    parsed[column.strip()] = f"{op} {bound.strip()}"
                    break
            else:
                raise ValueError(f"--constraint {item!r}: expected COLUMN<=BOUND or COLUMN>=BOUND")
        pareto["constraints"] = parsed
    try:
        checked = ParetoSpec.model_validate(pareto)
    except Exception as error:  # pydantic's ValidationError: one line
        message = "; ".join(e["msg"] for e in getattr(error, "errors", lambda: [])()) or error
        raise ValueError(f"Pareto options: {message}") from None
    return {**run_info, "pareto": checked.model_dump()}


def _check_run_info(run_file: Path, run_info: dict) -> None:
    """fail() naming the first field of ``run.json`` the plots and report read that has the
    wrong type (a hand-edited or foreign file)."""
    for key, value in run_info.items():
        section = key in ("timing", "versions") or (key == "pareto" and value is not None)
        if section and not isinstance(value, dict):
            kind = type(value).__name__
            raise fail(f"{run_file}: {key} is a JSON {kind}: expected an object")
    timing = run_info.get("timing") or {}
    for key, present, value in (
        ("wall_s", "wall_s" in run_info, run_info.get("wall_s")),
        ("timing.simulation_s", "simulation_s" in timing, timing.get("simulation_s")),
    ):
        if present and (not isinstance(value, int | float) or isinstance(value, bool)):
            shown = shorten(repr(value), SHOWN_VALUE_CHARS)
            raise fail(f"{run_file}: {key} is {shown}: expected a number of seconds")


@study_app.command("list")
def list_command() -> None:
    """List the built-in studies."""
    from studies.spec import builtin_names, expand, load_spec

    for name in builtin_names():
        spec, base = load_spec(name)
        console.print(
            f"{name:<14} {len(expand(spec, base)):>4} points  {spec.description}",
            highlight=False,
            soft_wrap=True,
        )


@study_app.command("run")
@with_verbosity
@_write_errors_are_one_line
def run_command(
    study: Annotated[str, typer.Argument(help="built-in study name or a YAML spec file")],
    out: Annotated[
        Path | None, typer.Option(help="output directory (default out/<study name>)")
    ] = None,
    jobs: Annotated[int, typer.Option(help="local worker processes")] = 1,
    scheduler: Annotated[
        str | None, typer.Option(help="Dask scheduler address (tcp://host:port)")
    ] = None,
    dask_workers: Annotated[
        int | None, typer.Option(help="start a Dask LocalCluster with N workers")
    ] = None,
    progress: Annotated[
        bool, typer.Option(help="show a progress bar (on a terminal only)")
    ] = True,
    max_points: Annotated[
        int, typer.Option(help="refuse a spec that expands to more design points")
    ] = MAX_POINTS,
    set_fields: SetOption = None,
) -> None:
    """Sweep every design point of STUDY (resuming), then write the table, plots and report.

    --set FIELD=VALUE overrides a field of every hardware spec the study names, before its
    grid is applied.
    """
    import pandas as pd

    from studies.evaluate import evaluate_point, mask_group, op_frame, prepare_masks
    from studies.runner import SchedulerError, run_points
    from studies.spec import StudySpecError, builtin_text, expand, load_spec
    from studies.sqlite_store import SqliteStore
    from studies.store import StoreError, point_key
    from workloads import WorkloadError

    started = time.perf_counter()
    given = sum(x is not None for x in (scheduler, dask_workers)) + (jobs != 1)
    if given > 1:
        raise fail("give at most one of --jobs, --scheduler and --dask-workers")
    if jobs < 1 or (dask_workers is not None and dask_workers < 1):
        raise fail("--jobs and --dask-workers must be at least 1")
    for option, value in (("--jobs", jobs), ("--dask-workers", dask_workers)):
        if value is not None and value > MAX_JOBS:
            raise fail(f"{option} {value}: over the limit of {MAX_JOBS} worker processes")
    if max_points < 1:
        raise fail(f"--max-points must be at least 1, got {max_points}")
    try:
        overrides = parse_set_options(set_fields)
        spec, base = load_spec(study)
        points = expand(spec, base, overrides=overrides, max_points=max_points)
    except (StudySpecError, ValueError) as error:
        raise fail(str(error)) from None
    out = out if out is not None else Path("out") / spec.name
    mask_dir = out / MASKS_DIR
    try:
        out.mkdir(parents=True, exist_ok=True)
        store = SqliteStore(out / STORE_DIR)
        keys = [point_key(p) for p in points]
        stored = store.keys()
    except (OSError, StoreError) as error:
        raise fail(f"--out {out}: {error}") from None
    try:
        todo = [p for p, k in zip(points, keys, strict=True) if k not in stored]
        console.print(
            f"study {spec.name}: {len(points)} points ({len(points) - len(todo)} already stored), "
            f"output {out}",
            highlight=False,
        )
        try:
            masks = prepare_masks(todo, mask_dir, jobs=jobs)
        except ValueError as error:  # pattern/model errors surface here first
            raise fail(f"computing masks: {error}") from None
        evaluate = functools.partial(evaluate_point, mask_dir=str(mask_dir.resolve()))
        try:
            summary = run_points(
                points,
                evaluate,
                store,
                jobs=jobs,
                scheduler=scheduler,
                dask_workers=dask_workers,
                progress=progress and verbosity() >= 0,
                description=spec.name,
                group=mask_group,
                keys=keys,
            )
        except SchedulerError as error:
            raise fail(f"--scheduler: {error}") from None
        for key, message in summary.failed[:5]:
            console.print(f"[bold red]failed[/] point {key}: {message}", highlight=False)
        frame = store.frame(keys)
        if frame.empty:
            raise fail(f"no point of study {spec.name} finished; see the errors above")
        representative = _representative(frame)
        rep_key = frame["key"].iloc[representative]
        try:
            ops = op_frame(points[keys.index(rep_key)], mask_dir)
            ops.insert(0, "key", rep_key)
            atomic_write_bytes(out / OPS_FILE, ops.to_parquet(index=False), root=out)
            ops_csv = ops.to_csv(index=False, lineterminator="\n")
            atomic_write_text(out / "ops.csv", ops_csv, root=out)
        except (WorkloadError, ValueError) as error:
            console.print(f"no roofline: {error}", highlight=False)
        synthetic = bool(frame.get("synthetic_weights", pd.Series([False])).fillna(False).any())
        run_info = {
            "study": spec.name,
            "kind": spec.kind,
            "description": spec.description,
            "spec": spec.model_dump(mode="json"),
            "spec_source": str(study),
            "hardware_overrides": overrides,
            "seed": spec.seed,
            "outputs": spec.outputs.model_dump(),
            "pareto": spec.pareto.model_dump(),
            "evaluated": summary.done,
            "skipped": summary.skipped,
            "failed": len(summary.failed),
            "store_read_s": summary.store_read_s,
            "store_write_s": summary.store_write_s,
            "masks": (
                f"{masks['mask_sets']} mask sets ({masks['computed']} computed this run), "
                "magnitude, "
                + ("from synthetic random-init weights" if synthetic else "from model weights")
            ),
            "synthetic_weights": synthetic,
            "roofline_point": rep_key,
        }
        run_info["wall_s"] = time.perf_counter() - started
        exported = store.export(out, run_info, keys)
        run_info = read_json(exported["run"])
        if is_file(study):  # the spec as given (already read within the bounds once)
            spec_text = read_text(study, MAX_YAML_BYTES, "YAML").encode("utf-8")
        else:
            spec_text = builtin_text(study).encode("utf-8")
        atomic_write_bytes(out / "spec.yaml", spec_text, root=out)
        from studies.pareto import ParetoColumnError

        try:
            written = write_plots_and_report(out, frame, run_info)
        except KeyError as error:  # a pareto objective that is no result column
            raise fail(f"study spec field pareto: no result column {error.args[0]}") from None
        except ParetoColumnError as error:  # one that is no number
            raise fail(f"study spec field pareto: {error}") from None
        console.print(
            f"{summary.done} evaluated, {summary.skipped} reused, {len(summary.failed)} failed; "
            f"wrote {exported['parquet']}, {exported['csv']}, {exported['run']} and "
            f"{len(written)} plot/report files in {time.perf_counter() - started:.1f} s",
            highlight=False,
            soft_wrap=True,
        )
        if summary.failed:
            raise typer.Exit(code=1)
    finally:  # the database closes, and SQLite removes its -wal and -shm files
        store.close()


@study_app.command("plot")
@with_verbosity
@_write_errors_are_one_line
def plot_command(
    directory: Annotated[Path, typer.Argument(help="output directory of `cosim study run`")],
    objective: Annotated[
        list[str] | None,
        typer.Option(
            help="Pareto objective column, minimised (max:COLUMN to maximise); repeatable; "
            "default: the spec's pareto.objectives"
        ),
    ] = None,
    epsilon: Annotated[
        float | None, typer.Option(help="Pareto epsilon (relative tolerance, 0 = exact)")
    ] = None,
    constraint: Annotated[
        list[str] | None,
        typer.Option(help="COLUMN<=BOUND or COLUMN>=BOUND, e.g. 'area_mm2<=5'; repeatable"),
    ] = None,
) -> None:
    """Redraw the plots (PNG and SVG) and report.md of a finished study directory.

    --objective, --epsilon and --constraint choose the Pareto front the report marks and
    the plot circles (the same rows), instead of the spec's.
    """
    import pandas as pd
    from pydantic import ValidationError

    from studies.spec import KINDS, Outputs

    results = directory / "results.parquet"
    run_file = directory / "run.json"
    if not results.is_file() or not run_file.is_file():
        raise fail(f"{directory}: expected results.parquet and run.json from `cosim study run`")
    try:
        frame = pd.read_parquet(results)
    except (OSError, ValueError) as error:  # pyarrow's errors subclass both
        raise fail(f"{results}: cannot read as Parquet ({error})") from None
    text_columns = _text_in_numeric_columns(frame)
    if text_columns:
        raise fail(
            f"{results}: column {', '.join(text_columns)} holds values that are not numbers: "
            "expected the table `cosim study run` writes"
        )
    try:
        run_info = read_json(run_file)  # strict, bounded (safeio.documents)
    except DocumentError as error:
        raise fail(f"{run_file} {error}: expected a JSON object") from None
    if not isinstance(run_info, dict):
        raise fail(f"{run_file} holds a JSON {type(run_info).__name__}: expected an object")
    # run.json says where the plots and report go: validated again like a spec's outputs
    # (plain names inside DIR, not the study's own files), and the kind picks the plots.
    try:
        outputs = Outputs.model_validate(run_info.get("outputs") or {})
    except ValidationError as error:
        message = format_validation_error(error, "outputs in", str(run_file), "plots_dir, report")
        raise fail(message) from None
    _check_run_info(run_file, run_info)
    kinds = (*KINDS, "accuracy")  # spec kinds, and `cosim study accuracy`'s runs
    if run_info.get("kind", "custom") not in kinds:
        raise fail(f"{run_file}: kind {run_info.get('kind')!r} is not one of {', '.join(kinds)}")
    run_info = {**run_info, "outputs": outputs.model_dump()}
    try:
        run_info = _with_pareto_options(run_info, objective, epsilon, constraint)
    except ValueError as error:
        raise fail(str(error)) from None
    from studies.pareto import ParetoColumnError

    try:
        written = write_plots_and_report(directory, frame, run_info)
    except KeyError as error:  # a column the plots or report need
        raise fail(
            f"{results}: no column {error.args[0]}: expected the table `cosim study run` writes"
        ) from None
    except ParetoColumnError as error:  # --objective, --constraint or the spec's
        raise fail(f"{results}: {error}") from None
    for path in written:
        console.print(f"wrote {path}", highlight=False)


study_app.command("accuracy")(__import__("studies.accuracy_cmd").accuracy_cmd.accuracy_command)
