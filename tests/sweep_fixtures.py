"""Picklable top-level ``evaluate`` functions for the sweep tests, and a sweep script.

Workers (loky, Dask) import this module by name, so everything here is top-level.
``python -m tests.sweep_fixtures STORE N SLEEP_S [json|sqlite]`` runs a slow in-process sweep
of ``cheap_points(N)`` into STORE, a per-point JSON store or a SQLite one (the SIGKILL tests
kill it part way).
"""

from __future__ import annotations

import functools
import math
import os
import signal
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def cheap_points(n: int) -> list[dict[str, Any]]:
    """``n`` distinct small configs with nested, string and float fields."""
    return [
        {"a": i, "b": (i % 3) + 1, "scale": 0.1 * (i + 1), "hw": {"name": f"hw-{i % 4}"}}
        for i in range(n)
    ]


def cheap_evaluate(point: Mapping[str, Any]) -> dict[str, Any]:
    """Deterministic arithmetic with awkward values: thirds, None, bools, strings."""
    a, b, scale = point["a"], point["b"], point["scale"]
    return {
        "product": a * b,
        "ratio": a / b,
        "scaled": math.sin(scale) * 1e-9,
        "even": a % 2 == 0,
        "label": f"{point['hw']['name']}/{a}",
        "maybe": None if a % 2 else a,
        "never": None,
    }


def slow_evaluate(point: Mapping[str, Any]) -> dict[str, Any]:
    time.sleep(float(os.environ.get("SWEEP_FIXTURE_SLEEP_S", "0.05")))
    return cheap_evaluate(point)


def failing_evaluate(point: Mapping[str, Any]) -> dict[str, Any]:
    if point["a"] == 3:
        raise ValueError("bad point\nsecond line of the message")
    return cheap_evaluate(point)


def env_evaluate(point: Mapping[str, Any]) -> dict[str, Any]:
    """What a worker's environment says about its threads."""
    return {
        "numba_threads": os.environ.get("NUMBA_NUM_THREADS"),
        "omp_threads": os.environ.get("OMP_NUM_THREADS"),
    }


def worker_evaluate(point: Mapping[str, Any]) -> dict[str, Any]:
    """The worker's process id and the growth after which loky would restart it."""
    from joblib.externals.loky import process_executor

    return {"pid": os.getpid(), "leak_bytes": process_executor._MAX_MEMORY_LEAK_SIZE}


def crash_once_evaluate(point: Mapping[str, Any]) -> dict[str, Any]:
    """SIGKILLs its own worker on the first attempt at point ``a == point['crash_at']``.

    A marker file in ``point['marker_dir']`` (created before dying) lets the retry succeed.
    """
    if point["a"] == point["crash_at"]:
        marker = Path(point["marker_dir"]) / f"crashed-{point['a']}"
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            pass
        else:
            os.close(fd)
            os.kill(os.getpid(), signal.SIGKILL)
    return cheap_evaluate(point)


def sim_points(n: int = 6) -> list[dict[str, Any]]:
    """Small BERT-tiny design points over the PE array shape and dataflow."""
    shapes = [(8, 8), (16, 8), (8, 32), (32, 32), (16, 16), (4, 64)]
    dataflows = ["ws", "os", "is"]
    return [
        {
            "model": "bert-tiny",
            "seq_len": 8,
            "hardware": "systolic-32x32-ws",
            "pe_array": {"rows": rows, "cols": cols, "dataflow": dataflows[i % 3]},
        }
        for i, (rows, cols) in enumerate(shapes[:n])
    ]


@functools.lru_cache(maxsize=8)
def _workload(model: str, seq_len: int) -> Any:
    from workloads import build_workload

    return build_workload(model, batch=1, seq_len=seq_len)


def simulate_evaluate(point: Mapping[str, Any]) -> dict[str, Any]:
    """The real simulator on a varied PE array: real numbers through the whole pipeline."""
    from accel_sim import hardware_from_dict, load_hardware, simulate

    spec = load_hardware(point["hardware"]).model_dump(mode="json")
    spec["pe_array"].update(point["pe_array"])
    hw = hardware_from_dict(spec)
    result = simulate(_workload(point["model"], point["seq_len"]), hw)
    return {"hw_hash": hw.config_hash(), **result.totals()}


def main(argv: list[str]) -> None:
    from studies.runner import run_points
    from studies.sqlite_store import SqliteStore
    from studies.store import ResultStore

    store_dir, n, sleep_s = argv[0], int(argv[1]), argv[2]
    kind = argv[3] if len(argv) > 3 else "json"
    os.environ["SWEEP_FIXTURE_SLEEP_S"] = sleep_s
    store = SqliteStore(store_dir) if kind == "sqlite" else ResultStore(store_dir)
    run_points(cheap_points(n), slow_evaluate, store, progress=False)


if __name__ == "__main__":
    main(sys.argv[1:])
