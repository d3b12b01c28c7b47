"""GLUE task metrics: accuracy, binary F1, Matthews correlation, Pearson and Spearman.

Torch-free (numpy and scipy only) so the simulator side and result tables can score
predictions without loading a model. Every function takes two equal-length, non-empty
sequences (predictions first, then gold labels) and returns a plain ``float``; bad input
raises ``ValueError`` naming the problem.

Undefined values follow scikit-learn's defaults rather than returning NaN, so a degenerate
model (one that predicts a single class, or a constant score) scores 0.0 and stays
comparable in sweeps: F1 with no positive predicted and none true, MCC with a constant
prediction or label, and a correlation where either side is constant are all 0.0.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

__all__ = ["accuracy", "f1_binary", "matthews_corrcoef", "pearson", "spearman"]


def _pair(preds: ArrayLike, labels: ArrayLike, *, min_len: int = 1) -> tuple[np.ndarray, ...]:
    p, y = np.asarray(preds), np.asarray(labels)
    if p.ndim != 1 or y.ndim != 1:
        raise ValueError(f"predictions and labels must be 1-D, got shapes {p.shape} and {y.shape}")
    if len(p) != len(y):
        raise ValueError(f"predictions ({len(p)}) and labels ({len(y)}) differ in length")
    if len(p) < min_len:
        raise ValueError(f"need at least {min_len} prediction(s), got {len(p)}")
    return p, y


def _finite(p: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p, y = p.astype(np.float64), y.astype(np.float64)
    for name, values in (("predictions", p), ("labels", y)):
        if not np.all(np.isfinite(values)):
            raise ValueError(f"{name} contain NaN or infinite values")
    return p, y


def accuracy(preds: ArrayLike, labels: ArrayLike) -> float:
    """Fraction of predictions equal to their label."""
    p, y = _pair(preds, labels)
    return float(np.mean(p == y))


def f1_binary(preds: ArrayLike, labels: ArrayLike) -> float:
    """F1 of the positive class 1: ``2 tp / (2 tp + fp + fn)``; values must be 0 or 1.

    When nothing is predicted positive and nothing is positive (``tp = fp = fn = 0``), F1 is
    undefined; it is 0.0 here, as scikit-learn's default ``zero_division`` gives.
    """
    p, y = _pair(preds, labels)
    for name, values in (("predictions", p), ("labels", y)):
        bad = sorted(set(np.unique(values).tolist()) - {0, 1})
        if bad:
            raise ValueError(f"f1_binary needs {name} in {{0, 1}}, found {bad[:5]}")
    tp = int(np.sum((p == 1) & (y == 1)))
    fp = int(np.sum((p == 1) & (y == 0)))
    fn = int(np.sum((p == 0) & (y == 1)))
    denominator = 2 * tp + fp + fn
    return 2.0 * tp / denominator if denominator else 0.0


def matthews_corrcoef(preds: ArrayLike, labels: ArrayLike) -> float:
    """Matthews correlation (multi-class form, Gorodkin 2004); 0.0 where undefined.

    It is undefined when predictions or labels take a single value (a zero in the
    denominator); scikit-learn returns 0.0 there too.
    """
    p, y = _pair(preds, labels)
    classes, codes = np.unique(np.concatenate([y, p]), return_inverse=True)
    k, n = len(classes), len(y)
    confusion = np.zeros((k, k), dtype=np.float64)
    np.add.at(confusion, (codes[:n], codes[n:]), 1.0)
    true_counts, pred_counts = confusion.sum(axis=1), confusion.sum(axis=0)
    correct, total = np.trace(confusion), float(n)
    cov_yp = correct * total - pred_counts @ true_counts
    cov_pp = total * total - pred_counts @ pred_counts
    cov_yy = total * total - true_counts @ true_counts
    if cov_pp == 0.0 or cov_yy == 0.0:
        return 0.0
    return float(cov_yp / np.sqrt(cov_pp * cov_yy))


def _correlation(preds: ArrayLike, labels: ArrayLike, kind: str) -> float:
    p, y = _finite(*_pair(preds, labels, min_len=2))
    if np.all(p == p[0]) or np.all(y == y[0]):
        return 0.0
    result = stats.pearsonr(p, y) if kind == "pearson" else stats.spearmanr(p, y)
    return float(result.statistic)


def pearson(preds: ArrayLike, labels: ArrayLike) -> float:
    """Pearson correlation; needs two or more finite values; 0.0 if either side is constant."""
    return _correlation(preds, labels, "pearson")


def spearman(preds: ArrayLike, labels: ArrayLike) -> float:
    """Spearman rank correlation (ties get average ranks); 0.0 if either side is constant."""
    return _correlation(preds, labels, "spearman")
