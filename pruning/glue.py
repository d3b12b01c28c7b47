"""GLUE tasks: a registry of six tasks, offline TSV loading and task metrics.

The offline copy is the standard GLUE layout (``<data_dir>/<TASK>/{train,dev}.tsv``, see
``shared/data/glue/SOURCES.md``). Files are read as written by GLUE's download script:
tab-separated with no quoting (several files hold stray ``"``), UTF-8 with an optional BOM
(MRPC), every cell a string (so "NA" or "null" in a sentence stays text), and CoLA without a
header. Before parsing, every line's field count is checked, because pandas quietly pads a
short row with empty strings. Every problem raises :class:`GlueDataError` naming the file,
the line and the expected form.

With no data directory, :func:`load_split` falls back to Hugging Face ``datasets`` (online).
Only ``train`` and ``dev`` can be loaded: GLUE test labels are not public.

QNLI's ``train.tsv`` is missing from the offline copy. When it is absent, ``dev.tsv`` is
split in two disjoint halves: a permutation of its rows is drawn with
``numpy.random.RandomState(QNLI_HALF_SEED)`` (the legacy generator, whose stream numpy keeps
fixed across versions); rows at even positions of the permutation are ``train`` and rows at
odd positions ``dev``, each half in file order. The returned split says so in ``note``.

Torch-free: the simulator side imports this module.
"""

from __future__ import annotations

import io
import numbers
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pruning import metrics
from safeio.limits import BoundedError

__all__ = [
    "ENV_DATA_DIR",
    "QNLI_HALF_SEED",
    "SPLITS",
    "TASKS",
    "GlueDataError",
    "GlueSplit",
    "GlueTask",
    "bootstrap_se",
    "compute_metrics",
    "default_data_dir",
    "get_task",
    "load_split",
    "prediction_summary",
]

ENV_DATA_DIR = "COSIM_GLUE_DIR"
SPLITS = ("train", "dev")
QNLI_HALF_SEED = 0
_SHARED_GLUE_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "glue"
_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # the line ends pandas' C parser accepts
_METRICS = {
    "accuracy": metrics.accuracy,
    "f1": metrics.f1_binary,
    "matthews": metrics.matthews_corrcoef,
    "pearson": metrics.pearson,
    "spearman": metrics.spearman,
}


class GlueDataError(BoundedError):  # a ValueError, message bounded
    """GLUE data that is missing, malformed or asked for in a way that cannot be served."""


@dataclass(frozen=True)
class GlueTask:
    """How one GLUE task is laid out on disk and on the hub, and how it is scored.

    ``labels`` are the label strings as written in the TSV; a label's id is its position
    (RTE/QNLI ``entailment`` -> 0, ``not_entailment`` -> 1, the same ids the hub uses).
    STS-B has no labels: it is a regression on ``score`` (0 to 5) with one output.
    ``main_metric`` selects models and summarises runs; for STS-B it is Pearson, the first
    of the two correlations GLUE reports.
    """

    name: str  # GLUE's name, also the folder under the data directory
    text_a: str  # TSV column of the first sentence
    text_b: str | None  # TSV column of the second sentence; None for single-sentence tasks
    label_column: str
    labels: tuple[str, ...]  # empty for regression
    metrics: tuple[str, ...]
    main_metric: str
    hub_subset: str  # datasets.load_dataset(hub_dataset, hub_subset)
    hub_text_a: str
    hub_text_b: str | None
    hub_label: str = "label"
    hub_dataset: str = "glue"
    tsv_columns: tuple[str, ...] | None = None  # column names of a header-less TSV (CoLA)
    halve_dev_without_train: bool = False  # QNLI: train/dev from halves of dev.tsv
    max_score: float | None = None  # regression: the top of the score range (STS-B: 5)

    @property
    def is_regression(self) -> bool:
        return not self.labels

    @property
    def num_labels(self) -> int:
        return 1 if self.is_regression else len(self.labels)

    @property
    def label_ids(self) -> dict[str, int]:
        return {label: i for i, label in enumerate(self.labels)}

    @property
    def columns(self) -> tuple[str, ...]:
        """The TSV columns this task reads."""
        texts = (self.text_a,) if self.text_b is None else (self.text_a, self.text_b)
        return (*texts, self.label_column)


_NLI = ("entailment", "not_entailment")
TASKS: dict[str, GlueTask] = {
    task.name: task
    for task in (
        GlueTask(
            "CoLA", "sentence", None, "label", ("0", "1"), ("matthews",), "matthews",
            "cola", "sentence", None,
            tsv_columns=("source", "label", "original_label", "sentence"),
        ),
        GlueTask(
            "SST-2", "sentence", None, "label", ("0", "1"), ("accuracy",), "accuracy",
            "sst2", "sentence", None,
        ),
        GlueTask(
            "MRPC", "#1 String", "#2 String", "Quality", ("0", "1"), ("accuracy", "f1"), "f1",
            "mrpc", "sentence1", "sentence2",
        ),
        GlueTask(
            "STS-B", "sentence1", "sentence2", "score", (), ("pearson", "spearman"), "pearson",
            "stsb", "sentence1", "sentence2", max_score=5.0,
        ),
        GlueTask(
            "QNLI", "question", "sentence", "label", _NLI, ("accuracy",), "accuracy",
            "qnli", "question", "sentence", halve_dev_without_train=True,
        ),
        GlueTask(
            "RTE", "sentence1", "sentence2", "label", _NLI, ("accuracy",), "accuracy",
            "rte", "sentence1", "sentence2",
        ),
    )
}  # fmt: skip


@dataclass(frozen=True)
class GlueSplit:
    """One split of one task, as parallel lists; ``labels`` are ids (floats for STS-B)."""

    task: GlueTask
    split: str  # "train" or "dev"
    text_a: list[str]
    text_b: list[str] | None
    labels: list[int] | list[float]
    source: str  # the TSV path, or "datasets:glue/<subset>"
    note: str | None = None

    def __len__(self) -> int:
        return len(self.labels)


def _key(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


def get_task(name: str | GlueTask) -> GlueTask:
    """The task for ``name``, ignoring case, ``-`` and ``_`` ("sst2", "STS-B", "cola")."""
    if isinstance(name, GlueTask):
        return name
    for task in TASKS.values():
        if _key(task.name) == _key(str(name)):
            return task
    raise GlueDataError(f"unknown GLUE task {name!r}; valid tasks: {', '.join(TASKS)}")


def compute_metrics(
    task: str | GlueTask, predictions: Sequence[Any], labels: Sequence[Any]
) -> dict[str, float]:
    """The task's metrics: class ids for classification, floats for STS-B."""
    task = get_task(task)
    return {name: _METRICS[name](predictions, labels) for name in task.metrics}


BOOTSTRAP_RESAMPLES = 1000


def bootstrap_se(
    task: str | GlueTask,
    predictions: Sequence[Any],
    labels: Sequence[Any],
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> dict[str, float]:
    """Standard error of each task metric over the dev examples: the standard deviation of
    the metric over ``resamples`` bootstrap resamples (drawn with replacement, seeded), so
    one dev set's sampling noise is stated beside every score."""
    task = get_task(task)
    p, y = np.asarray(predictions), np.asarray(labels)
    if len(p) == 0:
        return {}
    rows = np.random.RandomState(seed).randint(0, len(p), size=(resamples, len(p)))
    return {
        name: float(np.std([_METRICS[name](p[r], y[r]) for r in rows], ddof=1))
        for name in task.metrics
    }


def prediction_summary(task: str | GlueTask, predictions: Sequence[Any]) -> dict[str, Any]:
    """What the predictions look like, so a collapsed model is visible in every cell:
    ``predicted_counts`` per label (classification; every label listed, 0 included) or the
    mean and standard deviation of the predicted scores (regression)."""
    task = get_task(task)
    values = np.asarray(predictions)
    if task.is_regression:
        scores = values.astype(np.float64)
        return {
            "prediction_mean": float(scores.mean()) if scores.size else None,
            "prediction_std": float(scores.std()) if scores.size else None,
        }
    counts = np.bincount(values.astype(np.int64), minlength=task.num_labels)
    return {"predicted_counts": {label: int(counts[i]) for i, label in enumerate(task.labels)}}


def default_data_dir() -> Path | None:
    """``$COSIM_GLUE_DIR`` if set, else ``<repo>/../shared/data/glue`` if present, else None.

    A set but missing ``$COSIM_GLUE_DIR`` is returned as is, so loading fails loudly rather
    than quietly going online.
    """
    env = os.environ.get(ENV_DATA_DIR)
    if env:
        return Path(env)
    return _SHARED_GLUE_DIR if _SHARED_GLUE_DIR.is_dir() else None


def load_split(
    task: str | GlueTask,
    split: str,
    data_dir: str | Path | None = None,
    max_examples: int | None = None,
    seed: int = 0,
) -> GlueSplit:
    """Load ``train`` or ``dev`` of a task from ``data_dir`` (default: :func:`default_data_dir`).

    With no data directory at all, the split comes from ``datasets`` (hub split
    ``validation`` for ``dev``). ``max_examples`` keeps a subset of that many rows, chosen
    by ``numpy.random.RandomState(seed).permutation`` (first ``max_examples`` positions) and
    returned in their original order, so the same seed gives the same rows everywhere.
    """
    task = get_task(task)
    split = _check_split(split)
    if max_examples is not None and (
        isinstance(max_examples, bool)
        or not isinstance(max_examples, numbers.Integral)
        or max_examples <= 0
    ):
        raise GlueDataError(
            f"max_examples must be a positive integer or None, got {max_examples!r}"
        )
    root = default_data_dir() if data_dir is None else Path(data_dir)
    loaded = _load_hub(task, split) if root is None else _load_tsv(task, split, root)
    if max_examples is None or max_examples >= len(loaded):
        return loaded
    keep = np.sort(np.random.RandomState(seed).permutation(len(loaded))[:max_examples])
    return _take(loaded, keep, loaded.note)


def _check_split(split: str) -> str:
    name = {"validation": "dev"}.get(split, split)
    if name == "test":
        raise GlueDataError(
            "the GLUE test split has no labels (GLUE test labels are not public); "
            "use 'train' or 'dev'"
        )
    if name not in SPLITS:
        raise GlueDataError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    return name


def _take(split: GlueSplit, rows: np.ndarray, note: str | None) -> GlueSplit:
    pick = rows.tolist()
    return GlueSplit(
        task=split.task,
        split=split.split,
        text_a=[split.text_a[i] for i in pick],
        text_b=None if split.text_b is None else [split.text_b[i] for i in pick],
        labels=[split.labels[i] for i in pick],
        source=split.source,
        note=note,
    )


# ----------------------------------------------------------------------------- TSV files


def _load_tsv(task: GlueTask, split: str, root: Path) -> GlueSplit:
    if not root.is_dir():
        problem = "is a file, not a directory" if root.exists() else "does not exist"
        raise GlueDataError(
            f"GLUE data dir {root} {problem}; expected a folder holding "
            f"{', '.join(t + '/' for t in TASKS)} each with train.tsv and dev.tsv"
        )
    folder = root / task.name
    if not folder.is_dir():
        raise GlueDataError(
            f"task folder {folder} is missing; expected it to hold train.tsv and dev.tsv"
        )
    path = folder / f"{split}.tsv"
    train_missing = not (folder / "train.tsv").is_file()
    if task.halve_dev_without_train and train_missing:
        whole = _read_split(task, split, folder / "dev.tsv")
        perm = np.random.RandomState(QNLI_HALF_SEED).permutation(len(whole))
        half = perm[0::2] if split == "train" else perm[1::2]
        note = (
            f"{task.name} train is missing on disk; train/dev are disjoint halves of dev.tsv "
            f"(seed {QNLI_HALF_SEED})"
        )
        return _take(whole, np.sort(half), note)
    return _read_split(task, split, path)


def _read_split(task: GlueTask, split: str, path: Path) -> GlueSplit:
    frame, line_numbers = _read_tsv(path, task.tsv_columns)
    missing = [c for c in task.columns if c not in frame.columns]
    if missing:
        raise GlueDataError(
            f"{path}: missing column(s) {missing}; {task.name} needs {list(task.columns)}, "
            f"found {list(frame.columns)}"
        )
    raw_labels = frame[task.label_column].str.strip()
    if task.is_regression:
        labels, bad = _scores(raw_labels)
        if bad is not None:
            raise GlueDataError(
                f"{path}: line {line_numbers[bad]}: score {raw_labels.iloc[bad]!r} in column "
                f"{task.label_column!r} is not a finite number"
            )
    else:
        labels = _label_ids(path, task, raw_labels, line_numbers)
    return GlueSplit(
        task=task,
        split=split,
        text_a=frame[task.text_a].tolist(),
        text_b=None if task.text_b is None else frame[task.text_b].tolist(),
        labels=labels,
        source=str(path),
    )


def _read_tsv(path: Path, names: tuple[str, ...] | None) -> tuple[pd.DataFrame, list[int]]:
    """Parse a GLUE TSV and return it with the 1-based file line of each data row."""
    if not path.is_file():
        raise GlueDataError(f"{path} is missing; expected a GLUE tab-separated file")
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            text = handle.read()
    except UnicodeDecodeError as exc:
        raise GlueDataError(f"{path}: not UTF-8 text ({exc})") from exc
    lines = [(n, line) for n, line in enumerate(_LINE_BREAK.split(text), start=1) if line]
    if not lines or (names is None and len(lines) == 1):
        raise GlueDataError(f"{path}: no data rows; expected a header line and tab-separated rows")
    header = list(names) if names is not None else lines[0][1].split("\t")
    for number, line in lines:
        fields = line.count("\t") + 1
        if fields != len(header):
            raise GlueDataError(
                f"{path}: line {number} has {fields} tab-separated fields, expected "
                f"{len(header)} ({', '.join(header)})"
            )
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep="\t",
            quoting=3,  # csv.QUOTE_NONE: GLUE files hold stray quotes
            header=None if names is not None else 0,
            names=list(names) if names is not None else None,
            index_col=False,
            dtype=str,
            keep_default_na=False,
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise GlueDataError(f"{path}: cannot parse as a GLUE TSV ({exc})") from exc
    data_lines = [n for n, _ in (lines if names is not None else lines[1:])]
    if len(frame) != len(data_lines):
        raise GlueDataError(
            f"{path}: parsed {len(frame)} rows but the file has {len(data_lines)} data lines"
        )
    return frame, data_lines


def _label_ids(path: Path, task: GlueTask, raw: pd.Series, lines: list[int]) -> list[int]:
    ids = task.label_ids
    unknown = ~raw.isin(list(ids))
    if unknown.any():
        row = int(np.argmax(unknown.to_numpy()))
        raise GlueDataError(
            f"{path}: line {lines[row]}: unknown label {raw.iloc[row]!r} in column "
            f"{task.label_column!r}; valid labels: {list(task.labels)}"
        )
    return [ids[value] for value in raw.tolist()]


def _scores(raw: pd.Series) -> tuple[list[float], int | None]:
    """Scores as floats, and the position of the first one that is not a finite number."""
    values = pd.to_numeric(pd.Series(raw, dtype=object), errors="coerce").to_numpy(np.float64)
    bad = ~np.isfinite(values)
    return values.tolist(), (int(np.argmax(bad)) if bad.any() else None)


# ----------------------------------------------------------------------------- datasets hub


def _load_hub(task: GlueTask, split: str) -> GlueSplit:
    try:
        import datasets
    except ImportError as exc:
        raise GlueDataError(
            f"no GLUE data dir found (${ENV_DATA_DIR} is unset and {_SHARED_GLUE_DIR} does "
            f"not exist): pass --data-dir or set {ENV_DATA_DIR}, or install `datasets` and "
            "go online"
        ) from exc
    hub_split = "validation" if split == "dev" else "train"
    call = f"datasets.load_dataset({task.hub_dataset!r}, {task.hub_subset!r}, split={hub_split!r})"
    try:
        table = datasets.load_dataset(task.hub_dataset, task.hub_subset, split=hub_split)
    except Exception as exc:  # network, cache or hub errors of any kind
        raise GlueDataError(f"{call} failed: {exc}") from exc

    def column(name: str) -> list[Any]:
        try:
            return list(table[name])
        except (KeyError, ValueError) as exc:
            raise GlueDataError(f"{call} has no column {name!r}") from exc

    raw = column(task.hub_label)
    source = f"datasets:{task.hub_dataset}/{task.hub_subset}"
    if task.is_regression:
        labels, bad_row = _scores(pd.Series(raw, dtype=object))
        if bad_row is not None:
            raise GlueDataError(
                f"{call}: row {bad_row} (0-based): score {raw[bad_row]!r} is not a number"
            )
    else:
        labels = [int(value) for value in raw]
        bad = [i for i, value in enumerate(labels) if not 0 <= value < task.num_labels]
        if bad:
            raise GlueDataError(
                f"{call}: row {bad[0]} (0-based): label {labels[bad[0]]} is not in "
                f"0..{task.num_labels - 1}"
            )
    text_a = [str(value) for value in column(task.hub_text_a)]
    text_b = None if task.hub_text_b is None else [str(v) for v in column(task.hub_text_b)]
    lengths = {len(labels), len(text_a), len(labels if text_b is None else text_b)}
    if 0 in lengths or len(lengths) > 1:
        raise GlueDataError(f"{call} returned no rows or columns of unequal length")
    return GlueSplit(task, split, text_a, text_b, labels, source)
