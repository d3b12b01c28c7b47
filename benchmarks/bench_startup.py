"""Benchmark: start-up of the ``cosim`` command line, each command in a fresh process.

Times ``cosim --help``, ``cosim --version`` and ``cosim simulate`` on a preset model and
preset hardware (BERT-base, 128 tokens, the 32x32 weight-stationary array) with a warm
Numba cache (one untimed run first), the best and the median of ``--runs`` runs: wall time
and CPU time (user + system of the child). Each command also reports which heavy libraries
it imported. Two floors frame the numbers: an empty Python start and ``import numba`` (which
every simulation needs). The targets are wall times on an otherwise idle machine.

Run: python benchmarks/bench_startup.py [--runs N] [--out docs/results/bench_startup.md]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _table_file import REPO, TableFile, default_out

HEAVY = ("torch", "transformers", "pandas", "numba", "matplotlib", "scipy", "pydantic", "rich")
# Runs the CLI with argv, then writes the heavy modules it imported to the file in argv[1].
WRAPPER = f"""
import json, sys
report, *args = sys.argv[1:]
sys.argv = ["cosim", *args]
try:
    from studies.cli import app
    app(prog_name="cosim")
except SystemExit:
    pass
finally:
    heavy = set(json.loads({json.dumps(HEAVY)!r}))
    heavy = sorted({{m.split(".")[0] for m in sys.modules}} & heavy)
    open(report, "w").write(json.dumps(heavy))
"""

COMMANDS = [
    ("cosim --help", ["--help"], 0.3),
    ("cosim --version", ["--version"], 0.3),
    (
        "cosim simulate (preset model and hardware)",
        ["-q", "simulate", "--model", "bert-base-uncased", "--hw", "systolic-32x32-ws"],
        1.5,
    ),
]
FLOORS = [("python -c pass", ["-c", "pass"]), ("python -c 'import numba'", ["-c", "import numba"])]


def _env() -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def _run(argv: list[str]) -> tuple[float, float]:
    """(wall s, child CPU s) of one run of ``python argv``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, *argv],
        check=True,
        env=_env(),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _heavy(args: list[str], report: Path) -> list[str]:
    subprocess.run(
        [sys.executable, "-c", WRAPPER, str(report), *args],
        check=True,
        env=_env(),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return json.loads(report.read_text())


def _row(name: str, times: list[tuple[float, float]], target: str, heavy: str) -> str:
    walls = [wall for wall, _ in times]
    cpus = [cpu for _, cpu in times]
    return (
        f"| {name} | {min(walls):.2f} | {statistics.median(walls):.2f} | {min(cpus):.2f} "
        f"| {target} | {heavy} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs per command")
    parser.add_argument(
        "--out", type=Path, default=default_out(__file__), help="markdown file for the table"
    )
    args = parser.parse_args()
    out = TableFile(fenced=False)
    out(
        f"Best and median of {args.runs} runs in fresh processes (warm Numba cache), "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} when it started."
    )
    out()
    out("| command | best wall [s] | median wall [s] | best CPU [s] | target wall [s] "
        "| heavy libraries imported |")  # fmt: skip
    out("|---|---|---|---|---|---|")
    report = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench_startup_{os.getpid()}.json"
    try:
        for name, argv in FLOORS:
            _run(argv)
            times = [_run(argv) for _ in range(args.runs)]
            out(_row(name, times, "(floor)", "-"))
        for name, cli_args, target in COMMANDS:
            heavy = _heavy(cli_args, report)  # also the untimed warm-up run
            cli = ["-m", "studies.cli", *cli_args]
            times = [_run(cli) for _ in range(args.runs)]
            out(_row(name, times, f"< {target:g}", ", ".join(heavy) or "none"))
    finally:
        report.unlink(missing_ok=True)
    out.write(args.out)


if __name__ == "__main__":
    main()
