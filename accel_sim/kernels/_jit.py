"""Numba JIT flags in one place: kernels are nopython (njit), cached on disk, GIL-free."""

from __future__ import annotations

import numba

JIT_OPTIONS = {"cache": True, "nogil": True}

njit = numba.njit
