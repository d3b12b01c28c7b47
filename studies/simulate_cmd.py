"""``cosim simulate``: one forward pass of a model on a hardware spec, as tables and files.

Heavy modules (the simulator's Numba kernels, pandas) are imported inside the command, so
``cosim --help`` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from studies.console import (
    console,
    detail,
    fail,
    is_stdout,
    si,
    tables_to_stderr,
    write_output,
)
from studies.options import SetOption, check_distinct_outputs, parse_set_options
from studies.shrink_compare import unshrunk_comparison

if TYPE_CHECKING:
    from accel_sim import ChipConfig, SimResult
    from pruning.artifact import SparseArtifact
    from workloads import Workload

__all__ = ["DEFAULT_HW", "DEFAULT_MODEL", "render_result", "simulate_command"]

DEFAULT_MODEL = "bert-base-uncased"
DEFAULT_HW = "systolic-32x32-ws"


def render_result(result: SimResult) -> None:
    from rich.table import Table

    totals = Table(
        title=f"{result.model_name} on {result.hardware_name} "
        f"(batch {result.batch}, seq len {result.seq_len})"
    )
    totals.add_column("metric")
    totals.add_column("value", justify="right")
    totals.add_row("cycles", f"{result.cycles:,}")
    totals.add_row("  compute cycles", f"{result.compute_cycles:,}")
    totals.add_row("  stall cycles", f"{result.stall_cycles:,}")
    totals.add_row("latency", si(result.latency_s, "s"))
    totals.add_row("energy", si(result.energy_j, "J"))
    totals.add_row("sequences/s", f"{result.sequences_per_s:,.2f}")
    totals.add_row("MACs", f"{result.macs:,}")
    totals.add_row("PE utilisation", f"{100 * result.utilisation:.1f} %")
    totals.add_row("DRAM traffic", si(result.dram_bytes, "B"))
    if result.baseline is not None:
        base = result.baseline
        totals.add_row("effective utilisation", f"{100 * result.effective_utilisation:.1f} %")
        if result.load_imbalance is not None:
            totals.add_row("load imbalance (cycle-weighted)", f"{result.load_imbalance:.3f}")
        totals.add_row("dense baseline cycles", f"{base.cycles:,}")
        totals.add_row("dense baseline energy", si(base.energy_j, "J"))
        totals.add_row("speedup vs dense", f"{result.speedup:.3f}x")
        totals.add_row("energy vs dense", f"{result.energy_ratio:.3f}x")
    for label, value in result.summary_rows():
        totals.add_row(label, value)
    totals.add_row("simulation wall time", si(result.simulation_s, "s"))
    console.print(totals)

    energy = Table(title="energy by component")
    energy.add_column("component")
    energy.add_column("energy", justify="right")
    energy.add_column("share", justify="right")
    total_j = result.energy_j or 1.0
    for component, joules in result.energy_breakdown_j.items():
        energy.add_row(component, si(joules, "J"), f"{100 * joules / total_j:.1f} %")
    console.print(energy)

    by_kind: dict[str, list] = {}
    for op in result.ops:  # a topology's layers have no BERT role: one row each
        by_kind.setdefault(op.name if op.role == "layer" else op.role or op.kind, []).append(op)
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
            f"{100 * stalls / cycles:.1f}" if cycles else "-",
            si(sum(op.energy_j for op in members), "J"),
            util,
        )
    console.print(ops)


def encoder_weight_density(workload: Workload) -> float:
    """Kept fraction of all encoder linear weights (unmasked ones count as dense)."""
    from workloads import ENCODER_LINEAR_ROLES

    encoder = [op for op in workload.gemms if op.role in ENCODER_LINEAR_ROLES]
    total = sum(op.n * op.k for op in encoder)
    return sum(op.weight_nnz for op in encoder) / total if total else 1.0


def artifact_summary(artifact: SparseArtifact, workload: Workload) -> dict:
    """The ``artifact`` block of ``--json``: ``density`` is the manifest's (masked matrices)."""
    return {
        "path": str(artifact.path),
        "pattern": artifact.manifest["pattern"],
        "method": artifact.manifest["method"],
        "head": workload.head,
        "density": artifact.density,
        "encoder_weight_density": encoder_weight_density(workload),
    }


def render_artifact(summary: dict, hardware: ChipConfig) -> None:
    from accel_sim.datapaths import datapath_for

    density = f"{100 * summary['encoder_weight_density']:.1f} %"
    console.print(
        f"artifact {summary['path']}: pattern {summary['pattern']}, method "
        f"{summary['method']}, head {summary['head']}, encoder weight density {density}",
        highlight=False,
        soft_wrap=True,
    )
    if not datapath_for(hardware).exploits_sparsity:
        console.print(
            f"[bold yellow]note:[/] {hardware.name} has no sparse support (sparse.zero_handling "
            f"none, dense weight format), so the {density} weight density changes nothing "
            "above; use a hardware spec with a sparse section",
            highlight=False,
            soft_wrap=True,
        )


def render_shrink(block: dict) -> None:
    """One line per shrunk artifact: kept heads and FFN width, and the speedups over the
    unshrunk dense model (:mod:`studies.shrink_compare`)."""
    heads = ", ".join(str(n) for n in block["heads_per_layer"])
    inter = ", ".join(str(n) for n in block["intermediate_per_layer"])
    full = block["unshrunk_dense"]["latency_s"]
    console.print(
        f"shrunk model: heads per layer [{heads}], FFN width per layer [{inter}]; unshrunk "
        f"dense {si(full, 's')}, shrunk dense {si(block['shrunk_dense']['latency_s'], 's')} "
        f"({block['speedup_shrinking']:.2f}x), as run {si(block['shrunk']['latency_s'], 's')} "
        f"({block['speedup_vs_unshrunk_dense']:.2f}x vs the unshrunk dense model)",
        highlight=False,
        soft_wrap=True,
    )


def checkpoint_dir(model: str | None) -> Path | None:
    """The directory of a checkpoint given as a path or a cached hub id (None: a preset or
    something else without weights on disk)."""
    from workloads import PRESETS, resolve_hub_dir

    if model is None or model in PRESETS:
        return None
    from safeio.documents import is_dir

    path = Path(model).expanduser()
    if is_dir(path):
        return path
    return resolve_hub_dir(model)


def _checkpoint_zeros(
    model: str | None, workload: Workload, from_zeros: bool, has_artifact: bool
) -> tuple[Workload, dict] | None:
    """With --masks-from-zeros: the workload with the checkpoint's zero masks and the JSON
    summary. Without: warn when the checkpoint is mostly zeros (None either way)."""
    from pruning.zeros import (
        CheckpointWeightsError,
        has_weights,
        masks_from_zeros,
        warn_if_mostly_zeros,
    )
    from workloads import ENCODER_LINEAR_ROLES, WorkloadError, attach_masks

    directory = checkpoint_dir(model)
    with_weights = directory is not None and has_weights(directory)
    try:
        if not from_zeros:
            if with_weights and not has_artifact:
                warn_if_mostly_zeros(workload, directory, roles=ENCODER_LINEAR_ROLES)
            return None
        if not with_weights:
            raise WorkloadError(
                f"--masks-from-zeros: {model!r} is not a checkpoint with weights "
                "(model.safetensors or pytorch_model.bin)"
            )
        masks = masks_from_zeros(workload, directory)
    except CheckpointWeightsError as error:
        raise WorkloadError(str(error)) from None
    masked = attach_masks(workload, masks, source=str(directory))
    summary = {
        "source": "zeros",
        "path": str(directory),
        "masked_weights": len(masks),
        "encoder_weight_density": encoder_weight_density(masked),
    }
    return masked, summary


def render_zero_masks(summary: dict, hardware: ChipConfig) -> None:
    from accel_sim.datapaths import datapath_for

    density = f"{100 * summary['encoder_weight_density']:.1f} %"
    console.print(
        f"masks from the exact zeros of {summary['path']}: {summary['masked_weights']} "
        f"weights masked, encoder weight density {density}",
        highlight=False,
        soft_wrap=True,
    )
    if not datapath_for(hardware).exploits_sparsity:
        console.print(
            f"[bold yellow]note:[/] {hardware.name} has no sparse support, so the {density} "
            "weight density changes nothing above; use a hardware spec with a sparse section",
            highlight=False,
            soft_wrap=True,
        )


def load_hardware_with_overrides(hw: str, overrides: dict[str, Any]) -> ChipConfig:
    """``hw`` (preset, YAML or SCALE-Sim .cfg) with ``--set`` overrides applied, validated."""
    from accel_sim.spec import derive, load_hardware

    hardware = load_hardware(hw)
    if overrides:
        shown = " ".join(f"{k}={v}" for k, v in overrides.items())
        hardware = derive(hardware, overrides, source=f"{hw} with --set {shown}")
    return hardware


def simulate_command(
    model: Annotated[
        str | None,
        typer.Option(
            help=f"preset name, checkpoint directory or hub id (default: {DEFAULT_MODEL}, "
            "or the --artifact directory when one is given)",
            show_default=False,
        ),
    ] = None,
    hw: Annotated[
        str, typer.Option(help="hardware preset name, YAML file or SCALE-Sim .cfg file")
    ] = DEFAULT_HW,
    seq_len: Annotated[
        int,
        typer.Option(
            help="tokens per sequence (a bi-encoder artifact: per pair, run as two sentences "
            "of seq-len/2)"
        ),
    ] = 128,
    batch: Annotated[int, typer.Option(help="sequences per batch")] = 1,
    artifact_dir: Annotated[
        Path | None,
        typer.Option(
            "--artifact",
            help="pruned SparseModel artifact directory: attach its masks to the model",
        ),
    ] = None,
    topology: Annotated[
        Path | None,
        typer.Option(
            help="SCALE-Sim topology CSV (GEMM 'Layer, M, N, K' or convolution layout) to "
            "run instead of a model",
        ),
    ] = None,
    masks_from_zeros: Annotated[
        bool,
        typer.Option(
            "--masks-from-zeros",
            help="read the masks from the checkpoint's exact zeros (a model pruned by "
            "nn_pruning, torch.ao.pruning or SparseML, saved without masks)",
            show_default=False,
        ),
    ] = False,
    activations: Annotated[
        str,
        typer.Option(
            help="input-activation density of the linear layers, for datapaths that skip zero "
            "activations: dense, a number in [0, 1], or measured (run the model on "
            "--activations-task dev examples and count nonzero inputs)",
        ),
    ] = "dense",
    activations_task: Annotated[
        str | None,
        typer.Option(
            help="GLUE task whose dev examples --activations measured runs (default: the "
            "artifact's training task)",
            show_default=False,
        ),
    ] = None,
    activations_examples: Annotated[
        int, typer.Option(help="dev examples --activations measured runs")
    ] = 64,
    set_fields: SetOption = None,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="write results as JSON ('-': standard output)")
    ] = None,
    csv_path: Annotated[
        Path | None,
        typer.Option("--csv", help="write per-op rows as CSV ('-': standard output)"),
    ] = None,
) -> None:
    """Simulate one forward pass of MODEL on hardware HW and report latency and energy."""
    from accel_sim import HardwareConfigError, simulate
    from accel_sim.datapaths.systolic.dense import warm_up
    from pruning.artifact import ArtifactError, load_artifact
    from safeio.limits import SizeLimitError
    from workloads import WorkloadError, artifact_workload, build_workload

    try:
        check_distinct_outputs(json=json_path, csv=csv_path)
        overrides = parse_set_options(set_fields)
    except ValueError as error:
        raise fail(str(error)) from None
    if topology is not None and (model is not None or artifact_dir is not None):
        raise fail("--topology replaces the model: give it without --model and --artifact")
    if topology is not None and activations == "measured":
        raise fail("--activations measured runs a model: not with --topology")
    if masks_from_zeros and (artifact_dir is not None or topology is not None):
        raise fail(
            "--masks-from-zeros reads a checkpoint's masks: not with --artifact or --topology"
        )
    if is_stdout(json_path) or is_stdout(csv_path):
        tables_to_stderr()
    artifact = None
    if artifact_dir is not None:
        try:
            artifact = load_artifact(artifact_dir)
        except ArtifactError as error:
            raise fail(str(error)) from None
    if model is None and artifact_dir is None:
        model = DEFAULT_MODEL
    try:
        if topology is not None:
            from workloads.topology import load_topology

            workload = load_topology(topology)
        elif artifact is not None:  # the head recorded in its manifest decides the workload
            workload = artifact_workload(artifact, batch, seq_len, model)
        else:
            workload = build_workload(model, batch=batch, seq_len=seq_len)
        hardware = load_hardware_with_overrides(hw, overrides)
        zeros = _checkpoint_zeros(model, workload, masks_from_zeros, artifact is not None)
    except (WorkloadError, HardwareConfigError) as error:
        raise fail(str(error)) from None
    if zeros is not None:
        workload = zeros[0]
    quantization = None if artifact is None else artifact.manifest.get("quantization")
    full_precision = hardware
    if quantization is not None:
        hardware = _quantized_hardware(hardware, quantization)
    workload, activation_record = _with_activations(
        workload, activations, activations_task, activations_examples, artifact, model, seq_len
    )
    detail(f"hardware {hardware.name} (spec digest {hardware.spec_digest}) from {hw}")
    warm_up()  # JIT load/compile is start-up, not simulation time
    try:
        result = simulate(workload, hardware)
    except SizeLimitError as error:  # sizes beyond safeio.limits, found at a kernel entry
        raise fail(str(error)) from None
    render_result(result)
    document = result.to_dict()
    if quantization is not None and hardware is not full_precision:
        document["quantization"] = _quantized_comparison(
            result, workload, full_precision, quantization
        )
    document["hardware_config"] = hardware.model_dump(mode="json")
    document["hardware_source"] = {"hw": hw, "set": overrides}
    if artifact is not None:
        document["artifact"] = artifact_summary(artifact, workload)
        render_artifact(document["artifact"], hardware)
        try:
            shrink = unshrunk_comparison(artifact, workload, result, hardware)
        except WorkloadError as error:
            raise fail(str(error)) from None
        if shrink is not None:
            document["structure"] = shrink
            render_shrink(shrink)
    if activation_record is not None:
        document["activations"] = activation_record
        record = activation_record
        measured_on = (
            f" ({record['examples']} {record['task']} dev examples)"
            if record["mode"] == "measured"
            else ""
        )
        console.print(
            f"input activations {record['mode']}: mean density {record['mean_density']:.3f} "
            f"over {record['layers']} linear layers{measured_on}"
        )
    if zeros is not None:
        document["masks"] = zeros[1]
        render_zero_masks(zeros[1], hardware)
    if json_path is not None:
        text = json.dumps(document, indent=2, default=str, allow_nan=False) + "\n"
        write_output(json_path, text, "--json")
    if csv_path is not None:
        write_output(csv_path, result.to_frame().to_csv(index=False), "--csv")


def _quantized_hardware(hardware: ChipConfig, quantization: dict) -> ChipConfig:
    """A crossbar chip mapping the artifact's weight bits and cell bits; other chips as they
    are (with a note: they do not model weight precision per artifact)."""
    from accel_sim.datapaths.crossbar.quantized import with_weight_quantization
    from accel_sim.spec.crossbar_chip import CrossbarChipConfig

    if not isinstance(hardware, CrossbarChipConfig):
        console.print(
            f"[bold yellow]note:[/] the artifact's weights are quantized to "
            f"{quantization['weight_bits']} bits; {hardware.name} is not a crossbar chip and "
            "runs them at its own precision",
            highlight=False,
            soft_wrap=True,
        )
        return hardware
    try:
        return with_weight_quantization(hardware, quantization)
    except ValueError as error:
        raise fail(f"the artifact's quantization does not fit {hardware.name}: {error}") from None


def _quantized_comparison(
    result: SimResult, workload: Workload, full_precision: ChipConfig, quantization: dict
) -> dict:
    """The quantized sparse run against the dense model on the chip's own mapping (16-bit
    on ISAAC): a table and the ``quantization`` block of ``--json``."""
    from rich.table import Table

    from accel_sim import simulate
    from accel_sim.datapaths.crossbar.quantized import reduction_vs_dense
    from accel_sim.engine import without_masks

    dense = simulate(without_masks(workload), full_precision, baseline=False)
    figures = reduction_vs_dense(result, dense)
    bits = full_precision.encoding.weight_bits  # type: ignore[union-attr]
    table = Table(
        title=f"{quantization['weight_bits']}-bit weights in {quantization['cell_bits']}-bit "
        f"cells, pruned, vs the dense {bits}-bit mapping"
    )
    for column in ("figure", "quantized", f"dense {bits}-bit", "reduction"):
        table.add_column(column, justify="left" if column == "figure" else "right")
    units = {"energy_j": "J", "power_w": "W", "latency_s": "s"}
    for name, row in figures.items():
        unit = units.get(name)
        shown = [
            si(row[k], unit) if unit else f"{row[k]:,.6g}" + (" mm²" if "area" in name else "")
            for k in ("quantized", "dense")
        ]
        table.add_row(name, *shown, f"{100 * row['reduction']:.2f} %")
    console.print(table)
    return {
        "weight_bits": quantization["weight_bits"],
        "cell_bits": quantization["cell_bits"],
        "on_off_ratio": quantization.get("on_off_ratio"),
        "reference": f"dense model, {bits}-bit weights, on {full_precision.name} as given",
        "vs_dense_full_precision": figures,
    }


def _with_activations(
    workload: Workload,
    mode: str,
    task: str | None,
    examples: int,
    artifact: SparseArtifact | None,
    model: str | None,
    seq_len: int,
) -> tuple[Workload, dict | None]:
    """``workload`` with the input-activation densities ``--activations`` asks for, and what
    to record of them (None for dense)."""
    from workloads import WorkloadError, attach_activations

    if mode == "dense":
        return workload, None
    record: dict[str, Any] = {"mode": mode}
    if mode == "measured":
        if artifact is not None:
            source: str | Path = artifact.path
            recorded = (artifact.manifest.get("training") or {}).get("task")
            task = task or (recorded if isinstance(recorded, str) else None)
        else:
            source = model or DEFAULT_MODEL
        if task is None:
            raise fail(
                "--activations measured runs a GLUE task's dev examples: give "
                "--activations-task TASK (e.g. SST-2), or an --artifact trained on one"
            )
        densities = _measured(source, task, seq_len, examples)
        record.update(task=task, examples=examples)
        value: float | dict[str, float] = densities
    else:
        try:
            value = float(mode)
        except ValueError:
            value = float("nan")
        if not 0.0 <= value <= 1.0:
            raise fail(f"--activations {mode!r}: expected dense, measured or a density in [0, 1]")
        record["mode"] = "fixed"
    try:
        workload = attach_activations(workload, value, source="--activations")
    except WorkloadError as error:
        raise fail(str(error)) from None
    linear = [op.activation_density for op in workload.gemms if op.weight_name is not None]
    record.update(layers=len(linear), mean_density=sum(linear) / max(len(linear), 1))
    if isinstance(value, dict):
        record["densities"] = value
    return workload, record


def _measured(source: str | Path, task: str, seq_len: int, examples: int) -> dict[str, float]:
    """The measured densities of ``source``'s linear layers that the workload names."""
    from pruning.activations import measure_task_densities
    from pruning.glue import GlueDataError
    from pruning.models import ModelLoadError

    try:
        return measure_task_densities(source, task, seq_len, examples=examples)
    except (GlueDataError, ModelLoadError, ValueError, OSError) as error:
        raise fail(f"--activations measured: {error}") from None
