"""Revisited settings, Tokyo breakdown and DaCo recall on hand-made cases."""

import math

import numpy as np
import pytest

from darkside.evaluate.recall import recall_at_k
from darkside.evaluate.revisited import evaluate_revisited, setting_split
from darkside.evaluate.tokyo import PAIRS, breakdown_groundtruth


def test_setting_split():
    e, h, j = np.array([1]), np.array([2, 3]), np.array([4])
    ok, jk = setting_split("easy", e, h, j)
    assert sorted(ok) == [1] and sorted(jk) == [2, 3, 4]
    ok, jk = setting_split("medium", e, h, j)
    assert sorted(ok) == [1, 2, 3] and sorted(jk) == [4]
    ok, jk = setting_split("hard", e, h, j)
    assert sorted(ok) == [2, 3] and sorted(jk) == [1, 4]


def test_revisited_by_hand():
    # query 0: easy at rank 1, hard at ranks 0 and 4, junk at rank 2
    # query 1: easy at rank 3, no hard, no junk
    res = evaluate_revisited([np.array([1]), np.array([3])], [np.array([0, 4]), np.array([], dtype=int)],
                             [np.array([2]), np.array([], dtype=int)])
    easy, medium, hard = res["easy"], res["medium"], res["hard"]
    # easy q0: junk 0, 2, 4 removed -> positive at 0 -> AP 1; q1: single positive at 3 -> 1/8
    np.testing.assert_allclose(easy.ap, [1.0, 1 / 8])
    assert easy.map == pytest.approx((1 + 1 / 8) / 2)
    # medium q0: positives 0, 1, 4 with junk 2 -> 0, 1, 3: (1 + 1 + (2/3 + 3/4)/2)/3
    assert medium.ap[0] == pytest.approx((2 + (2 / 3 + 3 / 4) / 2) / 3)
    assert medium.mp_at_k[5] == pytest.approx((3 / 4 + 1 / 4) / 2)  # q0 kq=4: 3/4; q1 kq=4: 1/4
    assert medium.mp_at_k[1] == pytest.approx(0.5)
    # hard q0: positives 0, 4 with junk 1, 2 -> 0, 2: (1 + (1/2 + 2/3)/2)/2; q1 has no hard: skipped
    assert hard.ap[0] == pytest.approx((1 + (0.5 + 2 / 3) / 2) / 2)
    assert math.isnan(hard.ap[1])
    assert hard.map == pytest.approx(hard.ap[0])
    assert hard.mp_at_k[5] == pytest.approx(2 / 3)


def test_tokyo_breakdown_two_scenes():
    domains = ["day", "sunset", "night", "day", "sunset", "night"]
    scenes = ["a", "a", "a", "b", "b", "b"]
    cells = breakdown_groundtruth(domains, scenes)
    assert list(cells) == [f"{a}->{b}" for a, b in PAIRS]
    dn = cells["day->night"]
    assert list(dn.queries) == [0, 3]
    assert [list(o) for o in dn.ok] == [[2], [5]]
    assert [sorted(j) for j in dn.junk] == [[0, 1], [3, 4]]
    sn = cells["sunset->night"]
    assert list(sn.queries) == [1, 4] and [sorted(j) for j in sn.junk] == [[0, 1], [3, 4]]
    # a scene without a night image: its day query has no positive
    cells = breakdown_groundtruth(["day", "sunset", "day"], ["a", "a", "b"])
    assert [len(o) for o in cells["day->sunset"].ok] == [1, 0]


def _unit(deg):
    r = np.radians(np.asarray(deg, dtype=np.float64))
    return np.stack([np.cos(r), np.sin(r)], axis=1).astype(np.float32)


@pytest.mark.parametrize("chunk", [1, 2, 6])
def test_recall_three_pairs_by_hand(chunk):
    # A at 0, 100, 200 degrees; B at 30, 160, 250 (worked out by hand in the report)
    rec = recall_at_k(_unit([0, 100, 200]), _unit([30, 160, 250]), (1, 2, 4), chunk, names=("day", "night"))
    assert rec["day->night"].recall == pytest.approx({1: 2 / 3, 2: 1.0, 4: 1.0})
    assert rec["night->day"].recall == pytest.approx({1: 2 / 3, 2: 1.0, 4: 1.0})
    assert rec["day<->night"].recall == pytest.approx({1: 4 / 6, 2: 1.0, 4: 1.0})
    np.testing.assert_array_equal(rec["day->night"].hits[:, 0], [True, True, False])
    np.testing.assert_array_equal(rec["night->day"].hits[:, 0], [True, False, True])
    np.testing.assert_array_equal(rec["day<->night"].hits[:, 0], [True, True, False, True, False, True])
