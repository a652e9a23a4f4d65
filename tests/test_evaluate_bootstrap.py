"""Percentile bootstrap: determinism, coverage of the mean, NaN handling, mean of means, seeds and queries."""

import math

import numpy as np
import pytest

from darkside.evaluate.bootstrap import bootstrap_ci, bootstrap_mean_of_means, paired_seed_query_ci


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


def test_seed_and_query_interval_one_seed_is_the_paired_query_bootstrap():
    rng = np.random.default_rng(3)
    a, b = rng.uniform(0, 1, 40), rng.uniform(0, 1, 40)
    one = paired_seed_query_ci(a[None], b[None], 2000, 7)
    assert one[0] == pytest.approx(float((a - b).mean()))
    # seed rows that agree carry no seed variance: three copies give the one-seed interval exactly
    assert paired_seed_query_ci(np.stack([a] * 3), np.stack([b] * 2), 2000, 7) == pytest.approx(one, abs=1e-12)
    assert paired_seed_query_ci(a[None], b[None], 2000, 7) == one  # deterministic for a seed
    lo, hi = one[1:]
    assert lo < one[0] < hi


def test_seed_and_query_interval_resamples_seeds():
    # one query, recipe a's two seeds give 0 and 2, b's one gives 1: the seed means of a resample to 0, 1 or 2
    # (1/4, 1/2, 1/4), so the differences are -1, 0, +1 and the 95% interval spans [-1, +1]
    mean, lo, hi = paired_seed_query_ci(np.array([[0.0], [2.0]]), np.array([[1.0]]), 4000, 0)
    assert (mean, lo, hi) == (0.0, -1.0, 1.0)
    # seed spread widens an interval the query bootstrap alone would report as tight
    rng = np.random.default_rng(0)
    q = rng.uniform(0, 1, 60)
    a = np.stack([q + 0.1, q - 0.1, q + 0.05])
    b = np.stack([q, q])
    wide = paired_seed_query_ci(a, b, 2000, 1)
    tight = paired_seed_query_ci(a[:1], b[:1], 2000, 1)
    assert wide[2] - wide[1] > tight[2] - tight[1]


def test_seed_and_query_interval_edge_cases():
    nan = float("nan")
    assert np.isnan(paired_seed_query_ci(np.array([[nan]]), np.array([[1.0]]), 100, 0)).all()
    assert paired_seed_query_ci(np.array([[1.0, nan, 3.0]]), np.array([[0.0, 5.0, 1.0]]), 0, 0) == (1.5, 1.5, 1.5)
    with pytest.raises(ValueError, match="same queries"):
        paired_seed_query_ci(np.zeros((1, 3)), np.zeros((1, 4)), 10, 0)
