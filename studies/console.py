"""Console output shared by the ``cosim`` commands: one-line errors and atomic file output."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from safeio.atomic import atomic_write_text
from safeio.limits import shorten

__all__ = ["console", "error_console", "fail", "si", "write_output"]

console = Console()
error_console = Console(stderr=True)


def fail(message: str) -> typer.Exit:
    """One clear line on stderr and exit code 2, instead of a traceback.

    ``message`` is plain text: brackets such as ``[out, in]`` are shown, not read as markup.
    It is put on one line and cut to ``safeio.limits.MAX_MESSAGE_CHARS`` characters.
    """
    line = shorten(" ".join(message.split()))
    error_console.print(f"[bold red]error:[/] {escape(line)}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def write_output(path: Path, text: str, option: str) -> None:
    """Write an output file atomically, or fail with one line naming the option and path."""
    try:
        atomic_write_text(path, text)
    except OSError as error:
        raise fail(f"{option} {path}: cannot write file ({error.strerror or error})") from None
    console.print(f"wrote {escape(str(path))}")


def si(value: float, unit: str) -> str:
    """``value`` with an SI prefix, e.g. ``1.234 ms``."""
    for factor, prefix in (
        (1e9, "G"),
        (1e6, "M"),
        (1e3, "k"),
        (1, ""),
        (1e-3, "m"),
        (1e-6, "µ"),
        (1e-9, "n"),
        (1e-12, "p"),
    ):
        if abs(value) >= factor:
            return f"{value / factor:,.3f} {prefix}{unit}"
    return f"{value:.3g} {unit}"
