"""Console output shared by the ``cosim`` commands: one-line errors, warnings, verbosity and
file output (atomic, or ``-`` for standard output).

- ``NO_COLOR`` (set and not empty) turns off every terminal style, colour, bold and italic
  alike; rich's own handling of it keeps bold and italic.
- ``-q`` silences everything but errors (and data written to ``-``); ``-v`` adds detail
  lines (:func:`detail`).
- When a command writes data to standard output (``--json -``), its tables go to standard
  error instead, so the data can be piped.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import typer

from safeio.atomic import atomic_write_text
from safeio.errors import InputWarning
from safeio.limits import shorten

__all__ = [
    "STDOUT",
    "console",
    "detail",
    "error_console",
    "fail",
    "is_stdout",
    "no_color",
    "progress_enabled",
    "reset",
    "set_verbosity",
    "si",
    "tables_to_stderr",
    "verbosity",
    "warn",
    "write_output",
]

STDOUT = "-"


def no_color() -> bool:
    """True when ``NO_COLOR`` is set to a non-empty value (https://no-color.org)."""
    return bool(os.environ.get("NO_COLOR"))


def escape(text: str) -> str:
    """``text`` with rich markup escaped (brackets are shown, not read as styles)."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


class _LazyConsole:
    """A rich Console made on first use (rich is not imported for ``--help``); attributes set
    before then (``quiet``, ``file``) are applied when it is made."""

    def __init__(self, stderr: bool) -> None:
        object.__setattr__(self, "_stderr", stderr)
        object.__setattr__(self, "_real", None)
        object.__setattr__(self, "_pending", {})

    def _console(self):
        real = object.__getattribute__(self, "_real")
        if real is None:
            from rich.console import Console

            real = Console(
                stderr=object.__getattribute__(self, "_stderr"),
                color_system=None if no_color() else "auto",
            )
            for name, value in object.__getattribute__(self, "_pending").items():
                setattr(real, name, value)
            object.__setattr__(self, "_real", real)
        return real

    def __getattr__(self, name: str):
        return getattr(self._console(), name)

    def __setattr__(self, name: str, value) -> None:
        real = object.__getattribute__(self, "_real")
        if real is None:
            object.__getattribute__(self, "_pending")[name] = value
        else:
            setattr(real, name, value)

    def made(self) -> bool:
        return object.__getattribute__(self, "_real") is not None


console = _LazyConsole(stderr=False)
error_console = _LazyConsole(stderr=True)
_state = {"verbosity": 0}  # -1 quiet, 0 normal, 1 verbose


_show_warning = warnings.showwarning


def _show(message, category, filename, lineno, file=None, line=None) -> None:
    """Input warnings as one ``warning:`` line; anything else as Python shows it."""
    if issubclass(category, InputWarning):
        warn(str(message))
    else:
        _show_warning(message, category, filename, lineno, file, line)


def reset() -> None:
    """Back to the defaults at the start of a command (tests run many in one process)."""
    warnings.showwarning = _show
    _state["verbosity"] = 0
    console.quiet = False
    console.file = None  # rich: standard output, looked up when printing
    for each in (console, error_console):
        if no_color() and each.made():
            each._color_system = None  # also when NO_COLOR was set after it was made


def set_verbosity(quiet: bool = False, verbose: bool = False) -> None:
    """Apply ``-q`` / ``-v`` (the last command-line level given wins; quiet beats verbose)."""
    if quiet:
        _state["verbosity"] = -1
    elif verbose:
        _state["verbosity"] = max(_state["verbosity"], 1)
    console.quiet = _state["verbosity"] < 0


def verbosity() -> int:
    return _state["verbosity"]


def progress_enabled(requested: bool = True) -> bool | None:
    """The ``disable`` argument's complement for tqdm: False when asked off or quiet, None
    (tqdm: "only on a terminal") otherwise, so bars never land in redirected logs."""
    if not requested or _state["verbosity"] < 0:
        return False
    return None


def tables_to_stderr() -> None:
    """Send the human-readable output to standard error (standard output carries data)."""
    console.file = sys.stderr


def fail(message: str) -> typer.Exit:
    """One clear line on stderr and exit code 2, instead of a traceback.

    ``message`` is plain text: brackets such as ``[out, in]`` are shown, not read as markup.
    It is put on one line and cut to ``safeio.limits.MAX_MESSAGE_CHARS`` characters.
    """
    line = shorten(" ".join(message.split()))
    error_console.print(f"[bold red]error:[/] {escape(line)}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def warn(message: str) -> None:
    """One ``warning:`` line on stderr (not with ``-q``); plain text, as for :func:`fail`."""
    if _state["verbosity"] >= 0:
        error_console.print(
            f"[bold yellow]warning:[/] {escape(shorten(' '.join(message.split())))}",
            highlight=False,
            soft_wrap=True,
        )


def detail(message: str) -> None:
    """A line shown only with ``-v``."""
    if _state["verbosity"] > 0:
        console.print(escape(message), highlight=False, soft_wrap=True)


def is_stdout(path: Path | str | None) -> bool:
    return path is not None and str(path) == STDOUT


def write_output(path: Path, text: str, option: str) -> None:
    """Write an output file atomically (``-``: standard output), or fail with one line naming
    the option and path."""
    if is_stdout(path):
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        atomic_write_text(path, text)
    except OSError as error:
        raise fail(f"{option} {path}: cannot write file ({error.strerror or error})") from None
    console.print(f"wrote {escape(str(path))}", highlight=False)


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
