"""Parse quantities with SI/IEC prefixes at the edges (YAML, CLI) into plain SI numbers.

Inside the package every quantity is a bare float or int in SI units (bytes, hertz, joules,
watts, bytes/s); users may write ``"64 KiB"``, ``"1 GHz"``, ``"8 pJ"`` or ``"16 GB/s"`` in a
config file and this module turns that into the number.

Byte prefixes: ``k``/``K``, ``M``, ``G``, ``T`` are decimal (``64 KB`` = 64,000 bytes, as in
SI); ``Ki``, ``Mi``, ``Gi``, ``Ti`` are binary, in any letter case (``64 KiB``, ``1 mib``). A
buffer size written with a decimal prefix raises a :class:`DecimalBufferWarning`: SCALE-Sim's
``kB`` and most papers' buffer kilobytes are 1,024 bytes.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from collections.abc import Mapping
from functools import cached_property
from typing import Annotated, Any, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from safeio import limits
from safeio.errors import InputWarning

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


class DecimalBufferWarning(InputWarning):
    """A buffer size given with a decimal prefix (``64 KB`` = 64,000 bytes)."""


def _binary_prefix(prefix: str) -> str | None:
    """``"mi"``, ``"MI"``, ``"Mi"`` -> ``"Mi"``; None when ``prefix`` is not binary."""
    if len(prefix) == 2 and prefix[1] in "iI":
        canonical = prefix[0].upper() + "i"
        return canonical if canonical in _BINARY else None
    return None


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
    if "B" in unit and suffix.lower().endswith(unit.lower()):
        binary = _binary_prefix(suffix[: -len(unit)])
        if binary is not None:  # KiB, kib, MIB, ...: binary in any letter case
            return number * _BINARY[binary]
    if not suffix.endswith(unit):
        raise ValueError(f"expected unit {unit} with an optional prefix, got {value!r}")
    prefix = suffix[: -len(unit)]
    if prefix not in prefixes:
        allowed = ", ".join(p for p in prefixes if p) or "none"
        raise ValueError(f"unknown prefix {prefix!r} in {value!r}; allowed: {allowed}")
    return number * prefixes[prefix]


def quantity(unit: str) -> BeforeValidator:
    """A pydantic validator that accepts a number or a unit string of ``unit`` (the JSON
    schema says both)."""
    return BeforeValidator(
        lambda value: parse_quantity(value, unit), json_schema_input_type=float | str
    )


def _warn_decimal(value: object) -> None:
    if not isinstance(value, str):
        return
    match = _QUANTITY.match(value)
    prefix = match.group(2)[:-1] if match and match.group(2).endswith("B") else ""
    if prefix in _DECIMAL and prefix:
        number = parse_quantity(value, "B")
        binary = {"k": "Ki", "K": "Ki", "M": "Mi", "G": "Gi", "T": "Ti"}[prefix]
        warnings.warn(
            DecimalBufferWarning(
                f"buffer size {value!r} is {number:,.0f} bytes ({prefix}B is decimal, as in "
                f"SI); SCALE-Sim's and most papers' kB are 1,024 bytes: write "
                f"'{match.group(1)} {binary}B' for {float(match.group(1)) * _BINARY[binary]:,.0f}"
            ),
            stacklevel=2,
        )


def _whole_bytes(value: object) -> object:
    _warn_decimal(value)
    number = parse_quantity(value, "B")
    if isinstance(number, float):
        if not number.is_integer():
            raise ValueError(f"expected a whole number of bytes, got {value!r}")
        return int(number)
    return number


# The quantity types every spec shares: numbers in SI units, unit strings accepted, each
# within the limits of ``safeio.limits`` (the reasons are there).
Bytes = Annotated[
    int,
    BeforeValidator(_whole_bytes, json_schema_input_type=int | str),
    Field(gt=0, le=limits.MAX_BUFFER_BYTES),
]
Hertz = Annotated[
    float, quantity("Hz"), Field(ge=limits.MIN_RATE_HZ, le=limits.MAX_RATE_HZ)
]
BytesPerSecond = Annotated[
    float, quantity("B/s"), Field(ge=limits.MIN_BANDWIDTH, le=limits.MAX_BANDWIDTH)
]
Joules = Annotated[float, quantity("J"), Field(ge=0, le=limits.MAX_ACTION_J)]
JoulesPerBit = Joules
Watts = Annotated[float, quantity("W"), Field(ge=0, le=limits.MAX_UNIT_W)]
Seconds = Annotated[float, Field(ge=limits.MIN_STEP_S, le=limits.MAX_STEP_S)]
SquareMicrons = Annotated[float, Field(ge=0, le=limits.MAX_UNIT_AREA_UM2)]


class SpecModel(BaseModel):
    """Base of every spec section: pure data, unknown keys rejected, no inf/NaN."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy with ``update`` applied and **validated** like a file: pydantic's own
        ``model_copy`` sets the fields as given (an ``int`` section, a negative size, an
        unknown key would all pass), and would carry over the cached ``spec_digest``.

        ``update`` names top-level fields; for dotted paths (``pe_array.rows``) use
        :func:`accel_sim.spec.derive`, which also turns errors into one clear line.
        """
        if not update:
            return super().model_copy(deep=deep)
        data = {name: getattr(self, name) for name in type(self).model_fields}
        data.update(update)
        return type(self).model_validate(data)

    @cached_property
    def spec_digest(self) -> str:
        """sha256 (16 hex digits) of every field: the spec is frozen, so it is computed once."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def config_hash(self) -> str:
        """A stable hash of every field, for keying results."""
        return self.spec_digest
