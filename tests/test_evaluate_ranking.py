"""Chunked ranks and top-k are identical to a full stable argsort, ties included."""

import numpy as np
import pytest

from darkside.evaluate.ranking import positive_ranks, ranks_of, topk


def _data(seed, n=11, m=4, d=5, ties=False):
    rng = np.random.default_rng(seed)
    if ties:  # small integers: exact dot products, and duplicated rows give exact ties
        X = rng.integers(-2, 3, size=(n, d)).astype(np.float32)
        X[7] = X[2]
        X[9] = X[2]
        X[4] = X[0]
        Q = rng.integers(-2, 3, size=(m, d)).astype(np.float32)
    else:
        X = rng.standard_normal((n, d)).astype(np.float32)
        Q = rng.standard_normal((m, d)).astype(np.float32)
    return Q, X


def _reference_ranks(Q, X):
    S = (Q.astype(np.float64) @ X.astype(np.float64).T)
    order = np.argsort(-S, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(X.shape[0])[None, :].repeat(len(Q), 0), axis=1)
    return order, ranks, S


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("chunk", [1, 3, 11])
def test_positive_ranks_equal_argsort(ties, chunk):
    Q, X = _data(0, ties=ties)
    _, ref, _ = _reference_ranks(Q, X)
    idx = np.array([[0, 2, 4, 7, 9, 10]] * len(Q))
    np.testing.assert_array_equal(positive_ranks(Q, X, idx, chunk), ref[:, idx[0]])
    # a single query (D,) with idx (K,)
    np.testing.assert_array_equal(positive_ranks(Q[1], X, idx[0], chunk), ref[1, idx[0]])


def test_ties_break_by_database_index():
    X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]], dtype=np.float32)
    q = np.array([1.0, 0.0], dtype=np.float32)
    # items 0, 2, 3 tie at the top, item 1 last
    np.testing.assert_array_equal(positive_ranks(q, X, np.array([3, 2, 1, 0]), 2), [2, 1, 3, 0])


def test_ranks_of_ragged_lists_and_padding():
    Q, X = _data(1, ties=True)
    _, ref, _ = _reference_ranks(Q, X)
    items = [np.array([1]), np.array([], dtype=int), np.array([9, 2, 4]), np.array([0, 10])]
    got = ranks_of(Q, X, items, 3)
    for m, a in enumerate(items):
        np.testing.assert_array_equal(got[m], ref[m, a])
    padded = positive_ranks(Q, X, np.array([[1, -1]] * 4), 3)
    assert (padded[:, 1] == -1).all()


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("chunk", [1, 3, 11])
@pytest.mark.parametrize("k", [1, 4, 11, 20])
def test_topk_equals_argsort(ties, chunk, k):
    Q, X = _data(2, ties=ties)
    order, _, S = _reference_ranks(Q, X)
    idx, sc = topk(Q, X, k, chunk)
    kk = min(k, X.shape[0])
    assert idx.shape == (len(Q), kk)
    np.testing.assert_array_equal(idx, order[:, :kk])
    np.testing.assert_allclose(sc, np.take_along_axis(S, order[:, :kk], axis=1), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("chunk", [1, 3, 11])
def test_topk_excludes_self(chunk):
    _, X = _data(4, ties=True)
    order, _, _ = _reference_ranks(X, X)
    idx, sc = topk(X, X, 11, chunk, exclude=np.arange(11))
    for m in range(11):
        expected = [j for j in order[m] if j != m]
        np.testing.assert_array_equal(idx[m, :10], expected)
        assert idx[m, 10] == -1 and sc[m, 10] == -np.inf
