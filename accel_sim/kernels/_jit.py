"""Numba JIT flags in one place: kernels are nopython (njit), cached on disk, GIL-free."""

from __future__ import annotations

import numba

JIT_OPTIONS = {"cache": True, "nogil": True}

njit = numba.njit


def single_threaded() -> None:
    """Cap Numba's thread pool at one thread (sweep workers parallelise at the point level)."""
    numba.set_num_threads(1)
