"""One bounded loader for the YAML and JSON documents users give: hardware specs, study
specs, artifact manifests, model ``config.json`` files, ``run.json`` and the result store.

A document that parses can still break whatever reads it: nesting deep enough to exhaust
Python's recursion, an integer of thousands of digits (``int()`` refuses more than 4,300),
YAML aliases that expand a few lines into billions of values, or a file of gigabytes. Each
of those ends here in one :class:`DocumentError` line (the callers prefix the file and
their own error class), before any other code sees the data:

- **size**: at most ``MAX_YAML_BYTES`` / ``MAX_JSON_BYTES`` (read with a bound, never
  slurped whole);
- **depth**: at most ``MAX_DEPTH`` levels of nested mappings and lists (YAML: counted while
  composing, before any recursion; JSON: the parser's own recursion guard, then counted);
- **integers**: at most ``MAX_INT_DIGITS`` digits (checked before ``int()`` runs);
- **expanded size**: at most ``MAX_VALUES`` values once aliases are expanded (a YAML alias
  bomb is refused, not expanded);
- **strict JSON**: ``NaN``, ``Infinity`` and ``-Infinity`` are not JSON and are refused
  unless the caller reads its own files that may hold them (``allow_nan``).

YAML goes through ``yaml.SafeLoader`` (no Python objects); JSON through ``json.loads``.
"""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path
from typing import Any

import yaml

from safeio.limits import BoundedError, describe, shorten

__all__ = [
    "MAX_DEPTH",
    "MAX_INT_DIGITS",
    "MAX_JSON_BYTES",
    "MAX_VALUES",
    "MAX_YAML_BYTES",
    "DocumentError",
    "is_dir",
    "is_file",
    "parse_json",
    "parse_yaml",
    "read_json",
    "read_text",
    "read_yaml",
]

# Nesting of mappings and lists: specs and manifests use fewer than ten levels.
MAX_DEPTH = 64
# Digits of one integer: 2**64 has 20; Python's int() refuses more than 4,300.
MAX_INT_DIGITS = 100
# Values of a document once YAML aliases are expanded (a study spec has hundreds).
MAX_VALUES = 1_000_000
# Bytes of a YAML document (hand-written specs: kilobytes; PyYAML parses about 1 MB/s).
MAX_YAML_BYTES = 4 * 2**20
# Bytes of a JSON document (run.json of a 100,000-point study: a few megabytes).
MAX_JSON_BYTES = 256 * 2**20


class DocumentError(BoundedError):  # a ValueError, message bounded
    """A document beyond the loader's bounds, or not valid YAML/JSON: one line, no file
    name (the caller adds it)."""


def _one_line(error: BaseException) -> str:
    return shorten(" ".join(str(error).split()) or type(error).__name__)


def is_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a regular file (or a link to one); False, not an error, for a name
    the system refuses (too long, unreadable directory), unlike ``Path.is_file``."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def is_dir(path: str | os.PathLike[str]) -> bool:
    """``is_file`` for directories."""
    try:
        return stat.S_ISDIR(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def read_text(path: str | os.PathLike[str], max_bytes: int, kind: str = "text") -> str:
    """The UTF-8 text of the regular file ``path``, refused past ``max_bytes``; ``kind``
    (YAML, JSON) names the expected format in the error."""
    path = Path(path)
    try:
        if not stat.S_ISREG(path.stat().st_mode):  # a FIFO or device would block or never end
            raise DocumentError("is not a regular file")
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as error:
        raise DocumentError(f"cannot be read ({error.strerror or error})") from None
    if len(data) > max_bytes:
        raise DocumentError(f"is larger than {describe(max_bytes)} bytes, the limit")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DocumentError(
            f"is not valid {kind}: not UTF-8 text ({error.reason} at byte {error.start})"
        ) from None


def _check_digits(text: str) -> None:
    digits = sum(ch.isdigit() for ch in text)
    if digits > MAX_INT_DIGITS:
        raise DocumentError(f"holds an integer of {digits:,} digits: the limit is {MAX_INT_DIGITS}")


def _check_shape(data: Any, finite: bool) -> None:
    """Depth and size of parsed JSON, walked iteratively; with ``finite``, a number
    that is NaN or infinite (``NaN``, ``Infinity``, or a literal past float64 like 1e999) is
    refused naming where it is."""
    stack: list[tuple[Any, int, str]] = [(data, 1, "")]
    seen = 0
    while stack:
        node, depth, where = stack.pop()
        seen += 1
        if seen > MAX_VALUES:
            raise _too_many()
        if depth > MAX_DEPTH:
            raise DocumentError(f"is nested deeper than {MAX_DEPTH} levels, the limit")
        if isinstance(node, dict):
            stack.extend(
                (v, depth + 1, f"{where}.{k}" if where else str(k)) for k, v in node.items()
            )
        elif isinstance(node, list):
            stack.extend((v, depth + 1, f"{where}[{i}]") for i, v in enumerate(node))
        elif finite and isinstance(node, float) and not math.isfinite(node):
            at = f" at {shorten(where, 200)}" if where else ""
            raise DocumentError(
                f"holds {node}{at}, which is not JSON: expected finite numbers only"
            )


def _too_many() -> DocumentError:
    return DocumentError(
        f"expands to more than {MAX_VALUES:,} values (YAML aliases?): the limit is {MAX_VALUES:,}"
    )


class _BoundedLoader(yaml.SafeLoader):
    """``SafeLoader`` that refuses, while composing (before the recursion that would
    overflow, before an alias is expanded), deep nesting and documents that expand to too
    many values; and integers with too many digits (before ``int()``)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._sizes: dict[int, int] = {}  # id(node) -> values once expanded

    def compose_node(self, parent, index):  # type: ignore[no-untyped-def]
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise DocumentError(f"is nested deeper than {MAX_DEPTH} levels, the limit")
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if id(node) not in self._sizes:  # an alias returns a node already counted
            if isinstance(node, yaml.SequenceNode):
                children = node.value
            elif isinstance(node, yaml.MappingNode):
                children = [part for pair in node.value for part in pair]
            else:
                children = []
            self._sizes[id(node)] = 1 + sum(self._sizes.get(id(c), 1) for c in children)
        if self._sizes[id(node)] > MAX_VALUES:
            raise _too_many()
        return node

    def construct_yaml_int(self, node):  # type: ignore[no-untyped-def]
        _check_digits(str(node.value))
        return super().construct_yaml_int(node)


_BoundedLoader.add_constructor("tag:yaml.org,2002:int", _BoundedLoader.construct_yaml_int)


def parse_yaml(text: str) -> Any:
    """The YAML document ``text`` as plain data, within the module's bounds."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_YAML_BYTES:
        raise DocumentError(f"is larger than {describe(MAX_YAML_BYTES)} bytes, the limit")
    loader = None
    try:
        loader = _BoundedLoader(text)  # its reader already refuses some characters
        return loader.get_single_data()
    except DocumentError:
        raise
    except yaml.YAMLError as error:
        raise DocumentError(f"is not valid YAML: {_one_line(error)}") from None
    except (RecursionError, ValueError, OverflowError) as error:
        raise DocumentError(f"cannot be read as YAML: {_one_line(error)}") from None
    finally:
        if loader is not None:
            loader.dispose()


def _bounded_int(text: str) -> int:
    _check_digits(text)
    return int(text)


def parse_json(text: str | bytes, *, allow_nan: bool = False) -> Any:
    """The JSON document ``text`` as plain data, within the module's bounds; ``NaN`` and
    ``Infinity`` only with ``allow_nan``."""
    if len(text) > MAX_JSON_BYTES:
        raise DocumentError(f"is larger than {describe(MAX_JSON_BYTES)} bytes, the limit")
    try:
        data = json.loads(text, parse_int=_bounded_int)
    except DocumentError:
        raise
    except RecursionError:
        raise DocumentError(f"is nested deeper than {MAX_DEPTH} levels, the limit") from None
    except (ValueError, UnicodeDecodeError) as error:  # JSONDecodeError is a ValueError
        raise DocumentError(f"is not valid JSON ({_one_line(error)})") from None
    _check_shape(data, finite=not allow_nan)
    return data


def read_yaml(path: str | os.PathLike[str]) -> Any:
    """``parse_yaml`` of the file at ``path`` (read with the size bound)."""
    return parse_yaml(read_text(path, MAX_YAML_BYTES, "YAML"))


def read_json(path: str | os.PathLike[str], *, allow_nan: bool = False) -> Any:
    """``parse_json`` of the file at ``path`` (read with the size bound)."""
    return parse_json(read_text(path, MAX_JSON_BYTES, "JSON"), allow_nan=allow_nan)
