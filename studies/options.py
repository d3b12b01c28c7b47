"""Options several ``cosim`` commands share: ``--set``, ``-q``/``-v`` and output-path checks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = [
    "QuietOption",
    "SetOption",
    "VerboseOption",
    "check_distinct_outputs",
    "parse_set_options",
    "with_verbosity",
]

SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="FIELD=VALUE",
        help="override a hardware field, e.g. --set pe_array.rows=64 or "
        "--set 'dram.bandwidth_bytes_per_s=32 GB/s' (repeatable; VALUE is read as YAML)",
        show_default=False,
    ),
]
QuietOption = Annotated[
    bool, typer.Option("--quiet", "-q", help="print errors only", show_default=False)
]
VerboseOption = Annotated[
    bool, typer.Option("--verbose", "-v", help="print more detail", show_default=False)
]


def parse_set_options(values: list[str] | None) -> dict[str, Any]:
    """``["pe_array.rows=64", ...]`` -> ``{"pe_array.rows": 64}``; each value is parsed as
    YAML (``64`` an int, ``true`` a bool, ``{rows: 8}`` a mapping, ``16 GB/s`` a string).
    Raises ValueError naming the bad item."""
    from safeio.documents import DocumentError, parse_yaml  # bounded like a file

    changes: dict[str, Any] = {}
    for item in values or ():
        field, sep, text = item.partition("=")
        field = field.strip()
        if not sep or not field or any(not part for part in field.split(".")):
            raise ValueError(
                f"--set {item!r}: expected FIELD=VALUE with a dotted hardware field, "
                "e.g. pe_array.rows=64"
            )
        try:
            changes[field] = parse_yaml(text) if text.strip() else text
        except DocumentError as error:
            raise ValueError(f"--set {item!r}: VALUE {error}") from None
    return changes


def check_distinct_outputs(**paths: Path | None) -> None:
    """Refuse two output options naming the same file (one would silently replace the other);
    ``-`` (standard output) may be given once. Raises ValueError naming both options."""
    seen: dict[str, str] = {}
    for option, path in paths.items():
        if path is None:
            continue
        text = str(path)
        key = text if text == "-" else str(Path(text).expanduser().resolve())
        if key in seen:
            raise ValueError(
                f"--{seen[key]} and --{option} both name {text}: expected different files "
                "(the second would replace the first)"
            )
        seen[key] = option


def with_verbosity(command):
    """``command`` also taking ``-q``/``-v`` after the command name (``cosim simulate -q``),
    as well as before it (``cosim -q simulate``)."""
    import functools
    import inspect

    from studies.console import set_verbosity

    @functools.wraps(command)
    def wrapper(*args, quiet: bool = False, verbose: bool = False, **kwargs):
        set_verbosity(quiet=quiet, verbose=verbose)
        return command(*args, **kwargs)

    signature = inspect.signature(command, eval_str=True)
    keyword = inspect.Parameter.KEYWORD_ONLY
    extra = [
        inspect.Parameter("quiet", keyword, default=False, annotation=QuietOption),
        inspect.Parameter("verbose", keyword, default=False, annotation=VerboseOption),
    ]
    wrapper.__signature__ = signature.replace(parameters=[*signature.parameters.values(), *extra])
    return wrapper
