"""A digest of the code that computes a design point: the installed package sources.

The package version stays the same for many commits, so it cannot tell a stale stored point
from a fresh one. :func:`source_digest` hashes the contents of every ``.py`` file of the
project's packages and the data they ship (hardware presets, built-in studies): any edit to
the simulator, the workloads, the pruning code or the store changes it, and with it every
point's key (``studies.store.point_key``) and mask-file name. It is recorded in ``run.json``.

The packages are found with ``importlib.util.find_spec`` (nothing is imported), read once per
process (about 200 small files) and the result cached.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from pathlib import Path

__all__ = ["PACKAGES", "SOURCE_SUFFIXES", "source_digest"]

PACKAGES = ("accel_sim", "workloads", "pruning", "studies", "safeio")
# Source and shipped data (presets, built-in studies); caches and bytecode are left out.
SOURCE_SUFFIXES = frozenset({".py", ".yaml", ".yml"})
DIGEST_LENGTH = 16


def _package_root(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"package {name!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def _source_files(root: Path) -> list[Path]:
    return sorted(
        path
        for path in root.rglob("*")
        if path.suffix in SOURCE_SUFFIXES and "__pycache__" not in path.parts and path.is_file()
    )


@functools.cache
def source_digest() -> str:
    """sha256 (16 hex digits) over the relative path and contents of every source file of
    :data:`PACKAGES`; the same for the same code wherever it is installed."""
    digest = hashlib.sha256()
    for package in PACKAGES:
        root = _package_root(package)
        for path in _source_files(root):
            relative = f"{package}/{path.relative_to(root).as_posix()}"
            digest.update(relative.encode("utf-8") + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:DIGEST_LENGTH]
