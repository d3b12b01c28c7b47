"""``cosim variation ARTIFACT``: a quantized crossbar model's dev metric under device variation.

The artifact of ``cosim prune --method admm --weight-bits B`` holds weights on conductance
levels. Each programmed cell reads back with lognormal variation of ``sigma`` (and optional
stuck-at-on/off fractions, :mod:`pruning.variation`); the task it was trained on is scored
over several seeds per sigma. It prints mean and standard error per sigma and metric, and
writes the table (``--csv``) and the accuracy-vs-sigma curve (``--plot``) where asked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from studies.console import console, fail, is_stdout, tables_to_stderr, write_output
from studies.options import check_distinct_outputs

__all__ = ["MAX_SEEDS", "MAX_SIGMAS", "parse_sigmas", "plot_sigma_curve", "variation_command"]

DEFAULT_SIGMAS = "0,0.01,0.02,0.05,0.1"
MAX_SIGMAS = 64  # each sigma is seeds x a dev pass: a longer list is a typo, not a sweep
MAX_SEEDS = 100


def parse_sigmas(text: str) -> list[float]:
    """``0,0.01,0.05`` -> floats, each finite and >= 0, at most :data:`MAX_SIGMAS`, or
    ValueError naming ``--sigmas``."""
    import math

    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise ValueError(f"--sigmas: {text!r}: expected comma-separated numbers, e.g. 0,0.01,0.05")
    if len(items) > MAX_SIGMAS:
        raise ValueError(f"--sigmas: {len(items)} values: at most {MAX_SIGMAS}")
    sigmas = []
    for item in items:
        try:
            value = float(item)
        except ValueError:
            raise ValueError(f"--sigmas: {item!r} is not a number: expected e.g. 0,0.01") from None
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"--sigmas: {item!r}: expected a finite number >= 0")
        sigmas.append(value)
    return sigmas


def plot_sigma_curve(table, title: str):  # pandas DataFrame -> matplotlib Axes
    """Mean metric vs sigma, one line per metric, with standard-error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=(5.5, 3.6), layout="constrained")
    for metric, rows in table.groupby("metric", sort=False):
        ax.errorbar(rows["sigma"], rows["mean"], yerr=rows["se"], marker="o", capsize=3,
                    label=str(metric))  # fmt: skip
    ax.set_xlabel("conductance variation sigma (std of ln G)")
    ax.set_ylabel("dev metric (mean over seeds)")
    ax.set_title(title, fontsize="medium")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return ax


def variation_command(
    artifact: Annotated[
        Path, typer.Argument(help="a quantized artifact (cosim prune --method admm --weight-bits)")
    ],
    sigmas: Annotated[
        str, typer.Option(help="lognormal sigmas of ln G per cell, comma-separated")
    ] = DEFAULT_SIGMAS,
    seeds: Annotated[int, typer.Option(help="variation draws per sigma")] = 3,
    stuck_on: Annotated[float, typer.Option(help="fraction of cells stuck at G_max")] = 0.0,
    stuck_off: Annotated[float, typer.Option(help="fraction of cells stuck at G_min")] = 0.0,
    max_eval_examples: Annotated[
        int | None, typer.Option(help="seeded dev subset (default: the whole split)")
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="GLUE TSV directory (default ../shared/data/glue)")
    ] = None,
    csv_path: Annotated[
        Path | None, typer.Option("--csv", help="write the table as CSV ('-': standard output)")
    ] = None,
    plot: Annotated[
        Path | None, typer.Option(help="write the metric-vs-sigma curve (.png or .svg)")
    ] = None,
) -> None:
    """Score a quantized crossbar artifact under device variation over seeds per sigma.

    sigma 0 with no stuck cells is the artifact itself (evaluated once: it is exact).
    """
    from rich.table import Table

    if not 1 <= seeds <= MAX_SEEDS:
        raise fail(f"--seeds {seeds}: expected an integer from 1 to {MAX_SEEDS}")
    if max_eval_examples is not None and max_eval_examples < 1:
        raise fail(f"--max-eval-examples {max_eval_examples}: expected a positive integer")
    if plot is not None and plot.suffix.lower() not in (".png", ".svg"):
        raise fail(f"--plot {plot}: expected a file name ending in .png or .svg")
    if is_stdout(csv_path):
        tables_to_stderr()
    try:
        check_distinct_outputs(csv=csv_path, plot=plot)
        sigma_values = parse_sigmas(sigmas)
        from pruning.variation import DeviceVariation, artifact_sigma_sweep

        DeviceVariation(0.0, stuck_on, stuck_off)  # checks the fractions before any work
        table = artifact_sigma_sweep(
            artifact, sigma_values, tuple(range(seeds)), max_eval_examples=max_eval_examples,
            data_dir=data_dir, stuck_on=stuck_on, stuck_off=stuck_off,
        )  # fmt: skip
    except (ValueError, OSError) as error:
        raise fail(str(error)) from None
    shown = Table(title=f"{artifact}: dev metric under device variation ({seeds} seeds)")
    for column in ("sigma", "metric", "mean", "se", "seeds"):
        shown.add_column(column, justify="left" if column == "metric" else "right")
    for row in table.itertuples():
        shown.add_row(f"{row.sigma:g}", str(row.metric), f"{row.mean:.4f}", f"{row.se:.4f}",
                      str(row.seeds))  # fmt: skip
    console.print(shown)
    if csv_path is not None:
        write_output(csv_path, table.to_csv(index=False, lineterminator="\n"), "--csv")
    if plot is not None:
        _write_plot(table, artifact, plot)


def _write_plot(table, artifact: Path, plot: Path) -> None:
    import functools

    import matplotlib.pyplot as plt

    from safeio.atomic import atomic_write_with

    ax = plot_sigma_curve(table, f"{artifact.name}: metric vs device variation")
    try:
        write = functools.partial(ax.figure.savefig, format=plot.suffix[1:].lower(), dpi=150)
        atomic_write_with(plot, write)
    except OSError as error:
        raise fail(f"--plot {plot}: cannot write file ({error.strerror or error})") from None
    finally:
        plt.close(ax.figure)
    console.print(f"wrote {plot}", highlight=False)
