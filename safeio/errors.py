"""One-line messages for pydantic validation errors, naming each dotted field.

Shared by every validated input (hardware specs, prune jobs, study specs) so they all answer
bad input the same way: ``invalid <what> <source>: field.path: problem; ...``.
"""

from __future__ import annotations

from pydantic import ValidationError

__all__ = ["InputWarning", "format_validation_error"]


class InputWarning(UserWarning):
    """Input that works but is probably not what the user meant (a decimal kB buffer size, a
    checkpoint that is mostly zeros); the command line shows it as one ``warning:`` line."""


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
        lines.append(f"{field}: {message}" if field else message)
    return f"invalid {what} {source}: " + "; ".join(lines)
