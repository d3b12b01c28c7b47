"""``cosim study accuracy`` (:mod:`studies.accuracy`): the table, relative-to-dense values,
the co-design columns, resume, plots and determinism, on a tiny 2-layer hidden-64 model and
MRPC."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from pruning.glue import default_data_dir
from studies import accuracy, accuracy_plots, accuracy_table
from studies.cli import app
from tests.tiny_bert import needs_glue

torch.set_num_threads(1)
runner = CliRunner()


def _args(tiny_dir: Path, out: Path, work: Path) -> list[str]:
    return [
        "study",
        "accuracy",
        "--model",
        str(tiny_dir),
        "--tasks",
        "MRPC",
        "--methods",
        "dense,magnitude,distill",
        "--sparsities",
        "0.9",
        "--patterns",
        "unstructured",
        "--max-train-examples",
        "48",
        "--max-eval-examples",
        "32",
        "--seq-len",
        "32",
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--lr",
        "1e-3",
        "--out",
        str(out),
        "--work-dir",
        str(work),
        "--no-progress",
    ]


@pytest.fixture(scope="module")
def study(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    if default_data_dir() is None or not (default_data_dir() / "MRPC").is_dir():
        pytest.skip("GLUE TSVs not found")
    root = tmp_path_factory.mktemp("accuracy-study")
    out, work = root / "results", root / "work"
    result = runner.invoke(app, _args(tiny_dir, out, work))
    assert result.exit_code == 0, result.output
    csv = (out / "results.csv").read_bytes()
    return {"out": out, "work": work, "output": result.output, "tiny": tiny_dir, "csv": csv}


@needs_glue
def test_table_columns_and_rows(study: dict) -> None:
    table = pd.read_csv(study["out"] / "results.csv")
    for column in accuracy_table.TABLE_COLUMNS:
        assert column in table.columns, column
    assert set(table["method"]) == {"dense", "magnitude", "distill"}
    assert len(table) == 3
    assert (table["metric_name"] == "f1").all()  # MRPC's main metric
    assert {"metric.accuracy", "metric.f1", "relative.accuracy"} <= set(table.columns)
    # the constant majority-class predictor on the same dev subset: a positive F1 for MRPC
    assert table["majority_metric"].between(0.5, 1.0).all()
    pruned = table[table["method"] != "dense"]
    assert (pruned["density"].between(0.09, 0.11)).all()
    assert (pruned["compression_ratio"].between(9.0, 11.0)).all()
    dense = table[table["method"] == "dense"].iloc[0]
    assert dense["density"] == pytest.approx(1.0)
    # every evaluated cell says what it predicted and how noisy its dev score is
    assert {"predicted.0", "predicted.1", "se.f1", "se.accuracy"} <= set(table.columns)
    assert (table["predicted.0"] + table["predicted.1"] == table["dev_examples"]).all()
    assert table["metric_se"].between(0.0, 0.5).all()
    report = (study["out"] / "report.md").read_text()
    assert report.startswith("# Study `accuracy` (accuracy)") and "pruning" not in report[:0]
    assert "| task | head | method | pattern |" in report and "distill" in report


@needs_glue
def test_relative_to_dense(study: dict) -> None:
    table = pd.read_csv(study["out"] / "results.csv")
    dense = table[table["method"] == "dense"].iloc[0]
    for _, row in table.iterrows():
        assert row["dense_metric"] == pytest.approx(dense["metric.f1"])
        expected = row["metric.accuracy"] / dense["metric.accuracy"]
        assert row["relative.accuracy"] == pytest.approx(expected)
        if dense["metric.f1"] > 0:
            assert row["relative_to_dense"] == pytest.approx(row["metric.f1"] / dense["metric.f1"])
    assert dense["relative.accuracy"] == pytest.approx(1.0)
    for _, row in table.iterrows():
        margin = dense["metric.f1"] - row["majority_metric"]
        if abs(margin) > 1e-9:
            expected = (row["metric.f1"] - row["majority_metric"]) / margin
            assert row["gain_retained"] == pytest.approx(expected)


@needs_glue
def test_codesign_columns(study: dict) -> None:
    table = pd.read_csv(study["out"] / "results.csv")
    assert (table["hw"] == accuracy.UNSTRUCTURED_HW).all()
    for column in ("speedup", "energy_ratio", "sequences_per_s"):
        values = table[column].astype(float)
        assert values.map(math.isfinite).all() and (values > 0).all(), column
    # 90 % unstructured runs faster than the dense model on the EIE-style array
    pruned = table[table["method"] == "magnitude"].iloc[0]
    dense = table[table["method"] == "dense"].iloc[0]
    assert pruned["sequences_per_s"] > dense["sequences_per_s"]


@needs_glue
def test_plots_and_run_json(study: dict) -> None:
    for stem in ("metric_vs_compression", "metric_vs_block_size", "accuracy_vs_speedup"):
        for suffix in (".png", ".svg"):  # the framework's save: PNG and SVG
            path = study["out"] / "plots" / f"{stem}{suffix}"
            assert path.is_file() and path.stat().st_size > 1000
    run = json.loads((study["out"] / "run.json").read_text())
    assert run["command"].startswith("cosim study accuracy")
    assert run["kind"] == "accuracy" and run["seeds"] == [0] and run["heads"] == ["auto"]
    assert run["settings"]["seq_len"] == 32 and run["settings"]["max_train_examples"] == 48
    assert run["n_points"] == 3 and run["evaluated"] == 3
    # artifacts (weights) live in the work directory, never beside the results
    assert not list(study["out"].rglob("*.safetensors"))
    parquet = pd.read_parquet(study["out"] / "results.parquet")  # the store's export
    assert list(parquet["key"]) == list(pd.read_csv(study["out"] / "results.csv")["key"])
    summary = pd.read_csv(study["out"] / "summary.csv")
    assert list(summary["seeds"]) == [1, 1, 1] and set(summary["se_kind"]) == {"dev bootstrap"}
    teachers = sorted(p.name for p in (study["work"] / "teachers").iterdir())
    assert len(teachers) == 2 and teachers[1] == teachers[0] + ".ckpt"  # + its checkpoints


@needs_glue
def test_rerun_resumes_without_work(study: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    before = pd.read_csv(study["out"] / "results.csv")

    def must_not_run(*args, **kwargs):
        raise AssertionError("a stored cell was evaluated again")

    monkeypatch.setattr(accuracy, "evaluate_cell", must_not_run)
    monkeypatch.setattr(accuracy, "_ensure_teacher", must_not_run)
    result = runner.invoke(app, _args(study["tiny"], study["out"], study["work"]))
    assert result.exit_code == 0, result.output
    assert "0 cells evaluated, 3 reused" in result.output
    after = pd.read_csv(study["out"] / "results.csv")
    pd.testing.assert_frame_equal(before, after)


def test_cells_hardware_and_estimate() -> None:
    settings = accuracy.AccuracySettings(max_train_examples=320, seq_len=64, epochs=2)
    points = accuracy.cell_points(
        ["MRPC", "RTE"], ["dense", "magnitude", "distill"], ["unstructured", "block:16x16"],
        [0.95, 0.5], settings,
    )  # fmt: skip
    assert len(points) == 2 + 2 * 2 * 2 * 2
    # heads and seeds multiply the cells; a bi-encoder is left out of single-sentence tasks
    many = accuracy.cell_points(
        ["SST-2", "STS-B"], ["dense", "distill-mixkd"], ["unstructured"], [0.9], settings,
        heads=["mean", "bi-encoder"], seeds=[0, 1],
    )  # fmt: skip
    combos = {(p["task"], p["head"]) for p in many}
    assert combos == {("SST-2", "mean"), ("STS-B", "mean"), ("STS-B", "bi-encoder")}
    assert len(many) == 3 * 2 * 2
    assert accuracy.teacher_dir("w", many[0]) != accuracy.teacher_dir("w", many[1])
    assert [p["method"] for p in points[:2]] == ["dense", "dense"]
    assert points[2]["sparsity"] == 0.5  # lower sparsities first
    hw = {p["pattern"]: p["hw"] for p in points}
    assert hw["block:16x16"] == accuracy.BLOCK_HW and hw["unstructured"] == "eie-64pe"
    single = accuracy.cell_points(
        ["MRPC"], ["magnitude"], ["block:4x4"], [0.9],
        accuracy.AccuracySettings(hw="systolic-32x32-ws"),
    )  # fmt: skip
    assert single[0]["hw"] == "systolic-32x32-ws"
    estimate = accuracy.estimate_seconds(points)
    assert estimate["total"] == pytest.approx(estimate["teachers"] + estimate["cells"])
    assert estimate["teachers"] > 0 and estimate["per_cell_max"] > 0
    with pytest.raises(ValueError, match="unknown method"):
        accuracy.cell_points(["MRPC"], ["prune-it"], ["unstructured"], [0.9], settings)
    result = runner.invoke(app, ["study", "accuracy", "--methods", "nope", "--dry-run"])
    assert result.exit_code != 0


def test_the_estimate_counts_the_cosine_start_of_a_new_pair_classifier() -> None:
    """A bi-encoder on a classification pair task fits its classifier's cosine start on up to
    2,048 training pairs, forward only: once for the dense model and again for each student
    that starts from the pre-trained weights (a new classifier), not for one that starts from
    the fine-tuned model, nor for a mean head or a regression task."""
    from pruning.cosine_head import MAX_FIT_EXAMPLES

    assert accuracy.COSINE_FIT_PAIRS == MAX_FIT_EXAMPLES

    def estimate(task, head, student_init="pre-trained"):
        settings = accuracy.AccuracySettings(max_train_examples=None, seq_len=256, epochs=1,
                                             student_init=student_init)
        points = accuracy.cell_points([task], ["dense", "distill"], ["unstructured"], [0.9],
                                      settings, heads=[head])  # fmt: skip
        return accuracy.estimate_seconds(points)

    mean, pair = estimate("RTE", "mean"), estimate("RTE", "bi-encoder")
    fit = 128 * (accuracy.STEP_S_FIXED + accuracy.STEP_S_PER_TOKEN * 70) / 3  # 4,096 sentences
    assert pair["teachers"] - mean["teachers"] == pytest.approx(fit)
    assert pair["cells"] - mean["cells"] == pytest.approx(fit)
    tuned = estimate("RTE", "bi-encoder", student_init="fine-tuned")
    assert tuned["cells"] == pytest.approx(mean["cells"])
    assert estimate("STS-B", "bi-encoder")["teachers"] == pytest.approx(
        estimate("STS-B", "mean")["teachers"])  # fmt: skip


@needs_glue
def test_same_options_and_seed_give_identical_tables(study: dict, tmp_path: Path) -> None:
    """A second run from scratch (fresh work dir: teachers and cells trained again) writes a
    byte-identical results.csv and summary.csv; wall times are in run.json only."""
    out, work = tmp_path / "results", tmp_path / "work"
    result = runner.invoke(app, _args(study["tiny"], out, work))
    assert result.exit_code == 0, result.output
    assert "3 cells evaluated, 0 reused" in result.output
    assert (out / "results.csv").read_bytes() == study["csv"]
    assert (out / "summary.csv").read_bytes() == (study["out"] / "summary.csv").read_bytes()
    header = study["csv"].decode().splitlines()[0].split(",")
    assert not set(header) & (accuracy.WALL_TIME_FIELDS | {"simulation_s"})
    artifacts = pd.read_csv(out / "results.csv")["artifact"]
    assert artifacts.str.startswith(("teachers/", "cells/")).all()  # relative to --work-dir
    run = json.loads((out / "run.json").read_text())
    assert set(run["timing"]) >= accuracy.WALL_TIME_FIELDS and run["timing"]["seconds"] > 0
    assert [cell["method"] for cell in run["cell_timing"]] == ["dense", "magnitude", "distill"]
    assert all(cell["seconds"] >= cell["train_s"] > 0 for cell in run["cell_timing"])
    assert run["dense_fine_tune_s"]["MRPC/auto/0"] > 0


@needs_glue
def test_points_stored_with_wall_times_in_the_row_still_resume(
    study: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Points stored by the version that kept ``seconds``/``train_s`` and absolute artifact
    paths in the row resume without training into the same table."""
    work = tmp_path / "work"
    shutil.copytree(study["work"], work)
    for path in (work / "store" / "points").glob("*.json"):
        document = json.loads(path.read_text())
        document["row"].update(document.pop("timing"))
        document["row"]["artifact"] = str((work / document["row"]["artifact"]).resolve())
        path.write_text(json.dumps(document))

    def must_not_run(*args, **kwargs):
        raise AssertionError("a stored cell was evaluated again")

    monkeypatch.setattr(accuracy, "evaluate_cell", must_not_run)
    monkeypatch.setattr(accuracy, "_ensure_teacher", must_not_run)
    out = tmp_path / "results"
    result = runner.invoke(app, _args(study["tiny"], out, work))
    assert result.exit_code == 0, result.output
    assert "0 cells evaluated, 3 reused" in result.output
    assert (out / "results.csv").read_bytes() == study["csv"]
    run = json.loads((out / "run.json").read_text())
    assert all(cell["seconds"] > 0 for cell in run["cell_timing"])


def test_plots_draw_the_majority_class_floor_per_task() -> None:
    """Each plot shows where a pruned model has kept nothing: majority / dense, per task."""
    frame = pd.DataFrame(
        {
            "task": ["MRPC", "MRPC", "SST-2", "SST-2"],
            "head": ["auto", "auto", "mean", "mean"],
            "relative_se": [None, 0.02, None, None],
            "method": ["dense", "magnitude", "dense", "distill"],
            "pattern": ["dense", "unstructured", "dense", "unstructured"],
            "sparsity": [0.0, 0.9, 0.0, 0.9],
            "compression_ratio": [1.0, 10.0, 1.0, 10.0],
            "metric": [0.8, 0.7, 0.8, 0.5],
            "dense_metric": [0.8, 0.8, 0.8, 0.8],
            "majority_metric": [0.6, 0.6, 0.4, 0.4],
            "relative_to_dense": [1.0, 0.875, 1.0, 0.625],
            "speedup": [1.0, 4.0, 1.0, 4.0],
        }
    )
    for plot in (
        accuracy_plots.plot_metric_vs_compression,
        accuracy_plots.plot_metric_vs_block,
        accuracy_plots.plot_pareto_speedup,
    ):
        ax = plot(frame)
        floors = {
            line.get_label(): line.get_ydata()[0]
            for line in ax.get_lines()
            if line.get_label().endswith("majority class")
        }
        assert floors == pytest.approx({"MRPC majority class": 0.75, "SST-2 majority class": 0.5})


@needs_glue
def test_bi_encoder_seeds_and_mixkd_from_the_fine_tuned_model(
    tiny_dir: Path, tmp_path: Path
) -> None:
    """STS-B with a bi-encoder head over two seeds: a dense model per seed, distill-mixkd
    cells whose student starts from it, standard errors over the seeds in summary.csv, and
    the simulator running each pair as two sentences of seq-len / 2."""
    out, work = tmp_path / "results", tmp_path / "work"
    args = _args(tiny_dir, out, work)
    overrides = {
        "--tasks": "STS-B", "--methods": "dense,distill-mixkd", "--sparsities": "0.5",
    }  # fmt: skip
    for option, value in overrides.items():
        args[args.index(option) + 1] = value
    args += [
        "--heads", "bi-encoder", "--seeds", "0,1", "--student-init", "fine-tuned",
        "--kd-mode", "logits", "--schedule-shape", "geometric", "--checkpoint-every", "2",
    ]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "results.csv")
    assert sorted(zip(table["method"], table["seed"], strict=True)) == [
        ("dense", 0), ("dense", 1), ("distill-mixkd", 0), ("distill-mixkd", 1),
    ]  # fmt: skip
    assert (table["head_kind"] == "bi-encoder").all() and (table["metric_name"] == "pearson").all()
    assert {"prediction_mean", "prediction_std"} <= set(table.columns)
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary["seeds"]) == [2, 2] and set(summary["se_kind"]) == {"seeds"}
    pruned = table[table["method"] == "distill-mixkd"]
    expected_se = pruned["metric"].std(ddof=1) / math.sqrt(2)
    assert summary.iloc[1]["metric_se"] == pytest.approx(expected_se)
    for path in pruned["artifact"]:
        manifest = json.loads((work / path / "manifest.json").read_text())
        assert manifest["schedule"]["student_init"] == "fine-tuned"
        assert manifest["schedule"]["distillation"]["mixkd_weight"] == 1.0
        assert manifest["head"]["kind"] == "bi-encoder"
    # each teacher's outputs cached once beside its checkpoints, shared by its cells
    caches = sorted(work.glob("teachers/*.ckpt/kd-cache-logits.safetensors"))
    assert len(caches) == 2
    # cosim study plot redraws an accuracy study from its files
    result = runner.invoke(app, ["study", "plot", str(out)])
    assert result.exit_code == 0, result.output
    assert "metric_vs_compression.svg" in "".join(result.output.split())  # rich wraps paths
