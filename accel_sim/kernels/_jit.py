"""Numba JIT flags in one place: kernels are nopython (njit), cached on disk, GIL-free.

The on-disk cache is keyed by every kernel module's source, not only the kernel's own file.
Kernels inline helpers from other kernel modules (``fold_memory.record_fold`` into each
schedule kernel), and Numba checks a cached kernel only against the file that defines it, so
an edit to a helper alone left the other files' kernels running their old machine code (found
when a changed ``record_fold`` made cached kernels fail with "'descr' is NULL"). The locators
below are Numba's own (a user's ``NUMBA_CACHE_DIR``, else the package's ``__pycache__``, else
the user-wide cache folder) with that stamp, for the files of this package only.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

import numba
from numba.core import caching

JIT_OPTIONS = {"cache": True, "nogil": True}

njit = numba.njit

KERNELS_DIR = Path(__file__).resolve().parent


def sources_digest(folder: Path) -> bytes:
    """sha256 over the names and contents of the ``*.py`` files in ``folder``."""
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.digest()


@cache
def kernels_digest() -> bytes:
    """``sources_digest`` of this package, read once per process."""
    return sources_digest(KERNELS_DIR)


class _KernelsStamp:
    """A cached kernel is fresh while no kernel module has changed."""

    def get_source_stamp(self) -> bytes:
        return kernels_digest()

    @classmethod
    def from_function(cls, py_func, py_file):
        if Path(py_file).resolve().parent != KERNELS_DIR:
            return None  # another package's function: Numba's own locators
        return super().from_function(py_func, py_file)


class KernelsUserDirLocator(_KernelsStamp, caching.UserProvidedCacheLocator):
    """Under ``NUMBA_CACHE_DIR`` when the user sets one."""


class KernelsInTreeLocator(_KernelsStamp, caching.InTreeCacheLocator):
    """In the package's ``__pycache__`` when writable."""


class KernelsUserWideLocator(_KernelsStamp, caching.UserWideCacheLocator):
    """In the user's cache folder otherwise (a read-only install)."""


def _register_locators() -> None:
    classes = caching.CacheImpl._locator_classes
    # Tried in Numba's own order: the user's folder, the package's, the user-wide one.
    for locator in (KernelsUserWideLocator, KernelsInTreeLocator, KernelsUserDirLocator):
        if locator not in classes:
            classes.insert(0, locator)


_register_locators()


def single_threaded() -> None:
    """Cap Numba's thread pool at one thread (sweep workers parallelise at the point level)."""
    numba.set_num_threads(1)
