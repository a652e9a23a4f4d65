"""Visual localization, paradigm 1 (pose of the top-1 retrieved image), scoring and exports.

Poses are world->camera ``(qw, qx, qy, qz, tx, ty, tz)`` as in kapture and visuallocalization.net:
a world point p maps to the camera frame as ``R(q) p + t``, so the camera centre is
``c = -R^T t``. Position error is the distance between camera centres (metres); rotation error
is the angle of the relative rotation (degrees). A query counts for a threshold (T m, R deg)
when both errors are within it (inclusive); a query without an estimate counts as a failure,
so the percentage is over every query that has a ground-truth pose.

Exports: retrieval pairs for kapture's paradigms 2a/2b (hloc text ``query db`` per line and
kapture CSV ``query, db, score``), and the LTVL2020 poses file that visuallocalization.net takes
(``name qw qx qy qz tx ty tz`` per line).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from darkside.atomic import atomic_write_text
from darkside.errors import DarksideError


def quaternion_to_matrix(q: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) from quaternions (..., 4) ``(w, x, y, z)``, normalised first."""
    q = np.asarray(q, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    R = np.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], axis=-1)
    return R.reshape(*q.shape[:-1], 3, 3)


def camera_centers(poses: np.ndarray) -> np.ndarray:
    """Camera centres (..., 3) of world->camera poses (..., 7): ``c = -R^T t``."""
    poses = np.asarray(poses, dtype=np.float64)
    R = quaternion_to_matrix(poses[..., :4])
    return -np.einsum("...ji,...j->...i", R, poses[..., 4:7])


def _qmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack([aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw], axis=-1)


def pose_errors(estimated: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(position error in metres, rotation error in degrees) per row; NaN rows give NaN errors.

    The rotation angle comes from ``2 atan2(|v|, |w|)`` of the relative quaternion, which stays
    accurate near 0 degrees where ``acos`` of a trace would lose half the digits.
    """
    est = np.atleast_2d(np.asarray(estimated, dtype=np.float64))
    gt = np.atleast_2d(np.asarray(truth, dtype=np.float64))
    if est.shape != gt.shape or est.shape[-1] != 7:
        raise DarksideError(f"localization: pose arrays must be (N, 7), got {est.shape} and {gt.shape}")
    pos = np.linalg.norm(camera_centers(est) - camera_centers(gt), axis=-1)
    qe = est[:, :4] / np.linalg.norm(est[:, :4], axis=-1, keepdims=True)
    qg = gt[:, :4] * np.array([1.0, -1.0, -1.0, -1.0]) / np.linalg.norm(gt[:, :4], axis=-1, keepdims=True)
    rel = _qmul(qe, qg)
    rot = np.degrees(2.0 * np.arctan2(np.linalg.norm(rel[:, 1:], axis=-1), np.abs(rel[:, 0])))
    return pos, rot


def localization_rates(position_error: np.ndarray, rotation_error: np.ndarray,
                       thresholds: Sequence[tuple[float, float]]) -> list[float]:
    """Percentage of queries with both errors within each (metres, degrees) threshold, inclusive.

    NaN errors (no estimate) are failures; the denominator is every query given.
    """
    t = np.asarray(position_error, dtype=np.float64)
    r = np.asarray(rotation_error, dtype=np.float64)
    if t.size == 0:
        return [float("nan")] * len(thresholds)
    return [float(100.0 * np.count_nonzero((t <= tm) & (r <= rd)) / t.size) for tm, rd in thresholds]


def threshold_key(metres: float, degrees: float) -> str:
    """JSON key of a threshold, e.g. ``0.25m,2deg``."""
    return f"{metres:g}m,{degrees:g}deg"


def approximate_poses(top1: np.ndarray, database_poses: np.ndarray) -> np.ndarray:
    """Paradigm 1: each query takes the pose of its top-1 database image (-1: no estimate, NaN row)."""
    top1 = np.asarray(top1, dtype=np.int64)
    db = np.asarray(database_poses, dtype=np.float64)
    out = np.full((top1.size, 7), np.nan)
    ok = top1 >= 0
    out[ok] = db[top1[ok]]
    return out


def write_pairs_hloc(path: str | Path, query_names: Sequence[str], db_names: Sequence[str],
                     indices: np.ndarray) -> Path:
    """hloc pairs file: ``query db`` per line, queries in order, each with its ranked db images."""
    lines = [f"{q} {db_names[j]}" for q, row in zip(query_names, indices, strict=True) for j in row if j >= 0]
    return atomic_write_text(path, "".join(line + "\n" for line in lines))


def write_pairs_kapture(path: str | Path, query_names: Sequence[str], db_names: Sequence[str],
                        indices: np.ndarray, scores: np.ndarray) -> Path:
    """kapture pairs file: header comment, then ``query, db, score`` per line (score as similarity)."""
    lines = ["# query_image, map_image, score"]
    for q, row, srow in zip(query_names, indices, scores, strict=True):
        lines += [f"{q}, {db_names[j]}, {float(s):.6f}" for j, s in zip(row, srow, strict=True) if j >= 0]
    return atomic_write_text(path, "".join(line + "\n" for line in lines))


def write_ltvl_poses(path: str | Path, names: Sequence[str], poses: np.ndarray) -> Path:
    """visuallocalization.net (LTVL2020) file: ``name qw qx qy qz tx ty tz``; rows with NaN are omitted."""
    lines = []
    for name, p in zip(names, np.asarray(poses, dtype=np.float64), strict=True):
        if np.all(np.isfinite(p)):
            lines.append(name + " " + " ".join(repr(float(v)) for v in p))
    return atomic_write_text(path, "".join(line + "\n" for line in lines))
