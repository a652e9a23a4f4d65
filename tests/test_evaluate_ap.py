"""cirtorch AP / mP@k against hand-computed values and a literal port of cirtorch's loop."""

import math

import numpy as np
import pytest

from darkside.evaluate.ap import (
    average_precision,
    compute_ap,
    junk_adjusted_ranks,
    mean_average_precision,
    precision_at_k,
)


@pytest.mark.parametrize("r", [1, 2, 5, 99])
def test_single_positive_at_rank_r(r):
    assert compute_ap(np.array([r]), 1) == pytest.approx(1.0 / (2 * (r + 1)))


def test_single_positive_first_is_one():
    assert compute_ap(np.array([0]), 1) == 1.0


def test_two_positives_by_hand():
    # ranks 0, 2: (1 + 1)/2 + (1/2 + 2/3)/2, halved -> 0.791666...
    assert compute_ap(np.array([2, 0]), 2) == pytest.approx((1.0 + (0.5 + 2 / 3) / 2) / 2)
    # ranks 1, 3: (0 + 1/2)/2 + (1/3 + 2/4)/2, halved -> 1/3
    assert compute_ap(np.array([1, 3]), 2) == pytest.approx(1 / 3)


def test_unranked_positive_counts_zero():
    assert compute_ap(np.array([0]), 2) == pytest.approx(0.5)


def test_junk_removed_from_ranking():
    # positives at 2 and 5 with junk at 0 and 3 behave like positives at 1 and 3
    assert list(junk_adjusted_ranks(np.array([5, 2]), np.array([3, 0]))) == [1, 3]
    assert average_precision(np.array([2, 5]), np.array([0, 3])) == pytest.approx(1 / 3)
    # junk ranked after every positive changes nothing
    assert average_precision(np.array([0, 2]), np.array([7, 9])) == pytest.approx(average_precision([0, 2]))


def test_query_without_positives_is_skipped():
    assert math.isnan(average_precision(np.array([], dtype=int), np.array([0])))
    res = mean_average_precision([np.array([0]), np.array([], dtype=int), np.array([1])],
                                 [np.array([]), np.array([0]), np.array([])], ks=(1,))
    assert math.isnan(res.ap[1])
    assert res.map == pytest.approx((1.0 + 0.25) / 2)
    assert res.mp_at_k[1] == pytest.approx((1.0 + 0.0) / 2)


def test_precision_at_k_shrinking_denominator():
    # 1-based positions 1 and 2: P@10 uses kq = 2 -> 1.0
    assert list(precision_at_k(np.array([0, 1]), None, (1, 5, 10))) == [1.0, 1.0, 1.0]
    # positions 1 and 4: P@1 = 1, P@5 uses kq = 4 -> 2/4, P@10 -> 2/4
    assert list(precision_at_k(np.array([0, 3]), None, (1, 5, 10))) == [1.0, 0.5, 0.5]
    # one positive at position 3: P@1 = 0/1, P@5 uses kq = 3 -> 1/3
    np.testing.assert_allclose(precision_at_k(np.array([2]), None, (1, 5)), [0.0, 1 / 3])
    # junk before the positive is removed first: position 3 with 2 junk ahead -> position 1
    assert list(precision_at_k(np.array([2]), np.array([0, 1]), (1,))) == [1.0]
    assert np.isnan(precision_at_k(np.array([], dtype=int), None, (1, 5))).all()


def _cirtorch_loop(ranking, ok, junk, ks):
    """Literal reading of cirtorch compute_map for one query (positions via membership)."""
    pos = np.nonzero(np.isin(ranking, ok))[0]
    jk = np.nonzero(np.isin(ranking, junk))[0]
    k = 0
    ij = 0
    pos = pos.copy()
    for ip in range(len(pos)):
        while ij < len(jk) and pos[ip] > jk[ij]:
            k += 1
            ij += 1
        pos[ip] -= k
    ap = 0.0
    for i, r in enumerate(pos):
        p0 = 1.0 if r == 0 else i / r
        p1 = (i + 1) / (r + 1)
        ap += (p0 + p1) / 2 / len(ok)
    pos1 = pos + 1
    prs = [np.sum(pos1 <= min(pos1.max(), kk)) / min(pos1.max(), kk) for kk in ks]
    return ap, prs


def test_matches_cirtorch_loop_on_random_rankings():
    rng = np.random.default_rng(3)
    for _ in range(50):
        n = int(rng.integers(5, 40))
        ranking = rng.permutation(n)
        items = rng.permutation(n)
        n_ok, n_junk = int(rng.integers(1, n // 2 + 1)), int(rng.integers(0, n // 3 + 1))
        ok, junk = items[:n_ok], items[n_ok:n_ok + n_junk]
        where = np.argsort(ranking)  # item -> rank
        ap_ref, pr_ref = _cirtorch_loop(ranking, ok, junk, (1, 5, 10))
        assert average_precision(where[ok], where[junk]) == pytest.approx(ap_ref)
        np.testing.assert_allclose(precision_at_k(where[ok], where[junk], (1, 5, 10)), pr_ref)
