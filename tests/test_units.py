"""accel_sim.spec.units: quantities with SI/IEC prefixes at the edges become plain SI numbers."""

from __future__ import annotations

import os
import warnings

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest

from accel_sim.spec.array_chip import SramBuffer
from accel_sim.spec.units import DecimalBufferWarning, parse_quantity


@pytest.mark.parametrize(
    ("text", "unit", "expected"),
    [
        ("64 KiB", "B", 65536),
        ("6 MiB", "B", 6 * 2**20),
        ("2 MiB", "B", 2 * 2**20),
        ("64 kB", "B", 64000),
        ("64KiB", "B", 65536),
        ("1 GiB", "B", 2**30),
        ("1 GHz", "Hz", 1e9),
        ("700 MHz", "Hz", 7e8),
        ("8 pJ", "J", 8e-12),
        ("3.9pJ", "J", 3.9e-12),
        ("  0.5 nJ ", "J", 0.5e-9),
        ("16 GB/s", "B/s", 16e9),
        ("25.6 GB/s", "B/s", 25.6e9),
        ("1 GiB/s", "B/s", 2**30),
        ("10 uW", "W", 10e-6),
        ("1e9", "Hz", 1e9),
        ("65536", "B", 65536),
    ],
)
def test_strings_with_units_parse_to_si(text: str, unit: str, expected: float) -> None:
    assert parse_quantity(text, unit) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("value", [0, 1, 65536, 1.5, 1e-12, 3.0e9])
def test_plain_numbers_pass_through_unchanged(value: float) -> None:
    parsed = parse_quantity(value, "B")
    assert parsed == value
    assert type(parsed) is type(value)


@pytest.mark.parametrize(
    ("value", "unit", "names"),
    [
        ("64 parsecs", "B", ["expected", "B"]),  # wrong unit
        ("abc", "B", ["expected", "B", "64 KiB"]),  # no number
        ("", "Hz", ["expected", "Hz"]),
        ("8 pB", "B", ["allowed", "Ki"]),  # prefix not valid for bytes
        ("1 mHz", "Hz", ["allowed", "G"]),
        ("1 KiHz", "Hz", ["allowed"]),
        ("16 GB", "B/s", ["expected", "B/s"]),  # bytes where a bandwidth is due
        ("8 pJ/bit", "J", ["expected", "J"]),
        ("1 ghz", "Hz", ["expected", "Hz"]),  # unit symbols are case-sensitive
        (True, "B", ["expected", "64 KiB"]),  # bools are not numbers
        (False, "Hz", ["expected"]),
        (None, "B", ["expected", "B"]),
        ([64], "B", ["expected", "B"]),
    ],
)
def test_bad_values_raise_value_error_naming_the_expected_form(
    value: object, unit: str, names: list[str]
) -> None:
    with pytest.raises(ValueError) as excinfo:
        parse_quantity(value, unit)
    message = str(excinfo.value)
    for fragment in names:
        assert fragment in message, (fragment, message)


@pytest.mark.parametrize(
    ("text", "unit", "expected"),
    [
        ("1 mib", "B", 2**20),
        ("1 MIB", "B", 2**20),
        ("64 kib", "B", 65536),
        ("64 KIB", "B", 65536),
        ("2 gib", "B", 2 * 2**30),
        ("1 tib", "B", 2**40),
        ("1 gib/s", "B/s", 2**30),
        ("16 GiB/S", "B/s", 16 * 2**30),
    ],
)
def test_binary_prefixes_in_any_letter_case(text: str, unit: str, expected: float) -> None:
    assert parse_quantity(text, unit) == expected


@pytest.mark.parametrize(("text", "number"), [("64 KB", 64000), ("64 kB", 64000), ("2 MB", 2e6)])
def test_decimal_buffer_sizes_warn_with_the_binary_spelling(text: str, number: int) -> None:
    """SCALE-Sim's kB is 1,024 bytes: a buffer written in decimal kB/MB gets a warning that
    says how many bytes it is and how to write the binary size."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert SramBuffer(size_bytes=text, bytes_per_cycle=32).size_bytes == number
    (warning,) = caught
    assert issubclass(warning.category, DecimalBufferWarning)
    assert f"{number:,.0f} bytes" in str(warning.message)
    assert "iB" in str(warning.message)


@pytest.mark.parametrize("value", ["64 KiB", "1 mib", 65536, "65536"])
def test_binary_and_plain_buffer_sizes_do_not_warn(value: object) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SramBuffer(size_bytes=value, bytes_per_cycle=32)


def test_the_cli_shows_the_decimal_warning_as_one_line(tmp_path) -> None:
    import yaml
    from typer.testing import CliRunner

    from accel_sim.spec import preset_dir
    from studies.cli import app

    data = yaml.safe_load((preset_dir() / "systolic-32x32-ws.yaml").read_text())
    data["sram"]["ifmap"]["size_bytes"] = "96 KB"
    path = tmp_path / "hw.yaml"
    path.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(app, ["simulate", "--model", "bert-tiny", "--seq-len", "8",
                                      "--hw", str(path)])
    assert result.exit_code == 0, result.output
    assert "warning: buffer size '96 KB' is 96,000 bytes" in " ".join(result.stderr.split())
