"""Camera poses and unit quaternions (numpy only), shared by the data and evaluation layers.

Convention (kapture, visuallocalization.net, the manifest's pose columns): a pose is
world->camera ``(qw, qx, qy, qz, tx, ty, tz)``; a world point ``p`` maps to the camera frame as
``R(q) p + t``, so the camera centre is ``c = -R^T t``. Quaternions are Hamilton ``(w, x, y, z)``.

The synthetic benchmark writes its manifests from these functions and the localization metrics
are computed with them, so every formula here is frozen bit for bit: an algebraically equal
rewrite (another summation order, a matrix product instead of ``einsum``) changes the last digit
of outputs that are compared byte for byte. That is also why the matrix-form and the pose-form
camera centre below are two functions: they round differently and both results are published.
"""

from __future__ import annotations

import numpy as np

from darkside.errors import DarksideError

_CONJUGATE = np.array([1.0, -1.0, -1.0, -1.0])


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product ``a * b`` of quaternions (..., 4), broadcast over the leading axes."""
    aw, ax, ay, az = np.moveaxis(np.asarray(a, dtype=np.float64), -1, 0)
    bw, bx, by, bz = np.moveaxis(np.asarray(b, dtype=np.float64), -1, 0)
    return np.stack([aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw], axis=-1)


def quat_conjugate(q: np.ndarray) -> np.ndarray:
    """``(w, -x, -y, -z)``: the inverse rotation of a unit quaternion (sign flips are exact)."""
    return np.asarray(q, dtype=np.float64) * _CONJUGATE


def quat_rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Vectors (..., 3) rotated by unit quaternions (..., 4), as ``q (0, v) q*`` (no normalisation)."""
    v = np.asarray(v, dtype=np.float64)
    pure = np.concatenate([np.zeros((*v.shape[:-1], 1)), v], axis=-1)
    return quat_mul(quat_mul(q, pure), quat_conjugate(q))[..., 1:]


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


def matrix_to_quaternion(r: np.ndarray) -> np.ndarray:
    """``(qw, qx, qy, qz)`` of one rotation matrix, ``qw >= 0`` (Shepperd's method, stable at all angles).

    The branch on the largest diagonal term avoids dividing by a small ``qw`` near 180 degrees;
    the sign is fixed so that a rotation has one stored quaternion.
    """
    m = r
    tr = np.trace(m)
    if tr > 0:
        s = np.sqrt(tr + 1.0) * 2
        q = [0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2]) * 2
        q = [(m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s]
    elif m[1, 1] > m[2, 2]:
        s = np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2]) * 2
        q = [(m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s]
    else:
        s = np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1]) * 2
        q = [(m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s]
    out = np.array(q)
    out /= np.linalg.norm(out)
    return out if out[0] >= 0 else -out


def camera_center(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Centre ``-R^T t`` of one world->camera pose given as a matrix (what the renderer's cameras use)."""
    return -R.T @ t


def camera_centers(poses: np.ndarray) -> np.ndarray:
    """Camera centres (..., 3) of world->camera poses (..., 7): ``c = -R^T t`` (what the metrics use)."""
    poses = np.asarray(poses, dtype=np.float64)
    R = quaternion_to_matrix(poses[..., :4])
    return -np.einsum("...ji,...j->...i", R, poses[..., 4:7])


def compose_poses(first: np.ndarray, then: np.ndarray) -> np.ndarray:
    """Pose (..., 7) of ``then`` after ``first``: world->rig followed by rig->camera gives world->camera.

    ``q = q_then q_first`` and ``t = R(q_then) t_first + t_then``, the rotation applied as a
    quaternion sandwich (kapture's rig composition).
    """
    first = np.asarray(first, dtype=np.float64)
    then = np.asarray(then, dtype=np.float64)
    q = quat_mul(then[..., :4], first[..., :4])
    t = quat_rotate(then[..., :4], first[..., 4:7]) + then[..., 4:7]
    return np.concatenate([q, t], axis=-1)


def rotation_angle_deg(r1: np.ndarray, r2: np.ndarray) -> float:
    """Angle (degrees) of the relative rotation between two rotation matrices, from the trace. The
    benchmark's positives were chosen with it; scoring uses :func:`pose_errors`' quaternion form, which
    stays accurate near 0 degrees (the two differ in the last digits)."""
    c = (np.trace(r1 @ r2.T) - 1) / 2
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))


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
    qg = quat_conjugate(gt[:, :4]) / np.linalg.norm(gt[:, :4], axis=-1, keepdims=True)
    rel = quat_mul(qe, qg)
    rot = np.degrees(2.0 * np.arctan2(np.linalg.norm(rel[:, 1:], axis=-1), np.abs(rel[:, 0])))
    return pos, rot
