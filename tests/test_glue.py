"""pruning.glue: task registry, metrics per task, the real GLUE files, every malformed-input
error (small TSVs written in tmp_path), and the ``datasets`` fallback with a fake module."""

from __future__ import annotations

import subprocess
import sys
import types
from collections import Counter
from pathlib import Path

import pytest

from pruning import glue
from pruning.glue import GlueDataError, compute_metrics, get_task, load_split

REAL_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "glue"
real_data = pytest.mark.skipif(
    not REAL_DIR.is_dir(), reason=f"GLUE data not present at {REAL_DIR} (see SOURCES.md)"
)

RTE_HEADER = "index\tsentence1\tsentence2\tlabel\n"
STSB_HEADER = (
    "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
)


def write(root: Path, relative: str, text: str | bytes) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def stsb_row(i: int, score: str) -> str:
    return f"{i}\tmain-captions\tMSRvid\t2012test\t{i:04d}\tnone\tnone\tA man.\tA dog.\t{score}\n"


# ----------------------------------------------------------------------------- registry


@pytest.mark.parametrize(
    ("name", "expected"),
    [("mrpc", "MRPC"), ("SST-2", "SST-2"), ("sst2", "SST-2"), ("stsb", "STS-B"),
     ("sts_b", "STS-B"), ("CoLA", "CoLA"), ("COLA", "CoLA"), ("qnli", "QNLI"), ("Rte", "RTE")],
)  # fmt: skip
def test_get_task_ignores_case_and_dashes(name, expected):
    assert get_task(name).name == expected
    assert get_task(get_task(name)) is glue.TASKS[expected]


def test_unknown_task_lists_valid_names():
    with pytest.raises(GlueDataError, match="unknown GLUE task 'wnli'; valid tasks: CoLA, SST-2"):
        get_task("wnli")


def test_task_fields():
    rte, stsb, mrpc, cola = (get_task(n) for n in ("rte", "stsb", "mrpc", "cola"))
    assert rte.label_ids == {"entailment": 0, "not_entailment": 1}
    assert get_task("qnli").label_ids == rte.label_ids
    assert mrpc.label_ids == {"0": 0, "1": 1} and mrpc.text_b == "#2 String"
    assert (stsb.is_regression, stsb.num_labels, stsb.label_column) == (True, 1, "score")
    assert (rte.is_regression, rte.num_labels) == (False, 2)
    assert cola.text_b is None and cola.tsv_columns is not None
    assert [t.main_metric for t in glue.TASKS.values()] == [
        "matthews", "accuracy", "f1", "pearson", "accuracy", "accuracy"
    ]  # fmt: skip
    assert {t.hub_subset for t in glue.TASKS.values()} == {
        "cola", "sst2", "mrpc", "stsb", "qnli", "rte"
    }  # fmt: skip
    for task in glue.TASKS.values():
        assert task.main_metric in task.metrics
        assert task.hub_dataset == "glue"


def test_compute_metrics_per_task():
    mrpc = compute_metrics("mrpc", [1, 1, 0, 0, 1], [1, 0, 0, 1, 1])
    assert mrpc == pytest.approx({"accuracy": 0.6, "f1": 4 / 6})
    assert compute_metrics("cola", [1, 1, 0, 0, 1], [1, 0, 0, 1, 1]) == pytest.approx(
        {"matthews": 1 / 6}
    )
    assert compute_metrics("rte", [0, 1, 1], [0, 1, 0]) == pytest.approx({"accuracy": 2 / 3})
    stsb = compute_metrics("STS-B", [0.5, 1.5, 1.0, 4.0], [1.0, 2.0, 3.0, 4.0])
    assert set(stsb) == {"pearson", "spearman"} and stsb["spearman"] == pytest.approx(0.8)


def test_torch_is_not_imported():
    code = "import sys, pruning.glue, pruning.metrics; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# ----------------------------------------------------------------------------- real files


@real_data
@pytest.mark.parametrize(
    ("task", "split", "rows"),
    [("MRPC", "train", 3668), ("MRPC", "dev", 408), ("RTE", "dev", 277),
     ("STS-B", "train", 5749), ("CoLA", "dev", 1043), ("SST-2", "dev", 872)],
)  # fmt: skip
def test_real_row_counts(task, split, rows):
    loaded = load_split(task, split, data_dir=REAL_DIR)
    assert len(loaded) == len(loaded.text_a) == rows
    assert loaded.note is None
    assert loaded.source == str(REAL_DIR / task / f"{split}.tsv")


@real_data
def test_real_mrpc_dev_contents():
    dev = load_split("mrpc", "validation", data_dir=REAL_DIR)
    assert dev.split == "dev"
    assert Counter(dev.labels) == {1: 279, 0: 129}
    # the BOM is gone and the stray leading quote is kept as text (QUOTE_NONE)
    assert dev.text_b[0].startswith('" The foodservice pie business')
    assert dev.text_a[0].startswith("He said the foodservice pie")


@real_data
def test_real_stsb_and_cola_labels():
    stsb = load_split("stsb", "train", data_dir=REAL_DIR)
    assert all(isinstance(s, float) for s in stsb.labels)
    assert (min(stsb.labels), max(stsb.labels), stsb.labels[0]) == (0.0, 5.0, 5.0)
    cola = load_split("cola", "dev", data_dir=REAL_DIR)
    assert cola.text_b is None and Counter(cola.labels) == {1: 721, 0: 322}
    assert cola.text_a[0] == "The sailors rode the breeze clear of the rocks."


def real_qnli_rows(split):
    return list(zip(split.text_a, split.text_b, split.labels, strict=True))


@real_data
def test_real_qnli_halves_are_disjoint_and_cover_dev(tmp_path):
    train = load_split("qnli", "train", data_dir=REAL_DIR)
    dev = load_split("qnli", "dev", data_dir=REAL_DIR)
    assert (len(train), len(dev)) == (2732, 2731)
    assert (
        train.note
        == dev.note
        == ("QNLI train is missing on disk; train/dev are disjoint halves of dev.tsv (seed 0)")
    )
    # with a train.tsv on disk, both splits are read as they are: here dev.tsv is complete
    (tmp_path / "QNLI").mkdir()
    (tmp_path / "QNLI" / "dev.tsv").symlink_to(REAL_DIR / "QNLI" / "dev.tsv")
    (tmp_path / "QNLI" / "train.tsv").symlink_to(REAL_DIR / "QNLI" / "dev.tsv")
    full = load_split("qnli", "dev", data_dir=tmp_path)
    assert full.note is None and len(full) == 5463
    whole = real_qnli_rows(full)
    assert len(set(whole)) == len(whole)  # no duplicate rows, so multiset = set
    halves = (set(real_qnli_rows(train)), set(real_qnli_rows(dev)))
    assert not halves[0] & halves[1]
    assert halves[0] | halves[1] == set(whole)
    # each half keeps file order
    position = {row: i for i, row in enumerate(whole)}
    for half in (train, dev):
        order = [position[row] for row in real_qnli_rows(half)]
        assert order == sorted(order)
    assert real_qnli_rows(load_split("qnli", "train", data_dir=REAL_DIR)) == real_qnli_rows(train)


@real_data
def test_max_examples_is_a_seeded_ordered_subset():
    full = load_split("rte", "dev", data_dir=REAL_DIR)
    a = load_split("rte", "dev", data_dir=REAL_DIR, max_examples=50, seed=3)
    b = load_split("rte", "dev", data_dir=REAL_DIR, max_examples=50, seed=3)
    c = load_split("rte", "dev", data_dir=REAL_DIR, max_examples=50, seed=4)
    assert len(a) == 50 and a == b and a.text_a != c.text_a
    rows = list(zip(full.text_a, full.text_b, full.labels, strict=True))
    assert len(set(rows)) == len(rows)
    position = {row: i for i, row in enumerate(rows)}
    order = [position[row] for row in zip(a.text_a, a.text_b, a.labels, strict=True)]
    assert order == sorted(order)
    assert load_split("rte", "dev", data_dir=REAL_DIR, max_examples=10_000) == full


@real_data
def test_max_examples_subsets_a_qnli_half():
    dev = load_split("qnli", "dev", data_dir=REAL_DIR)
    some = load_split("qnli", "dev", data_dir=REAL_DIR, max_examples=100)
    assert len(some) == 100 and some.note == dev.note
    assert set(real_qnli_rows(some)) <= set(real_qnli_rows(dev))


# ----------------------------------------------------------------------------- data dir


def test_default_data_dir_order(monkeypatch, tmp_path):
    monkeypatch.setenv(glue.ENV_DATA_DIR, str(tmp_path / "from-env"))
    assert glue.default_data_dir() == tmp_path / "from-env"
    monkeypatch.delenv(glue.ENV_DATA_DIR)
    monkeypatch.setattr(glue, "_SHARED_GLUE_DIR", tmp_path)
    assert glue.default_data_dir() == tmp_path
    monkeypatch.setattr(glue, "_SHARED_GLUE_DIR", tmp_path / "absent")
    assert glue.default_data_dir() is None


def test_env_data_dir_is_used(monkeypatch, tmp_path):
    write(tmp_path, "RTE/dev.tsv", RTE_HEADER + "0\tA cat.\tAn animal.\tentailment\n")
    monkeypatch.setenv(glue.ENV_DATA_DIR, str(tmp_path))
    loaded = load_split("rte", "dev")
    assert (loaded.text_a, loaded.text_b, loaded.labels) == (["A cat."], ["An animal."], [0])


# ----------------------------------------------------------------------------- fixture files


def test_bom_na_strings_and_quotes_survive(tmp_path):
    text = (
        '\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t1\t2\tNA\t" null "\n0\t3\t4\tN/A\t\n'
    )
    write(tmp_path, "MRPC/train.tsv", text)
    loaded = load_split("mrpc", "train", data_dir=tmp_path)
    assert loaded.text_a == ["NA", "N/A"]
    assert loaded.text_b == ['" null "', ""]
    assert loaded.labels == [1, 0]


def test_headerless_cola_and_crlf(tmp_path):
    write(tmp_path, "CoLA/dev.tsv", "gj04\t1\t\tThe dog barked.\r\nr-67\t0\t*\tDog the barked.\r\n")
    loaded = load_split("cola", "dev", data_dir=tmp_path)
    assert loaded.text_a == ["The dog barked.", "Dog the barked."]
    assert loaded.labels == [1, 0] and loaded.text_b is None


def test_missing_data_dir(tmp_path):
    with pytest.raises(GlueDataError, match=r"GLUE data dir .*nowhere does not exist.*CoLA/"):
        load_split("rte", "dev", data_dir=tmp_path / "nowhere")


def test_missing_task_folder(tmp_path):
    with pytest.raises(GlueDataError, match=r"task folder .*RTE is missing.*dev.tsv"):
        load_split("rte", "dev", data_dir=tmp_path)


def test_missing_tsv(tmp_path):
    write(tmp_path, "RTE/train.tsv", RTE_HEADER + "0\ta\tb\tentailment\n")
    with pytest.raises(GlueDataError, match=r"RTE/dev.tsv is missing"):
        load_split("rte", "dev", data_dir=tmp_path)


def test_missing_mrpc_train_is_not_replaced_by_dev(tmp_path):
    write(tmp_path, "MRPC/dev.tsv", "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t1\t2\ta\tb\n")
    with pytest.raises(GlueDataError, match=r"MRPC/train.tsv is missing"):
        load_split("mrpc", "train", data_dir=tmp_path)


@pytest.mark.parametrize("text", ["", "\n\n", RTE_HEADER])
def test_empty_file(tmp_path, text):
    write(tmp_path, "RTE/dev.tsv", text)
    with pytest.raises(GlueDataError, match=r"RTE/dev.tsv: no data rows"):
        load_split("rte", "dev", data_dir=tmp_path)


def test_missing_column_names_expected_and_found(tmp_path):
    write(tmp_path, "RTE/dev.tsv", "index\tpremise\tsentence2\tlabel\n0\ta\tb\tentailment\n")
    with pytest.raises(GlueDataError) as info:
        load_split("rte", "dev", data_dir=tmp_path)
    message = str(info.value)
    assert "RTE/dev.tsv: missing column(s) ['sentence1']" in message
    assert "needs ['sentence1', 'sentence2', 'label']" in message
    assert "found ['index', 'premise', 'sentence2', 'label']" in message


def test_unknown_label_names_line_value_and_valid_labels(tmp_path):
    rows = "0\ta\tb\tentailment\n1\tc\td\tcontradiction\n"
    write(tmp_path, "RTE/dev.tsv", RTE_HEADER + rows)
    with pytest.raises(
        GlueDataError,
        match=r"RTE/dev.tsv: line 3: unknown label 'contradiction' in column 'label'; "
        r"valid labels: \['entailment', 'not_entailment'\]",
    ):
        load_split("rte", "dev", data_dir=tmp_path)


@pytest.mark.parametrize("score", ["high", "", "nan", "inf"])
def test_bad_stsb_score(tmp_path, score):
    write(tmp_path, "STS-B/train.tsv", STSB_HEADER + stsb_row(0, "3.8") + stsb_row(1, score))
    with pytest.raises(
        GlueDataError, match=rf"STS-B/train.tsv: line 3: score '{score}' .*not a finite number"
    ):
        load_split("stsb", "train", data_dir=tmp_path)


def test_stsb_scores_are_floats(tmp_path):
    write(tmp_path, "STS-B/dev.tsv", STSB_HEADER + stsb_row(0, "3.800") + stsb_row(1, " 0 "))
    assert load_split("stsb", "dev", data_dir=tmp_path).labels == [3.8, 0.0]


@pytest.mark.parametrize(
    ("rows", "line", "fields"),
    [("0\ta\tb\tentailment\n1\tc\td\tentailment\textra\n", 3, 5),  # too many
     ("0\ta\tb\tentailment\n1\tc\tentailment\n", 3, 3),  # too few: pandas would pad it
     ("0\ta\tb\tentailment\tx\n1\tc\td\tentailment\n", 2, 5)],  # first row: pandas drops it
)  # fmt: skip
def test_wrong_field_count(tmp_path, rows, line, fields):
    write(tmp_path, "RTE/dev.tsv", RTE_HEADER + rows)
    with pytest.raises(
        GlueDataError,
        match=rf"RTE/dev.tsv: line {line} has {fields} tab-separated fields, expected 4 "
        r"\(index, sentence1, sentence2, label\)",
    ):
        load_split("rte", "dev", data_dir=tmp_path)


def test_headerless_wrong_field_count(tmp_path):
    write(tmp_path, "CoLA/train.tsv", "gj04\t1\t\tFine.\ngj04\t1\tBroken.\n")
    with pytest.raises(
        GlueDataError, match=r"line 2 has 3 .* expected 4 \(source, label, original_label"
    ):
        load_split("cola", "train", data_dir=tmp_path)


def test_not_utf8(tmp_path):
    write(tmp_path, "SST-2/dev.tsv", b"sentence\tlabel\ncaf\xe9 \t1\n")
    with pytest.raises(GlueDataError, match=r"SST-2/dev.tsv: not UTF-8 text"):
        load_split("sst2", "dev", data_dir=tmp_path)


def test_test_split_is_refused(tmp_path):
    with pytest.raises(GlueDataError, match="GLUE test labels are not public"):
        load_split("mrpc", "test", data_dir=tmp_path)
    with pytest.raises(GlueDataError, match="unknown split 'val'; valid splits: train, dev"):
        load_split("mrpc", "val", data_dir=tmp_path)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_max_examples_must_be_positive(tmp_path, bad):
    with pytest.raises(GlueDataError, match="max_examples must be a positive integer"):
        load_split("rte", "dev", data_dir=tmp_path, max_examples=bad)


def test_qnli_halves_on_a_fixture(tmp_path):
    labels = ("entailment", "not_entailment")
    rows = "".join(f"{i}\tq{i}?\ts{i}.\t{labels[i % 2]}\n" for i in range(9))
    write(tmp_path, "QNLI/dev.tsv", "index\tquestion\tsentence\tlabel\n" + rows)
    train = load_split("qnli", "train", data_dir=tmp_path)
    dev = load_split("qnli", "dev", data_dir=tmp_path)
    assert (len(train), len(dev)) == (5, 4)
    assert sorted(train.text_a + dev.text_a) == sorted(f"q{i}?" for i in range(9))
    assert train.source == dev.source == str(tmp_path / "QNLI" / "dev.tsv")
    for half in (train, dev):
        numbers = [int(q[1:-1]) for q in half.text_a]
        assert numbers == sorted(numbers)
        assert half.labels == [n % 2 for n in numbers]


# ----------------------------------------------------------------------------- datasets fallback


@pytest.fixture
def no_data_dir(monkeypatch, tmp_path):
    monkeypatch.delenv(glue.ENV_DATA_DIR, raising=False)
    monkeypatch.setattr(glue, "_SHARED_GLUE_DIR", tmp_path / "absent")


def fake_datasets(monkeypatch, tables: dict, calls: list) -> None:
    def load_dataset(path, name, split):
        calls.append((path, name, split))
        if isinstance(tables, Exception):
            raise tables
        return tables[name]

    module = types.ModuleType("datasets")
    module.load_dataset = load_dataset
    monkeypatch.setitem(sys.modules, "datasets", module)


def test_without_data_dir_or_datasets_says_what_to_do(no_data_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # import datasets -> ImportError
    with pytest.raises(GlueDataError) as info:
        load_split("mrpc", "dev")
    message = str(info.value)
    assert "no GLUE data dir found" in message
    for hint in ("--data-dir", "COSIM_GLUE_DIR", "install `datasets`"):
        assert hint in message


def test_datasets_fallback_classification(no_data_dir, monkeypatch):
    table = {"sentence1": ["a", "b", "c"], "sentence2": ["x", "y", "z"], "label": [1, 0, 1]}
    calls: list = []
    fake_datasets(monkeypatch, {"mrpc": table}, calls)
    dev = load_split("MRPC", "dev")
    assert calls == [("glue", "mrpc", "validation")]
    assert (dev.text_a, dev.text_b, dev.labels) == (["a", "b", "c"], ["x", "y", "z"], [1, 0, 1])
    assert dev.source == "datasets:glue/mrpc" and dev.split == "dev"
    two = load_split("mrpc", "train", max_examples=2, seed=1)
    assert calls[-1] == ("glue", "mrpc", "train") and len(two) == 2


def test_datasets_fallback_regression_and_single_sentence(no_data_dir, monkeypatch):
    tables = {
        "stsb": {"sentence1": ["a", "b"], "sentence2": ["c", "d"], "label": [4.2, 0.0]},
        "sst2": {"sentence": ["good", "bad"], "label": [1, 0], "idx": [0, 1]},
    }
    fake_datasets(monkeypatch, tables, [])
    assert load_split("stsb", "train").labels == [4.2, 0.0]
    sst = load_split("sst2", "train")
    assert sst.text_b is None and sst.labels == [1, 0]


def test_datasets_fallback_errors(no_data_dir, monkeypatch):
    tables = {
        "rte": {"sentence1": ["a"], "sentence2": ["b"], "label": [-1]},
        "cola": {"text": ["a"], "label": [1]},
    }
    fake_datasets(monkeypatch, tables, [])
    with pytest.raises(GlueDataError, match=r"row 0 \(0-based\): label -1 is not in 0..1"):
        load_split("rte", "train")
    with pytest.raises(GlueDataError, match="has no column 'sentence'"):
        load_split("cola", "train")
    fake_datasets(monkeypatch, ConnectionError("offline"), [])
    with pytest.raises(GlueDataError, match=r"load_dataset\('glue', 'qnli'.*failed: offline"):
        load_split("qnli", "dev")
