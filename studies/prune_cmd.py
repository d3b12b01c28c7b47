"""``cosim prune``: prune a BERT-family model and write a SparseModel artifact."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from studies.console import console, fail, write_output

__all__ = ["prune_command"]


def _errors() -> tuple[type[BaseException], ...]:
    """Every error that means "bad input" rather than a bug, answered with one line."""
    from pruning.artifact import ArtifactError
    from pruning.calibration_text import CalibrationTextError
    from pruning.checkpoint import CheckpointError
    from pruning.glue import GlueDataError
    from pruning.job import PruneJobError
    from pruning.models import ModelLoadError
    from pruning.patterns import PatternError

    return (
        ArtifactError,
        CalibrationTextError,
        CheckpointError,
        GlueDataError,
        PruneJobError,
        ModelLoadError,
        PatternError,
        FloatingPointError,
        ValueError,
    )


def _summary(outcome: Any) -> None:
    from rich.table import Table

    manifest = outcome.manifest
    table = Table(title=f"artifact {outcome.artifact}")
    table.add_column("field")
    table.add_column("value", justify="right")
    table.add_row("source model", str(manifest["source_model"]))
    table.add_row("synthetic weights", str(manifest.get("synthetic_weights")))
    table.add_row("pattern", manifest["pattern"])
    table.add_row("method", manifest["method"])
    table.add_row("pruned-weight density", f"{100 * manifest['density']:.2f} %")
    ratio = manifest["compression_ratio"]
    table.add_row("compression ratio", "-" if ratio is None else f"{ratio:.2f}x")
    schedule = manifest.get("schedule") or {}
    if "flops_fraction_kept" in schedule:  # fisher-mask: what the structured prune kept
        table.add_row("encoder FLOPs kept", f"{100 * schedule['flops_fraction_kept']:.2f} %")
        table.add_row(
            "kept heads / FFN neurons",
            f"{schedule['kept_heads']}/{schedule['total_heads']} / "
            f"{schedule['kept_neurons']}/{schedule['total_neurons']}",
        )
    for phase, scores in outcome.metrics.items():
        shown = ", ".join(f"{name} {value:.4f}" for name, value in scores.items())
        table.add_row(f"dev metrics ({phase})", shown)
    console.print(table)


def prune_command(
    out: Annotated[Path, typer.Option(help="artifact directory to write (replaced atomically)")],
    pattern: Annotated[
        str | None,
        typer.Option(
            help="unstructured | block:RxC | nm:N:M | crossbar:RxC | row | column | head:H "
            "(every method but fisher-mask)"
        ),
    ] = None,
    model: Annotated[
        str, typer.Option(help="all-MiniLM-L6-v2 (real weights), a preset, or a checkpoint dir")
    ] = "all-MiniLM-L6-v2",
    head: Annotated[
        str | None,
        typer.Option(
            help="cls | mean | bi-encoder (default: the checkpoint's own; mean for "
            "sentence-transformers checkpoints such as all-MiniLM-L6-v2, else cls)"
        ),
    ] = None,
    sparsity: Annotated[
        float | None, typer.Option(help="fraction of weights to prune, in [0, 1)")
    ] = None,
    method: Annotated[
        str,
        typer.Option(
            help="magnitude | gradual | group-lasso | admm | distill | movement | mlpruning | "
            "wanda | sparsegpt | fisher-mask"
        ),
    ] = "magnitude",
    task: Annotated[
        str | None, typer.Option(help="GLUE task: MRPC, RTE, CoLA, SST-2, STS-B, QNLI")
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="GLUE TSV directory (default ../shared/data/glue)")
    ] = None,
    epochs: Annotated[float | None, typer.Option(help="epochs of the pruning phase")] = None,
    retrain_epochs: Annotated[
        float | None, typer.Option(help="fixed-mask retraining epochs after the prune")
    ] = None,
    dense_epochs: Annotated[
        float | None, typer.Option(help="dense fine-tuning epochs before pruning")
    ] = None,
    max_train_examples: Annotated[int | None, typer.Option(help="seeded training subset")] = None,
    max_eval_examples: Annotated[int | None, typer.Option(help="seeded dev subset")] = None,
    max_seq_len: Annotated[int | None, typer.Option(help="tokens per example")] = None,
    batch_size: Annotated[int | None, typer.Option(help="training batch size")] = None,
    lr: Annotated[float | None, typer.Option(help="AdamW learning rate")] = None,
    optimizer_preset: Annotated[
        str | None,
        typer.Option(help="sparsebert: lr 3e-5, constant schedule, no warm-up, batch 32"),
    ] = None,
    warmup_ratio: Annotated[
        float | None, typer.Option(help="fraction of steps of linear warm-up (default 0.1)")
    ] = None,
    lr_schedule: Annotated[
        str | None, typer.Option(help="linear (decay to 0, default) | constant")
    ] = None,
    weight_decay: Annotated[float | None, typer.Option(help="AdamW weight decay")] = None,
    decay_bias_and_norm: Annotated[
        bool, typer.Option(help="decay biases and LayerNorm too (default: not, as BERT)")
    ] = False,
    group_by_length: Annotated[
        bool,
        typer.Option(help="batch examples of similar length (less padding; default on)"),
    ] = True,
    seed: Annotated[int | None, typer.Option(help="seed for init, subsets, shuffling")] = None,
    scope: Annotated[str | None, typer.Option(help="per-matrix | global")] = None,
    include: Annotated[
        list[str] | None, typer.Option(help="encoder (default), pooler, classifier; repeatable")
    ] = None,
    update_every: Annotated[
        int | None, typer.Option(help="gradual: steps between mask updates")
    ] = None,
    ramp_fraction: Annotated[
        float | None, typer.Option(help="gradual: fraction of steps the ramp takes")
    ] = None,
    schedule_shape: Annotated[
        str | None,
        typer.Option(help="gradual/distill: cubic (default) | geometric (gentler early)"),
    ] = None,
    regrow: Annotated[bool, typer.Option(help="gradual: allow pruned weights back")] = False,
    cycles: Annotated[
        int | None, typer.Option(help="gradual/distill: cyclic ramps (1 = one cubic ramp)")
    ] = None,
    cycle_target: Annotated[
        list[float] | None,
        typer.Option(help="cyclic: sparsity each cycle ramps to (repeat; default linear)"),
    ] = None,
    teacher: Annotated[
        Path | None, typer.Option(help="distill: fine-tuned teacher checkpoint directory")
    ] = None,
    student_init: Annotated[
        str | None,
        typer.Option(help="distill: pre-trained (SparseBERT, default) | fine-tuned (the teacher)"),
    ] = None,
    kd_mode: Annotated[
        str | None, typer.Option(help="distill: full (attention+hidden+logits) | logits")
    ] = None,
    kd_temperature: Annotated[
        float | None, typer.Option(help="distill: temperature (default 1 full, 2 logits)")
    ] = None,
    kd_attention_weight: Annotated[
        float | None, typer.Option(help="distill: attention-score MSE weight")
    ] = None,
    kd_hidden_weight: Annotated[
        float | None, typer.Option(help="distill: hidden-state MSE weight")
    ] = None,
    kd_logit_weight: Annotated[
        float | None, typer.Option(help="distill: soft cross-entropy weight")
    ] = None,
    kd_alpha: Annotated[
        float | None, typer.Option(help="distill, logits mode: KD weight (1 - alpha: labels)")
    ] = None,
    kd_cache: Annotated[
        str | None,
        typer.Option(help="distill: off | logits (default) | hidden: teacher outputs cached"),
    ] = None,
    teacher_cache: Annotated[
        Path | None, typer.Option(help="distill: teacher cache file (default OUT.ckpt/...)")
    ] = None,
    mixkd_weight: Annotated[
        float | None, typer.Option(help="distill: MixKD term weight (0 = off, the default)")
    ] = None,
    mixkd_alpha: Annotated[
        float | None, typer.Option(help="distill: MixKD Beta(a, a) mixing parameter (0.4)")
    ] = None,
    checkpoint_every: Annotated[
        int | None, typer.Option(help="checkpoint every N optimizer steps")
    ] = None,
    checkpoint_dir: Annotated[
        Path | None, typer.Option(help="checkpoint directory (default OUT.ckpt)")
    ] = None,
    resume: Annotated[
        bool, typer.Option(help="continue from the newest checkpoint (same job, same seed)")
    ] = False,
    lasso_lambda: Annotated[float | None, typer.Option(help="group lasso: lambda")] = None,
    reweight_every: Annotated[
        int | None, typer.Option(help="group lasso: steps between alpha refreshes")
    ] = None,
    admm_rho: Annotated[float | None, typer.Option(help="ADMM: initial rho")] = None,
    admm_update_every: Annotated[
        int | None, typer.Option(help="ADMM: steps between Z/U updates")
    ] = None,
    admm_granularity: Annotated[
        str | None, typer.Option(help="ADMM: tile | tile-row | tile-column")
    ] = None,
    weight_bits: Annotated[
        int | None,
        typer.Option(
            help="admm: quantize onto crossbar conductance levels, B bits per weight "
            "(quantization-aware ADMM, then quantized retraining)"
        ),
    ] = None,
    cell_bits: Annotated[
        int | None,
        typer.Option(help="admm --weight-bits: bits per cell (2**c levels; default 2, ISAAC)"),
    ] = None,
    on_off_ratio: Annotated[
        float | None,
        typer.Option(help="admm --weight-bits: device G_max / G_min (default 17, NeuroSim RRAM)"),
    ] = None,
    movement_variant: Annotated[
        str | None,
        typer.Option(help="movement: hard (TopK of the scores, default) | soft (threshold + L1)"),
    ] = None,
    score_lr: Annotated[
        float | None,
        typer.Option(help="movement, mlpruning: learning rate of the scores (default 1e-2)"),
    ] = None,
    movement_lambda: Annotated[
        float | None, typer.Option(help="movement soft: final L1 weight on sigmoid(S) (default 1)")
    ] = None,
    movement_threshold: Annotated[
        float | None, typer.Option(help="movement soft: final threshold on sigmoid(S) (0.1)")
    ] = None,
    movement_warmup: Annotated[
        float | None, typer.Option(help="movement: fraction of steps kept dense first (0.1)")
    ] = None,
    head_row_target: Annotated[
        float | None,
        typer.Option(help="mlpruning: encoder weights left after heads and rows, (0, 1] (0.5)"),
    ] = None,
    block_target: Annotated[
        float | None,
        typer.Option(help="mlpruning: weights of the shrunk encoder left after blocks (0.3)"),
    ] = None,
    mlp_lambda: Annotated[
        float | None,
        typer.Option(help="mlpruning: final weight of the adaptive regulariser (20000)"),
    ] = None,
    block_epochs: Annotated[
        float | None, typer.Option(help="mlpruning: epochs of the block step (default --epochs)")
    ] = None,
    theta_init: Annotated[
        float | None,
        typer.Option(help="mlpruning: initial theta of the keep ratios sigmoid(theta) (10)"),
    ] = None,
    calibration_examples: Annotated[
        int | None,
        typer.Option(
            help="wanda/sparsegpt/fisher-mask: train examples to calibrate on (default 128)"
        ),
    ] = None,
    flops_fraction: Annotated[
        float | None,
        typer.Option(help="fisher-mask: share of the encoder's FLOPs to keep, in (0, 1]"),
    ] = None,
    calibration_text: Annotated[
        Path | None,
        typer.Option(
            help="wanda/sparsegpt: calibrate on this UTF-8 file instead of the train split: "
            "one example per line, a pair as two texts separated by a tab"
        ),
    ] = None,
    damping: Annotated[
        float | None,
        typer.Option(help="sparsegpt: Hessian damping, a fraction of mean diag (default 0.01)"),
    ] = None,
    blocksize: Annotated[
        int | None, typer.Option(help="sparsegpt: columns per lazy-update block (default 128)")
    ] = None,
    shrink: Annotated[
        bool,
        typer.Option(
            help="remove the heads and FFN neurons the masks leave without effect (head:H "
            "and row masks): a smaller model, not only a sparser one"
        ),
    ] = False,
    progress: Annotated[bool, typer.Option(help="show progress bars")] = True,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="write the manifest summary as JSON")
    ] = None,
) -> None:
    """Prune MODEL with PATTERN to SPARSITY by METHOD and write the artifact to OUT.

    With --task, the model is fine-tuned (and, for gradual, group-lasso, admm and distill,
    pruned while training) on that GLUE task, and dev metrics go into the manifest. distill
    prunes the pre-trained model (or, with --student-init fine-tuned, the teacher itself)
    while distilling a dense teacher (--teacher, or the model fine-tuned for --dense-epochs
    first). admm with --weight-bits also quantizes onto crossbar conductance levels
    (--cell-bits, --on-off-ratio) and retrains masked and quantized. movement learns a score
    per weight (or block) with the weights and keeps the top-scoring ones (--movement-variant
    hard) or those above a threshold (soft). mlpruning learns top-k attention heads and FFN
    rows towards --head-row-target, removes the pruned ones (the artifact has the smaller
    shapes), then learns top-k blocks of PATTERN (block:RxC) towards --block-target, each
    step distilled from the one before (--teacher or --dense-epochs first). wanda and
    sparsegpt prune the model as it is (fine-tuned, say) from
    --calibration-examples of the task's train split (or of --calibration-text), layer by
    layer, with no training (add --retrain-epochs for a fixed-mask fine-tune). fisher-mask
    (no --pattern) keeps --flops-fraction of the encoder's FLOPs: it chooses whole heads and
    FFN neurons from the Fisher information of their masks on the calibration examples, tunes
    the kept ones by least squares and removes the rest, so the artifact is a smaller dense
    model. --checkpoint-every N and --resume make runs survive a kill and continue across
    invocations of the same command.
    """
    given = {
        "model": model,
        "head": head,
        "pattern": pattern,
        "sparsity": sparsity,
        "method": method,
        "task": task,
        "data_dir": data_dir,
        "epochs": epochs,
        "retrain_epochs": retrain_epochs,
        "dense_epochs": dense_epochs,
        "max_train_examples": max_train_examples,
        "max_eval_examples": max_eval_examples,
        "max_seq_len": max_seq_len,
        "batch_size": batch_size,
        "lr": lr,
        "optimizer_preset": optimizer_preset,
        "warmup_ratio": warmup_ratio,
        "lr_schedule": lr_schedule,
        "weight_decay": weight_decay,
        "decay_bias_and_norm": decay_bias_and_norm or None,
        "group_by_length": group_by_length,
        "seed": seed,
        "scope": scope,
        "include": tuple(include) if include else None,
        "update_every": update_every,
        "ramp_fraction": ramp_fraction,
        "schedule_shape": schedule_shape,
        "regrow": regrow,
        "cycles": cycles,
        "cycle_targets": tuple(cycle_target) if cycle_target else None,
        "teacher": teacher,
        "student_init": student_init,
        "kd_mode": kd_mode,
        "kd_temperature": kd_temperature,
        "kd_attention_weight": kd_attention_weight,
        "kd_hidden_weight": kd_hidden_weight,
        "kd_logit_weight": kd_logit_weight,
        "kd_alpha": kd_alpha,
        "kd_cache": kd_cache,
        "teacher_cache": teacher_cache,
        "mixkd_weight": mixkd_weight,
        "mixkd_alpha": mixkd_alpha,
        "checkpoint_every": checkpoint_every,
        "checkpoint_dir": checkpoint_dir,
        "resume": resume,
        "lasso_lambda": lasso_lambda,
        "reweight_every": reweight_every,
        "admm_rho": admm_rho,
        "admm_update_every": admm_update_every,
        "admm_granularity": admm_granularity,
        "weight_bits": weight_bits,
        "cell_bits": cell_bits,
        "on_off_ratio": on_off_ratio,
        "movement_variant": movement_variant,
        "score_lr": score_lr,
        "movement_lambda": movement_lambda,
        "movement_threshold": movement_threshold,
        "movement_warmup": movement_warmup,
        "head_row_target": head_row_target,
        "block_target": block_target,
        "mlp_lambda": mlp_lambda,
        "block_epochs": block_epochs,
        "theta_init": theta_init,
        "calibration_examples": calibration_examples,
        "calibration_text": calibration_text,
        "damping": damping,
        "blocksize": blocksize,
        "flops_fraction": flops_fraction,
        "shrink": shrink or None,
        "progress": progress,
    }
    if out.exists() and not out.is_dir():
        raise fail(f"--out {out} is a file: expected a directory for the artifact")
    from pruning.artifact import ArtifactError, check_artifact_target

    try:  # before any training: the artifact would replace the directory as a whole
        check_artifact_target(out)
    except ArtifactError as error:
        raise fail(f"--out {error}") from None
    try:
        from pruning.job import prune_job
        from pruning.pipeline import run_prune

        job = prune_job("(command line)", **{k: v for k, v in given.items() if v is not None})
        outcome = run_prune(job, out, report=lambda line: console.print(line, highlight=False))
    except _errors() as error:
        raise fail(str(error)) from None
    except OSError as error:
        raise fail(f"--out {out}: cannot write the artifact ({error.strerror or error})") from None
    _summary(outcome)
    if json_path is not None:
        summary = {
            "artifact": str(outcome.artifact),
            "metrics": outcome.metrics,
            **{k: outcome.manifest[k] for k in ("pattern", "method", "density", "nnz", "total")},
        }
        write_output(json_path, json.dumps(summary, indent=2, allow_nan=False) + "\n", "--json")
