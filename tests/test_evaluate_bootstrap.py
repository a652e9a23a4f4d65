"""Percentile bootstrap: determinism, coverage of the mean, NaN handling, mean of means."""

import math

import numpy as np
import pytest

from darkside.evaluate.bootstrap import bootstrap_ci, bootstrap_mean_of_means


def test_deterministic_and_contains_mean():
    v = np.random.default_rng(0).random(60)
    a = bootstrap_ci(v, 500, seed=7)
    assert a == bootstrap_ci(v, 500, seed=7)
    assert a != bootstrap_ci(v, 500, seed=8)
    mean, lo, hi = a
    assert mean == pytest.approx(v.mean())
    assert lo < mean < hi
    # a 95% interval of a mean of 60 uniforms is about +-2 * 0.29 / sqrt(60) = +-0.075
    assert 0.04 < hi - mean < 0.11 and 0.04 < mean - lo < 0.11


def test_nans_dropped_and_degenerate_cases():
    assert bootstrap_ci(np.array([1.0, np.nan, 3.0]), 200, 0)[0] == pytest.approx(2.0)
    assert bootstrap_ci(np.array([5.0, 5.0, 5.0]), 100, 0) == (5.0, 5.0, 5.0)
    assert all(math.isnan(x) for x in bootstrap_ci(np.array([np.nan]), 100, 0))


def test_mean_of_means():
    a, b = np.array([0.0, 1.0] * 10), np.array([1.0, 1.0, 1.0])
    mean, lo, hi = bootstrap_mean_of_means([a, b], 400, seed=1)
    assert mean == pytest.approx((0.5 + 1.0) / 2)
    # b is constant, so the spread is half of a's own interval
    _, alo, ahi = bootstrap_ci(a, 400, seed=2)
    assert lo < mean < hi
    assert (hi - lo) == pytest.approx((ahi - alo) / 2, rel=0.35)
    assert bootstrap_mean_of_means([a, b], 400, seed=1) == (mean, lo, hi)
