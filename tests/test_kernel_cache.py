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
