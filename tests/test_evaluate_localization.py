"""Threshold counting, the paradigm-1 pose copy and the export formats (pose errors: test_geometry)."""

import numpy as np
import pytest

from darkside.evaluate.database import write_pairs_hloc, write_pairs_kapture
from darkside.evaluate.localization import approximate_poses, localization_rates, threshold_key, write_ltvl_poses

IDENTITY = [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]


def test_rates_inclusive_and_missing_fails():
    pos = np.array([0.25, 0.3, 4.0, np.nan])
    rot = np.array([2.0, 1.0, 10.0, np.nan])
    rates = localization_rates(pos, rot, [(0.25, 2.0), (0.5, 5.0), (5.0, 10.0)])
    assert rates == pytest.approx([25.0, 50.0, 75.0])
    assert threshold_key(0.25, 2.0) == "0.25m,2deg"


def test_approximate_poses_copies_top1():
    db = np.array([IDENTITY, [1.0, 0, 0, 0, 5, 0, 0]])
    est = approximate_poses(np.array([1, -1, 0]), db)
    np.testing.assert_array_equal(est[0], db[1])
    assert np.isnan(est[1]).all()
    np.testing.assert_array_equal(est[2], db[0])


def test_exports(tmp_path):
    idx = np.array([[1, 0], [0, -1]])
    p = write_pairs_hloc(tmp_path / "p.txt", ["q1.jpg", "q2.jpg"], ["d0.jpg", "d1.jpg"], idx)
    assert p.read_text() == "q1.jpg d1.jpg\nq1.jpg d0.jpg\nq2.jpg d0.jpg\n"
    p = write_pairs_kapture(tmp_path / "p.csv", ["q1.jpg", "q2.jpg"], ["d0.jpg", "d1.jpg"], idx,
                            np.array([[0.9, 0.5], [0.25, -np.inf]]))
    assert p.read_text().splitlines() == ["# query_image, map_image, score", "q1.jpg, d1.jpg, 0.900000",
                                          "q1.jpg, d0.jpg, 0.500000", "q2.jpg, d0.jpg, 0.250000"]
    p = write_ltvl_poses(tmp_path / "poses.txt", ["a.jpg", "b.jpg"],
                         np.array([[1.0, 0, 0, 0, 0.5, 0, -1], [np.nan] * 7]))
    assert p.read_text() == "a.jpg 1.0 0.0 0.0 0.0 0.5 0.0 -1.0\n"
