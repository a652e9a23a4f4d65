"""Mining rules: MD5 anchor subset, hard negatives (one per cluster), diverse-anchor band."""

import hashlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from darkside.embed.mining import band_limits, diverse_anchors, hard_negatives, hash_selected


def test_hash_rule_on_rfc1321_vectors():
    # MD5("") = d41d8cd98f00b204e9800998ecf8427e: last 4 hex 427e = 17022 -> 0.25974
    assert not hash_selected("", 0.25)
    assert hash_selected("", 0.26)
    # MD5("a") = 0cc175b9c0f1b6a831c399e269772661: 2661 = 9825 -> 0.14992
    assert hash_selected("a", 0.25)
    assert not hash_selected("a", 0.14)
    # MD5("abc") = 900150983cd24fb0d6963f7d28e17f72: 7f72 = 32626 -> 0.49783
    assert not hash_selected("abc", 0.25)
    assert hash_selected("abc", 0.5)
    assert not hash_selected("abc", 0.0)


def test_hash_rule_fixed_subset_of_names():
    names = [f"{i:08x}" for i in range(2000)]
    picked = [n for n in names if hash_selected(n, 0.25)]
    expected = [n for n in names if int(hashlib.md5(n.encode()).hexdigest()[-4:], 16) < 16384]
    assert picked == expected
    assert 400 < len(picked) < 600  # about a quarter


def test_hard_negatives_hand_example():
    anchor = np.array([[1.0, 0.0]])
    pool = np.array([[1.0, 0.0], [0.9, 0.436], [0.8, 0.6], [0.6, 0.8], [0.0, 1.0]])
    clusters = ["A", "B", "B", "C", "D"]
    (neg,) = hard_negatives(anchor, pool, ["A"], clusters, n=3)
    # p0 is the anchor's cluster, p2 repeats cluster B -> p1, p3, p4
    assert neg.tolist() == [1, 3, 4]
    (short,) = hard_negatives(anchor, pool, ["A"], clusters, n=10)
    assert short.tolist() == [1, 3, 4]  # only three other clusters exist


def test_hard_negatives_properties_random():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(20, 8))
    p = rng.normal(size=(60, 8))
    ac = rng.integers(0, 6, size=20)
    pc = rng.integers(0, 6, size=60)
    for i, neg in enumerate(hard_negatives(a, p, ac, pc, n=5)):
        cl = pc[neg]
        assert ac[i] not in cl
        assert len(set(cl.tolist())) == len(cl)
        sims = p[neg] @ a[i]
        assert np.all(np.diff(sims) <= 0)
        assert len(neg) == min(5, len(set(pc.tolist()) - {ac[i]}))


def test_mining_on_a_device_ranks_as_numpy_does_ties_and_short_heads_included():
    """The device path (float64 products, stable sort, each anchor's first `width` candidates brought back) gives
    the numpy ranking: ties by pool order, and an anchor whose head holds too few clusters is ranked in full."""
    rng = np.random.default_rng(5)
    a = rng.normal(size=(30, 8))
    p = rng.normal(size=(80, 8))
    p[40:50] = p[10]  # ten exact ties of one pool image
    a[0] = p[10]
    ac, pc = rng.integers(0, 8, size=30), rng.integers(0, 8, size=80)
    pc[:60] = ac[1]  # anchor 1: the first 60 pool images are its own cluster, a short head cannot serve it
    want = hard_negatives(a, p, ac, pc, n=5)
    for width in (4, 16, 256):
        got = hard_negatives(a, p, ac, pc, n=5, device="cpu", width=width)
        assert [g.tolist() for g in got] == [w.tolist() for w in want], width
    (tied,) = hard_negatives(a[:1], p, ac[:1], np.arange(80), n=3, device="cpu", width=2)
    assert tied.tolist() == [10, 40, 41]  # equal similarities: pool order


def test_band_limits_and_edge_guards():
    assert band_limits(10000) == (2000, 8000)
    assert band_limits(5) == (1, 4)
    assert band_limits(3) == (0, 2)
    assert band_limits(2) == (0, 1)
    assert band_limits(1) == (0, 1)


@settings(max_examples=60, deadline=None)
@given(p=st.integers(2, 40), dim=st.integers(2, 6), frac=st.floats(0.05, 1.0), seed=st.integers(0, 2**31 - 1))
def test_diverse_picks_from_band(p, dim, frac, seed):
    data = np.random.default_rng(seed)
    x = data.normal(size=(p, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    n = max(1, int(frac * p))
    chosen = diverse_anchors(x, n, np.random.default_rng(seed), (0.2, 0.8))
    assert chosen[0] == 0 and len(chosen) == n and len(set(chosen.tolist())) == n
    # replay: each pick's score must lie within the band of the sorted remaining scores
    for k in range(1, n):
        sel = chosen[:k]
        remaining = np.setdiff1d(np.arange(p), sel)
        s = (x[remaining] @ x[sel].T).max(axis=1)
        srt = np.sort(s)
        lo, hi = band_limits(len(remaining))
        pick_s = (x[chosen[k]] @ x[sel].T).max()
        assert srt[lo] - 1e-9 <= pick_s <= srt[hi - 1] + 1e-9


def test_diverse_avoids_near_duplicates():
    # 5 copies of one direction + 35 spread ones: after candidate 0 (a copy) is chosen, the other
    # 4 copies have s = 1, the top 4 of V = 39..35 remaining, above the band end floor(0.8 V) >= 28
    rng = np.random.default_rng(0)
    spread = rng.normal(size=(35, 16))
    x = np.vstack([np.tile([1.0] + [0.0] * 15, (5, 1)), spread])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    for seed in range(20):
        chosen = diverse_anchors(x, 6, np.random.default_rng(seed))
        assert not set(chosen[1:].tolist()) & set(range(5))


def test_diverse_n_capped_and_zero():
    x = np.eye(3)
    assert sorted(diverse_anchors(x, 10, np.random.default_rng(0)).tolist()) == [0, 1, 2]
    assert diverse_anchors(x, 0, np.random.default_rng(0)).size == 0


@pytest.mark.parametrize("n", [1, 2])
def test_diverse_small(n):
    x = np.eye(4)
    assert diverse_anchors(x, n, np.random.default_rng(0))[0] == 0
