"""Matching local features: mutual nearest neighbours, and mapping pairs checked against their known poses.

kapture's benchmark matches by mutual nearest neighbour on descriptors and lets COLMAP verify the matches
geometrically. Here a pair of mapping images is verified against the epipolar geometry of their known poses
(:func:`~darkside.localize.geometry.fundamental_matrix`); a query's matches need no two-view check of their own,
because PnP-RANSAC on the 2D-3D correspondences they give is the geometric verification of the query.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from darkside.localize.geometry import fundamental_matrix, sampson_distance
from darkside.settings import setting


@dataclass(frozen=True)
class MatchSettings:
    """``localize.matching``: descriptor matching and the check of mapping pairs."""

    ratio: float = setting("Lowe's ratio on descriptor distances, nearest / second nearest (1: off, kapture's "
                           "plain mutual nearest neighbours)", gt=0, le=1)
    max_epipolar_error_px: float = setting("a mapping match further from its epipolar line is dropped "
                                           "(COLMAP two-view geometry's max_error: 4)", gt=0)
    min_matches: int = setting("a pair with fewer (verified) matches contributes none (COLMAP min_num_matches)",
                               ge=1)


def mutual_nearest(d1: np.ndarray, d2: np.ndarray, ratio: float = 1.0) -> np.ndarray:
    """(m, 2) index pairs ``(i, j)`` where descriptor ``d1[i]`` and ``d2[j]`` are each other's nearest neighbour
    (L2-normalised rows: the largest dot product), and, with ``ratio < 1``, the nearest distance is below
    ``ratio`` times the second nearest in both directions. Ties go to the lower index; rows sorted by ``i``."""
    if len(d1) == 0 or len(d2) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    sim = np.asarray(d1, dtype=np.float32) @ np.asarray(d2, dtype=np.float32).T
    nn12 = np.argmax(sim, axis=1)
    nn21 = np.argmax(sim, axis=0)
    i = np.arange(len(d1))
    keep = nn21[nn12] == i
    if ratio < 1.0 and keep.any():
        # the test only matters for the mutual pairs: their rows and columns alone
        rows, cols = i[keep], nn12[keep]
        keep[rows] = _passes_ratio(sim[rows], cols, ratio) & _passes_ratio(sim[:, cols].T, rows, ratio)
    return np.column_stack([i[keep], nn12[keep]]).astype(np.int64)


def _passes_ratio(sim: np.ndarray, nearest: np.ndarray, ratio: float) -> np.ndarray:
    """Per row of ``sim`` whose largest similarity is at column ``nearest``: the nearest distance < ratio x the
    second nearest (a single candidate passes; a tie with the nearest fails). Distances of unit vectors are
    ``sqrt(2 - 2 s)`` of their similarities, so the two largest similarities of a row are all the test needs."""
    if sim.shape[1] < 2:
        return np.ones(len(sim), dtype=bool)
    at = np.arange(len(sim))
    best = sim[at, nearest].astype(np.float64)
    rest = sim.copy()
    rest[at, nearest] = -np.inf
    second = rest.max(axis=1).astype(np.float64)
    dist = np.sqrt(np.maximum(2.0 - 2.0 * best, 0.0))
    dist2 = np.sqrt(np.maximum(2.0 - 2.0 * second, 0.0))
    return dist < ratio * dist2


def verified_matches(kp1: np.ndarray, kp2: np.ndarray, matches: np.ndarray, K1: np.ndarray, pose1: np.ndarray,
                     K2: np.ndarray, pose2: np.ndarray, s: MatchSettings) -> np.ndarray:
    """The matches (m, 2) of two posed images within ``max_epipolar_error_px`` of their true epipolar geometry;
    none when fewer than ``min_matches`` remain (keypoints undistorted)."""
    if len(matches) == 0:
        return matches
    F = fundamental_matrix(K1, pose1, K2, pose2)
    err = sampson_distance(F, kp1[matches[:, 0]], kp2[matches[:, 1]])
    good = matches[err <= s.max_epipolar_error_px]
    return good if len(good) >= s.min_matches else good[:0]
