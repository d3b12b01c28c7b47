"""The conventions a command-line user expects: --version, -h, -q/-v, progress bars only on a
terminal, NO_COLOR, untruncated help, ``--json -``, distinct output files, ``--set``."""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from accel_sim import load_hardware
from accel_sim.version import __version__
from studies.cli import app
from studies.prune_cmd import prune_command

REPO = Path(__file__).resolve().parent.parent
ESCAPE = "\x1b["
TINY = ["simulate", "--model", "bert-tiny", "--seq-len", "8"]


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def cosim(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``cosim ARGS`` in a fresh process (what a terminal user runs)."""
    return subprocess.run(
        [sys.executable, "-c", "from studies.cli import app; app(prog_name='cosim')", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


def test_version(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"cosim (sparse-bert-cosim) {__version__}"


@pytest.mark.parametrize(
    "command", [[], ["simulate"], ["prune"], ["study"], ["study", "run"], ["presets"]]
)
def test_dash_h_is_help(runner: CliRunner, command: list[str]) -> None:
    short = runner.invoke(app, [*command, "-h"])
    assert short.exit_code == 0, short.output
    assert "Usage:" in short.output
    assert short.output == runner.invoke(app, [*command, "--help"]).output


def test_quiet_prints_nothing_but_verbose_prints_more(runner: CliRunner) -> None:
    normal = runner.invoke(app, TINY)
    assert normal.exit_code == 0, normal.output
    assert "cycles" in normal.stdout
    for quiet in ([*TINY, "-q"], ["-q", *TINY], [*TINY, "--quiet"]):
        result = runner.invoke(app, quiet)
        assert result.exit_code == 0, result.output
        assert result.stdout == ""
    verbose = runner.invoke(app, [*TINY, "-v"])
    assert verbose.exit_code == 0, verbose.output
    assert "spec digest" in verbose.stdout and "spec digest" not in normal.stdout


def test_quiet_still_prints_errors(runner: CliRunner) -> None:
    result = runner.invoke(app, ["-q", "simulate", "--model", "no-such-model"])
    assert result.exit_code == 2
    assert "error:" in result.stderr


def test_progress_bars_only_on_a_terminal(runner: CliRunner, tmp_path: Path) -> None:
    """The default (--progress) draws no bar into a redirected (non-terminal) stream."""
    spec = tmp_path / "tiny.yaml"
    spec.write_text(
        "name: tiny\nmodels: [bert-tiny]\nseq_lens: [8]\nsparsities: [0.5]\n"
        "patterns: [unstructured, dense]\n"
    )
    result = runner.invoke(app, ["study", "run", str(spec), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "pt/s" not in result.output and "%|" not in result.output


@pytest.mark.parametrize("args", [TINY, ["simulate", "--model", "no-such-model"]])
def test_no_color_means_no_styles_at_all(args: list[str]) -> None:
    """NO_COLOR turns off bold and italic too, not only colours (rich keeps those)."""
    styled = cosim(*args, env={"FORCE_COLOR": "1", "TTY_COMPATIBLE": "1"})
    plain = cosim(*args, env={"FORCE_COLOR": "1", "TTY_COMPATIBLE": "1", "NO_COLOR": "1"})
    assert ESCAPE in styled.stdout + styled.stderr  # the check can see styles
    assert ESCAPE not in plain.stdout + plain.stderr
    assert plain.returncode == styled.returncode


def test_prune_help_shows_every_option_name_in_80_columns() -> None:
    result = cosim("prune", "--help", env={"COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    assert "…" not in result.stdout
    names = re.findall(r"--[a-z][a-z-]+", result.stdout)
    expected = {
        "--" + name.replace("_", "-")
        for name in inspect.signature(prune_command).parameters
        if name not in {"json_path"}
    } | {"--json"}
    assert expected <= set(names), expected - set(names)
    assert max(len(line) for line in result.stdout.splitlines()) <= 80


def test_json_dash_writes_json_to_stdout_and_tables_to_stderr(
    runner: CliRunner, tmp_path: Path
) -> None:
    result = runner.invoke(app, [*TINY, "--json", "-"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["total"]["cycles"] > 0
    assert "energy by component" in result.stderr
    assert not Path("-").exists()


def test_csv_dash_writes_csv_to_stdout(runner: CliRunner) -> None:
    result = runner.invoke(app, [*TINY, "--csv", "-"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].startswith("model,hardware,")


@pytest.mark.parametrize("same", ["out.json", "-"])
def test_json_and_csv_on_the_same_path_is_an_error(
    runner: CliRunner, tmp_path: Path, same: str
) -> None:
    path = same if same == "-" else str(tmp_path / same)
    result = runner.invoke(app, [*TINY, "--json", path, "--csv", path])
    assert result.exit_code == 2
    assert "--json and --csv both name" in " ".join(result.stderr.split())
    assert not (tmp_path / same).exists()


def test_simulate_json_records_the_resolved_hardware(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    args = [*TINY, "--set", "pe_array.rows=16", "--set", "dram.bandwidth_bytes_per_s=32 GB/s"]
    result = runner.invoke(app, [*args, "--json", str(out)])
    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text())
    config = document["hardware_config"]
    assert config["pe_array"]["rows"] == 16
    assert config["dram"]["bandwidth_bytes_per_s"] == 32e9
    expected = load_hardware("systolic-32x32-ws").model_dump(mode="json")
    expected["pe_array"]["rows"] = 16
    expected["dram"]["bandwidth_bytes_per_s"] = 32e9
    assert config == expected
    assert document["hardware_source"]["set"] == {
        "pe_array.rows": 16,
        "dram.bandwidth_bytes_per_s": "32 GB/s",
    }


@pytest.mark.parametrize(
    ("item", "fragment"),
    [
        ("pe_array.rows", "expected FIELD=VALUE"),
        ("pe_array.rows=-4", "pe_array.rows"),
        ("pe_array.rowz=4", "pe_array.rowz"),
        ("pe_array.rows=[", "not valid YAML"),
    ],
)
def test_bad_set_is_one_line(runner: CliRunner, item: str, fragment: str) -> None:
    result = runner.invoke(app, [*TINY, "--set", item])
    assert result.exit_code == 2, result.output
    assert result.stderr.count("error:") == 1
    assert fragment in " ".join(result.stderr.split())


def test_study_run_set_overrides_every_hardware(runner: CliRunner, tmp_path: Path) -> None:
    spec = tmp_path / "tiny.yaml"
    spec.write_text(
        "name: tiny\nmodels: [bert-tiny]\nseq_lens: [8]\nsparsities: [0.5]\n"
        "hardware: [systolic-32x32-ws, systolic-32x32-os]\npatterns: [dense]\n"
    )
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["study", "run", str(spec), "--out", str(out), "--set", "pe_array.rows=16"]
    )
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(out / "results.parquet")
    assert sorted(table["pe_rows"]) == [16, 16]
    assert json.loads((out / "run.json").read_text())["hardware_overrides"] == {
        "pe_array.rows": 16
    }
