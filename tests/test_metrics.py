"""pruning.metrics: hand-computed values, undefined cases, input checks, sklearn agreement."""

from __future__ import annotations

import numpy as np
import pytest

from pruning.metrics import accuracy, f1_binary, matthews_corrcoef, pearson, spearman

ALL = [accuracy, f1_binary, matthews_corrcoef, pearson, spearman]


def test_accuracy_hand_value():
    assert accuracy([1, 0, 1, 1], [1, 1, 1, 0]) == 0.5
    assert accuracy(np.array([2, 0, 1]), [2, 0, 1]) == 1.0


def test_f1_hand_value():
    # tp = 2, fp = 1, fn = 1: F1 = 2*2 / (2*2 + 1 + 1)
    assert f1_binary([1, 1, 0, 0, 1], [1, 0, 0, 1, 1]) == pytest.approx(4 / 6)
    assert f1_binary([1, 1, 0], [1, 1, 0]) == 1.0
    assert f1_binary([0, 0, 1], [1, 1, 0]) == 0.0


def test_f1_undefined_is_zero():
    """No positive predicted and none true: tp = fp = fn = 0."""
    assert f1_binary([0, 0, 0], [0, 0, 0]) == 0.0


def test_f1_rejects_non_binary_values():
    with pytest.raises(ValueError, match=r"f1_binary needs labels in \{0, 1\}, found \[2\]"):
        f1_binary([0, 1, 1], [0, 1, 2])


def test_matthews_hand_value():
    # tp = 2, tn = 1, fp = 1, fn = 1: (2*1 - 1*1) / sqrt(3 * 3 * 2 * 2) = 1/6
    assert matthews_corrcoef([1, 1, 0, 0, 1], [1, 0, 0, 1, 1]) == pytest.approx(1 / 6)
    assert matthews_corrcoef([0, 1, 0, 1], [0, 1, 0, 1]) == pytest.approx(1.0)
    assert matthews_corrcoef([1, 0, 1, 0], [0, 1, 0, 1]) == pytest.approx(-1.0)


def test_matthews_undefined_is_zero():
    assert matthews_corrcoef([1, 1, 1, 1], [0, 1, 0, 1]) == 0.0
    assert matthews_corrcoef([0, 1, 0, 1], [1, 1, 1, 1]) == 0.0


def test_correlations_hand_values():
    # deviations (-1.5, -0.5, 0.5, 1.5) and (-1.5, 0.5, -0.5, 1.5): 4 / sqrt(5 * 5)
    assert pearson([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    assert spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    # monotone but not linear: ranks agree exactly, values do not
    assert spearman([1, 2, 3, 4], [1, 4, 9, 100]) == pytest.approx(1.0)
    assert pearson([1, 2, 3, 4], [1, 4, 9, 100]) < 0.9
    # ties get average ranks: (1, 2.5, 2.5, 4) against (1, 2, 3, 4) gives 4.5 / sqrt(4.5 * 5)
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(4.5 / np.sqrt(22.5))


def test_correlation_with_a_constant_side_is_zero():
    assert pearson([2.0, 2.0, 2.0], [1.0, 2.0, 3.0]) == 0.0
    assert spearman([1.0, 2.0, 3.0], [4.0, 4.0, 4.0]) == 0.0


@pytest.mark.parametrize("metric", [pearson, spearman])
def test_correlation_needs_two_finite_values(metric):
    with pytest.raises(ValueError, match="at least 2"):
        metric([1.0], [1.0])
    with pytest.raises(ValueError, match="predictions contain NaN"):
        metric([1.0, float("nan"), 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="labels contain NaN or infinite"):
        metric([1.0, 2.0, 3.0], [1.0, float("inf"), 3.0])


@pytest.mark.parametrize("metric", ALL)
def test_length_checks(metric):
    with pytest.raises(ValueError, match=r"predictions \(2\) and labels \(3\) differ in length"):
        metric([0, 1], [0, 1, 1])
    with pytest.raises(ValueError, match="need at least"):
        metric([], [])
    with pytest.raises(ValueError, match="must be 1-D"):
        metric([[0, 1]], [[0, 1]])


@pytest.mark.parametrize("seed", range(5))
def test_agrees_with_sklearn_and_scipy(seed):
    skm = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=200)
    preds = np.where(rng.random(200) < 0.7, labels, 1 - labels)
    assert accuracy(preds, labels) == pytest.approx(skm.accuracy_score(labels, preds))
    assert f1_binary(preds, labels) == pytest.approx(skm.f1_score(labels, preds))
    assert matthews_corrcoef(preds, labels) == pytest.approx(skm.matthews_corrcoef(labels, preds))
    three = rng.integers(0, 3, size=200)
    noisy = np.where(rng.random(200) < 0.6, three, rng.integers(0, 3, size=200))
    assert matthews_corrcoef(noisy, three) == pytest.approx(skm.matthews_corrcoef(three, noisy))


def test_matthews_constant_matches_sklearn():
    skm = pytest.importorskip("sklearn.metrics")
    assert matthews_corrcoef([1, 1, 1], [0, 1, 0]) == skm.matthews_corrcoef([0, 1, 0], [1, 1, 1])
