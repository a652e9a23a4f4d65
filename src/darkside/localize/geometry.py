"""Multi-view geometry of known cameras: projection, undistortion, epipolar verification, triangulation, PnP.

Small pure functions over numpy arrays (OpenCV only where it solves a problem: undistortion and PnP-RANSAC), each
tested against hand-built configurations. Pixels follow OpenCV (the centre of the top-left pixel is (0, 0)); a pose
is world->camera ``(qw, qx, qy, qz, tx, ty, tz)`` as everywhere in the suite (:mod:`darkside.geometry`).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from darkside.data.cameras import Intrinsics
from darkside.geometry import matrix_to_quaternion, quaternion_to_matrix
from darkside.settings import setting


def rotation_translation(pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(R, t) of a world->camera pose (7,)."""
    pose = np.asarray(pose, dtype=np.float64)
    return quaternion_to_matrix(pose[:4]), pose[4:7].copy()


def projection_matrix(K: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """``K [R | t]`` (3, 4) of a camera with world->camera ``pose``."""
    R, t = rotation_translation(pose)
    return np.asarray(K, dtype=np.float64) @ np.column_stack([R, t])


def project(P: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixels (N, 2) and depths (N,) of world points (N, 3) through a projection matrix (3, 4)."""
    h = np.asarray(X, dtype=np.float64) @ P[:, :3].T + P[:, 3]
    with np.errstate(divide="ignore", invalid="ignore"):  # a point on the camera plane: inf, rejected by depth
        return h[:, :2] / h[:, 2:3], h[:, 2]


def undistort(points: np.ndarray, camera: Intrinsics) -> np.ndarray:
    """Pixels of ``points`` (N, 2) as an ideal pinhole camera with the same ``K`` would see them."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if not np.any(camera.distortion) or len(pts) == 0:
        return pts.copy()
    out = cv2.undistortPoints(pts.reshape(-1, 1, 2), camera.K, camera.distortion, P=camera.K)
    return out.reshape(-1, 2).astype(np.float64)


def fundamental_matrix(K1: np.ndarray, pose1: np.ndarray, K2: np.ndarray, pose2: np.ndarray) -> np.ndarray:
    """F with ``x2^T F x1 = 0`` for two cameras of known intrinsics and poses (no estimation: mapping images
    have poses, so a match is checked against the true epipolar geometry, which stays defined on a planar scene
    where estimating F would be degenerate)."""
    R1, t1 = rotation_translation(pose1)
    R2, t2 = rotation_translation(pose2)
    R = R2 @ R1.T
    t = t2 - R @ t1
    tx = np.array([[0.0, -t[2], t[1]], [t[2], 0.0, -t[0]], [-t[1], t[0], 0.0]])
    return np.linalg.inv(K2).T @ tx @ R @ np.linalg.inv(K1)


def sampson_distance(F: np.ndarray, x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    """First-order geometric distance (pixels) of each correspondence to the epipolar geometry ``F``."""
    h1 = np.column_stack([x1, np.ones(len(x1))])
    h2 = np.column_stack([x2, np.ones(len(x2))])
    Fx1, Ftx2 = h1 @ F.T, h2 @ F
    num = np.einsum("ij,ij->i", h2, Fx1) ** 2
    den = Fx1[:, 0] ** 2 + Fx1[:, 1] ** 2 + Ftx2[:, 0] ** 2 + Ftx2[:, 1] ** 2
    return np.sqrt(num / np.maximum(den, 1e-300))


def triangulate(P: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The point (3,) seen at pixels ``x`` (n, 2) by cameras ``P`` (n, 3, 4), n >= 2: linear (DLT) least squares,
    each camera's two equations scaled to unit norm so that no view dominates by its coordinate scale."""
    rows = np.concatenate([x[:, 0:1] * P[:, 2] - P[:, 0], x[:, 1:2] * P[:, 2] - P[:, 1]])
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    _, _, vt = np.linalg.svd(rows)
    h = vt[-1]
    return h[:3] / h[3]


def triangulate_many(P: np.ndarray, x: np.ndarray) -> np.ndarray:
    """:func:`triangulate` of T tracks of one length at once: ``P`` (T, n, 3, 4), ``x`` (T, n, 2) -> (T, 3)."""
    rows = np.concatenate([x[..., 0:1] * P[..., 2, :] - P[..., 0, :], x[..., 1:2] * P[..., 2, :] - P[..., 1, :]],
                          axis=1)
    rows = rows / np.linalg.norm(rows, axis=-1, keepdims=True)
    _, _, vt = np.linalg.svd(rows)
    h = vt[:, -1]
    return h[:, :3] / h[:, 3:4]


@dataclass(frozen=True)
class TriangulationSettings:
    """``localize.triangulation``: which triangulated points are kept (COLMAP's point filters)."""

    max_reprojection_error_px: float = setting("every kept observation within this (COLMAP filter_max_reproj_"
                                               "error: 4; kapture's global-map config 2: 12)", gt=0)
    min_angle_deg: float = setting("largest angle between two rays (COLMAP's min_tri_angle 1.5)", ge=0)


def triangulate_batch(P: np.ndarray, x: np.ndarray, centers: np.ndarray,
                      s: TriangulationSettings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Triangulate T tracks of one length L at once, each dropping its worst observation while any is beyond the
    reprojection limit or behind its camera (one wrong match must not pull the point off the others); a point
    must then be seen under at least ``min_angle_deg``.

    ``P`` (T, L, 3, 4), ``x`` (T, L, 2) undistorted pixels, ``centers`` (T, L, 3). Returns points (T, 3), the
    observations each keeps (T, L) and which tracks gave a point (T,). Every track keeps the same number of
    observations in a round, so a round is one stacked DLT (:func:`triangulate_many`).
    """
    T, L = x.shape[:2]
    points = np.full((T, 3), np.nan)
    keep = np.ones((T, L), dtype=bool)
    ok = np.zeros(T, dtype=bool)
    active = np.arange(T)
    for m in range(L, 1, -1):  # m observations kept by every active track
        if active.size == 0:
            break
        sel = keep[active]
        Pa = P[active][sel].reshape(-1, m, 3, 4)
        xa = x[active][sel].reshape(-1, m, 2)
        X = triangulate_many(Pa, xa)
        h = np.einsum("tnij,tj->tni", Pa[..., :3], X) + Pa[..., 3]
        depth = h[..., 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            err = np.linalg.norm(h[..., :2] / depth[..., None] - xa, axis=-1)
        err = np.where(depth > 0, err, np.inf)
        worst = np.argmax(err, axis=1)
        good = err[np.arange(len(worst)), worst] <= s.max_reprojection_error_px
        rays = centers[active][sel].reshape(-1, m, 3) - X[:, None]
        rays = rays / np.linalg.norm(rays, axis=-1, keepdims=True)
        cos = np.clip(np.einsum("tai,tbi->tab", rays, rays), -1.0, 1.0)
        wide = np.degrees(np.arccos(cos.min(axis=(1, 2)))) >= s.min_angle_deg
        done = active[good & wide]
        points[done], ok[done] = X[good & wide], True
        bad = ~good
        # the column of each bad track's worst observation: its position among the kept ones, mapped back
        cols = np.nonzero(sel[bad])[1].reshape(-1, m)[np.arange(int(bad.sum())), worst[bad]]
        keep[active[bad], cols] = False
        active = active[bad]
    return points, keep, ok


def triangulate_track(P: np.ndarray, x: np.ndarray, centers: np.ndarray,
                      s: TriangulationSettings) -> tuple[np.ndarray | None, np.ndarray]:
    """:func:`triangulate_batch` of one track ``P`` (n, 3, 4), ``x`` (n, 2), ``centers`` (n, 3): (point or None,
    mask of the observations kept)."""
    points, keep, ok = triangulate_batch(P[None], x[None], centers[None], s)
    return (points[0] if ok[0] else None), keep[0]


@dataclass(frozen=True)
class PoseSettings:
    """``localize.pose``: absolute pose of a query from 2D-3D correspondences, PnP inside RANSAC."""

    max_error_px: float = setting("RANSAC inlier threshold (kapture's pycolmap local SfM: 8 px at full Aachen "
                                  "resolution; its global-map config 2: abs_pose_max_error 20)", gt=0)
    min_inliers: int = setting("fewer inliers: no estimate (COLMAP abs_pose_min_num_inliers)", ge=4)
    min_inlier_ratio: float = setting("fewer inliers of the correspondences: no estimate (kapture: 0.01)",
                                      ge=0, le=1)
    iterations: int = setting("RANSAC trials (kapture: up to 100,000)", ge=1)
    confidence: float = setting("RANSAC confidence (kapture: 0.9999)", gt=0, lt=1)


def estimate_pose(x: np.ndarray, X: np.ndarray, K: np.ndarray, s: PoseSettings,
                  seed: int = 0) -> tuple[np.ndarray | None, np.ndarray]:
    """World->camera pose (7,) of a camera seeing world points ``X`` (n, 3) at undistorted pixels ``x`` (n, 2).

    AP3P on minimal samples inside OpenCV's RANSAC (kapture's pycolmap also runs P3P in RANSAC; three points
    determine a pose whether or not the scene is planar, as facades are, and a sample costs a third of SQPnP's),
    then Levenberg-Marquardt on the inliers, re-collected under the refined pose. Returns (pose or None, inlier
    mask).
    ``seed`` fixes OpenCV's RANSAC sampling, so the same inputs give the same pose.
    """
    x = np.ascontiguousarray(x, dtype=np.float64).reshape(-1, 2)
    X = np.ascontiguousarray(X, dtype=np.float64).reshape(-1, 3)
    inliers = np.zeros(len(x), dtype=bool)
    if len(x) < max(4, s.min_inliers):
        return None, inliers
    cv2.setRNGSeed(int(seed))
    try:
        ok, rvec, tvec, idx = cv2.solvePnPRansac(X, x, K, None, iterationsCount=s.iterations,
                                                 reprojectionError=s.max_error_px, confidence=s.confidence,
                                                 flags=cv2.SOLVEPNP_AP3P)
    except cv2.error:  # a degenerate sample set (e.g. every correspondence on one point): no estimate
        return None, inliers
    if not ok or idx is None:
        return None, inliers
    inliers[idx.ravel()] = True
    if inliers.sum() < s.min_inliers or inliers.sum() < s.min_inlier_ratio * len(x):
        return None, np.zeros(len(x), dtype=bool)
    for _ in range(3):  # local optimisation: refine on the inliers, re-collect them under the refined pose
        rvec, tvec = cv2.solvePnPRefineLM(X[inliers], x[inliers], K, None, rvec, tvec)
        px, _ = cv2.projectPoints(X, rvec, tvec, K, None)
        again = np.linalg.norm(px.reshape(-1, 2) - x, axis=1) <= s.max_error_px
        if np.array_equal(again, inliers) or again.sum() < s.min_inliers:
            break
        inliers = again
    R, _ = cv2.Rodrigues(rvec)
    return np.concatenate([matrix_to_quaternion(R), tvec.ravel()]), inliers
