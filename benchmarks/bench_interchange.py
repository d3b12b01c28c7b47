"""Benchmark: the SCALE-Sim / Timeloop round trip on one layer, with SCALE-Sim as the judge.

Imports SCALE-Sim's own inputs (``docs/examples/scalesim/scale.cfg`` and the one-layer GEMM
topology ``bert_query.csv``: BERT-base's query projection at 128 tokens) with ``cosim
simulate --hw scale.cfg --topology bert_query.csv``, runs SCALE-Sim 3.0.0 on the very same
two files, and exports the imported chip with ``cosim export hardware`` as an
Accelergy/Timeloop architecture and ERT and as a SCALE-Sim ``.cfg`` again (read back and
compared with the original). Every file a command writes lands in
``docs/results/interchange/``; the comparison table goes to ``--out``.

Run: python benchmarks/bench_interchange.py [--out docs/results/bench_interchange.md]
(SCALE-Sim takes a minute or two on this layer.)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _table_file import REPO, RESULTS_DIR, TableFile, default_out

EXAMPLES = REPO / "docs" / "examples" / "scalesim"
CFG = EXAMPLES / "scale.cfg"
TOPOLOGY = EXAMPLES / "bert_query.csv"
FILES = RESULTS_DIR / "interchange"


def cosim(*args: str, stdout: Path | None = None) -> None:
    """``cosim ARGS`` from the repository root (paths in the files stay relative)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "100", "NO_COLOR": "1"}
    env.update(OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    done = subprocess.run(
        [sys.executable, "-m", "studies.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    if stdout is not None:
        stdout.write_text(f"$ cosim {' '.join(args)}\n{done.stdout}")


def scalesim_cycles(cfg: Path, topology: Path) -> tuple[int, float]:
    """SCALE-Sim 3.0.0's total cycles for the topology's one layer, read from its own files,
    and its wall time (CALC interface bandwidth: compute cycles, no stalls)."""
    from scalesim.scale_sim import scalesim

    with tempfile.TemporaryDirectory(prefix="scalesim-") as tmp:
        layout = Path(tmp) / "layout.csv"
        layout.write_text("Layer,\n")
        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            sim = scalesim(
                save_disk_space=True,
                verbose=False,
                config=str(cfg),
                topology=str(topology),
                layout=str(layout),
                input_type_gemm=True,
            )
            sim.run_scale(top_path=tmp)
        wall = time.perf_counter() - started
        layer = sim.runner.single_layer_sim_object_list[0]
        return int(layer.get_compute_report_items()[1]), wall


def relative(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=default_out(__file__), help="markdown file for the table"
    )
    args = parser.parse_args()
    FILES.mkdir(parents=True, exist_ok=True)
    cfg, topology = relative(CFG), relative(TOPOLOGY)
    result_json = FILES / "simulate.json"
    cosim("simulate", "--hw", cfg, "--topology", topology, "--json", relative(result_json),
          stdout=FILES / "simulate.txt")  # fmt: skip
    cosim("export", "hardware", cfg, "--format", "accelergy", "--out", relative(FILES))
    back = FILES / "roundtrip.cfg"
    cosim("export", "hardware", cfg, "--format", "scalesim", "--out", relative(back))
    result = json.loads(result_json.read_text())
    reference, scalesim_s = scalesim_cycles(CFG, TOPOLOGY)

    from accel_sim import load_hardware

    original = load_hardware(CFG).model_dump(exclude={"description"})
    again = load_hardware(back).model_dump(exclude={"description"})
    (layer,) = result["ops"]
    out = TableFile(fenced=False)
    out(f"One GEMM (M, N, K) = ({layer['m']}, {layer['n']}, {layer['k']}) from `{topology}` on "
        f"the chip of `{cfg}` ({result['hardware_config']['pe_array']['rows']}x"
        f"{result['hardware_config']['pe_array']['cols']} "
        f"{result['hardware_config']['pe_array']['dataflow']}).")  # fmt: skip
    out()
    out("| | SCALE-Sim 3.0.0 | cosim (imported config and topology) |")
    out("|---|---|---|")
    out(f"| compute cycles | {reference:,} | {layer['compute_cycles']:,} |")
    out(f"| stall cycles | 0 (CALC bandwidth) | {layer['stall_cycles']:,} |")
    out(f"| total cycles | {reference:,} | {layer['cycles']:,} |")
    out(f"| difference | | {layer['cycles'] - reference:+,} cycles "
        f"({100 * (layer['cycles'] - reference) / reference:+.4f} %) |")  # fmt: skip
    out(f"| latency at 1 GHz | {reference / 1e3:,.3f} us | {layer['latency_s'] * 1e6:,.3f} us |")
    out(f"| energy | - | {layer['energy_j'] * 1e6:,.3f} uJ |")
    out(f"| wall time | {scalesim_s:,.1f} s | {result['meta']['simulation_s'] * 1e3:,.2f} ms |")
    out()
    same = "the same spec" if original == again else "a DIFFERENT spec"
    out(f"Written by the commands above: {', '.join(f'`{relative(p)}`' for p in sorted(FILES.iterdir()))}. "  # noqa: E501
        f"`roundtrip.cfg` reads back as {same} as `scale.cfg`.")  # fmt: skip
    out.write(args.out)


if __name__ == "__main__":
    main()
