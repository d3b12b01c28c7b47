"""Benchmark output that the documentation includes instead of retyped figures.

Each benchmark prints its table as before and writes the same lines to a markdown file,
by default ``docs/results/<script name>.md``; the docs pull that file in with
``--8<-- "docs/results/<script name>.md"`` (pymdownx.snippets). The file starts with the
command line that produced it and is written atomically, so an interrupted run leaves the
previous table in place.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from safeio.atomic import atomic_write_text

REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO / "docs" / "results"


def pipe_table(frame) -> str:  # a pandas DataFrame
    """A markdown pipe table of ``frame``: floats as ``%g``, missing values as empty cells."""
    import pandas as pd

    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    for row in frame.itertuples(index=False):
        cells = [
            "" if pd.isna(value) else f"{value:g}" if isinstance(value, float) else str(value)
            for value in row
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def default_out(script: str) -> Path:
    """``docs/results/<stem of script>.md`` in this repository."""
    return RESULTS_DIR / f"{Path(script).stem}.md"


def command_line() -> str:
    """The command that is running, as a user would type it from the repository root."""
    script = Path(sys.argv[0]).resolve()
    try:
        shown = script.relative_to(REPO).as_posix()
    except ValueError:
        shown = script.name
    return shlex.join(["python", shown, *sys.argv[1:]])


class TableFile:
    """Print lines as they come and keep them for :meth:`write`.

    ``fenced``: wrap the lines in a ```text block (fixed-width tables); otherwise they are
    written as markdown (a markdown table).
    """

    def __init__(self, *, fenced: bool = True) -> None:
        self.fenced = fenced
        self.lines: list[str] = []

    def __call__(self, text: str = "") -> None:
        print(text, flush=True)
        self.lines.extend(str(text).split("\n"))

    def text(self) -> str:
        body = "\n".join(self.lines).strip("\n")
        if self.fenced:
            return f"```text\n$ {command_line()}\n\n{body}\n```\n"
        return f"`$ {command_line()}`\n\n{body}\n"

    def write(self, path: str | Path) -> Path:
        """Write the collected lines to ``path`` atomically and say where they went."""
        target = atomic_write_text(path, self.text())
        print(f"\ntable written to {target}", flush=True)
        return target
