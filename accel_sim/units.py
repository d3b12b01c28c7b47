"""Parse quantities with SI/IEC prefixes at the edges (YAML, CLI) into plain SI numbers.

Inside the package every quantity is a bare float or int in SI units (bytes, hertz, joules,
watts, bytes/s); users may write ``"64 KiB"``, ``"1 GHz"``, ``"8 pJ"`` or ``"16 GB/s"`` in a
config file and this module turns that into the number.
"""

from __future__ import annotations

import re

from pydantic import BeforeValidator

_DECIMAL = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
_SMALL = {"": 1.0, "m": 1e-3, "u": 1e-6, "µ": 1e-6, "n": 1e-9, "p": 1e-12, "f": 1e-15}
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}

_QUANTITY = re.compile(r"^\s*([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([A-Za-zµ/]*)\s*$")

# unit suffix -> allowed prefix table
_UNITS: dict[str, dict[str, float]] = {
    "B": {**_DECIMAL, **_BINARY},
    "Hz": _DECIMAL,
    "J": _SMALL,
    "W": _SMALL,
    "B/s": {**_DECIMAL, **_BINARY},
}


def parse_quantity(value: object, unit: str) -> float:
    """Return ``value`` in SI units of ``unit``; numbers pass through unchanged.

    Raises ``ValueError`` naming the expected form when a string does not parse.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a number or a string like '64 KiB' in {unit}, got {value!r}")
    if isinstance(value, int | float):
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected a number or a string with unit {unit}, got {value!r}")
    match = _QUANTITY.match(value)
    if match is None:
        raise ValueError(
            f"expected a number with unit {unit} (e.g. '64 KiB', '1 GHz'), got {value!r}"
        )
    number, suffix = float(match.group(1)), match.group(2)
    if suffix == "":
        return number
    prefixes = _UNITS[unit]
    if not suffix.endswith(unit):
        raise ValueError(f"expected unit {unit} with an optional prefix, got {value!r}")
    prefix = suffix[: -len(unit)]
    if prefix not in prefixes:
        allowed = ", ".join(p for p in prefixes if p) or "none"
        raise ValueError(f"unknown prefix {prefix!r} in {value!r}; allowed: {allowed}")
    return number * prefixes[prefix]


def quantity(unit: str) -> BeforeValidator:
    """A pydantic validator that accepts a number or a unit string of ``unit``."""
    return BeforeValidator(lambda value: parse_quantity(value, unit))
