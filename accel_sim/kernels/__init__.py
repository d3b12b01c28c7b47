"""Numba kernels: the only package that imports numba. Each takes arrays and scalars only."""
