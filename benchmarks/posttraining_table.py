"""Post-training pruning of all-MiniLM-L6-v2 on SST-2 and STS-B: magnitude, Wanda and
SparseGPT at 50 %, 2:4, 70 % and 80 %, with no retraining and with a short fine-tune, each
row with its simulated speedup.

Run: python benchmarks/posttraining_table.py [--out results/posttraining]
    [--work-dir out/posttraining] [--tasks SST-2,STS-B]

Per task:

- SST-2 (mean head, the checkpoint's own): the dense model is fine-tuned on a seeded subset of
  1,000 train sentences (2 epochs, lr 1e-4, batch 32, 64 tokens), as
  ``results/accuracy-sst2-patterns``; scored on a seeded 500 of the 872 dev sentences.
- STS-B (bi-encoder head: cosine of the two mean-pooled sentences times 5, the way
  all-MiniLM-L6-v2 was trained): the dense model is the shipped checkpoint itself, with no
  STS-B training (the head has no weights); 128 tokens a pair (64 a sentence), scored on a
  seeded 300 of the 1,500 dev pairs. Every job scores its model twice (before and after the
  prune), so the dev subsets are what keeps the table within a CPU budget. The
  committed fine-tuned baseline (``results/accuracy-stsb-bi-encoder``, Pearson 0.895) takes
  42 CPU-minutes to train.

Every pruned row starts from that dense model: magnitude (one-shot, per matrix), Wanda and
SparseGPT from 64 calibration examples of the task's train subset (seeded), no retraining.
The 80 % jobs then fine-tune with the masks fixed for ``--fine-tune-epochs`` (1) on the
train subset (SST-2: the 1,000 sentences; STS-B: a seeded 500 pairs, batch 16 and lr 2e-5,
the sentence-transformers recipe), giving a second row each. Every artifact is simulated at
batch 1, 128 tokens: unstructured on ``eie-64pe`` (EIE-style, compressed sparse columns),
2:4 on ``systolic-32x32-ws-nm``; the speedup is over the same preset running the dense model.

The (task, pattern, method) units run in ``--jobs`` parallel processes, one thread each.
Each finished unit's rows are kept in ``--work-dir`` and reused by a rerun with the same
settings. Writes ``results.md`` (one table per task), ``results.csv`` and ``run.json``
(command, settings, wall times) under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np
import pandas as pd
import torch
from _table_file import pipe_table

from pruning.job import prune_job
from pruning.pipeline import run_prune

METHODS = ("magnitude", "wanda", "sparsegpt")
# (pattern, sparsity); the last one is also fine-tuned.
PATTERNS: tuple[tuple[str, float | None], ...] = (
    ("unstructured", 0.5),
    ("nm:2:4", None),
    ("unstructured", 0.7),
    ("unstructured", 0.8),
)
FINE_TUNED = ("unstructured", 0.8)
PRESETS = {"unstructured": "eie-64pe", "nm:2:4": "systolic-32x32-ws-nm"}
SIM_BATCH, SIM_SEQ_LEN = 1, 128

TASKS: dict[str, dict[str, Any]] = {
    "SST-2": {
        "metric": "accuracy",
        "job": {"head": None, "max_seq_len": 64, "batch_size": 32, "lr": 1e-4},
        "dense_epochs": 2.0,
        "train_examples": 1000,
        "max_eval_examples": 500,  # of 872: every job scores its model twice
    },
    "STS-B": {
        "metric": "pearson",
        "job": {"head": "bi-encoder", "max_seq_len": 128, "batch_size": 16, "lr": 2e-5},
        "dense_epochs": 0.0,
        "train_examples": 500,  # a pair costs two sentences
        "max_eval_examples": 300,  # of 1,500
    },
}


def simulated_speedup(artifact: Path, preset: str) -> float:
    """Dense-model cycles over the artifact's on ``preset`` (batch 1, 128 tokens)."""
    from accel_sim import simulate
    from accel_sim.spec.loading import load_hardware
    from pruning.artifact import load_artifact
    from workloads import artifact_workload

    workload = artifact_workload(load_artifact(artifact), SIM_BATCH, SIM_SEQ_LEN)
    result = simulate(workload, load_hardware(preset))
    assert result.speedup is not None
    return float(result.speedup)


def _label(pattern: str, sparsity: float | None) -> str:
    return pattern if sparsity is None else f"{pattern}-{sparsity:g}"


def _slug(method: str, pattern: str, sparsity: float | None) -> str:
    level = "" if sparsity is None else f"-{round(100 * sparsity)}"
    return f"{method}-{pattern.replace(':', '')}{level}"


def _common(task: str, args: argparse.Namespace) -> dict[str, Any]:
    """The job fields every run of ``task`` shares."""
    config = TASKS[task]
    return {
        "task": task,
        "max_train_examples": args.train_examples or config["train_examples"],
        "max_eval_examples": args.max_eval_examples or config["max_eval_examples"],
        "seed": 0,
        "progress": False,
        **{k: v for k, v in config["job"].items() if v is not None},
    }


def _work(task: str, args: argparse.Namespace) -> Path:
    return args.work_dir / task.lower().replace("-", "")


def dense_model(task: str, args: argparse.Namespace) -> tuple[str, dict | None, float]:
    """The model the task's rows prune: (path or name, its dev metrics when fine-tuned here,
    seconds); SST-2 fine-tunes one, STS-B uses the checkpoint as shipped."""
    started = time.perf_counter()
    if TASKS[task]["dense_epochs"] <= 0:
        return args.model, None, 0.0
    if task == "SST-2" and args.sst2_dense is not None:  # this step's artifact, made before
        return str(args.sst2_dense), None, 0.0
    job = prune_job(
        "posttraining_table", **_common(task, args), model=args.model, pattern="unstructured",
        sparsity=0.0, dense_epochs=TASKS[task]["dense_epochs"], retrain_epochs=0.0,
    )  # fmt: skip
    outcome = run_prune(job, _work(task, args) / "dense")
    return str(outcome.artifact), outcome.metrics["dense"], time.perf_counter() - started


def method_rows(
    task: str,
    args: argparse.Namespace,
    model: str,
    method: str,
    pattern: str,
    sparsity: float | None,
) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """One method's row at one pattern and sparsity (two when that one is also fine-tuned),
    and the dense model's metrics (the job scores the model before it prunes)."""
    fine_tune = (pattern, sparsity) == FINE_TUNED
    fields = {**_common(task, args), "model": model, "method": method, "pattern": pattern}
    if sparsity is not None:
        fields["sparsity"] = sparsity
    fields["retrain_epochs"] = args.fine_tune_epochs if fine_tune else 0.0
    if method != "magnitude":
        fields["calibration_examples"] = args.calibration_examples
    out = _work(task, args) / _slug(method, pattern, sparsity)
    saved = out.with_name(out.name + ".rows.json")
    if saved.is_file():  # a unit an interrupted run finished, with the same settings
        document = json.loads(saved.read_text())
        if document["fields"] == json.loads(json.dumps(fields)):
            return document["rows"], document["before"]
    outcome = run_prune(prune_job("posttraining_table", **fields), out)
    preset = PRESETS[pattern]
    schedule = outcome.manifest["schedule"]
    base = {
        "method": method,
        "pattern": pattern,
        "sparsity": round(1 - outcome.manifest["density"], 4),
        "method_s": schedule.get("method_seconds"),
        "preset": preset,
        "speedup": round(simulated_speedup(outcome.artifact, preset), 2),
    }
    rows = [{**base, "fine_tune_steps": 0, **_scores(outcome.metrics["after-prune"])}]
    if fine_tune:
        retrain = {phase["phase"]: phase for phase in schedule["phases"]}["retrain"]
        rows.append(
            {
                **base,
                "fine_tune_steps": retrain["steps"],
                "fine_tune_s": round(retrain["seconds"], 1),
                **_scores(outcome.metrics["retrain"]),
            }
        )
    before = outcome.metrics["before"]
    document = {"fields": fields, "rows": rows, "before": before}
    saved.write_text(json.dumps(document, indent=1, default=str) + "\n")
    return rows, before


def task_table(
    task: str, args: argparse.Namespace, dense_metrics: dict[str, float], rows: list[dict]
) -> pd.DataFrame:
    """``task``'s table: the dense row, then ``rows``, with the shares of the dense score."""
    metric = TASKS[task]["metric"]
    dense_row = {
        "method": "dense", "pattern": "dense", "sparsity": 0.0, "fine_tune_steps": 0,
        "preset": "", "speedup": 1.0, **_scores(dense_metrics),
    }  # fmt: skip
    frame = pd.DataFrame([dense_row, *rows])
    frame["relative_to_dense"] = frame[metric] / dense_metrics[metric]
    if task == "SST-2":
        frame["gain_retained"] = (frame[metric] - majority_accuracy(task, args)) / (
            dense_metrics[metric] - majority_accuracy(task, args)
        )
    columns = ["method", "pattern", "sparsity", "fine_tune_steps", *_metric_columns(frame)]
    columns += [c for c in ("relative_to_dense", "gain_retained") if c in frame]
    columns += ["method_s", "fine_tune_s", "preset", "speedup"]
    return frame.reindex(columns=columns).round(4).assign(task=task)


def majority_accuracy(task: str, args: argparse.Namespace) -> float:
    """The accuracy of always answering the dev subset's most common class."""
    from pruning.glue import get_task, load_split

    dev = load_split(get_task(task), "dev", None, _common(task, args)["max_eval_examples"], 0)
    labels = np.asarray(dev.labels)
    return float(max((labels == c).mean() for c in np.unique(labels)))


def _scores(metrics: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if k in {"accuracy", "pearson", "spearman"}}


def _metric_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in ("accuracy", "pearson", "spearman") if c in frame]


def run_all(tasks: list[str], args: argparse.Namespace) -> tuple[list[pd.DataFrame], dict]:
    """Every task's table, the (task, pattern, method) units spread over ``args.jobs`` processes
    (a task's units start once its dense model exists)."""
    # fork starts all the workers at once (spawn starts them lazily, as few as two here); the
    # parent has run no torch operation, so no thread pool is copied into them
    context = multiprocessing.get_context("fork")
    chosen = {
        task: [p for p in PATTERNS if {_label(*p), f"{task}:{_label(*p)}"} & args.patterns]
        for task in tasks
    }
    for task, picked in chosen.items():
        if not picked:
            raise SystemExit(f"--patterns: no pattern chosen for task {task}")
    records: dict[str, dict[str, Any]] = {}
    with ProcessPoolExecutor(args.jobs, mp_context=context) as pool:
        dense = {pool.submit(dense_model, task, args): task for task in tasks}
        units = {}
        for future in as_completed(dense):  # a task's units go as soon as its model exists
            task = dense[future]
            model, metrics, seconds = future.result()
            records[task] = {"dense_model": model, "dense_fine_tune_s": round(seconds, 1)}
            records[task]["dense_metrics"] = metrics
            first = sorted(  # the costliest units first
                chosen[task], key=lambda p: (p != FINE_TUNED, p[1] is None, -(p[1] or 0))
            )
            for pattern, sparsity in first:
                for method in METHODS:
                    units[task, pattern, sparsity, method] = pool.submit(
                        method_rows, task, args, model, method, pattern, sparsity
                    )
        frames = []
        for task in tasks:
            rows: list[dict[str, Any]] = []
            for pattern, sparsity in chosen[task]:
                for method in METHODS:
                    unit_rows, before = units[task, pattern, sparsity, method].result()
                    rows += unit_rows
            dense_metrics = records[task]["dense_metrics"] or before  # shipped: as scored
            records[task]["dense_metrics"] = dense_metrics
            records[task]["settings"] = {
                **_common(task, args), "dense_epochs": TASKS[task]["dense_epochs"]
            }  # fmt: skip
            frames.append(task_table(task, args, dense_metrics, rows))
    return frames, records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/posttraining"))
    parser.add_argument("--work-dir", type=Path, default=Path("out/posttraining"))
    parser.add_argument("--tasks", default="SST-2,STS-B")
    parser.add_argument("--train-examples", type=int, default=None, help="default per task")
    parser.add_argument("--calibration-examples", type=int, default=64)
    parser.add_argument("--fine-tune-epochs", type=float, default=1.0)
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument(
        "--sst2-dense",
        type=Path,
        default=None,
        help="the SST-2 dense checkpoint this script's fine-tune step writes, made before",
    )
    parser.add_argument("--max-eval-examples", type=int, default=None)
    parser.add_argument("--jobs", type=int, default=6, help="worker processes, one thread each")
    labels = ",".join(_label(*p) for p in PATTERNS)
    parser.add_argument(
        "--patterns",
        default=labels,
        help=f"a subset of {labels}; TASK:PATTERN (STS-B:nm:2:4) for one task only",
    )
    args = parser.parse_args()
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    if not tasks or sorted(set(tasks) - set(TASKS)):
        parser.error(f"--tasks: expected a comma-separated subset of {', '.join(TASKS)}")
    if args.jobs < 1:
        parser.error("--jobs: expected a positive integer")
    args.patterns = {p.strip() for p in args.patterns.split(",") if p.strip()}
    known = {*labels.split(","), *(f"{t}:{label}" for t in TASKS for label in labels.split(","))}
    if not args.patterns or args.patterns - known:
        parser.error(
            f"--patterns: expected a comma-separated subset of {labels}, each optionally "
            "prefixed by TASK: (SST-2: or STS-B:)"
        )
    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))
    started = time.perf_counter()
    frames, records = run_all(tasks, args)
    args.out.mkdir(parents=True, exist_ok=True)
    pd.concat(frames).to_csv(args.out / "results.csv", index=False)
    sections = []
    for frame in frames:
        shown = frame.drop(columns="task").dropna(axis=1, how="all")
        sections.append(f"**{frame['task'].iloc[0]}**\n\n" + pipe_table(shown))
    (args.out / "results.md").write_text("\n".join(sections))
    record = {
        "command": "python " + " ".join(sys.argv),
        "model": args.model,
        "calibration_examples": args.calibration_examples,
        "fine_tune_epochs": args.fine_tune_epochs,
        "jobs": args.jobs,
        "simulation": {"batch": SIM_BATCH, "seq_len": SIM_SEQ_LEN, "presets": PRESETS},
        "tasks": records,
        "wall_s": round(time.perf_counter() - started, 1),
        "threads_per_job": torch.get_num_threads(),
    }
    (args.out / "run.json").write_text(json.dumps(record, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
