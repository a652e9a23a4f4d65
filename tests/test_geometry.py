"""Quaternions and poses (darkside.geometry) against values computed by hand."""

import math

import numpy as np
import pytest

from darkside.errors import DarksideError
from darkside.geometry import (
    camera_center,
    camera_centers,
    compose_poses,
    matrix_to_quaternion,
    pose_errors,
    quat_conjugate,
    quat_mul,
    quat_rotate,
    quaternion_to_matrix,
)

S = math.sqrt(0.5)
IDENTITY_Q = np.array([1.0, 0.0, 0.0, 0.0])
IDENTITY_POSE = np.array([1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
#: 90 degrees about x, y, z: (cos 45, sin 45 * axis) and the matrix that maps the other two axes
NINETY = {
    "x": (np.array([S, S, 0.0, 0.0]), np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])),
    "y": (np.array([S, 0.0, S, 0.0]), np.array([[0.0, 0, 1], [0, 1, 0], [-1, 0, 0]])),
    "z": (np.array([S, 0.0, 0.0, S]), np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])),
}


def _about_z(deg: float) -> np.ndarray:
    h = math.radians(deg) / 2
    return np.array([math.cos(h), 0.0, 0.0, math.sin(h)])


def _random_rotations(n: int, seed: int = 0) -> np.ndarray:
    q = np.random.default_rng(seed).normal(size=(n, 4))
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def test_identity():
    np.testing.assert_array_equal(quaternion_to_matrix(IDENTITY_Q), np.eye(3))
    np.testing.assert_array_equal(matrix_to_quaternion(np.eye(3)), IDENTITY_Q)
    np.testing.assert_array_equal(camera_centers(IDENTITY_POSE), np.zeros(3))
    np.testing.assert_array_equal(quat_mul(IDENTITY_Q, NINETY["y"][0]), NINETY["y"][0])


@pytest.mark.parametrize("axis", ["x", "y", "z"])
def test_ninety_degrees_about_each_axis(axis):
    q, R = NINETY[axis]
    np.testing.assert_allclose(quaternion_to_matrix(q), R, atol=1e-15)
    np.testing.assert_allclose(matrix_to_quaternion(R), q, atol=1e-15)
    # rotating a vector with the quaternion sandwich is the matrix product
    v = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(quat_rotate(q, v), R @ v, atol=1e-15)
    # four quarter turns are a full turn: -1 as a quaternion, the identity as a rotation
    full = quat_mul(quat_mul(q, q), quat_mul(q, q))
    np.testing.assert_allclose(full, -IDENTITY_Q, atol=1e-15)


def test_hamilton_product_and_conjugate():
    i, j, k = np.eye(4)[1], np.eye(4)[2], np.eye(4)[3]
    np.testing.assert_array_equal(quat_mul(i, j), k)
    np.testing.assert_array_equal(quat_mul(j, i), -k)
    np.testing.assert_array_equal(quat_mul(i, i), -IDENTITY_Q)
    np.testing.assert_array_equal(quat_conjugate(np.array([1.0, 2, 3, 4])), [1.0, -2, -3, -4])
    # the product broadcasts over leading axes
    assert quat_mul(np.tile(i, (5, 1)), j).shape == (5, 4)


@pytest.mark.parametrize("diag", [(1.0, -1.0, -1.0), (-1.0, 1.0, -1.0), (-1.0, -1.0, 1.0)])
def test_half_turns_take_each_shepperd_branch(diag):
    # 180 degrees about x / y / z: trace -1, so the largest diagonal term picks the branch
    q = matrix_to_quaternion(np.diag(diag))
    np.testing.assert_allclose(q, [0.0, *(1.0 if d > 0 else 0.0 for d in diag)], atol=1e-15)


def test_round_trip_matrix_quaternion_matrix():
    for q in _random_rotations(200):
        R = quaternion_to_matrix(q)
        back = matrix_to_quaternion(R)
        assert back[0] >= 0
        np.testing.assert_allclose(quaternion_to_matrix(back), R, atol=1e-12)
        np.testing.assert_allclose(back, q if q[0] >= 0 else -q, atol=1e-12)
    # a scaled quaternion is normalised first
    np.testing.assert_allclose(quaternion_to_matrix(3.0 * NINETY["z"][0]), NINETY["z"][1], atol=1e-15)


def test_composition_is_associative_and_matches_matrices():
    rng = np.random.default_rng(1)
    a, b, c = (np.concatenate([q, rng.normal(size=3)]) for q in _random_rotations(3, seed=2))
    np.testing.assert_allclose(compose_poses(compose_poses(a, b), c), compose_poses(a, compose_poses(b, c)),
                               atol=1e-12)
    # world->rig then rig->camera: R = R_b R_a, t = R_b t_a + t_b
    ab = compose_poses(a, b)
    Ra, Rb = quaternion_to_matrix(a[:4]), quaternion_to_matrix(b[:4])
    np.testing.assert_allclose(quaternion_to_matrix(ab[:4]), Rb @ Ra, atol=1e-12)
    np.testing.assert_allclose(ab[4:], Rb @ a[4:] + b[4:], atol=1e-12)
    np.testing.assert_array_equal(compose_poses(IDENTITY_POSE, a), a)
    # by hand: identity with t = (1, 2, 3), then 90 degrees about z with t = (0, 0, 1)
    np.testing.assert_allclose(compose_poses([1.0, 0, 0, 0, 1, 2, 3], [S, 0, 0, S, 0, 0, 1]),
                               [S, 0, 0, S, -2, 1, 4], atol=1e-12)


def test_camera_center_is_minus_rt_t():
    np.testing.assert_allclose(camera_centers(np.array([1.0, 0, 0, 0, 1, 2, 3])), [-1, -2, -3])
    # 90 degrees about z: R maps x->y; centre c = -R^T t with t = (0, 1, 0) -> (-1, 0, 0)
    pose = np.array([S, 0, 0, S, 0, 1, 0])
    np.testing.assert_allclose(camera_centers(pose), [-1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(camera_center(NINETY["z"][1], np.array([0.0, 1.0, 0.0])), [-1, 0, 0], atol=1e-15)
    # batched rows give the row-wise centres
    rows = np.stack([pose, np.array([1.0, 0, 0, 0, 1, 2, 3])])
    np.testing.assert_allclose(camera_centers(rows), [[-1, 0, 0], [-1, -2, -3]], atol=1e-12)


def test_pose_errors_ninety_degrees_and_one_metre():
    # rotated 90 degrees about z, camera centre at (-1, 0, 0): one metre from the origin
    pos, rot = pose_errors(np.array([[S, 0, 0, S, 0, 1, 0]]), np.array([IDENTITY_POSE]))
    assert pos[0] == pytest.approx(1.0)
    assert rot[0] == pytest.approx(90.0)
    # q and -q are the same rotation; a scaled quaternion is normalised
    pos, rot = pose_errors(np.array([[-2.0, 0, 0, 0, 0, 0, 0]]), np.array([IDENTITY_POSE]))
    assert pos[0] == 0.0 and rot[0] == pytest.approx(0.0, abs=1e-9)


def test_rotation_error_of_a_small_angle_keeps_its_digits():
    # 0.01 degrees: acos of the trace would keep ~4 digits here, atan2 keeps them all
    est = np.concatenate([_about_z(0.01), [0.0, 0.0, 0.0]])
    truth = np.concatenate([_about_z(0.0), [0.0, 0.0, 0.0]])
    _, rot = pose_errors(est[None], truth[None])
    assert rot[0] == pytest.approx(0.01, rel=1e-9)
    # relative to a rotated ground truth it is the same angle
    _, rot = pose_errors(np.concatenate([_about_z(30.01), [0.0] * 3])[None],
                         np.concatenate([_about_z(30.0), [0.0] * 3])[None])
    assert rot[0] == pytest.approx(0.01, rel=1e-6)


def test_pose_errors_nan_rows_and_shapes():
    pos, rot = pose_errors(np.full((1, 7), np.nan), np.array([IDENTITY_POSE]))
    assert np.isnan(pos[0]) and np.isnan(rot[0])
    with pytest.raises(DarksideError, match=r"\(N, 7\)"):
        pose_errors(np.zeros((2, 7)), np.zeros((3, 7)))
