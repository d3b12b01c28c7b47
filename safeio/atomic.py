"""Atomic file writes shared by every package (artifacts, results, checkpoints, plots, CLI).

A writer killed at any point leaves either the old file or the new one, never a torn file:
data goes to a temporary file in the same directory, is flushed to disk, then renamed over
the target (``os.replace`` is atomic on POSIX within one file system), and the directory
entry is flushed too.

- :func:`atomic_write_bytes` / :func:`atomic_write_text`: data already in memory.
- :func:`atomic_write_with`: a library that insists on writing a path itself (matplotlib's
  ``savefig``, pandas, safetensors) writes a temporary sibling that is then renamed.
- :func:`replace_dir`: a directory written in full beside its target (an artifact, a
  checkpoint) takes the target's place. Where the kernel supports it (Linux
  ``renameat2(RENAME_EXCHANGE)``: ext4, xfs, btrfs, tmpfs) the two are swapped in one atomic
  step; elsewhere the old directory is first renamed aside, leaving a short window in which
  the target name is missing (the old one is still whole beside it).

Temporary names start with ``.`` and end in ``.tmp`` (plus the target's suffix), so readers
that list a directory can skip them. What lands at the target has the mode a plain ``open``
or ``mkdir`` would give it, ``0o666`` (files) or ``0o777`` (directories) less the process
umask, not the ``0o600``/``0o700`` of the temporary file or directory: labs share result
folders.

A target that exists and is not a regular file (a device such as ``/dev/null``, a FIFO, a
socket, a directory) is refused with :class:`UnsafeTargetError` (an ``OSError``) and left
as it is: renaming over it would replace the node itself. With ``root`` given, a target
whose directory resolves (through symbolic links) outside ``root``, or that is itself a
symbolic link, is refused too, so a planted link cannot carry a write out of that tree. A
target that is a symbolic link to a regular file is otherwise replaced by the new file; the
file it pointed to is never written.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "UnsafeTargetError",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_with",
    "fsync_dir",
    "replace_dir",
]


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Flush a directory's entries (a rename inside it) to disk; best effort."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class UnsafeTargetError(OSError):
    """A write target that is not a regular file, or that leads out of the allowed tree."""


_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
)


def _check_target(target: Path, root: str | os.PathLike[str] | None, want_dir: bool) -> None:
    """Refuse ``target`` when it exists and is not what is written there (a regular file,
    or with ``want_dir`` a directory), or, with ``root``, when it is a link or its directory
    resolves outside ``root``."""
    if root is not None:
        real_root = Path(root).resolve()
        if not target.parent.resolve().is_relative_to(real_root):
            raise UnsafeTargetError(
                f"{target}: its directory leads outside {real_root} (a symbolic link?): "
                "refusing to write there"
            )
        if target.is_symlink():
            raise UnsafeTargetError(f"{target} is a symbolic link: refusing to write through it")
    try:
        mode = target.stat().st_mode
    except FileNotFoundError:
        return
    except OSError:
        return  # a dangling link or an unreadable entry: the rename replaces the entry
    if stat.S_ISREG(mode) or (want_dir and stat.S_ISDIR(mode)):
        return
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    expected = "a directory" if want_dir else "a regular file"
    raise UnsafeTargetError(f"{target} exists and is {kind}: expected {expected} to replace")


def _umask() -> int:
    """The process umask, read without changing it where Linux reports it."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: read by setting and restoring it
    os.umask(mask)
    return mask


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def atomic_write_with(
    path: str | os.PathLike[str],
    write: Callable[[Path], object],
    *,
    keep_suffix: bool = True,
    root: str | os.PathLike[str] | None = None,
) -> Path:
    """Call ``write(tmp_path)`` to write a temporary sibling of ``path``, then rename it over
    ``path``. With ``keep_suffix`` the temporary name ends in the target's suffix, for writers
    that infer the format from it; without, it ends in ``.tmp`` so that no reader globbing
    ``*.json`` (say) can see it. If ``write`` raises, the target is untouched and the
    temporary file removed. A target that is not a regular file, or (``root``) leads out of
    the tree under ``root``, raises :class:`UnsafeTargetError` (module docstring)."""
    target = Path(path)
    _check_target(target, root, want_dir=False)
    target.parent.mkdir(parents=True, exist_ok=True)
    suffix = f".tmp{target.suffix}" if keep_suffix else ".tmp"
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        _fsync_file(tmp)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(target.parent)
    return target


def atomic_write_bytes(
    path: str | os.PathLike[str], data: bytes, *, root: str | os.PathLike[str] | None = None
) -> Path:
    """Write ``data`` to ``path`` atomically; parent directories are created."""
    return atomic_write_with(
        path, lambda tmp: tmp.write_bytes(data), keep_suffix=False, root=root
    )


def atomic_write_text(
    path: str | os.PathLike[str], text: str, *, root: str | os.PathLike[str] | None = None
) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"), root=root)


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths atomically; False where the platform cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    path_arg = ctypes.c_char_p
    renameat2.argtypes = [ctypes.c_int, path_arg, ctypes.c_int, path_arg, ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EPERM):
        return False
    raise OSError(code, f"renameat2({a}, {b}, RENAME_EXCHANGE): {os.strerror(code)}")


def replace_dir(tmp: str | os.PathLike[str], target: str | os.PathLike[str]) -> Path:
    """Move the finished directory ``tmp`` to ``target``, replacing what is there.

    ``tmp`` must be a sibling of ``target`` (same file system) whose files are already
    flushed. A kill at any point leaves ``target`` either the old directory or the new one;
    the old one is deleted afterwards (a kill before that leaves it as a hidden sibling).
    """
    tmp, target = Path(tmp), Path(target)
    _check_target(target, None, want_dir=True)
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp made it 0o700
    fsync_dir(tmp)
    if not (target.exists() or target.is_symlink()):
        os.replace(tmp, target)
        fsync_dir(target.parent)
        return target
    if target.is_dir() and not target.is_symlink() and _exchange(tmp, target):
        fsync_dir(target.parent)
        shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the old directory
        return target
    # No atomic exchange: rename the old one aside first, put it back if the second rename fails.
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
    os.rmdir(old)
    os.replace(target, old)
    try:
        os.replace(tmp, target)
    except BaseException:
        os.replace(old, target)
        raise
    fsync_dir(target.parent)
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old, ignore_errors=True)
    else:
        old.unlink(missing_ok=True)
    return target
