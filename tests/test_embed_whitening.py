"""Learned whitening Lw: hand-checked 2-D example and the whitening property on synthetic data; the PCA that
reduces a long descriptor (NetVLAD's) first."""

import tracemalloc

import numpy as np
import pytest

from darkside.embed.whitening import (
    Whitening,
    apply_whitening,
    learn_whitening,
    load_whitening,
    pca_basis,
    save_whitening,
)
from darkside.errors import DarksideError


def test_hand_checked_2d_example():
    # a=(1,0), b=(-1,0), c=(0,1), d=(0,-1); pairs (a,b), (c,d): differences (2,0), (0,2)
    X = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    w = learn_whitening(X, [0, 2], [1, 3])
    # m = mean(a, c); S = 2 I -> P1 = I / sqrt(2); D = 1/2 [[3, 1], [1, 3]]: eigenvalues 2, 1 with
    # vectors (1, 1)/sqrt(2), (1, -1)/sqrt(2) -> P = [[1, 1], [1, -1]] / 2
    np.testing.assert_allclose(w.m, [0.5, 0.5])
    np.testing.assert_allclose(w.P, [[0.5, 0.5], [0.5, -0.5]], atol=1e-12)
    y = apply_whitening(X[:1], w)
    np.testing.assert_allclose(y, [[0.0, 0.5 / (0.5 + 1e-6)]], atol=1e-12)
    np.testing.assert_allclose(apply_whitening(X[1], w, dims=1), [[-1.0 / (1.0 + 1e-6)]])


def test_pair_differences_get_identity_covariance():
    rng = np.random.default_rng(0)
    n, d = 300, 6
    centres = rng.normal(size=(n, d)) * np.array([5, 4, 3, 2, 1, 0.5])
    noise = rng.normal(size=(2, n, d)) @ rng.normal(size=(d, d))  # correlated intra-pair variation
    X = np.concatenate([centres + noise[0], centres + noise[1]])
    q, p = np.arange(n), np.arange(n, 2 * n)
    w = learn_whitening(X, q, p)
    diff = (X[q] - X[p]) @ w.P.T
    np.testing.assert_allclose(diff.T @ diff / n, np.eye(d), atol=1e-9)
    # PCA part: whitened data has a diagonal scatter with decreasing variances
    Y = (X - w.m) @ w.P.T
    scatter = Y.T @ Y
    np.testing.assert_allclose(scatter - np.diag(np.diag(scatter)), 0, atol=1e-6)
    assert np.all(np.diff(np.diag(scatter)) <= 1e-9)
    out = apply_whitening(X, w, dims=3)
    assert out.shape == (2 * n, 3)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


def test_singular_covariance_is_regularised():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(20, 4))
    X[10:, 3] = X[:10, 3]  # pair differences are zero in the last dimension
    w = learn_whitening(X, np.arange(10), np.arange(10, 20))
    assert np.isfinite(w.P).all()


def test_bad_inputs():
    X = np.zeros((3, 2))
    with pytest.raises(DarksideError, match="out of range"):
        learn_whitening(X, [0], [3])
    with pytest.raises(DarksideError, match="equal non-empty pair lists"):
        learn_whitening(X, [], [])
    with pytest.raises(DarksideError, match="2 dimensions"):
        apply_whitening(np.zeros((1, 2)), Whitening(np.zeros(3), np.eye(3)))


def test_save_load(tmp_path):
    w = Whitening(np.array([1.0, 2.0]), np.array([[1.0, 2.0], [3.0, 4.0]]))
    path = save_whitening(tmp_path / "lw.npz", w)
    assert path == tmp_path / "lw.npz" and not list(tmp_path.glob(".*part"))
    back = load_whitening(path)
    np.testing.assert_array_equal(back.m, w.m)
    np.testing.assert_array_equal(back.P, w.P)
    with pytest.raises(DarksideError, match=r"none\.npz: whitening file does not exist"):
        load_whitening(tmp_path / "none.npz")
    (tmp_path / "bad.npz").write_bytes(b"junk")
    with pytest.raises(DarksideError, match=r"bad\.npz: not a whitening file"):
        load_whitening(tmp_path / "bad.npz")


def test_pca_basis_hand_checked_on_both_paths():
    # N > D (covariance): variances 8 along e2, 2 along e1, none along e3 -> r = 2 of the 3 asked for
    X = np.array([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, -2.0, 0.0]])
    mu, U = pca_basis(X, 3)
    np.testing.assert_allclose(mu, 0.0)
    np.testing.assert_allclose(U, [[0.0, 1.0], [1.0, 0.0], [0.0, 0.0]], atol=1e-12)
    # N < D (Gram): two images differ along (1, -0.5, 0, 0) only -> one direction, its largest component positive
    mu, U = pca_basis(np.array([[2.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]]), 3)
    np.testing.assert_allclose(mu, [1.0, 0.5, 0.0, 0.0])
    np.testing.assert_allclose(U[:, 0], np.array([1.0, -0.5, 0.0, 0.0]) / np.sqrt(1.25), atol=1e-12)
    assert U.shape == (4, 1)


def test_the_gram_path_spans_the_leading_principal_subspace():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(10, 40)) * np.linspace(3, 0.1, 40)
    mu, U = pca_basis(X, 4)
    np.testing.assert_allclose(mu, X.mean(axis=0), atol=1e-12)
    np.testing.assert_allclose(U.T @ U, np.eye(4), atol=1e-10)
    vt = np.linalg.svd(X - X.mean(axis=0), full_matrices=False)[2][:4]
    np.testing.assert_allclose(np.abs(vt @ U), np.eye(4), atol=1e-8)  # the same directions, up to sign


def test_lw_after_pca_is_lw_of_the_projected_descriptors():
    rng = np.random.default_rng(4)
    n, d = 40, 24
    centres = rng.normal(size=(n, d))
    X = np.concatenate([centres + 0.1 * rng.normal(size=(n, d)), centres + 0.1 * rng.normal(size=(n, d))])
    q, p = np.arange(n), np.arange(n, 2 * n)
    w = learn_whitening(X, q, p, pca_dims=6)
    assert w.P.shape == (6, d) and w.m.shape == (d,)
    mu, U = pca_basis(X, 6)
    reduced = learn_whitening((X - mu) @ U, q, p)
    np.testing.assert_allclose(apply_whitening(X, w), apply_whitening((X - mu) @ U, reduced), atol=1e-9)
    # matching pairs still get identity covariance in the reduced space
    diff = (X[q] - X[p]) @ w.P.T
    np.testing.assert_allclose(diff.T @ diff / n, np.eye(6), atol=1e-8)
    # a descriptor no longer than pca_dims is left as it is: the same bytes as without it
    plain, same = learn_whitening(X, q, p), learn_whitening(X, q, p, pca_dims=d)
    assert plain.P.tobytes() == same.P.tobytes() and plain.m.tobytes() == same.m.tobytes()


def test_a_long_descriptor_from_few_images_needs_no_d_by_d_matrix():
    # NetVLAD's shape, scaled down: 8,192-D descriptors of 24 whitening images; Lw in full would hold several
    # 8,192 x 8,192 float64 matrices (512 MB each; at the paper's 32,768-D, 8.6 GB each)
    rng = np.random.default_rng(5)
    X = rng.normal(size=(24, 8192))
    tracemalloc.start()
    try:
        w = learn_whitening(X, np.arange(12), np.arange(12, 24), pca_dims=4096)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert w.P.shape == (23, 8192)  # 24 images centred: rank 23
    assert peak < 64 * 2 ** 20, f"peak {peak / 2 ** 20:.0f} MiB"
    assert np.isfinite(apply_whitening(X, w)).all()
