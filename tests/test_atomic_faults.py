"""Faults: a writer killed at any point leaves the old file or the new one, never a torn one.

Every writer (atomic text/bytes, result-store export, artifact, checkpoint, plot, mask file)
runs in a forked child that rewrites its target in a loop, alternating between two versions:

- random kills: the parent SIGKILLs the child after a random delay (seeded), then checks that
  the target reads back whole and is exactly one of the versions;
- crash points: the child calls ``os._exit`` at the k-th call of ``os.replace``, ``os.fsync``
  or ``shutil.rmtree`` (k = 1, 2, ... until a write gets through), so every step
  of the write protocol is a kill point at least once.

Then a sweep is SIGKILLed at random points and resumed: every point stored once, and the
table equals an uninterrupted run's. ``KILLS`` counts the kills; ``pytest -s`` prints them.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from safeio import atomic as atomic_io
from studies.store import ResultStore, point_key
from tests import sweep_fixtures as fx

RANDOM_KILLS = 25  # per writer
KILLS: Counter[str] = Counter()


def _fork(body: Callable[[], None]) -> int:
    pid = os.fork()
    if pid == 0:  # child: never returns into pytest
        code = 0
        try:
            body()
        except BaseException:
            code = 3
        os._exit(code)
    return pid


def _loop(write: Callable[[int], None]) -> Callable[[], None]:
    def body() -> None:
        i = 0
        while True:
            write(i % 2)
            i += 1

    return body


def _kill_randomly(name: str, write, check, seconds_per_write: float, seed: int) -> set[int]:
    """SIGKILL a looping writer at random moments; every time the target must check out."""
    rng = random.Random(seed)
    seen = set()
    for _ in range(RANDOM_KILLS):
        pid = _fork(_loop(write))
        time.sleep(rng.uniform(0.0, 3.0 * seconds_per_write) + 0.002)
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status), f"{name}: the writer exited on its own ({status})"
        KILLS[name] += 1
        seen.add(check())
    return seen


CRASH_CALLS = ("replace", "fsync", "rmtree")


def _crash_at(name: str, write, check) -> int:
    """Exit the writer at the k-th call of each write primitive, for every k it reaches."""
    crashes = 0
    for primitive in CRASH_CALLS:
        for k in range(1, 200):

            def body(primitive=primitive, k=k) -> None:
                module = shutil if primitive == "rmtree" else os
                real = getattr(module, primitive)
                calls = [0]

                def crashing(*args, **kwargs):
                    calls[0] += 1
                    if calls[0] == k:
                        os._exit(17)
                    return real(*args, **kwargs)

                setattr(module, primitive, crashing)
                write(1)

            pid = _fork(body)
            _, status = os.waitpid(pid, 0)
            assert os.WIFEXITED(status), f"{name}: writer died by signal {status}"
            code = os.WEXITSTATUS(status)
            assert code in (0, 17), f"{name}: writer failed with exit code {code}"
            check()
            write(0)  # back to the old version for the next crash point
            if code == 0:
                break
            crashes += 1
            KILLS[f"{name} (crash points)"] += 1
    return crashes


def _run_faults(name: str, write, check, seed: int) -> None:
    write(0)
    assert check() == 0
    started = time.perf_counter()
    write(1)
    assert check() == 1
    seconds = time.perf_counter() - started
    seen = _kill_randomly(name, write, check, seconds, seed)
    assert seen <= {0, 1}
    crashes = _crash_at(name, write, check)
    assert crashes >= 2, f"{name}: no crash point was reached"
    print(f"faults {name}: {KILLS[name]} SIGKILLs, {crashes} crash points, all old or new")


# ----------------------------------------------------------------------------- writers


def _payload(version: int) -> bytes:
    body = (f"version {version}\n" * (20000 if version else 3000)).encode()
    return body + hashlib.sha256(body).hexdigest().encode()


def test_atomic_write_bytes_survives_kills(tmp_path: Path) -> None:
    target = tmp_path / "file.txt"

    def check() -> int:
        data = target.read_bytes()
        body, digest = data[:-64], data[-64:]
        assert hashlib.sha256(body).hexdigest().encode() == digest, "torn file"
        return int(body.split(b"\n", 1)[0].split()[1])

    _run_faults(
        "atomic_write_bytes", lambda v: atomic_io.atomic_write_bytes(target, _payload(v)), check, 1
    )


def test_store_export_survives_kills(tmp_path: Path) -> None:
    stores = []
    for version in (0, 1):
        store = ResultStore(tmp_path / f"store-{version}")
        for point in fx.cheap_points(3 + 40 * version):
            store.put(point_key(point), point, fx.cheap_evaluate(point))
        stores.append(store)
    frames = [store.frame() for store in stores]
    out = tmp_path / "out"

    def write(version: int) -> None:
        stores[version].export(out, {"version": version})

    def check() -> int:
        parquet = pd.read_parquet(out / "results.parquet")
        csv = pd.read_csv(out / "results.csv")
        run = json.loads((out / "run.json").read_text())
        versions = [v for v in (0, 1) if parquet.equals(frames[v])]
        assert len(versions) == 1, "results.parquet is neither version"
        assert len(csv) in (len(frames[0]), len(frames[1]))
        assert run["n_points"] in (len(frames[0]), len(frames[1]))
        return versions[0]

    _run_faults("store export", write, check, 2)


def test_artifact_survives_kills(tmp_path: Path) -> None:
    from safetensors.numpy import load_file

    from pruning.artifact import load_artifact, save_artifact
    from pruning.oneshot import magnitude_prune
    from tests.tiny_bert import tiny_model

    models = []
    for sparsity in (0.5, 0.75):
        model = tiny_model()
        models.append((model, magnitude_prune(model, "unstructured", sparsity), sparsity))
    target = tmp_path / "artifact"

    def write(version: int) -> None:
        model, masks, sparsity = models[version]
        save_artifact(model, masks, target, source_model="tiny", pattern="unstructured",
                      method="magnitude", sparsity=sparsity)  # fmt: skip

    def check() -> int:
        artifact = load_artifact(target)  # manifest and masks agree (nnz checked)
        version = [0.5, 0.75].index(artifact.manifest["sparsity"])
        weights = load_file(str(target / "model.safetensors"))
        for name, mask in artifact.masks.items():  # weights from the same version as masks
            key = name if name in weights else name.removeprefix("bert.")
            assert np.array_equal(weights[key] != 0, mask), "model and masks disagree"
        json.loads((target / "config.json").read_text())
        return version

    _run_faults("artifact", write, check, 3)


def test_checkpoint_survives_kills(tmp_path: Path) -> None:
    import torch

    from pruning.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint

    directory = tmp_path / "ckpt"

    def write(version: int) -> None:  # the same step re-saved: the directory swap
        tensors = {"w": torch.full((200, 200), float(version)), "v": torch.tensor([version])}
        save_checkpoint(directory, 5, tensors, {"version": version}, keep=1)

    def check() -> int:
        path = latest_checkpoint(directory)
        assert path is not None and path.name == "step-00000005", "no complete checkpoint"
        tensors, state = load_checkpoint(path)
        version = state["version"]
        assert int(tensors["v"]) == version and bool((tensors["w"] == version).all())
        return version

    _run_faults("checkpoint", write, check, 4)


def test_plot_survives_kills(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.image
    import matplotlib.pyplot as plt

    from studies.plots import save

    def write(version: int) -> None:
        _, ax = plt.subplots(figsize=(3 + version, 2))
        ax.plot(np.arange(10 + 500 * version), label=f"v{version}")
        save(ax, tmp_path, "plot")

    def check() -> int:
        image = matplotlib.image.imread(tmp_path / "plot.png")  # a torn PNG does not decode
        svg = ET.parse(tmp_path / "plot.svg").getroot()
        width = float(svg.get("width").removesuffix("pt"))
        assert image.shape[1] in (450, 600) and width in (216.0, 288.0)
        return int(image.shape[1] == 600)

    _run_faults("plot", write, check, 5)


def test_mask_file_survives_kills(tmp_path: Path) -> None:
    from pruning.maskfile import read_mask_file, write_mask_file

    rng = np.random.default_rng(0)
    versions = [{"w": rng.random((64, 48 + 64 * v)) < 0.5} for v in (0, 1)]
    path = tmp_path / "masks.safetensors"

    def check() -> int:
        masks, meta = read_mask_file(path)
        assert np.array_equal(masks["w"], versions[meta["version"]]["w"])
        return meta["version"]

    _run_faults("mask file", lambda v: write_mask_file(path, versions[v], {"version": v}), check, 6)


# ----------------------------------------------------------------------------- sweeps


def test_sweep_killed_at_random_points_resumes_to_the_clean_table(tmp_path: Path) -> None:
    from studies.runner import run_points

    n = 30
    points = fx.cheap_points(n)
    keys = [point_key(point) for point in points]
    store_dir = tmp_path / "store"
    os.environ["SWEEP_FIXTURE_SLEEP_S"] = "0.03"
    rng = random.Random(7)
    for _ in range(8):

        def sweep() -> None:
            run_points(points, fx.slow_evaluate, ResultStore(store_dir), progress=False)

        pid = _fork(sweep)
        time.sleep(rng.uniform(0.02, 0.12))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        KILLS["sweep"] += 1
        stored = ResultStore(store_dir).keys()
        assert stored <= set(keys)  # every readable file is a whole point
    summary = run_points(points, fx.cheap_evaluate, ResultStore(store_dir), progress=False)
    assert summary.skipped + summary.done == n and summary.failed == ()
    assert 0 < summary.skipped < n, "the kills should leave a partly finished sweep"
    clean = ResultStore(tmp_path / "clean")
    run_points(points, fx.cheap_evaluate, clean, progress=False)
    pd.testing.assert_frame_equal(
        ResultStore(store_dir).frame(keys), clean.frame(keys), check_exact=True
    )
    files = sorted((store_dir / "points").glob("[0-9a-f]*.json"))
    assert len(files) == n
    print(f"faults sweep: {KILLS['sweep']} SIGKILLs, {summary.skipped} points kept, resumed")


@pytest.fixture(scope="module", autouse=True)
def _report_kills():
    yield
    print(f"\nfaults: {sum(KILLS.values())} kills in all: {dict(KILLS)}")
