"""The ``cosim`` command line: renders tables and writes files; the libraries never print."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from accel_sim import HardwareConfigError, SimResult, list_presets, load_hardware, simulate
from accel_sim.systolic import warm_up
from workloads import WorkloadError, build_workload
from workloads.atomic_io import atomic_write_text

app = typer.Typer(
    help="Sparse-BERT hardware co-design studio: simulate BERT-family models on accelerators.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()
error_console = Console(stderr=True)

DEFAULT_MODEL = "bert-base-uncased"
DEFAULT_HW = "systolic-32x32-ws"


@app.callback()
def main() -> None:
    """Sparse-BERT hardware co-design studio."""


def fail(message: str) -> typer.Exit:
    """One clear line on stderr and exit code 2, instead of a traceback."""
    error_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def write_output(path: Path, text: str, option: str) -> None:
    """Write an output file atomically, or fail with one line naming the option and path."""
    try:
        atomic_write_text(path, text)
    except OSError as error:
        raise fail(f"{option} {path}: cannot write file ({error.strerror or error})") from None
    console.print(f"wrote {path}")


def _si(value: float, unit: str) -> str:
    for factor, prefix in (
        (1e9, "G"),
        (1e6, "M"),
        (1e3, "k"),
        (1, ""),
        (1e-3, "m"),
        (1e-6, "µ"),
        (1e-9, "n"),
        (1e-12, "p"),
    ):
        if abs(value) >= factor:
            return f"{value / factor:,.3f} {prefix}{unit}"
    return f"{value:.3g} {unit}"


def render_result(result: SimResult) -> None:
    totals = Table(
        title=f"{result.model_name} on {result.hardware_name} "
        f"(batch {result.batch}, seq len {result.seq_len})"
    )
    totals.add_column("metric")
    totals.add_column("value", justify="right")
    totals.add_row("cycles", f"{result.cycles:,}")
    totals.add_row("  compute cycles", f"{result.compute_cycles:,}")
    totals.add_row("  stall cycles", f"{result.stall_cycles:,}")
    totals.add_row("latency", _si(result.latency_s, "s"))
    totals.add_row("energy", _si(result.energy_j, "J"))
    totals.add_row("sequences/s", f"{result.sequences_per_s:,.2f}")
    totals.add_row("MACs", f"{result.macs:,}")
    totals.add_row("PE utilisation", f"{100 * result.utilisation:.1f} %")
    totals.add_row("DRAM traffic", _si(result.dram_bytes, "B"))
    totals.add_row("simulation wall time", _si(result.simulation_s, "s"))
    console.print(totals)

    energy = Table(title="energy by component")
    energy.add_column("component")
    energy.add_column("energy", justify="right")
    energy.add_column("share", justify="right")
    total_j = result.energy_j or 1.0
    for component, joules in result.energy_breakdown_j.items():
        energy.add_row(component, _si(joules, "J"), f"{100 * joules / total_j:.1f} %")
    console.print(energy)

    by_kind: dict[str, list] = {}
    for op in result.ops:
        by_kind.setdefault(op.role or op.kind, []).append(op)
    ops = Table(title="by operation type (all layers)")
    for column in ("op", "count", "cycles", "stall %", "energy", "util %"):
        ops.add_column(column, justify="left" if column == "op" else "right")
    for kind, members in by_kind.items():
        cycles = sum(op.cycles for op in members)
        stalls = sum(op.stall_cycles for op in members)
        macs = sum(op.macs for op in members)
        util = f"{100 * macs / (cycles * result.pe_count):.1f}" if macs else "-"
        ops.add_row(
            kind,
            str(len(members)),
            f"{cycles:,}",
            f"{100 * stalls / cycles:.1f}",
            _si(sum(op.energy_j for op in members), "J"),
            util,
        )
    console.print(ops)


@app.command("simulate")
def simulate_command(
    model: Annotated[str, typer.Option(help="preset name or checkpoint directory")] = DEFAULT_MODEL,
    hw: Annotated[str, typer.Option(help="hardware preset name or YAML file")] = DEFAULT_HW,
    seq_len: Annotated[int, typer.Option(help="tokens per sequence")] = 128,
    batch: Annotated[int, typer.Option(help="sequences per batch")] = 1,
    json_path: Annotated[Path | None, typer.Option("--json", help="write results as JSON")] = None,
    csv_path: Annotated[Path | None, typer.Option("--csv", help="write per-op rows as CSV")] = None,
) -> None:
    """Simulate one forward pass of MODEL on hardware HW and report latency and energy."""
    try:
        workload = build_workload(model, batch=batch, seq_len=seq_len)
        hardware = load_hardware(hw)
    except (WorkloadError, HardwareConfigError) as error:
        raise fail(str(error)) from None
    warm_up()  # JIT load/compile is start-up, not simulation time
    result = simulate(workload, hardware)
    render_result(result)
    if json_path is not None:
        write_output(json_path, json.dumps(result.to_dict(), indent=2) + "\n", "--json")
    if csv_path is not None:
        write_output(csv_path, result.to_frame().to_csv(index=False), "--csv")


@app.command("presets")
def presets_command() -> None:
    """List the hardware presets in configs/hw/."""
    for name in list_presets():
        console.print(name)


if __name__ == "__main__":  # python -m studies.cli
    app(prog_name="cosim")
