"""Dev accuracy along a training run, from the checkpoints it wrote.

Run: python benchmarks/checkpoint_curve.py --artifact ARTIFACT --steps DIR [DIR ...]
    --task SST-2 [--data-dir DIR] [--seq-len 64] [--every 1] [--out curve.csv]

A resumable training phase keeps only its newest checkpoints (``pruning.checkpoint``), so a
learning curve needs the intermediate ones put aside while the run goes: ``DIR`` holds
``step-NNNNNNNN.safetensors`` files, each a checkpoint's ``tensors.safetensors`` (hard-linked
or copied from ``<phase>/step-NNNNNNNN/``). ``ARTIFACT`` is any artifact of the same model
and head (the run's own, or its teacher's): it gives the architecture, head and tokenizer;
each checkpoint's ``model.*`` tensors replace its weights. Every ``--every``-th checkpoint
is scored on the task's full dev split, with the encoder's measured sparsity (the zero
fraction of the prunable encoder weights, ``pruning.targets.prunable_weights``) beside it.
Prints a Markdown table and writes it as CSV to ``--out``.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pandas as pd
import torch

STEP_FILE = re.compile(r"step-(\d+)\.safetensors$")


def _step_files(directory: Path) -> list[tuple[int, Path]]:
    """``(step, path)`` of the checkpoint files in ``directory``, in step order."""
    if not directory.is_dir():
        raise ValueError(f"--steps: {directory} is not a directory")
    found = [
        (int(match.group(1)), path)
        for path in directory.iterdir()
        if (match := STEP_FILE.search(path.name))
    ]
    if not found:
        raise ValueError(f"--steps: no step-NNNNNNNN.safetensors files in {directory}")
    return sorted(found)


def encoder_sparsity(model: torch.nn.Module) -> float:
    """Fraction of exact zeros over the prunable encoder weights (Q, K, V, O, FFN)."""
    from pruning.targets import prunable_weights

    weights = prunable_weights(model, ("encoder",)).values()
    zeros = sum(int((w == 0).sum()) for w in weights)
    return zeros / sum(w.numel() for w in weights)


def score_checkpoints(
    artifact: Path, step_dirs: list[Path], task_name: str, data_dir: Path | None, seq_len: int,
    every: int,
) -> pd.DataFrame:  # fmt: skip
    """One row per scored checkpoint: run, step, encoder sparsity, dev metrics, SE, counts."""
    from safetensors.torch import load_file

    from pruning.checkpoint import strip_prefix
    from pruning.glue import default_data_dir, get_task, load_split
    from pruning.models import load_model
    from pruning.tokenize import encode, load_tokenizer
    from pruning.train import score

    files_per_run = [_step_files(directory) for directory in step_dirs]
    task = get_task(task_name)
    data_dir = data_dir or default_data_dir()
    if data_dir is None:
        raise ValueError("--data-dir: the GLUE TSV directory (none found by default)")
    loaded = load_model(artifact, 1 if task.is_regression else task.num_labels)
    tokenizer, _ = load_tokenizer(loaded.weights_dir, loaded.model.config.vocab_size)
    dev = encode(load_split(task, "dev", data_dir, None, 0), tokenizer, seq_len, False)
    rows = []
    for directory, files in zip(step_dirs, files_per_run, strict=True):
        chosen = files[every - 1 :: every]
        if files[-1] not in chosen:
            chosen.append(files[-1])
        for step, path in chosen:
            loaded.model.load_state_dict(strip_prefix("model.", load_file(path)))
            scores = score(loaded.model, dev, task)
            counts = scores.predictions.get("predicted_counts", {})
            rows.append({
                "run": directory.as_posix(),
                "step": step,
                "encoder_sparsity": round(encoder_sparsity(loaded.model), 4),
                **{name: round(value, 4) for name, value in scores.metrics.items()},
                **{f"se.{k}": round(v, 4) for k, v in scores.standard_errors.items()},
                **{f"predicted.{label}": n for label, n in counts.items()},
            })  # fmt: skip
    return pd.DataFrame(rows)


def _markdown(frame: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(False)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifact", type=Path, required=True)
    parser.add_argument("--steps", type=Path, nargs="+", required=True)
    parser.add_argument("--task", required=True)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--every", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    try:
        if args.every < 1:
            raise ValueError(f"--every: a positive integer, got {args.every}")
        if args.seq_len < 2:
            raise ValueError(f"--seq-len: an integer of at least 2, got {args.seq_len}")
        frame = score_checkpoints(
            args.artifact, args.steps, args.task, args.data_dir, args.seq_len, args.every
        )
    except (ValueError, OSError) as error:  # ModelLoadError and CheckpointError are ValueErrors
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(_markdown(frame), end="")
    if args.out is not None:
        frame.to_csv(args.out, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
