"""safeio.atomic: a write leaves the old file or the new one, never a torn one."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

from pathlib import Path

import pytest

from safeio import atomic as atomic_io
from safeio.atomic import atomic_write_bytes, atomic_write_text


def _names(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


def test_creates_a_new_file(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    returned = atomic_write_text(target, "héllo\n")
    assert returned == target
    assert target.read_text(encoding="utf-8") == "héllo\n"
    assert _names(tmp_path) == ["out.txt"]


def test_replaces_an_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old content that is longer than the new one\n")
    atomic_write_text(target, "new\n")
    assert target.read_text() == "new\n"
    assert _names(tmp_path) == ["out.txt"]


def test_accepts_str_paths_and_bytes(tmp_path: Path) -> None:
    target = tmp_path / "data.bin"
    atomic_write_bytes(str(target), b"\x00\x01\xff")
    assert target.read_bytes() == b"\x00\x01\xff"


def test_creates_parent_directories(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "c" / "out.json"
    atomic_write_text(target, "{}\n")
    assert target.read_text() == "{}\n"
    assert _names(target.parent) == ["out.json"]


def test_repeated_writes_leave_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    for index in range(5):
        atomic_write_text(target, f"version {index}\n")
    assert target.read_text() == "version 4\n"
    assert _names(tmp_path) == ["out.txt"]


def test_failed_replace_keeps_old_content_and_removes_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old\n")

    def broken_replace(src: object, dst: object) -> None:
        assert Path(src).is_file()  # the new data was fully written before the rename
        raise OSError("disk on fire")

    monkeypatch.setattr(atomic_io.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk on fire"):
        atomic_write_text(target, "new\n")
    assert target.read_text() == "old\n"
    assert _names(tmp_path) == ["out.txt"]


def test_failed_write_of_a_new_file_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "fresh.txt"

    def broken_replace(src: object, dst: object) -> None:
        raise OSError("no")

    monkeypatch.setattr(atomic_io.os, "replace", broken_replace)
    with pytest.raises(OSError):
        atomic_write_text(target, "new\n")
    assert _names(tmp_path) == []


def test_interrupt_during_write_is_cleaned_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BaseException (Ctrl-C) mid-write: temp file removed, old content intact."""
    target = tmp_path / "out.txt"
    target.write_text("old\n")

    def interrupted_fsync(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic_io.os, "fsync", interrupted_fsync)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(target, "new\n")
    assert target.read_text() == "old\n"
    assert _names(tmp_path) == ["out.txt"]


def test_temporary_file_is_invisible_to_a_glob_of_the_target_suffix(tmp_path, monkeypatch):
    """A store globbing ``*.json`` while a point is being written must not see the temp file."""
    seen: list[list[str]] = []
    real_replace = os.replace

    def spying_replace(src, dst):
        seen.append(sorted(path.name for path in tmp_path.glob("*.json")))
        real_replace(src, dst)

    monkeypatch.setattr(atomic_io.os, "replace", spying_replace)
    atomic_write_text(tmp_path / "point.json", "{}")
    assert seen == [[]]


@pytest.fixture(params=[0o022, 0o002, 0o077])
def umask(request: pytest.FixtureRequest):
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_written_files_get_the_umask_mode(tmp_path: Path, umask: int) -> None:
    """Files land 0o666 less the umask (a shared lab folder: 0o664 under umask 002), not the
    0o600 of mkstemp; parents created on the way get 0o777 less the umask."""
    written = [
        atomic_write_text(tmp_path / "new" / "a.json", "{}"),
        atomic_write_bytes(tmp_path / "b.bin", b"x"),
        atomic_io.atomic_write_with(tmp_path / "c.svg", lambda tmp: tmp.write_text("<svg/>")),
    ]
    atomic_write_text(tmp_path / "b.bin", "again")  # a replaced file too
    for path in written:
        assert _mode(path) == 0o666 & ~umask, path
    assert _mode(tmp_path / "new") == 0o777 & ~umask


def test_replaced_directories_get_the_umask_mode(tmp_path: Path, umask: int) -> None:
    import tempfile

    target = tmp_path / "artifact"
    for _ in range(2):  # a new target, then one replaced
        tmp = Path(tempfile.mkdtemp(prefix=".artifact.", dir=tmp_path))
        atomic_write_text(tmp / "manifest.json", "{}")
        atomic_io.replace_dir(tmp, target)
        assert _mode(target) == 0o777 & ~umask
        assert _mode(target / "manifest.json") == 0o666 & ~umask
