"""A built wheel works on its own: presets, built-in studies and type markers are package data.

The wheel is built from a copy of the sources (so no build/ or egg-info lands in the
checkout), installed with ``pip install --no-deps --target`` (the dependencies come from the
running environment, nothing is downloaded), and used from an unrelated directory with only
the install folder on ``PYTHONPATH``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("accel_sim", "pruning", "workloads", "studies", "safeio")
PIP_INSTALL = (sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q")

CHECK = """
import json, accel_sim, studies
from accel_sim import list_presets, load_hardware, simulate
from studies.spec import builtin_names, expand, load_spec
from workloads import build_workload
result = simulate(build_workload("bert-tiny", seq_len=16), load_hardware("systolic-32x32-ws"))
spec, base = load_spec("block-size")
print(json.dumps({
    "accel_sim": accel_sim.__file__,
    "studies": studies.__file__,
    "presets": list_presets(),
    "builtins": builtin_names(),
    "points": len(expand(spec, base)),
    "cycles": result.cycles,
}))
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(source),
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            str(out),
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (built,) = out.glob("*.whl")
    from accel_sim.version import __version__

    assert built.name.startswith(f"sparse_bert_cosim-{__version__}-")  # the one version
    return built


def test_the_wheel_holds_presets_builtins_and_py_typed(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    presets = sorted(p.name for p in (ROOT / "accel_sim" / "presets").glob("*.yaml"))
    builtins = sorted(p.name for p in (ROOT / "studies" / "builtin").glob("*.yaml"))
    assert presets and builtins
    assert {f"accel_sim/presets/{name}" for name in presets} <= names
    assert {f"studies/builtin/{name}" for name in builtins} <= names
    assert {f"{package}/py.typed" for package in PACKAGES} <= names


def test_an_installed_wheel_lists_presets_builtins_and_simulates(
    wheel: Path, tmp_path: Path
) -> None:
    target = tmp_path / "site"
    done = subprocess.run(
        [*PIP_INSTALL, "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "COSIM_HW_DIR"}
    env["PYTHONPATH"] = str(target)
    run = subprocess.run(
        [sys.executable, "-c", CHECK],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    found = json.loads(run.stdout.strip().splitlines()[-1])
    assert Path(found["accel_sim"]).is_relative_to(target)
    assert Path(found["studies"]).is_relative_to(target)
    shipped = sorted(p.stem for p in (ROOT / "accel_sim" / "presets").glob("*.yaml"))
    assert found["presets"] == shipped
    assert "systolic-32x32-ws" in found["presets"]
    assert {"block-size", "compression", "crossbar", "dse"} <= set(found["builtins"])
    assert found["points"] > 0
    assert found["cycles"] > 0
