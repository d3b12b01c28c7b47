"""One-line messages for pydantic validation errors, naming each dotted field.

Shared by every validated input (hardware specs, prune jobs, study specs) so they all answer
bad input the same way: ``invalid <what> <source>: field.path: problem; ...``. Messages are
bounded: each problem is cut to 300 characters, at most ``MAX_LISTED`` are listed (then
``... (N more)``), and the whole to ``safeio.limits.MAX_MESSAGE_CHARS``.
"""

from __future__ import annotations

from pydantic import ValidationError

from safeio.limits import MAX_LISTED, shorten

__all__ = ["format_validation_error"]


def format_validation_error(error: ValidationError, what: str, source: str, hint: str) -> str:
    """``hint`` follows "unknown key" (e.g. where the valid keys are documented)."""
    lines = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = f"unknown key ({hint})"
        elif item["type"] == "missing":
            message = "required field is missing"
        lines.append(shorten(f"{field}: {message}" if field else message, 300))
    if len(lines) > MAX_LISTED:
        lines = [*lines[:MAX_LISTED], f"... ({len(lines) - MAX_LISTED} more)"]
    return shorten(f"invalid {what} {shorten(source, 500)}: " + "; ".join(lines))
