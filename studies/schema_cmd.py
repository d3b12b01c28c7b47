"""``cosim schema hardware|study``: the JSON Schema of a spec file, for editor completion."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from studies.console import write_output

__all__ = ["schema_command"]


class Kind(StrEnum):
    HARDWARE = "hardware"
    STUDY = "study"


def schema_command(
    kind: Annotated[Kind, typer.Argument(help="hardware (every datapath) or study")],
    out: Annotated[
        Path, typer.Option(help="file to write ('-': standard output)")
    ] = Path("-"),
) -> None:
    """Write the JSON Schema of a hardware or study spec file (from the pydantic models).

    Point your editor's YAML support at it, e.g. a first line
    '# yaml-language-server: $schema=hardware.schema.json'.
    """
    if kind is Kind.HARDWARE:
        from accel_sim.spec.loading import hardware_json_schema

        schema = hardware_json_schema()
    else:
        from studies.spec import study_json_schema

        schema = study_json_schema()
    write_output(out, json.dumps(schema, indent=2) + "\n", "--out")
