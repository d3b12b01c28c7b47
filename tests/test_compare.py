"""``cosim compare A.json B.json ...``: the side-by-side table of simulate results."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from studies.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    out = tmp_path_factory.mktemp("runs")
    paths = []
    for name, hw in (("ws", "systolic-32x32-ws"), ("os", "systolic-32x32-os"),
                     ("eie", "eie-64pe")):
        path = out / f"{name}.json"
        args = ["simulate", "--model", "bert-tiny", "--seq-len", "16", "--hw", hw]
        done = runner.invoke(app, [*args, "--json", str(path)])
        assert done.exit_code == 0, done.output
        paths.append(path)
    return paths


def table(paths: list[Path]) -> dict[str, list[str]]:
    done = runner.invoke(app, ["compare", *map(str, paths), "--csv", "-"])
    assert done.exit_code == 0, done.output
    rows = list(csv.reader(io.StringIO(done.stdout)))
    assert rows[0][0] == ""  # only the CSV on standard output; the table went to stderr
    assert "comparison" in done.stderr
    return {row[0]: row[1:] for row in rows}


def test_compare_shows_totals_ratios_and_kinds_side_by_side(results: list[Path]) -> None:
    rows = table(results)
    assert rows[""] == ["bert-tiny on systolic-32x32-ws", "bert-tiny on systolic-32x32-os",
                        "bert-tiny on eie-64pe"]
    documents = [json.loads(path.read_text()) for path in results]
    cycles = [d["total"]["cycles"] for d in documents]
    assert rows["cycles"] == [f"{c:,}" for c in cycles]
    assert rows["speedup vs first"] == [f"{cycles[0] / c:.3f}x" for c in cycles]
    energy = [d["total"]["energy_j"] for d in documents]
    assert rows["energy vs first"] == [f"{e / energy[0]:.3f}x" for e in energy]
    ffn = sum(op["cycles"] for op in documents[2]["ops"] if op["role"] == "ffn_in")
    assert rows["ffn_in: cycles"][2].startswith(f"{ffn:,} (")
    for kind in ("query", "attention_scores", "softmax", "layernorm", "classifier"):
        assert f"{kind}: energy" in rows


def test_compare_prints_a_table(results: list[Path]) -> None:
    done = runner.invoke(app, ["compare", *map(str, results[:2])])
    assert done.exit_code == 0, done.output
    assert "speedup vs first" in done.stdout and "ffn_in: cycles" in done.stdout


def test_compare_labels_the_same_run_by_file(results: list[Path], tmp_path: Path) -> None:
    copy = tmp_path / "again.json"
    copy.write_text(results[0].read_text())
    assert table([results[0], copy])[""] == [
        "ws: bert-tiny on systolic-32x32-ws", "again: bert-tiny on systolic-32x32-ws"]


def test_compare_errors_are_one_line(results: list[Path], tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    for args, fragment in (
        ([str(results[0])], "at least two"),
        ([str(results[0]), str(bad)], "expected the JSON `cosim simulate --json` writes"),
        ([str(results[0]), str(tmp_path / "none.json")], "file not found"),
    ):
        done = runner.invoke(app, ["compare", *args])
        assert done.exit_code == 2, done.output
        assert fragment in " ".join(done.stderr.split())


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda d: d["total"].pop("cycles"), "total.cycles is None: expected a positive number"),
        (lambda d: d["total"].update(cycles=0), "total.cycles is 0: expected a positive number"),
        (lambda d: d["total"].update(energy_j="x"), "total.energy_j is 'x': expected a positive"),
        (lambda d: d["total"].update(utilisation=[1]), "total.utilisation is [1]: expected a"),
        (lambda d: d.update(ops=[1]), "ops[0] is 1: expected an object"),
        (lambda d: d["ops"][0].update(cycles="x"), "ops[0].cycles is 'x': expected a number"),
        (lambda d: d["ops"][0].update(role={"a": 1}), "ops[0].role is {'a': 1}: expected a str"),
    ],
)
def test_compare_names_a_bad_field_in_one_line(
    results: list[Path], tmp_path: Path, change, fragment: str
) -> None:
    document = json.loads(results[0].read_text())
    change(document)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(document))
    for args in ([str(results[0]), str(bad)], [str(bad), str(results[0])]):
        done = runner.invoke(app, ["compare", *args])
        assert done.exit_code == 2, done.output
        assert done.exception is None or isinstance(done.exception, SystemExit), done.output
        assert done.stderr.count("error:") == 1 and fragment in " ".join(done.stderr.split())
