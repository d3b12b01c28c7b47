"""Numba's on-disk cache of the kernels is keyed by every kernel module's source.

A kernel inlines helpers from other kernel modules, and Numba checks a cached kernel only
against its own file: an edit to ``fold_memory.record_fold`` alone left the schedule kernels
of the other files loading their old machine code from ``__pycache__``."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from numba.core.caching import FunctionCache
from numba.core.registry import CPUDispatcher

import accel_sim.kernels as kernels
from accel_sim.kernels._jit import (
    KernelsInTreeLocator,
    KernelsUserDirLocator,
    kernels_digest,
    sources_digest,
)


def _dispatchers() -> list[CPUDispatcher]:
    found = []
    for info in pkgutil.iter_modules(kernels.__path__):
        module = importlib.import_module(f"accel_sim.kernels.{info.name}")
        found += [value for value in vars(module).values() if isinstance(value, CPUDispatcher)]
    return found


def test_every_cached_kernel_is_stamped_with_all_kernel_sources() -> None:
    dispatchers = _dispatchers()
    assert len(dispatchers) > 30
    assert all(isinstance(d._cache, FunctionCache) for d in dispatchers)  # every kernel cached
    for dispatcher in dispatchers:
        locator = dispatcher._cache._impl.locator
        assert isinstance(locator, KernelsInTreeLocator | KernelsUserDirLocator), dispatcher
        assert locator.get_source_stamp() == kernels_digest()


def test_the_stamp_changes_with_any_kernel_file(tmp_path: Path) -> None:
    (tmp_path / "helper.py").write_text("def record(x):\n    return x + 1\n")
    (tmp_path / "kernel.py").write_text("from helper import record\n")
    before = sources_digest(tmp_path)
    (tmp_path / "helper.py").write_text("def record(x):\n    return x + 2\n")
    edited = sources_digest(tmp_path)
    (tmp_path / "other.py").write_text("")
    added = sources_digest(tmp_path)
    assert len({before, edited, added}) == 3
    (tmp_path / "helper.py").write_text("def record(x):\n    return x + 1\n")
    (tmp_path / "other.py").unlink()
    assert sources_digest(tmp_path) == before  # content, not modification times


def test_a_read_only_package_caches_user_wide_under_the_same_stamp(tmp_path: Path) -> None:
    """With no ``NUMBA_CACHE_DIR`` and an unwritable ``__pycache__`` the kernels cache in
    the user's folder, still stamped with every kernel source (Numba's own user-wide
    locator stamps each file alone)."""
    import subprocess
    import sys

    from accel_sim.kernels import _jit

    tree = tmp_path / "accel_sim" / "kernels"
    tree.mkdir(parents=True)
    for path in _jit.KERNELS_DIR.glob("*.py"):
        (tree / path.name).write_bytes(path.read_bytes())
    (tree / "__pycache__").write_text("not a folder")  # so the in-tree cache cannot be made
    (tmp_path / "accel_sim" / "__init__.py").write_text("")
    probe = (
        "import os; os.environ.pop('NUMBA_CACHE_DIR', None)\n"
        "from accel_sim.kernels import fold_memory as fm, sparse_folds as sk, _jit\n"
        "locators = [f._cache._impl.locator for f in (fm.finish, sk.skipping_folds)]\n"
        "print(*(type(loc).__name__ for loc in locators))\n"
        "print(all(loc.get_source_stamp() == _jit.kernels_digest() for loc in locators))\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "NUMBA_CACHE_DIR"}
    env["PYTHONPATH"] = str(tmp_path)
    env["XDG_CACHE_HOME"] = str(tmp_path / "user-cache")  # Numba's user-wide folder, here
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    names, same = done.stdout.split("\n")[:2]
    assert names.split() == ["KernelsUserWideLocator", "KernelsUserWideLocator"]
    assert same == "True"
    assert (tmp_path / "user-cache" / "numba").is_dir()
