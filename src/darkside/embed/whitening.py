"""Learned whitening Lw (Radenović et al.; cirtorch's ``whitenlearn``), numpy float64 only.

Learn: m = mean of the query descriptors of the pairs; S = mean outer product of the pair
differences; P1 = L^-1 with S = L L^T (Cholesky); then PCA of P1 (X - m) over all whitening
images, components by decreasing variance; P = V^T P1. Apply: y = P[:dims] (x - m), L2.
Matching pairs get identity covariance (intra-class variation is equalised away) and the
leading dimensions carry the most inter-image variance, so truncating to ``dims`` keeps them.

Descriptors longer than ``pca_dims`` are first projected on the leading principal directions of the
whitening images (NetVLAD's own PCA to 4,096-D): Lw of NetVLAD's 32,768-D descriptor would need
D x D matrices of 8.6 GB each. The projection is folded into ``m`` and ``P`` (P is then r x D), so
applying it is the same ``P (x - m)``.
"""

from __future__ import annotations

import logging
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from darkside.atomic import atomic_path
from darkside.errors import DarksideError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Whitening:
    """Mean ``m`` (D,) and projection ``P`` (D, D), or (r, D) after a PCA to r, rows by decreasing variance."""

    m: np.ndarray
    P: np.ndarray


def cholesky_jittered(S: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor of S, adding alpha*I (1e-10, x10 each retry) until S is positive definite."""
    alpha = 0.0
    eye = np.eye(S.shape[0])
    while True:
        try:
            return np.linalg.cholesky(S + alpha * eye)
        except np.linalg.LinAlgError:
            alpha = 1e-10 if alpha == 0.0 else alpha * 10.0
            if alpha > 1e10:  # S is not even a finite matrix
                raise DarksideError("whitening: pair-difference covariance is not finite") from None
            log.warning("whitening: covariance not positive definite, adding %.0e on the diagonal", alpha)


def _sign_fixed(eigvec: np.ndarray) -> np.ndarray:
    """Each eigenvector (column) with its largest-magnitude component positive: deterministic across LAPACKs."""
    signs = np.sign(eigvec[np.abs(eigvec).argmax(axis=0), np.arange(eigvec.shape[1])])
    return eigvec * np.where(signs == 0, 1.0, signs)


def pca_basis(X: np.ndarray, dims: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``mu`` (D,) and the ``r`` leading principal directions ``U`` (D, r) of the rows of ``X`` (N, D),
    r = min(dims, rank). No D x D matrix when N < D: the eigenvectors of the N x N Gram matrix map to them
    (U = Xc^T V / sqrt(lambda)); otherwise of the D x D covariance."""
    X = np.asarray(X, dtype=np.float64)
    mu = X.mean(axis=0)
    Xc = X - mu
    # N < D (the rehearsal, any whitening set under D images): no D x D matrix. N >= D still builds one (8.6 GB
    # at NetVLAD's 32,768-D), and X itself is N x D: the paper's sfm120k-whiten needs a sampled or incremental PCA
    gram = Xc.shape[0] < Xc.shape[1]
    eigval, eigvec = np.linalg.eigh(Xc @ Xc.T if gram else Xc.T @ Xc)
    order = np.argsort(eigval)[::-1]
    eigval, eigvec = eigval[order], eigvec[:, order]
    # directions of (numerically) zero variance carry nothing to whiten: rank-limited
    keep = int(min(dims, np.count_nonzero(eigval > max(eigval[0], 0.0) * 1e-10)))
    if keep == 0:
        raise DarksideError("whitening: the whitening images' descriptors are all the same")
    eigval, eigvec = eigval[:keep], eigvec[:, :keep]
    U = Xc.T @ eigvec / np.sqrt(eigval) if gram else eigvec
    return mu, _sign_fixed(U)


def learn_whitening(X: np.ndarray, qidx: Any, pidx: Any, pca_dims: int | None = None) -> Whitening:
    """Learn Lw from descriptors ``X`` (N, D) (rows = images) and matching pairs ``(qidx[i], pidx[i])``;
    for D > ``pca_dims``, in the span of the whitening images' leading ``pca_dims`` principal directions."""
    X = np.asarray(X, dtype=np.float64)
    if pca_dims is not None and X.ndim == 2 and X.shape[1] > pca_dims:
        mu, U = pca_basis(X, pca_dims)
        w = learn_whitening((X - mu) @ U, qidx, pidx)
        # P_r (U^T (x - mu) - m_r) = (P_r U^T) (x - (mu + U m_r)), since U^T U = I
        return Whitening(m=mu + U @ w.m, P=w.P @ U.T)
    qidx, pidx = np.asarray(qidx, dtype=np.int64), np.asarray(pidx, dtype=np.int64)
    if X.ndim != 2 or qidx.shape != pidx.shape or qidx.ndim != 1 or qidx.size == 0:
        raise DarksideError(f"whitening: need X (N, D) and equal non-empty pair lists, got X {X.shape}, "
                            f"{qidx.shape} queries, {pidx.shape} positives")
    if min(qidx.min(), pidx.min()) < 0 or max(qidx.max(), pidx.max()) >= X.shape[0]:
        raise DarksideError(f"whitening: pair index out of range for {X.shape[0]} descriptors")
    m = X[qidx].mean(axis=0)
    diff = X[qidx] - X[pidx]
    S = diff.T @ diff / diff.shape[0]
    P1 = np.linalg.inv(cholesky_jittered(S))
    Y = (X - m) @ P1.T
    # eigh: D is symmetric, so real eigenpairs; cirtorch does not normalise D by N (same vectors)
    eigval, eigvec = np.linalg.eigh(Y.T @ Y)
    order = np.argsort(eigval)[::-1]
    eigvec = _sign_fixed(eigvec[:, order])
    return Whitening(m=m, P=eigvec.T @ P1)


def apply_whitening(X: np.ndarray, w: Whitening, dims: int | None = None) -> np.ndarray:
    """``P[:dims] (x - m)`` per row of X (N, D), then L2 (``/ (||y|| + 1e-6)``); float64 (N, dims)."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[None]
    if X.shape[1] != w.m.shape[0]:
        raise DarksideError(f"whitening: descriptors have {X.shape[1]} dimensions, "
                            f"the whitening expects {w.m.shape[0]}")
    P = w.P if dims is None else w.P[:dims]
    Y = (X - w.m) @ P.T
    return Y / (np.linalg.norm(Y, axis=1, keepdims=True) + 1e-6)


def save_whitening(path: str | os.PathLike[str], w: Whitening) -> Path:
    """Write ``m`` and ``P`` to an ``.npz`` atomically; return the path."""
    with atomic_path(path, suffix=".npz") as tmp, tmp.open("wb") as fh:
        np.savez(fh, m=np.asarray(w.m, dtype=np.float64), P=np.asarray(w.P, dtype=np.float64))
    return Path(path)


def load_whitening(path: str | os.PathLike[str]) -> Whitening:
    """Read a :func:`save_whitening` file; one-line error naming it if missing or malformed."""
    p = Path(path)
    if not p.is_file():
        raise DarksideError(f"{p}: whitening file does not exist")
    try:
        with np.load(p, allow_pickle=False) as z:
            m, P = z["m"], z["P"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DarksideError(f"{p}: not a whitening file ({reason})") from None
    if m.ndim != 1 or P.ndim != 2 or P.shape[1] != m.shape[0]:
        raise DarksideError(f"{p}: whitening shapes do not fit (m {m.shape}, P {P.shape})")
    return Whitening(m=m, P=P)
