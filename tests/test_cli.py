"""The ``cosim`` command line: output files, their invariants, and clean errors."""

from __future__ import annotations

import json
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from accel_sim import list_presets
from accel_sim.spec import preset_dir
from studies.cli import app

REPO = Path(__file__).resolve().parent.parent
PRESETS = [
    f"systolic-{size}-{flow}" for size in ("32x32", "128x128") for flow in ("ws", "os", "is")
] + [
    "systolic-32x32-ws-skip",
    "systolic-32x32-ws-nm",
    "systolic-32x32-ws-gating",
    "eie-64pe",
    "dual-side-32x32",
    "sigma-1024",
    "isaac-crossbar",
]
TOTAL_KEYS = {
    "cycles",
    "compute_cycles",
    "stall_cycles",
    "latency_s",
    "energy_j",
    "sequences_per_s",
}
OP_KEYS = {
    "name",
    "kind",
    "m",
    "n",
    "k",
    "cycles",
    "compute_cycles",
    "stall_cycles",
    "energy_j",
}
BATCH, SEQ_LEN = 2, 16


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def simulate_args(*extra: str, model: str = "bert-tiny", hw: str = "systolic-32x32-ws") -> list:
    return ["simulate", "--model", model, "--hw", hw, *extra]


@pytest.fixture
def run_outputs(runner: CliRunner, tmp_path: Path) -> tuple[dict, pd.DataFrame, str]:
    json_path, csv_path = tmp_path / "out.json", tmp_path / "out.csv"
    options = {"--seq-len": SEQ_LEN, "--batch": BATCH, "--json": json_path, "--csv": csv_path}
    args = simulate_args(*(str(part) for pair in options.items() for part in pair))
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return json.loads(json_path.read_text()), pd.read_csv(csv_path), result.output


def test_simulate_json_schema(run_outputs: tuple[dict, pd.DataFrame, str]) -> None:
    document, _, _ = run_outputs
    assert document["model"] == "bert-tiny"
    assert document["hardware"] == "systolic-32x32-ws"
    assert (document["batch"], document["seq_len"]) == (BATCH, SEQ_LEN)
    assert set(document["total"]) >= TOTAL_KEYS
    assert set(document["energy_breakdown_j"]) >= {"mac", "dram", "leakage"}
    assert isinstance(document["ops"], list)
    assert document["ops"]
    for op in document["ops"]:
        assert set(op) >= OP_KEYS, op
    gemms = [op for op in document["ops"] if op["kind"] == "gemm"]
    assert gemms
    assert all(op["m"] > 0 and op["n"] > 0 and op["k"] > 0 for op in gemms)
    meta = document["meta"]
    assert meta["simulation_s"] > 0
    assert isinstance(meta["version"], str)
    assert meta["version"]
    assert isinstance(meta["config_hash"], str)
    assert len(meta["config_hash"]) == 16


def test_simulate_json_invariants(run_outputs: tuple[dict, pd.DataFrame, str]) -> None:
    document, _, _ = run_outputs
    total, ops = document["total"], document["ops"]
    assert total["cycles"] == total["compute_cycles"] + total["stall_cycles"]
    assert sum(op["cycles"] for op in ops) == total["cycles"]
    assert sum(op["compute_cycles"] for op in ops) == total["compute_cycles"]
    assert sum(op["stall_cycles"] for op in ops) == total["stall_cycles"]
    for op in ops:
        assert op["cycles"] == op["compute_cycles"] + op["stall_cycles"]
    assert total["sequences_per_s"] == pytest.approx(BATCH / total["latency_s"], rel=1e-12)
    assert total["latency_s"] == pytest.approx(total["cycles"] / 1e9, rel=1e-12)
    assert total["energy_j"] == pytest.approx(sum(op["energy_j"] for op in ops), rel=1e-12)
    breakdown = document["energy_breakdown_j"]
    assert sum(breakdown.values()) == pytest.approx(total["energy_j"], rel=1e-12)


def test_simulate_csv_has_one_row_per_op(run_outputs: tuple[dict, pd.DataFrame, str]) -> None:
    document, frame, _ = run_outputs
    assert len(frame) == len(document["ops"])
    assert list(frame["op"]) == [op["name"] for op in document["ops"]]
    assert frame["cycles"].sum() == document["total"]["cycles"]
    assert (frame["batch"] == BATCH).all()
    assert (frame["config_hash"] == document["meta"]["config_hash"]).all()


def test_simulate_renders_tables(run_outputs: tuple[dict, pd.DataFrame, str]) -> None:
    _, _, output = run_outputs
    assert "energy by component" in output
    assert "wrote" in output


def test_hw_given_as_yaml_path(runner: CliRunner, tmp_path: Path) -> None:
    data = yaml.safe_load((preset_dir() / "systolic-32x32-os.yaml").read_text())
    data["name"] = "my-array"
    path = tmp_path / "my-array.yaml"
    path.write_text(yaml.safe_dump(data))
    json_path = tmp_path / "out.json"
    result = runner.invoke(
        app, simulate_args("--seq-len", "8", "--json", str(json_path), hw=str(path))
    )
    assert result.exit_code == 0, result.output
    assert json.loads(json_path.read_text())["hardware"] == "my-array"


def test_json_in_a_new_subdirectory(runner: CliRunner, tmp_path: Path) -> None:
    json_path = tmp_path / "results" / "nested" / "out.json"
    csv_path = tmp_path / "other" / "out.csv"
    result = runner.invoke(
        app, simulate_args("--seq-len", "8", "--json", str(json_path), "--csv", str(csv_path))
    )
    assert result.exit_code == 0, result.output
    assert json.loads(json_path.read_text())["seq_len"] == 8
    assert len(pd.read_csv(csv_path)) == len(json.loads(json_path.read_text())["ops"])
    assert sorted(p.name for p in json_path.parent.iterdir()) == ["out.json"]  # no temp files


def _bad_yaml(tmp_path: Path) -> str:
    path = tmp_path / "bad.yaml"
    path.write_text("pe_array: {rows: 32, cols: [32\n")
    return str(path)


def _bad_field_yaml(tmp_path: Path) -> str:
    data = yaml.safe_load((preset_dir() / "systolic-32x32-ws.yaml").read_text())
    data["pe_array"]["rows"] = 0
    path = tmp_path / "zero.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def _empty_dir(tmp_path: Path) -> str:
    directory = tmp_path / "checkpoint"
    directory.mkdir()
    return str(directory)


BAD_INPUTS = {
    "unknown model": (lambda tmp: simulate_args(model="bert-gigantic"), "bert-gigantic"),
    "unknown hw preset": (lambda tmp: simulate_args(hw="systolic-7x7-ws"), "systolic-7x7-ws"),
    "missing hw file": (
        lambda tmp: simulate_args(hw=str(tmp / "absent.yaml")),
        "not found",
    ),
    "bad yaml": (lambda tmp: simulate_args(hw=_bad_yaml(tmp)), "not valid YAML"),
    "bad hw field": (lambda tmp: simulate_args(hw=_bad_field_yaml(tmp)), "pe_array.rows"),
    "zero seq len": (lambda tmp: simulate_args("--seq-len", "0"), "seq_len"),
    "negative batch": (lambda tmp: simulate_args("--batch", "-1"), "batch"),
    "seq len past positions": (lambda tmp: simulate_args("--seq-len", "100000"), "512"),
    "dir without config.json": (
        lambda tmp: simulate_args(model=_empty_dir(tmp)),
        "config.json",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_exits_2_with_one_clear_message(
    runner: CliRunner, tmp_path: Path, case: str
) -> None:
    make_args, fragment = BAD_INPUTS[case]
    result = runner.invoke(app, make_args(tmp_path))
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert result.stdout == ""  # nothing rendered, nothing written
    assert result.stderr.count("error:") == 1, result.stderr
    assert fragment in result.stderr, result.stderr
    assert not list(tmp_path.glob("*.json"))


def test_non_integer_option_is_a_usage_error(runner: CliRunner) -> None:
    result = runner.invoke(app, simulate_args("--seq-len", "many"))
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "--seq-len" in result.output


def test_presets_command_lists_every_preset(runner: CliRunner) -> None:
    result = runner.invoke(app, ["presets"])
    assert result.exit_code == 0, result.output
    listed = result.stdout.split()
    assert listed == list_presets()
    assert sorted(listed) == sorted(PRESETS)


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_presets_command_refuses_a_preset_dir_that_is_not_a_folder(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """$COSIM_HW_DIR naming no folder listed nothing and exited 0, as if it were empty, and a
    preset name looked up there said only "(none found)"."""
    target = tmp_path / "presets"
    if kind == "file":
        target.write_text("not a folder")
    monkeypatch.setenv("COSIM_HW_DIR", str(target))
    for args in (["presets"], ["simulate", "--model", "bert-tiny", "--hw", "systolic-32x32-ws"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
        assert "COSIM_HW_DIR" in result.output and "not a directory" in result.output


def test_console_script_runs(tmp_path: Path) -> None:
    """The installed ``cosim`` entry point exists and runs a model end to end."""
    script = Path(sys.executable).parent / "cosim"
    assert script.is_file(), f"console script missing at {script}"
    json_path = tmp_path / "out.json"
    completed = subprocess.run(
        [
            str(script),
            "simulate",
            "--model",
            "bert-tiny",
            "--seq-len",
            "8",
            "--json",
            str(json_path),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert completed.returncode == 0, completed.stderr
    assert "Traceback" not in completed.stderr
    assert json.loads(json_path.read_text())["model"] == "bert-tiny"


@pytest.mark.parametrize("option", ["--json", "--csv"])
def test_unwritable_output_path_is_one_clear_error(
    runner: CliRunner, tmp_path: Path, option: str
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("keep me")
    result = runner.invoke(app, simulate_args(option, str(blocker / "out.json")))
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert result.stderr.count("error:") == 1, result.stderr
    assert option in result.stderr and "cannot write" in result.stderr
    assert blocker.read_text() == "keep me"
