"""One-line messages for pydantic validation errors, naming each dotted field.

Shared by every validated input (hardware specs, prune jobs, study specs) so they all answer
bad input the same way: ``invalid <what> <source>: field.path: problem; ...``. Messages are
bounded: each problem is cut to 300 characters, at most ``MAX_LISTED`` are listed (then
``... (N more)``), and the whole to ``safeio.limits.MAX_MESSAGE_CHARS``.
"""

from __future__ import annotations

import difflib
import typing
from typing import TYPE_CHECKING, Any

from safeio.limits import MAX_LISTED, shorten

if TYPE_CHECKING:  # pydantic is imported by the callers that validate, not by every import
    from pydantic import BaseModel, ValidationError

__all__ = ["InputWarning", "did_you_mean", "format_validation_error", "valid_keys"]


class InputWarning(UserWarning):
    """Input that works but is probably not what the user meant (a decimal kB buffer size, a
    checkpoint that is mostly zeros); the command line shows it as one ``warning:`` line."""


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside ``annotation`` (``X``, ``X | None``, ``list[X]``, ...)."""
    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def valid_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The field names of the model at ``loc`` (list indices skipped); empty when the path
    leaves the models."""
    current: type[BaseModel] | None = model
    for part in loc:
        if current is None:
            return []
        if isinstance(part, int):
            continue  # an item of a list
        field = current.model_fields.get(str(part))
        if field is None:
            return []
        current = _inner_model(field.annotation)
    return list(current.model_fields) if current is not None else []


def did_you_mean(name: str, choices: list[str] | Any) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or an empty string."""
    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def format_validation_error(
    error: ValidationError,
    what: str,
    source: str,
    hint: str,
    model: type[BaseModel] | None = None,
) -> str:
    """Every problem of ``error`` in one line; ``hint`` follows "unknown key" (e.g. where the
    valid keys are documented) and, given the ``model`` that was validated, an unknown key
    also gets the closest valid one ("did you mean")."""
    lines = []
    for item in error.errors():
        loc = tuple(item["loc"])
        field = ".".join(str(part) for part in loc)
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            close = did_you_mean(loc[-1], valid_keys(model, loc[:-1])) if model and loc else ""
            message = f"unknown key{close} ({hint})"
        elif item["type"] == "missing":
            message = "required field is missing"
        lines.append(shorten(f"{field}: {message}" if field else message, 300))
    if len(lines) > MAX_LISTED:
        lines = [*lines[:MAX_LISTED], f"... ({len(lines) - MAX_LISTED} more)"]
    return shorten(f"invalid {what} {shorten(source, 500)}: " + "; ".join(lines))
