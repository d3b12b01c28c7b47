"""Calibration examples from a text file the user gives, for Wanda and SparseGPT.

Issue 21 asks for calibration on "N examples of the task's train split (or any text the user
gives)". The file is UTF-8 text, one example per line (blank lines skipped): a sentence, or
two sentences separated by one tab for a pair (a bi-encoder needs pairs; a cross-encoder
reads a pair as one sequence). Every line must have the same form. The examples are then
tokenized, chosen and batched exactly as train-split examples are.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pruning.glue import GlueSplit, GlueTask
from safeio.documents import DocumentError, read_text
from safeio.limits import BoundedError

__all__ = [
    "MAX_CALIBRATION_TEXT_BYTES",
    "MAX_CALIBRATION_TEXT_LINES",
    "CalibrationText",
    "CalibrationTextError",
    "read_calibration_text",
]

# A calibration set is at most 4,096 examples (pruning.job.MAX_CALIBRATION_EXAMPLES); a file
# a hundred times that is a mistake, not a corpus to sample from.
MAX_CALIBRATION_TEXT_BYTES = 16 * 2**20
MAX_CALIBRATION_TEXT_LINES = 1_000_000


class CalibrationTextError(BoundedError):  # a ValueError, message bounded
    """A calibration text file that cannot be read or is not one example per line."""


@dataclass(frozen=True)
class CalibrationText:
    """The examples of a calibration text file and where they came from."""

    path: Path
    sha256: str
    text_a: list[str]
    text_b: list[str] | None  # None: one sentence per line

    def __len__(self) -> int:
        return len(self.text_a)

    def as_split(self, task: GlueTask) -> GlueSplit:
        """The examples as a split of ``task`` (labels 0: calibration reads no labels)."""
        labels: list[Any] = [0.0 if task.is_regression else 0] * len(self)
        return GlueSplit(task, "calibration", self.text_a, self.text_b, labels, str(self.path))

    def record(self) -> dict[str, Any]:
        """What the manifest keeps: the file, its digest, how many examples and their form."""
        return {
            "path": str(self.path),
            "sha256": self.sha256,
            "examples_in_file": len(self),
            "form": "pairs (tab-separated)" if self.text_b is not None else "one text per line",
        }


def read_calibration_text(path: str | Path, pairs_required: bool = False) -> CalibrationText:
    """Read ``path`` (see the module docstring); ``pairs_required``: refuse single texts (a
    bi-encoder head). Raises :class:`CalibrationTextError` naming the file and the line."""
    path = Path(path)
    where = f"calibration text {path}"
    try:
        text = read_text(path, MAX_CALIBRATION_TEXT_BYTES, "text")
    except DocumentError as error:
        raise CalibrationTextError(f"{where} {error}") from None
    if "\x00" in text:
        raise CalibrationTextError(f"{where} holds NUL bytes: expected UTF-8 text")
    lines = text.splitlines()
    if len(lines) > MAX_CALIBRATION_TEXT_LINES:
        raise CalibrationTextError(
            f"{where} has {len(lines):,} lines, more than the {MAX_CALIBRATION_TEXT_LINES:,} "
            "limit: give at most that many examples"
        )
    rows: list[tuple[int, list[str]]] = [
        (number, line.split("\t")) for number, line in enumerate(lines, 1) if line.strip()
    ]
    if not rows:
        raise CalibrationTextError(f"{where} has no examples: expected one text per line")
    width = len(rows[0][1])
    for number, fields in rows:
        if len(fields) > 2:
            raise CalibrationTextError(
                f"{where} line {number} has {len(fields) - 1} tabs: expected a text, or two "
                "texts separated by one tab"
            )
        if len(fields) != width:
            raise CalibrationTextError(
                f"{where} line {number} has {len(fields)} text(s) where line {rows[0][0]} has "
                f"{width}: every line must be a single text, or every line a tab-separated pair"
            )
        if any(not field.strip() for field in fields):
            raise CalibrationTextError(f"{where} line {number} has an empty text beside a tab")
    if pairs_required and width == 1:
        raise CalibrationTextError(
            f"{where} has one text per line, but head bi-encoder encodes sentence pairs: "
            "expected two texts per line separated by a tab"
        )
    return CalibrationText(
        path,
        hashlib.sha256(text.encode("utf-8")).hexdigest(),
        [fields[0] for _, fields in rows],
        [fields[1] for _, fields in rows] if width == 2 else None,
    )
