"""ASMK (Tolias, Avrithis, Jegou 2013) as HOW evaluates with it: a similarity of two sets of local descriptors.

Codebook: ``words`` centroids by k-means (Lloyd, ``iterations`` rounds, started from distinct random descriptors)
on the local descriptors of the first training images. An image's descriptors are each assigned to their
``database_assignments`` (database side) or ``query_assignments`` (query side) nearest words by L2; per word c the
residuals are summed, V(c) = sum over the descriptors assigned to c of (x - mu_c), and binarised, b(c) = sign V(c)
(a dimension > 0 counts as +1, else -1), packed 8 dimensions a byte. Two words compare by
u = <b_q, b_x> / d = 1 - 2 Hamming / d in [-1, 1], through the selectivity sigma(u) = sign(u) |u|^alpha for
u >= tau, else 0. The image score, with no IDF, is normalised by the number of words each side has:

    S(q, x) = sum over words c of both images of sigma(u_c) / sqrt(|W_q| |W_x|)

(an image's self-similarity is sum over its words of sigma(1) = |W|, so S(x, x) = 1 on the database side).

Scoring ranks with a similarity of rows (:mod:`.ranking`): :func:`asmk_descriptor_set` replaces a descriptor file's
rows by handles (image row r -> r, cropped query j -> N + j) whose similarity is this kernel, the query handle on
its query side, the database handle on its database side. Scores are float64 sums taken in the order of the query's
words, so a pair scores the same in every database block. numpy only (no faiss): a paper-size codebook (65,536
words on ~20 M descriptors) is blocked matrix products, ~10^15 multiply-adds in all.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from darkside.atomic import atomic_path
from darkside.errors import DarksideError
from darkside.extract.hdf5 import DescriptorSet, LocalFeatures
from darkside.settings import setting

_BUDGET = 1 << 24  # distance entries per block (64 MB of float32)


@dataclass(frozen=True)
class CodebookSettings:
    """``local.codebook``: the visual vocabulary of a model (one per model, a DAG output)."""

    words: int = setting("visual words (paper 65,536)", ge=1)
    iterations: int = setting("k-means rounds (paper 10)", ge=1)
    images: int = setting("its descriptors come from the first this many training images (paper 20,000)", ge=1)
    seed: int = setting("which descriptors start the k-means", ge=0)


@dataclass(frozen=True)
class AsmkSettings:
    """``local.asmk``: the kernel (binarised residuals, no IDF, as HOW's ``_asmk_how`` settings)."""

    database_assignments: int = setting("nearest words each database descriptor joins (paper 1)", ge=1)
    query_assignments: int = setting("nearest words each query descriptor joins (paper 5)", ge=1)
    alpha: float = setting("selectivity exponent (paper 3)", gt=0)
    tau: float = setting("selectivity threshold on a word similarity in [-1, 1] (paper 0)", ge=-1, le=1)


# --- codebook -------------------------------------------------------------------------------------------------

def _rows(n: int, k: int) -> Iterator[tuple[int, int]]:
    step = max(1, _BUDGET // max(1, k))
    for s in range(0, n, step):
        yield s, min(n, s + step)


def nearest_words(X: np.ndarray, centroids: np.ndarray, k: int = 1) -> np.ndarray:
    """(n, k) indices of each row's ``k`` nearest centroids by L2, nearest first (ties: lower index first)."""
    X = np.asarray(X, dtype=np.float32)
    C = np.asarray(centroids, dtype=np.float32)
    k = min(int(k), len(C))
    out = np.empty((len(X), k), dtype=np.int64)
    cn = (C * C).sum(axis=1)
    for s, e in _rows(len(X), len(C)):
        d = cn[None, :] - 2.0 * (X[s:e] @ C.T)  # |x|^2 is the same for every centroid of a row
        if k == 1:  # argmin: the first of equal minima, as the tie rule below
            out[s:e, 0] = np.argmin(d, axis=1)
            continue
        part = np.argpartition(d, k - 1, axis=1)[:, :k] if k < len(C) else np.broadcast_to(np.arange(len(C)), d.shape)
        dk = np.take_along_axis(d, part, axis=1)
        order = np.lexsort((part, dk), axis=1)
        out[s:e] = np.take_along_axis(part, order, axis=1)
    return out


def kmeans(X: np.ndarray, words: int, iterations: int, seed: int) -> np.ndarray:
    """Lloyd's k-means: (words, D) float32 centroids. Starts from ``words`` distinct random rows of ``X``; a word
    left empty by a round keeps its previous centroid."""
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2 or len(X) < words:
        raise DarksideError(f"codebook: {words} words need at least as many descriptors, got {X.shape[0]}")
    rng = np.random.default_rng(seed)
    C = X[np.sort(rng.choice(len(X), size=words, replace=False))].copy()
    for _ in range(iterations):
        sums = np.zeros(C.shape, dtype=np.float64)
        counts = np.zeros(words, dtype=np.int64)
        for s, e in _rows(len(X), words):
            a = nearest_words(X[s:e], C, 1)[:, 0]
            order = np.argsort(a, kind="stable")
            w, start = np.unique(a[order], return_index=True)
            sums[w] += np.add.reduceat(X[s:e][order].astype(np.float64), start, axis=0)
            counts += np.bincount(a, minlength=words)
        full = counts > 0
        C[full] = (sums[full] / counts[full, None]).astype(np.float32)
    return C


def write_codebook(path: str | Path, centroids: np.ndarray, attrs: dict[str, Any]) -> Path:
    """``/centroids`` (K, D) float32 plus ``attrs`` (model, settings...), atomically; return the path."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("centroids", data=np.asarray(centroids, dtype=np.float32))
        for k, v in attrs.items():
            f.attrs[k] = v
    return Path(path)


def read_codebook(path: str | Path) -> np.ndarray:
    """The centroids of a codebook file; one-line error if it is missing or not one."""
    p = Path(path)
    if not p.is_file():
        raise DarksideError(f"{p}: codebook file does not exist")
    try:
        with h5py.File(p, "r") as f:
            if "centroids" not in f or f["centroids"].ndim != 2:
                raise DarksideError(f"{p}: not a darkside codebook (no 2-D 'centroids')")
            return f["centroids"][()]
    except (OSError, KeyError, RuntimeError) as exc:
        raise DarksideError(f"{p}: unreadable codebook file ({exc})") from None


# --- the kernel ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Aggregated:
    """One image under the codebook: its distinct words (ascending) and their packed binary residual signs."""

    words: np.ndarray  # (W,) int64
    codes: np.ndarray  # (W, ceil(d / 8)) uint8
    dim: int


def aggregate(X: np.ndarray, centroids: np.ndarray, assignments: int) -> Aggregated:
    """Assign each descriptor to its ``assignments`` nearest words, sum the residuals per word, binarise."""
    X = np.asarray(X, dtype=np.float32)
    C = np.asarray(centroids, dtype=np.float32)
    if X.ndim != 2 or X.shape[1] != C.shape[1]:
        raise DarksideError(f"asmk: local descriptors of dimension {X.shape[-1]} for a codebook of {C.shape[1]}")
    A = nearest_words(X, C, assignments)
    a, feat = A.ravel(), np.repeat(np.arange(len(X)), A.shape[1])
    order = np.argsort(a, kind="stable")
    a, feat = a[order], feat[order]
    words, start = np.unique(a, return_index=True)
    res = (X[feat] - C[a]).astype(np.float64)
    V = np.add.reduceat(res, start, axis=0) if len(a) else np.zeros((0, C.shape[1]))
    return Aggregated(words.astype(np.int64), np.packbits(V > 0, axis=1), C.shape[1])


def selectivity(u: np.ndarray, alpha: float, tau: float) -> np.ndarray:
    """sigma(u) = sign(u) |u|^alpha where u >= tau, else 0."""
    u = np.asarray(u, dtype=np.float64)
    return np.where(u >= tau, np.sign(u) * np.abs(u) ** alpha, 0.0)


@dataclass(frozen=True)
class _Inverted:
    """Database images of a block, word-major: for each (word, image) entry, its image and code."""

    words: np.ndarray
    image: np.ndarray
    codes: np.ndarray
    n_words: np.ndarray  # (c,) words per image


def _inverted(db: list[Aggregated]) -> _Inverted:
    dim_bytes = db[0].codes.shape[1] if db else 0
    words = np.concatenate([a.words for a in db]) if db else np.zeros(0, np.int64)
    image = np.repeat(np.arange(len(db)), [len(a.words) for a in db])
    codes = np.concatenate([a.codes for a in db]) if db else np.zeros((0, dim_bytes), np.uint8)
    order = np.argsort(words, kind="stable")
    return _Inverted(words[order], image[order], codes[order], np.array([len(a.words) for a in db], np.int64))


def _scores_one(q: Aggregated, inv: _Inverted, n_db: int, alpha: float, tau: float) -> np.ndarray:
    lo = np.searchsorted(inv.words, q.words, side="left")
    hi = np.searchsorted(inv.words, q.words, side="right")
    counts = hi - lo
    total = int(counts.sum())
    out = np.zeros(n_db, dtype=np.float64)
    if total:
        qword = np.repeat(np.arange(len(q.words)), counts)
        pos = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts) + np.repeat(lo, counts)
        ham = np.bitwise_count(q.codes[qword] ^ inv.codes[pos]).sum(axis=1, dtype=np.int64)
        out = np.bincount(inv.image[pos], weights=selectivity(1.0 - 2.0 * ham / q.dim, alpha, tau), minlength=n_db)
    norm = np.sqrt(float(len(q.words)) * inv.n_words)
    return np.divide(out, norm, out=np.zeros(n_db), where=norm > 0)


def asmk_scores(queries: list[Aggregated], database: list[Aggregated], alpha: float, tau: float) -> np.ndarray:
    """(len(queries), len(database)) float64 ASMK similarities (see the module docstring)."""
    inv = _inverted(database)
    S = np.zeros((len(queries), len(database)), dtype=np.float64)
    for m, q in enumerate(queries):
        S[m] = _scores_one(q, inv, len(database), alpha, tau)
    return S


class AsmkSimilarity:
    """The similarity of handles (see the module docstring); each side of an image is aggregated once, when first
    asked for."""

    def __init__(self, images: LocalFeatures, queries: LocalFeatures | None, centroids: np.ndarray,
                 settings: AsmkSettings) -> None:
        self.images, self.queries, self.centroids, self.s = images, queries, centroids, settings
        self._db: dict[int, Aggregated] = {}
        self._q: dict[int, Aggregated] = {}
        self._block: tuple[bytes, _Inverted] | None = None

    def _local(self, h: int) -> np.ndarray:
        n = len(self.images)
        return self.images.of(h) if h < n else self.queries.of(h - n)  # type: ignore[union-attr]

    def query_side(self, h: int) -> Aggregated:
        if h not in self._q:
            self._q[h] = aggregate(self._local(h), self.centroids, self.s.query_assignments)
        return self._q[h]

    def database_side(self, h: int) -> Aggregated:
        if h not in self._db:
            self._db[h] = aggregate(self.images.of(h), self.centroids, self.s.database_assignments)
        return self._db[h]

    def __call__(self, Q: np.ndarray, Xb: np.ndarray) -> np.ndarray:
        """(M, c) similarities of query handles ``Q`` (M, 1) to database handles ``Xb`` (c, 1)."""
        xh = np.asarray(Xb, dtype=np.int64).reshape(-1)
        key = xh.tobytes()
        if self._block is None or self._block[0] != key:  # the rankers ask for the same block pass after pass
            self._block = (key, _inverted([self.database_side(int(h)) for h in xh]))
        inv = self._block[1]
        qh = np.asarray(Q, dtype=np.int64).reshape(-1)
        S = np.zeros((len(qh), len(xh)), dtype=np.float64)
        for m, h in enumerate(qh):
            S[m] = _scores_one(self.query_side(int(h)), inv, len(xh), self.s.alpha, self.s.tau)
        return S


def asmk_descriptor_set(ds: DescriptorSet, centroids: np.ndarray, settings: AsmkSettings,
                        where: str | Path) -> DescriptorSet:
    """``ds`` with its rows replaced by handles ranked by ASMK over its local features (module docstring)."""
    if ds.local is None:
        raise DarksideError(f"{where}: no /local features to score with an ASMK codebook")
    if ds.local.descriptors.shape[1] != np.shape(centroids)[1]:
        raise DarksideError(f"{where}: local descriptors of dimension {ds.local.descriptors.shape[1]} for a "
                            f"codebook of dimension {np.shape(centroids)[1]}")
    n = len(ds.image_ids)
    if ds.query_ids is not None and (ds.query_local is None or len(ds.query_local) != len(ds.query_ids)):
        raise DarksideError(f"{where}: cropped queries without their /queries/local features")
    handles = np.arange(n, dtype=np.float64).reshape(n, 1)
    qhandles = (None if ds.query_ids is None
                else (n + np.arange(len(ds.query_ids), dtype=np.float64)).reshape(-1, 1))
    return replace(ds, descriptors=handles, query_descriptors=qhandles,
                   similarity=AsmkSimilarity(ds.local, ds.query_local, centroids, settings))
