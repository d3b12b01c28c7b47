"""Where a GEMM's zero input activations are, for datapaths that skip them.

A workload carries how sparse each GEMM's input is (``GemmOp.activation_density``), not
where the zeros are; a datapath that times zero-skipping token by token needs positions. They
are drawn here, uniformly at random with exactly ``round(density x m x k)`` nonzeros, from a
generator seeded by the op's name and shape, so a run is repeatable and two ops of the same
shape and density get the same pattern.
"""

from __future__ import annotations

import hashlib

import numpy as np

from workloads.ops import GemmOp

__all__ = ["activation_mask", "skips_activations_note"]


def activation_mask(op: GemmOp, rows: int | None = None) -> np.ndarray | None:
    """A bool ``[rows, k]`` mask of nonzero input activations (``rows`` defaults to ``op.m``),
    or None when the input is dense."""
    if op.activation_density >= 1.0:
        return None
    rows = op.m if rows is None else rows
    size = rows * op.k
    nonzero = round(op.activation_density * size)
    seed = hashlib.sha256(f"{op.name}:{rows}x{op.k}:{op.activation_density!r}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(seed[:8], "little"))
    flat = np.zeros(size, dtype=bool)
    flat[rng.choice(size, nonzero, replace=False)] = True
    return flat.reshape(rows, op.k)


def skips_activations_note(op: GemmOp) -> str | None:
    """The per-op note of a datapath that does not skip zero activations."""
    if op.activation_density >= 1.0:
        return None
    return (
        f"input activation density {op.activation_density:.3g} ignored: this datapath "
        "multiplies zero activations"
    )
