"""Where outputs go, and what happens when writing them fails (issue 17, families 4, 5, 8).

Family 4: every atomic writer (``safeio.atomic``: bytes, text, with a callback, whole
directories) and every ``--json``/``--csv`` option refuses a target that exists and is not
a regular file - a FIFO, a socket, a directory, a character device, a link to any of them -
and leaves it as it was; with ``root`` a write cannot follow a link out of its tree.

Family 5: a study's own names (``RESERVED_NAMES``) cannot be its ``outputs.report`` or
``outputs.plots_dir``, nor can the two be the same; ``cosim study plot DIR`` validates the
paths ``run.json`` holds again and writes nothing outside DIR.

Family 8: a full disk (``OSError(ENOSPC)`` from any write, ``SafetensorError`` from the
mask and weight writers, an error from the image writer) during ``study run``, ``study
plot`` or ``prune`` ends in one error line, and every file written before is still whole.
"""

from __future__ import annotations

import errno
import os
import shutil
import socket
import stat
from pathlib import Path

import pandas as pd
import pytest
from safetensors import SafetensorError
from typer.testing import CliRunner

from safeio import atomic
from safeio.atomic import (
    UnsafeTargetError,
    atomic_write_bytes,
    atomic_write_text,
    atomic_write_with,
    replace_dir,
)
from studies.cli import app
from studies.spec import RESERVED_NAMES, StudySpecError, spec_from_dict

runner = CliRunner()

# ----------------------------------------------------------------------------- family 4


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _socket(path: Path) -> None:
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    sock.close()


def _directory(path: Path) -> None:
    path.mkdir()
    (path / "inside.txt").write_text("keep")


def _device(path: Path) -> None:
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # like /dev/null
    except PermissionError:
        pytest.skip("creating a device node needs root")


def _link_to_fifo(path: Path) -> None:
    _fifo(path.with_name("real-fifo"))
    path.symlink_to(path.with_name("real-fifo"))


SPECIAL = {
    "fifo": _fifo,
    "socket": _socket,
    "directory": _directory,
    "character device": _device,
    "link to a fifo": _link_to_fifo,
}
WRITERS = {
    "bytes": lambda path: atomic_write_bytes(path, b"x"),
    "text": lambda path: atomic_write_text(path, "x"),
    "with": lambda path: atomic_write_with(path, lambda tmp: tmp.write_text("x")),
}


def _snapshot(path: Path) -> tuple:
    info = path.lstat()
    listing = sorted(p.name for p in path.iterdir()) if path.is_dir() else None
    return stat.S_IFMT(info.st_mode), info.st_ino, listing


@pytest.mark.parametrize("writer", list(WRITERS))
@pytest.mark.parametrize("kind", list(SPECIAL))
def test_atomic_writers_refuse_special_targets(tmp_path: Path, kind: str, writer: str) -> None:
    target = tmp_path / "out.json"
    SPECIAL[kind](target)
    before = _snapshot(target)
    with pytest.raises(UnsafeTargetError) as caught:
        WRITERS[writer](target)
    assert isinstance(caught.value, OSError) and "\n" not in str(caught.value)
    assert _snapshot(target) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left


@pytest.mark.parametrize("kind", ["fifo", "socket", "character device", "link to a fifo"])
def test_replace_dir_refuses_special_targets(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "artifact"
    SPECIAL[kind](target)
    before = _snapshot(target)
    new = tmp_path / ".artifact.tmp"
    new.mkdir()
    with pytest.raises(UnsafeTargetError):
        replace_dir(new, target)
    assert _snapshot(target) == before


def test_a_write_cannot_follow_a_link_out_of_its_root(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "plots").symlink_to(outside)
    with pytest.raises(UnsafeTargetError, match="outside"):
        atomic_write_text(root / "plots" / "a.png", "x", root=root)
    (outside / "victim.md").write_text("keep")
    (root / "report.md").symlink_to(outside / "victim.md")
    with pytest.raises(UnsafeTargetError, match="symbolic link"):
        atomic_write_text(root / "report.md", "x", root=root)
    assert sorted(p.name for p in outside.iterdir()) == ["victim.md"]
    assert (outside / "victim.md").read_text() == "keep"
    atomic_write_text(root / "ok.md", "fine", root=root)  # inside: written
    # without root, a link to a regular file is replaced, never written through
    atomic_write_text(root / "report.md", "new")
    assert (outside / "victim.md").read_text() == "keep"


@pytest.mark.parametrize("option", ["--json", "--csv"])
@pytest.mark.parametrize("kind", list(SPECIAL))
def test_cli_output_options_refuse_special_targets(tmp_path: Path, kind: str, option: str):
    target = tmp_path / "out"
    SPECIAL[kind](target)
    before = _snapshot(target)
    args = ["simulate", "--model", "bert-tiny", "--seq-len", "8", option, str(target)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.stderr.count("error:") == 1 and option in result.stderr
    assert _snapshot(target) == before


# ----------------------------------------------------------------------------- family 5


@pytest.mark.parametrize("field", ["report", "plots_dir"])
@pytest.mark.parametrize("name", sorted(RESERVED_NAMES))
def test_outputs_cannot_take_the_study_own_names(field: str, name: str) -> None:
    for spelling in (name, name.upper()):
        data = {"name": "t", "patterns": ["dense"], "outputs": {field: spelling}}
        with pytest.raises(StudySpecError, match=rf"outputs\.{field}: .*writes itself"):
            spec_from_dict(data)


def test_plots_dir_and_report_must_differ() -> None:
    for report in ("figs", "FIGS"):
        data = {"name": "t", "patterns": ["dense"],
                "outputs": {"plots_dir": "figs", "report": report}}  # fmt: skip
        with pytest.raises(StudySpecError, match="two different names"):
            spec_from_dict(data)


SPEC = """
name: tiny
models: [bert-tiny]
seq_lens: [8]
hardware: [systolic-32x32-ws]
grid: {pe_array: [{rows: 8, cols: 8}]}
sparsities: [0.5]
patterns: [block:4x4, dense]
outputs: {plots_dir: figures, report: summary.md}
"""


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished tiny study directory (copy it before changing it)."""
    base = tmp_path_factory.mktemp("study")
    spec = base / "tiny.yaml"
    spec.write_text(SPEC)
    out = base / "out"
    result = runner.invoke(app, ["study", "run", str(spec), "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    return out


def _copy(finished: Path, tmp_path: Path) -> Path:
    out = tmp_path / "out"
    shutil.copytree(finished, out, symlinks=True)
    return out


def _files(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


HOSTILE_OUTPUTS = [
    {"report": "/tmp/escaped.md"},
    {"report": "../escaped.md"},
    {"plots_dir": ".."},
    {"plots_dir": "../../escaped"},
    {"report": "results.csv"},
    {"report": "run.json"},
    {"plots_dir": "store"},
    {"plots_dir": "same", "report": "same"},
    {"report": 42},
]


@pytest.mark.parametrize("outputs", HOSTILE_OUTPUTS)
def test_study_plot_revalidates_run_json_paths(finished, tmp_path: Path, outputs) -> None:
    import json

    out = _copy(finished, tmp_path)
    run = json.loads((out / "run.json").read_text())
    run["outputs"] = {**run["outputs"], **outputs}
    (out / "run.json").write_text(json.dumps(run))
    before, around = _files(out), sorted(p.name for p in tmp_path.iterdir())
    result = runner.invoke(app, ["study", "plot", str(out)])
    assert result.exit_code == 2, result.output
    assert "outputs" in result.stderr and "Traceback" not in result.output
    assert result.stderr.count("error:") == 1
    assert _files(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == around
    assert not Path("/tmp/escaped.md").exists()


def test_study_plot_refuses_a_linked_plots_dir(finished, tmp_path: Path) -> None:
    out = _copy(finished, tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.rmtree(out / "figures")
    (out / "figures").symlink_to(outside)
    result = runner.invoke(app, ["study", "plot", str(out)])
    assert result.exit_code == 2 and "symbolic link" in result.stderr
    assert list(outside.iterdir()) == []


# ----------------------------------------------------------------------------- family 8


def _full_disk_after(monkeypatch, writes: int) -> list[int]:
    """Every atomic write after the first ``writes`` fails as on a full disk (at the flush of
    its temporary file, so the target is never touched)."""
    calls = [0]
    real = atomic._fsync_file

    def flush(path: Path) -> None:
        calls[0] += 1
        if calls[0] > writes:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(path)

    monkeypatch.setattr(atomic, "_fsync_file", flush)
    return calls


def _whole(out: Path) -> None:
    """Every output reads back whole."""
    pd.read_parquet(out / "results.parquet")
    pd.read_csv(out / "results.csv")
    from safeio.documents import read_json

    read_json(out / "run.json")
    for png in (out / "figures").glob("*.png"):
        assert png.read_bytes().startswith(b"\x89PNG")


def _one_error_line(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.stderr.count("error:") == 1, result.stderr
    assert len(result.stderr.strip().splitlines()) <= 3  # one line, maybe wrapped
    for fragment in fragments:
        assert fragment in " ".join(result.stderr.split()), result.stderr


@pytest.mark.parametrize("writes", [0, 2, 5, 9])  # a rerun makes 10 writes: the last one too
def test_study_run_on_a_full_disk(finished, tmp_path: Path, monkeypatch, writes: int) -> None:
    """A rerun (every point stored) rewrites the op table, results, run.json, spec, plots and
    report; the disk fills after ``writes`` of them."""
    out = _copy(finished, tmp_path)
    before = _files(out)
    spec = tmp_path / "tiny.yaml"
    spec.write_text(SPEC)
    _full_disk_after(monkeypatch, writes)
    result = runner.invoke(app, ["study", "run", str(spec), "--out", str(out), "--no-progress"])
    _one_error_line(result, "No space left on device")
    _whole(out)
    assert (out / "results.csv").read_bytes() == before["results.csv"]
    assert set(_files(out)) == set(before)  # no file lost, no temporary file left


def test_study_run_on_a_full_disk_while_storing_points(tmp_path: Path, monkeypatch) -> None:
    """The store (SQLite) commits one point, then its file may not grow: SQLite's own
    "database or disk is full" on the next commit."""
    from studies.sqlite_store import SqliteStore

    real_write = SqliteStore.write
    commits = [0]

    def write_then_fill_the_disk(self, documents) -> None:
        real_write(self, documents)
        commits[0] += 1
        pages = self._connection.execute("PRAGMA page_count").fetchone()[0]
        self._connection.execute(f"PRAGMA max_page_count={pages}")

    monkeypatch.setattr(SqliteStore, "commit_points", 1)  # one point a transaction
    monkeypatch.setattr(SqliteStore, "write", write_then_fill_the_disk)
    spec = tmp_path / "tiny.yaml"
    spec.write_text(SPEC)
    out = tmp_path / "fresh"
    result = runner.invoke(app, ["study", "run", str(spec), "--out", str(out), "--no-progress"])
    _one_error_line(result, "No space left on device")
    assert commits[0] == 1
    monkeypatch.undo()
    again = runner.invoke(app, ["study", "run", str(spec), "--out", str(out), "--no-progress"])
    assert again.exit_code == 0, again.output
    assert "1 reused" in " ".join(again.output.split())


def test_study_run_when_the_mask_writer_fails(tmp_path: Path, monkeypatch) -> None:
    import safetensors.numpy

    def full(*args, **kwargs):
        raise SafetensorError(
            "Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "
            '"No space left on device" })'
        )

    monkeypatch.setattr(safetensors.numpy, "save_file", full)
    spec = tmp_path / "tiny.yaml"
    spec.write_text(SPEC)
    result = runner.invoke(app, ["study", "run", str(spec), "--out", str(tmp_path / "o")])
    _one_error_line(result, "No space left on device")


@pytest.mark.parametrize("writes", [0, 4])
def test_study_plot_on_a_full_disk(finished, tmp_path: Path, monkeypatch, writes: int) -> None:
    out = _copy(finished, tmp_path)
    before = _files(out)
    _full_disk_after(monkeypatch, writes)
    result = runner.invoke(app, ["study", "plot", str(out)])
    _one_error_line(result, "No space left on device")
    _whole(out)
    assert set(_files(out)) == set(before)


def test_study_plot_when_the_image_writer_fails(finished, tmp_path: Path, monkeypatch) -> None:
    from matplotlib.figure import Figure

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")  # as PIL raises it

    out = _copy(finished, tmp_path)
    before = _files(out)
    monkeypatch.setattr(Figure, "savefig", full)
    result = runner.invoke(app, ["study", "plot", str(out)])
    _one_error_line(result, "No space left on device")
    assert _files(out) == before


PRUNE = ["prune", "--model", "bert-tiny", "--pattern", "block:4x4", "--sparsity", "0.5",
         "--no-progress"]  # fmt: skip


@pytest.fixture(scope="module")
def pruned_once(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("prune") / "art"
    result = runner.invoke(app, [*PRUNE, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.parametrize("where", ["weights", "masks", "manifest"])
def test_prune_on_a_full_disk(pruned_once, tmp_path: Path, monkeypatch, where: str) -> None:
    """Re-pruning over an existing artifact with the disk full at each file: one line, and
    the old artifact is still there, whole."""
    from pruning import artifact as artifact_module
    from pruning.artifact import load_artifact

    out = tmp_path / "art"
    shutil.copytree(pruned_once, out)
    before = _files(out)

    def safetensors_full(*args, **kwargs):
        raise SafetensorError(
            "Error while serializing: IoError(Os { code: 28, kind: StorageFull })"
        )

    if where == "weights":
        monkeypatch.setattr(artifact_module, "_save_model", safetensors_full)
    elif where == "masks":
        import safetensors.numpy

        monkeypatch.setattr(safetensors.numpy, "save_file", safetensors_full)
    else:
        real = Path.write_text

        def write_text(self, *args, **kwargs):
            if self.name == "manifest.json":
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
            return real(self, *args, **kwargs)

        monkeypatch.setattr(Path, "write_text", write_text)
    result = runner.invoke(app, [*PRUNE, "--out", str(out)])
    _one_error_line(result, "No space left on device")
    monkeypatch.undo()
    assert _files(out) == before
    load_artifact(out)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_prune_refuses_a_directory_of_other_files(pruned_once, tmp_path: Path) -> None:
    """--out naming a directory that holds files but is no artifact (the working directory,
    a project folder): one line before any work, and every file in it is still there. An
    empty directory or an artifact is replaced; the library refuses the same."""
    from pruning.artifact import ArtifactError, load_artifact, save_artifact

    folder = tmp_path / "project"
    (folder / "sub").mkdir(parents=True)
    (folder / "notes.txt").write_text("mine\n")
    (folder / "sub" / "data.csv").write_text("a,b\n1,2\n")
    before = _files(folder)
    result = runner.invoke(app, [*PRUNE, "--out", str(folder)])
    _one_error_line(result, "--out", "holding files but no manifest.json",
                    "new or empty directory, or an artifact")  # fmt: skip
    assert _files(folder) == before
    with pytest.raises(ArtifactError, match=r"holding files but no manifest\.json"):
        save_artifact(None, {}, folder, source_model="x", pattern="unstructured",
                      method="magnitude", sparsity=0.5)  # fmt: skip
    assert _files(folder) == before
    empty = tmp_path / "empty"
    empty.mkdir()
    again = tmp_path / "again"
    shutil.copytree(pruned_once, again)
    for out in (empty, again):
        done = runner.invoke(app, [*PRUNE, "--out", str(out)])
        assert done.exit_code == 0, done.output
        load_artifact(out)
