"""benchmarks/checkpoint_curve.py scores kept checkpoints as the pipeline scores its model."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from pruning.job import prune_job
from pruning.pipeline import run_prune
from tests.tiny_bert import needs_glue

ROOT = Path(__file__).resolve().parents[1]


def _curve_module():
    spec = importlib.util.spec_from_file_location(
        "checkpoint_curve", ROOT / "benchmarks" / "checkpoint_curve.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@needs_glue
def test_last_checkpoint_scores_as_the_artifact(tiny_dir: Path, tmp_path: Path) -> None:
    job = prune_job(
        model=str(tiny_dir), task="SST-2", method="gradual", pattern="unstructured",
        sparsity=0.5, ramp_fraction=0.5, max_train_examples=64, max_seq_len=32, epochs=1.0,
        batch_size=16, lr=1e-3, progress=False, checkpoint_every=1,
    )  # fmt: skip
    outcome = run_prune(job, tmp_path / "art")
    kept = tmp_path / "kept"
    kept.mkdir()
    for tensors in (tmp_path / "art.ckpt").rglob("step-*/tensors.safetensors"):
        os.link(tensors, kept / f"{tensors.parent.name}.safetensors")
    curve = _curve_module()
    out = tmp_path / "curve.csv"
    args = ["--artifact", str(outcome.artifact), "--steps", str(kept), "--task", "SST-2"]
    assert curve.main([*args, "--seq-len", "32", "--out", str(out)]) == 0

    import pandas as pd

    frame = pd.read_csv(out)
    assert list(frame["step"]) == [3, 4]  # 4 steps; the trainer keeps the 2 newest
    last = frame.iloc[-1]
    assert last["encoder_sparsity"] == pytest.approx(0.5, abs=0.01)
    assert last["accuracy"] == pytest.approx(outcome.metrics["gradual"]["accuracy"], abs=1e-4)
    assert last["predicted.0"] + last["predicted.1"] == 872


def test_bad_steps_directory_is_one_clear_error(tmp_path: Path, capsys) -> None:
    curve = _curve_module()
    code = curve.main(["--artifact", str(tmp_path), "--steps", str(tmp_path / "none"),
                       "--task", "SST-2"])  # fmt: skip
    assert code == 2
    message = capsys.readouterr().err
    assert message.startswith("error: --steps:") and message.count("\n") == 1
