"""The ``cosim`` command line: renders tables and writes files; the libraries never print.

Each command imports what it needs when it runs (the simulator, pandas, torch), so
``cosim --help`` and ``cosim --version`` start fast. Help is plain text (never truncated, no
styles), ``-h`` is ``--help``, and ``-q``/``-v`` set how much is printed.
"""

from __future__ import annotations

from typing import Annotated

import typer

from studies.compare_cmd import compare_command
from studies.console import console, fail, reset, set_verbosity
from studies.export_cmd import export_app
from studies.options import QuietOption, VerboseOption, with_verbosity
from studies.prune_cmd import prune_command
from studies.schema_cmd import schema_command
from studies.simulate_cmd import simulate_command
from studies.study_cmd import study_app
from studies.variation_cmd import variation_command

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

app = typer.Typer(
    help="Sparse-BERT hardware co-design studio: simulate BERT-family models on accelerators.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings=CONTEXT,
)


def _version(value: bool) -> None:
    if value:
        from accel_sim.version import __version__

        typer.echo(f"cosim (sparse-bert-cosim) {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_version,
            is_eager=True,
            help="print the version and exit",
            show_default=False,
        ),
    ] = False,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Sparse-BERT hardware co-design studio."""
    reset()
    set_verbosity(quiet=quiet, verbose=verbose)


app.command("simulate")(with_verbosity(simulate_command))
app.command("prune")(with_verbosity(prune_command))
app.add_typer(study_app, name="study")
app.add_typer(export_app, name="export")
app.command("schema")(schema_command)
app.command("compare")(compare_command)
app.command("variation")(with_verbosity(variation_command))


@app.command("presets")
def presets_command() -> None:
    """List the hardware presets (package data accel_sim/presets/, or $COSIM_HW_DIR)."""
    from accel_sim.spec import HardwareConfigError, list_presets

    try:
        names = list_presets()
    except HardwareConfigError as error:  # $COSIM_HW_DIR names no folder
        raise fail(str(error)) from None
    for name in names:
        console.print(name, highlight=False)


if __name__ == "__main__":  # python -m studies.cli
    app(prog_name="cosim")
