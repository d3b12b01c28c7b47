"""Start-up cost of the command line, checked by what each command imports (timings, which
depend on the machine, are in benchmarks/bench_startup.py and docs/speed.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "pandas", "numba", "matplotlib", "scipy", "pydantic", "rich")
WRAPPER = """
import json, sys
args = sys.argv[1:]
sys.argv = ["cosim", *args]
try:
    from studies.cli import app
    app(prog_name="cosim")
except SystemExit:
    pass
finally:
    sys.stderr.write("\\nIMPORTED " + json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
"""


def imported(*args: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", WRAPPER, *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=300,
    )
    line = done.stderr.rsplit("IMPORTED ", 1)[-1]
    return set(json.loads(line)) & set(HEAVY)


@pytest.mark.parametrize(
    ("args", "allowed"),
    [
        (["--help"], set()),
        (["-h"], set()),
        (["--version"], set()),
        (["simulate", "--help"], {"pydantic"}),  # typer's own option adapters use it
    ],
)
def test_help_and_version_import_nothing_heavy(args: list[str], allowed: set[str]) -> None:
    assert imported(*args) <= allowed


def test_simulate_on_a_preset_imports_neither_torch_nor_pandas() -> None:
    """A preset's shapes are plain data: no transformers (and torch) to read them, no pandas
    unless a table is written."""
    loaded = imported("-q", "simulate", "--model", "bert-base-uncased", "--seq-len", "8")
    assert "numba" in loaded  # it did simulate
    assert not loaded & {"torch", "transformers", "pandas", "matplotlib"}, loaded
