"""``cosim export hardware``: a hardware spec in another tool's format (or as resolved YAML)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from studies.console import fail, write_output
from studies.options import SetOption, parse_set_options

__all__ = ["export_app"]

export_app = typer.Typer(
    help="Write a hardware spec in another tool's format.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


class Format(StrEnum):
    YAML = "yaml"
    ACCELERGY = "accelergy"
    SCALESIM = "scalesim"


def _yaml(data: object) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=100)


@export_app.command("hardware")
def export_hardware_command(
    hw: Annotated[str, typer.Argument(help="hardware preset name, YAML file or SCALE-Sim .cfg")],
    out: Annotated[
        Path,
        typer.Option(
            help="output: a file ('-': standard output) for yaml and scalesim, a directory "
            "(arch.yaml, ERT.yaml) for accelergy"
        ),
    ],
    fmt: Annotated[
        Format,
        typer.Option(
            "--format",
            help="yaml: the resolved spec (extends and --set applied); accelergy: "
            "Accelergy/Timeloop architecture tree and energy reference table (ERT); "
            "scalesim: a SCALE-Sim 3.0.0 .cfg",
        ),
    ] = Format.YAML,
    set_fields: SetOption = None,
) -> None:
    """Write hardware HW as FORMAT, for a cross-check in Accelergy/Timeloop or SCALE-Sim."""
    from accel_sim.spec import HardwareConfigError
    from studies.simulate_cmd import load_hardware_with_overrides

    try:
        hardware = load_hardware_with_overrides(hw, parse_set_options(set_fields))
        if fmt is Format.YAML:
            write_output(out, _yaml(hardware.model_dump(mode="json")), "--out")
        elif fmt is Format.SCALESIM:
            from accel_sim.export import scalesim_config

            write_output(out, scalesim_config(hardware), "--out")
        else:
            from accel_sim.export import accelergy_architecture, accelergy_ert

            if str(out) == "-":
                raise fail("--format accelergy writes two files: give --out a directory")
            if out.exists() and not out.is_dir():
                raise fail(f"--out {out} is a file: expected a directory for arch.yaml, ERT.yaml")
            arch, ert = accelergy_architecture(hardware), accelergy_ert(hardware)
            write_output(out / "arch.yaml", _yaml(arch), "--out")
            write_output(out / "ERT.yaml", _yaml(ert), "--out")
    except (HardwareConfigError, ValueError) as error:
        raise fail(str(error)) from None
