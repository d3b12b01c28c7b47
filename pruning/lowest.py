"""Prune the ``k`` lowest scores, ties to the lower index, in a few vectorised passes.

The rule is that of a stable ascending sort (``NaN`` last): the pruned entries are the first
``k`` of that order over the scores of several arrays read as one concatenation. A sort costs
seconds on BERT-base's 85 M weights; the ``k``-th smallest value only needs a bracket: the
quantiles of a small random sample around ``k / n`` give ``lo <= t <= hi`` for the threshold
``t``. One pass over the scores counts those below ``lo``, marks those above ``hi`` (kept)
and collects the few in ``[lo, hi]`` with their positions; a partition of those finds ``t``
and settles them. A bracket that misses (a sample of bad luck, many equal scores, ``NaN``)
shows in the counts and is answered by an exact stable sort, so the result never depends
on the sample. The pass runs a cache-sized chunk at a time, and a ``key`` (such as
``np.abs``) is applied per chunk, so no full copy of the scores is ever written.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence

import numpy as np

__all__ = ["keep_above_lowest"]

Key = Callable[[np.ndarray], np.ndarray] | None

SAMPLE_SIZE = 1 << 13
SMALL = 1 << 15  # below this many scores, partition them all at once
BRACKET_SIGMAS = 5.0  # half-width of the bracket, in standard errors of the sample quantile
SAMPLE_SEED = 0
CHUNK = 1 << 17  # scores per pass step: a few hundred KiB, cache-resident


def _scored(values: np.ndarray, key: Key) -> np.ndarray:
    return values if key is None else key(values)


def _chunks(flat: np.ndarray) -> Iterator[slice]:
    for start in range(0, flat.size, CHUNK):
        yield slice(start, start + CHUNK)


@functools.lru_cache(maxsize=8)
def _sample_positions(n: int, size: int) -> np.ndarray:
    """One random position in each of ``size`` equal strata of ``range(n)``: sorted, and no
    period of the data (a row length, say) can line up with them."""
    stride = n // size
    offsets = np.random.default_rng(SAMPLE_SEED).integers(0, stride, size)
    positions = np.arange(size) * stride + offsets
    positions.flags.writeable = False
    return positions


def _bracket(flats: Sequence[np.ndarray], n: int, k: int, key: Key) -> tuple[float, float]:
    """Scores ``lo <= hi`` that very likely enclose the ``k``-th smallest (1-based)."""
    if n <= max(SMALL, SAMPLE_SIZE):
        return -np.inf, np.inf
    picks = _sample_positions(n, SAMPLE_SIZE)
    starts = np.cumsum([0] + [f.size for f in flats])
    cuts = np.searchsorted(picks, starts)
    bounds = zip(flats, starts[:-1], cuts[:-1], cuts[1:], strict=True)
    drawn = [flat[picks[a:b] - start] for flat, start, a, b in bounds]
    sample = _scored(np.concatenate(drawn), key)
    q = k / n
    half = BRACKET_SIGMAS * np.sqrt(q * (1.0 - q) / SAMPLE_SIZE) + 2.0 / SAMPLE_SIZE
    lo_at = int(np.floor((q - half) * SAMPLE_SIZE))
    hi_at = int(np.ceil((q + half) * SAMPLE_SIZE))
    inside = [i for i in (lo_at, hi_at) if 0 <= i < SAMPLE_SIZE]
    ordered = np.partition(sample, inside) if inside else sample
    lo = ordered[lo_at] if lo_at >= 0 else -np.inf
    hi = ordered[hi_at] if hi_at < SAMPLE_SIZE else np.inf
    # NaN sorts last, so a quantile can land on one; no score compares with NaN, and a NaN
    # ``hi`` would leave every score outside the bracket, so such a bound opens to infinity
    # (``NaN`` scores are kept regardless: they fail ``score <= hi``)
    return (-np.inf if np.isnan(lo) else lo), (np.inf if np.isnan(hi) else hi)


def _scan(
    flats: Sequence[np.ndarray], lo: float, hi: float, key: Key
) -> tuple[int, list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """One pass: how many scores are below ``lo``; per array, ``score <= hi`` (a mask to
    finish later) and the positions and values of the candidates, ``lo <= score <= hi``."""
    below = 0
    at_most_hi, where, values = [], [], []
    for flat in flats:
        le_hi = np.empty(flat.size, dtype=bool)
        positions, found = [], []
        for part in _chunks(flat):
            scores = _scored(flat[part], key)
            under = scores < lo
            below += int(np.count_nonzero(under))
            candidate = np.less_equal(scores, hi, out=le_hi[part])
            inside = np.flatnonzero(candidate ^ under)
            positions.append(inside + part.start)
            found.append(scores[inside])
        at_most_hi.append(le_hi)
        where.append(np.concatenate(positions) if positions else np.empty(0, dtype=np.intp))
        values.append(np.concatenate(found) if found else flat[:0])
    return below, at_most_hi, where, values


def _exact(flats: Sequence[np.ndarray], k: int, key: Key = None) -> list[np.ndarray]:
    """The definition: a stable argsort of the concatenation, first ``k`` pruned."""
    scores = _scored(np.concatenate(flats), key)
    keep = np.ones(scores.size, dtype=bool)
    keep[np.argsort(scores, kind="stable")[:k]] = False
    return np.split(keep, np.cumsum([f.size for f in flats])[:-1])


def _select(flats: Sequence[np.ndarray], n: int, k: int, key: Key) -> list[np.ndarray]:
    below, masks, where, values = _scan(flats, *_bracket(flats, n, k, key), key)
    candidates = np.concatenate(values)
    rank = k - 1 - below  # 0-based rank of the threshold t among the candidates
    if not 0 <= rank < candidates.size:
        return _exact(flats, k, key)  # the bracket missed t
    t = np.partition(candidates, rank)[rank]  # never NaN: NaN fails both comparisons
    pruned_ties = k - below - int(np.count_nonzero(candidates < t))
    # kept: scores above hi (and NaN), candidates above t, and of those equal to t all but
    # the first pruned_ties
    for mask, position, value in zip(masks, where, values, strict=True):
        np.logical_not(mask, out=mask)
        mask[position[value > t]] = True
        ties = position[value == t]
        mask[ties[pruned_ties:]] = True
        pruned_ties = max(0, pruned_ties - ties.size)
    return masks


def keep_above_lowest(scores: Sequence[np.ndarray], k: int, key: Key = None) -> list[np.ndarray]:
    """Keep-masks (same shapes) with the ``k`` lowest of all ``scores`` pruned: lowest first,
    equal scores by position in the concatenation of the flattened arrays, ``NaN`` last.
    With ``key`` the scores are ``key(array)`` (elementwise, e.g. ``np.abs``)."""
    flats = [np.ravel(s) for s in scores]
    n = sum(f.size for f in flats)
    if k <= 0:
        masks = [np.ones(f.size, dtype=bool) for f in flats]
    elif k >= n:
        masks = [np.zeros(f.size, dtype=bool) for f in flats]
    else:
        masks = _select(flats, n, k, key)
    return [m.reshape(np.shape(s)) for m, s in zip(masks, scores, strict=True)]
