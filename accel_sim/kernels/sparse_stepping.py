"""Cycle-stepping references for the compacting kernels (``sparse_folds``).

They pack the folds themselves from the mask and step every PE, bank and skew register cycle
by cycle, so they check the closed forms of ``sparse_folds`` on small cases (the tests run
both engines on random masks and require equal per-fold cycles).

- ``fold_cycles_stepping``: weight-stationary skipping or N:M mode: banks, issue, skew and
  drain of every PE; returns per-fold cycles and the MACs it performed.
- ``fold_cycles_stepping_os`` / ``fold_cycles_stepping_is``: output- and input-stationary
  skipping.
"""

from __future__ import annotations

import numpy as np

from accel_sim.kernels._jit import JIT_OPTIONS, njit

__all__ = ["fold_cycles_stepping", "fold_cycles_stepping_is", "fold_cycles_stepping_os"]


@njit(**JIT_OPTIONS)
def _step_fold(row_bank, n_banks, rr, cc, rows, cols, m):
    """Step one fold cycle by cycle; returns (cycles, MACs performed).

    Cycle 0..R-1: preload (weights shift down one row a cycle). Then, from streaming cycle
    x = 0: (1) every bank with requests left serves the oldest one (token order); (2) the next
    token row is issued if all its rr words have been served (one issue a cycle); (3) the array
    shifts: PE (i, j) takes its left neighbour's token, row i's first PE takes the token issued
    in cycle x - i (the skew), and every PE holding a token (i < rr, j < cc) does a MAC. Unused
    PEs pass partial sums through, so outputs drain through the full R x C array. The fold
    ends after the last cycle in which any PE holds a token.
    """
    per_bank = np.zeros(n_banks, dtype=np.int64)
    for i in range(rr):
        per_bank[row_bank[i]] += 1
    served = np.zeros(n_banks, dtype=np.int64)
    delivered = np.zeros(m, dtype=np.int64)
    horizon = m * rr + 1  # issue cycles are < m * worst conflict <= m * rr
    issued_at = np.full(horizon, -1, dtype=np.int64)
    grid = np.full((rows, cols), -1, dtype=np.int64)
    issued = 0
    macs = 0
    last_active = -1
    x = 0
    while True:
        for b in range(n_banks):
            if served[b] < m * per_bank[b]:
                delivered[served[b] // per_bank[b]] += 1
                served[b] += 1
        if issued < m and delivered[issued] == rr:
            issued_at[x] = issued
            issued += 1
        any_active = False
        for i in range(rows):
            for j in range(cols - 1, 0, -1):
                grid[i, j] = grid[i, j - 1]
            src = x - i
            grid[i, 0] = issued_at[src] if 0 <= src < horizon else -1
            for j in range(cols):
                if grid[i, j] >= 0:
                    any_active = True
                    if i < rr and j < cc:
                        macs += 1
        if any_active:
            last_active = x
        elif issued == m:
            break  # everything issued, and the last token has left the array
        x += 1
    return rows + last_active + 1, macs


@njit(**JIT_OPTIONS)
def fold_cycles_stepping(mask, m, rows, cols, granularity, banks, nm_n, nm_m, nm_mode):
    """Cycle-stepping reference for one GEMM: (per-fold cycles, MACs performed).

    Packs the folds itself from ``mask [N, K]`` (skipping at ``granularity``, or N:M mode when
    ``nm_mode``), gives each fold row its ifmap bank (``k % banks``; in N:M mode a distinct
    port per row, no conflicts) and steps every fold with ``_step_fold``. Folds run back to
    back: a fold's preload starts in the cycle after the previous fold's last active cycle.
    """
    n, k = mask.shape
    n_strips = (n + cols - 1) // cols
    out = np.zeros(n_strips * ((k + rows - 1) // rows) + 1, dtype=np.int64)
    total_macs = 0
    f = 0
    packed = np.zeros(k, dtype=np.int64)
    row_bank = np.zeros(rows, dtype=np.int64)
    for c in range(n_strips):
        cc = min(cols, n - c * cols)
        if nm_mode:
            n_packed = k // nm_m * nm_n  # slots; banks are per row, conflict-free
            n_banks = rows
        else:
            n_banks = banks
            n_packed = 0
            for g0 in range(0, k, granularity):
                g1 = min(k, g0 + granularity)
                keep = False
                for i in range(g0, g1):
                    for j in range(c * cols, c * cols + cc):
                        if mask[j, i]:
                            keep = True
                if keep:
                    for i in range(g0, g1):
                        packed[n_packed] = i
                        n_packed += 1
        for s in range(0, n_packed, rows):
            rr = min(rows, n_packed - s)
            for i in range(rr):
                row_bank[i] = i if nm_mode else packed[s + i] % banks
            cycles, macs = _step_fold(row_bank, n_banks, rr, cc, rows, cols, m)
            out[f] = cycles
            total_macs += macs
            f += 1
    return out[:f].copy(), total_macs


@njit(**JIT_OPTIONS)
def _step_fold_os(rr, cc, rows, cols, t):
    """Step one output-stationary fold; returns (cycles, MACs performed).

    Stream position s (the s-th live K index) enters array row i's left edge in cycle s + i
    (the ifmap of the row's token) and column j's top edge in cycle s + j (the weight of the
    column's output); activations shift right and weights down one PE a cycle, through all
    R x C PEs (pad words in unused rows and columns, as SCALE-Sim's demand matrices). PE
    (i, j) with i < rr, j < cc does a MAC when it holds an activation and a weight of the same
    position. The fold ends after the last cycle in which any PE holds an operand.
    """
    act = np.full((rows, cols), -1, dtype=np.int64)
    wgt = np.full((rows, cols), -1, dtype=np.int64)
    macs = 0
    last_active = -1
    x = 0
    while True:
        for i in range(rows):
            for j in range(cols - 1, 0, -1):
                act[i, j] = act[i, j - 1]
            src = x - i
            act[i, 0] = src if 0 <= src < t else -1
        for j in range(cols):
            for i in range(rows - 1, 0, -1):
                wgt[i, j] = wgt[i - 1, j]
            src = x - j
            wgt[0, j] = src if 0 <= src < t else -1
        any_active = False
        for i in range(rows):
            for j in range(cols):
                if act[i, j] >= 0 or wgt[i, j] >= 0:
                    any_active = True
                if i < rr and j < cc and act[i, j] >= 0 and act[i, j] == wgt[i, j]:
                    macs += 1
        if any_active:
            last_active = x
        elif x >= t:
            break  # every position entered (x >= t) and left the array
        x += 1
    return last_active + 1, macs


@njit(**JIT_OPTIONS)
def fold_cycles_stepping_os(mask, m, rows, cols, granularity):
    """Cycle-stepping reference for output-stationary skipping of ``mask [N, K]``: (per-fold
    cycles, MACs performed). Finds each output strip's live K groups itself and steps every
    (row fold of m, live strip) fold with ``_step_fold_os``, in the fast engine's order."""
    n, k = mask.shape
    n_strips = (n + cols - 1) // cols
    tiles = (m + rows - 1) // rows
    t_live = np.zeros(n_strips, dtype=np.int64)
    for c in range(n_strips):
        for g0 in range(0, k, granularity):
            g1 = min(k, g0 + granularity)
            keep = False
            for i in range(g0, g1):
                for j in range(c * cols, min(n, c * cols + cols)):
                    if mask[j, i]:
                        keep = True
            if keep:
                t_live[c] += g1 - g0
    out = np.zeros(tiles * n_strips, dtype=np.int64)
    total_macs = 0
    f = 0
    for r in range(tiles):
        rr = min(rows, m - r * rows)
        for c in range(n_strips):
            if t_live[c] == 0:
                continue
            cycles, macs = _step_fold_os(rr, min(cols, n - c * cols), rows, cols, t_live[c])
            out[f] = cycles
            total_macs += macs
            f += 1
    return out[:f].copy(), total_macs


@njit(**JIT_OPTIONS)
def fold_cycles_stepping_is(mask, m, rows, cols, granularity):
    """Cycle-stepping reference for input-stationary skipping of ``mask [N, K]``: (per-fold
    cycles, MACs performed). Finds each K strip's live N groups itself; each (column fold of
    m, live strip) fold preloads its ifmap tile and streams the live weight columns, one word
    per array row per cycle from that row's own filter port (no conflicts), stepped by
    ``_step_fold`` (stream element = weight column instead of token row)."""
    n, k = mask.shape
    k_strips = (k + rows - 1) // rows
    tiles = (m + cols - 1) // cols
    t_live = np.zeros(k_strips, dtype=np.int64)
    for r in range(k_strips):
        for g0 in range(0, n, granularity):
            g1 = min(n, g0 + granularity)
            keep = False
            for j in range(g0, g1):
                for i in range(r * rows, min(k, r * rows + rows)):
                    if mask[j, i]:
                        keep = True
            if keep:
                t_live[r] += g1 - g0
    ports = np.arange(rows)
    out = np.zeros(tiles * k_strips, dtype=np.int64)
    total_macs = 0
    f = 0
    for c in range(tiles):
        cc = min(cols, m - c * cols)
        for r in range(k_strips):
            if t_live[r] == 0:
                continue
            rr = min(rows, k - r * rows)
            cycles, macs = _step_fold(ports, rows, rr, cc, rows, cols, t_live[r])
            out[f] = cycles
            total_macs += macs
            f += 1
    return out[:f].copy(), total_macs
