"""The tile-joining pipeline terms (``fold_memory.joined_terms`` / ``serial_terms``) against
their naive numpy twins, bit for bit: the mapper's composition used the numpy expressions,
and a sum in another order would move a cycle count across its ceiling."""

from __future__ import annotations

import numpy as np
import pytest

from accel_sim.kernels import fold_memory as fm


def _log(rng: np.random.Generator, folds: int) -> fm.FoldLog:
    scale = rng.choice([1.0, 1e3, 1e6])
    return fm.FoldLog(
        rng.random(folds + 1) * scale,
        rng.random(folds) * scale * rng.integers(0, 2),  # often no spills in flight
        rng.random(folds) * scale,
        np.round(rng.random(folds) * 5000),
    )


def naive_joined(log: fm.FoldLog, before: float, after: float, bw: float) -> float:
    folds = log.busy.shape[0]
    prefetch = log.prefetch[1 : folds + 1].copy()
    prefetch[-1] = after
    moved = prefetch + log.inflight
    moved[1:] += log.writeback[: folds - 1]
    moved[0] += before
    return float(np.maximum(log.busy, moved / bw).sum())


def naive_serial(log: fm.FoldLog, bw: float) -> float:
    folds = log.busy.shape[0]
    load = log.prefetch[:folds] / bw
    stores = log.writeback / bw
    return float((load + np.maximum(log.busy, log.inflight / bw) + stores).sum())


def test_pairwise_sum_is_numpys_sum() -> None:
    rng = np.random.default_rng(0)
    for count in [*range(0, 300), *rng.integers(300, 20000, 200)]:
        values = rng.random(count) * rng.choice([1.0, 1e3, 1e9])
        assert fm.pairwise_sum(values, 0, count) + 0.0 == values.sum(), count
    values = rng.random(1000)
    assert fm.pairwise_sum(values, 100, 517) + 0.0 == values[100:617].sum()


@pytest.mark.parametrize("seed", range(4))
def test_joined_and_serial_terms_match_numpy_bit_for_bit(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for folds in [1, 2, 7, 8, 9, 127, 128, 129, *rng.integers(130, 5000, 20)]:
        log = _log(rng, int(folds))
        before, after = rng.random(2) * 1e5
        bw = float(rng.choice([1.0, 3.7, 64.0, 256.0]))
        assert fm.joined_terms(log, before, after, bw) == naive_joined(log, before, after, bw)
        assert fm.serial_terms(log, bw) == naive_serial(log, bw)


def naive_stitched(runs: list[tuple[fm.FoldLog, float, int]], bw: float) -> float:
    """Tile runs (log, dead write-back, times) joined into one pipeline, term by term."""

    def head(log: fm.FoldLog) -> float:
        return float(log.prefetch[0]) if log.busy.shape[0] else 0.0

    def tail(log: fm.FoldLog, dead: float) -> float:
        folds = log.busy.shape[0]
        return float(log.writeback[folds - 1]) + dead if folds else 0.0

    def terms(log: fm.FoldLog, dead: float, before: float, after: float) -> float:
        return naive_joined(log, before, after, bw) if log.busy.shape[0] else dead / bw

    present = [run for run in runs if run[2]]
    elapsed = head(present[0][0]) / bw
    for index, (log, dead, times) in enumerate(present):
        before = tail(*present[index - 1][:2]) if index else 0.0
        after = head(present[index + 1][0]) if index + 1 < len(present) else 0.0
        if times == 1:
            elapsed += terms(log, dead, before, after)
            continue
        elapsed += terms(log, dead, before, head(log))
        elapsed += (times - 2) * terms(log, dead, tail(log, dead), head(log))
        elapsed += terms(log, dead, tail(log, dead), after)
    return elapsed + tail(*present[-1][:2]) / bw


@pytest.mark.parametrize("seed", range(6))
def test_stitched_terms_match_the_tile_by_tile_sum(seed: int) -> None:
    """One kernel call per mapping gives the sum ``compose`` built tile boundary by tile
    boundary, bit for bit: runs absent (times 0), run once, twice or many times, and tiles
    without folds (only their zero outputs' write-back)."""
    rng = np.random.default_rng(seed)
    for _ in range(40):
        runs = []
        for _slot in range(3):
            folds = int(rng.choice([0, 1, 2, 9, 130, int(rng.integers(1, 400))]))
            runs.append((_log(rng, folds), float(rng.random() * 100 * rng.integers(0, 2)),
                         int(rng.choice([0, 1, 2, 3, 17]))))  # fmt: skip
        if not any(times for *_, times in runs):
            runs[0] = (runs[0][0], runs[0][1], 1)
        bw = float(rng.choice([1.0, 3.7, 64.0]))
        logs = [log for log, _, _ in runs]
        got = fm.stitched_terms(
            tuple(log.prefetch for log in logs), tuple(log.inflight for log in logs),
            tuple(log.writeback for log in logs), tuple(log.busy for log in logs),
            tuple(dead for _, dead, _ in runs), tuple(times for *_, times in runs), bw,
        )  # fmt: skip
        assert got == naive_stitched(runs, bw)
