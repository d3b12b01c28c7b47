"""The package version recorded in every result (keys results with the code that made them)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sparse-bert-cosim")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
