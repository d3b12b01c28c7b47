"""The extreme-value sweep (issue 17, must show): every numeric field, one extreme value at a
time, runs consistently or ends in one named error; no crash, traceback, signal or hang.

The cases and their verdicts are in ``tests/extreme_sweep.py``. They run in a worker
subprocess, so that a crash (a signal) or a hang loses one case, not the test run: the
parent watches the worker's progress file, kills it when one case runs past ``HANG_S``
seconds (or it dies), records that case, and starts a new worker after it.

The default run sweeps ``extreme_sweep.QUICK_INTS`` (0, -1, 2**12, 2**20, 2**63) and
``QUICK_FLOATS`` (0, -1.5, the smallest float, 1e300, NaN) over every field, on the systolic
preset (and the PE-array preset for the fields that size its kernels), study fields through
the library; the ``slow`` run sweeps every value of ``extreme_sweep.VALUES`` (powers of two
up to 2**64, tiny and huge floats, infinities, NaN) on the systolic and PE-array presets,
study fields through ``cosim study run`` with its plots. ``WORKERS`` workers share the cases.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests import extreme_sweep

ROOT = Path(__file__).resolve().parents[1]
HANG_S = 60.0  # a case running longer than this is a hang
WORKERS = min(2, os.cpu_count() or 1)  # sweep-level parallelism; each worker single-threaded


def _worker(todo: list[dict], tmp: Path, artifact: str, mode: str) -> subprocess.Popen:
    (tmp / "cases.json").write_text(json.dumps(todo))
    (tmp / "out.jsonl").write_text("")
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-m", "tests.extreme_sweep", str(tmp / "cases.json"),
         str(tmp / "out.jsonl"), artifact, mode],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=open(tmp / "worker.err", "wb"),
    )  # fmt: skip


def sweep(cases: list[dict], tmp: Path, artifact: str, mode: str) -> dict[int, dict]:
    """Run ``cases`` in worker subprocesses; a case that crashes the worker or runs past
    HANG_S is recorded as such and the sweep goes on after it."""
    results: dict[int, dict] = {}
    todo = list(cases)
    while todo:
        process = _worker(todo, tmp, artifact, mode)
        current, last = None, time.monotonic()
        pending = ""  # a line the worker has not finished writing yet
        with open(tmp / "out.jsonl", encoding="utf-8") as progress:
            while True:
                done = process.poll() is not None
                *lines, pending = (pending + progress.read()).split("\n")
                for line in lines:
                    record = json.loads(line)
                    if "start" in record:
                        current, last = record["start"], time.monotonic()
                    else:
                        results[record.pop("id")] = record
                        current, last = None, time.monotonic()
                if done:
                    break
                if current is not None and time.monotonic() - last > HANG_S:
                    process.kill()
                    process.wait()
                    results[current] = {"exit": "hang", "stdout": "", "stderr": "",
                                        "exception": f"ran past {HANG_S:.0f} s"}  # fmt: skip
                    current = None
                    break
                time.sleep(0.05)
        if current is not None and current not in results:
            error = (tmp / "worker.err").read_text(errors="replace")[-2000:]
            results[current] = {"exit": f"worker died ({process.returncode})", "stdout": "",
                                "stderr": "", "exception": error}  # fmt: skip
        remaining = [case for case in todo if case["id"] not in results]
        if len(remaining) == len(todo):
            error = (tmp / "worker.err").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the sweep worker made no progress: {error}")
        todo = remaining
    return results


def _report(cases: list[dict], results: dict[int, dict]) -> list[str]:
    problems = []
    for case in cases:
        for problem in extreme_sweep.verdict(case, results[case["id"]]):
            where = f"{case['target']}:{case.get('preset', '')} {case['field']}={case['value']!r}"
            problems.append(f"{where}: {problem}")
    return problems + extreme_sweep.across_cases(cases, results)


def sweep_parallel(cases: list[dict], tmp: Path, artifact: str, mode: str) -> dict[int, dict]:
    """``sweep`` over ``WORKERS`` interleaved shares of ``cases`` at once (each its own
    worker process and folder)."""
    shares = [cases[i::WORKERS] for i in range(WORKERS)]
    folders = [tmp / f"worker-{i}" for i in range(WORKERS)]
    for folder in folders:
        folder.mkdir()
    with ThreadPoolExecutor(WORKERS) as pool:
        parts = pool.map(sweep, [s for s in shares if s], folders, [artifact] * WORKERS,
                         [mode] * WORKERS)  # fmt: skip
        return {key: record for part in parts for key, record in part.items()}


def _run(mode: str, tmp: Path, artifact: Path) -> None:
    cases = extreme_sweep.cases(full=mode == "full")
    started = time.perf_counter()
    results = sweep_parallel(cases, tmp, str(artifact), mode)
    problems = _report(cases, results)
    ran = sum(1 for r in results.values() if r["exit"] == 0)
    slowest = max(results.values(), key=lambda r: r.get("seconds", 0)).get("seconds", 0)
    summary = (f"{len(cases)} cases ({ran} ran, {len(cases) - ran} refused) in "
               f"{time.perf_counter() - started:.0f} s, slowest case {slowest:.1f} s")  # fmt: skip
    print(summary)
    assert not problems, f"{summary}; {len(problems)} problems:\n" + "\n".join(problems[:40])


def test_extreme_values_quick(tmp_path: Path, pruned) -> None:
    _run("quick", tmp_path, pruned[2])


@pytest.mark.slow
def test_extreme_values_full(tmp_path: Path, pruned) -> None:
    _run("full", tmp_path, pruned[2])
