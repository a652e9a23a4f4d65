"""Bounded-memory ranking: exact ranks of chosen items and running top-k, database in blocks.

A database of a million descriptors does not fit a (queries x database) similarity matrix, so both functions walk
the database in blocks of ``chunk_size`` rows and keep O(M * (K + chunk)) memory. The ranking they define is exactly
``np.argsort(-s, kind="stable")`` of the similarity ``s = X @ q``: descending similarity, ties broken by database
index. The similarities are the block products (:func:`block_scores`); a single full ``Q @ X.T`` may differ from
them in the last float32 bit (BLAS sums in a shape-dependent order), which can swap two items whose scores agree to
~1e-7 - a genuine tie at float32 precision, not an error of the blocked ranking.

Every function takes the ``similarity`` of a query batch and a database block, dot products by default; a kernel on
local features (ASMK) passes its own (rows are then handles into it, see :mod:`.asmk`). It must score a pair the same
in every block.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np

from darkside.errors import DarksideError


def _blocks(n: int, chunk_size: int) -> Iterator[tuple[int, int]]:
    if chunk_size < 1:
        raise DarksideError(f"evaluate.chunk_size: must be >= 1, got {chunk_size}")
    for start in range(0, n, chunk_size):
        yield start, min(n, start + chunk_size)


def block_scores(Q: np.ndarray, Xb: np.ndarray) -> np.ndarray:
    """Similarities (M, c) of queries to a database block: dot products (descriptors are L2-normalised)."""
    return Q @ Xb.T


#: ``similarity(Q (M, D), Xb (c, D)) -> (M, c)``
Similarity = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _as_queries(Q: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, bool]:
    Q = np.asarray(Q)
    single = Q.ndim == 1
    Q2 = Q[None, :] if single else Q
    if Q2.ndim != 2 or X.ndim != 2 or Q2.shape[1] != X.shape[1]:
        raise DarksideError(f"ranking: query shape {Q.shape} does not match database shape {X.shape}")
    return Q2, single


def positive_ranks(Q: np.ndarray, X: np.ndarray, idx: np.ndarray, chunk_size: int,
                   similarity: Similarity = block_scores) -> np.ndarray:
    """Exact 0-based ranks of database items ``idx`` in each query's ranking: the items scoring higher plus those
    with an equal score and a smaller index. ``Q`` is one query (D,) with ``idx`` (K,), or (M, D) with ``idx``
    (M, K); entries -1 in ``idx`` are padding (ragged lists) and come back as -1.

    Two passes over the database: the first reads each target's score out of the very block product used for
    counting in the second, so a target never compares against a copy of its own score computed by a different
    BLAS path (which could differ in the last bit and shift the rank by one).
    """
    X = np.asarray(X)
    Q2, single = _as_queries(Q, X)
    idx2 = np.asarray(idx, dtype=np.int64).reshape(1, -1) if single else np.asarray(idx, dtype=np.int64)
    M, N = Q2.shape[0], X.shape[0]
    if idx2.ndim != 2 or idx2.shape[0] != M:
        raise DarksideError(f"ranking: idx shape {np.shape(idx)} does not match {M} queries")
    if idx2.size and (idx2.max() >= N or idx2.min() < -1):
        raise DarksideError(f"ranking: item index out of range for a database of {N}")
    blocks = list(_blocks(N, chunk_size))
    cache = None  # one block: compute the product once
    targets = np.full(idx2.shape, np.nan)
    for start, stop in blocks:
        sel = (idx2 >= start) & (idx2 < stop)
        if not sel.any():
            continue
        S = similarity(Q2, X[start:stop])
        if len(blocks) == 1:
            cache = S
        rows, cols = np.nonzero(sel)
        targets[rows, cols] = S[rows, idx2[rows, cols] - start]
    t = targets.astype(np.result_type(Q2.dtype, X.dtype), copy=False)
    ranks = np.zeros(idx2.shape, dtype=np.int64)
    for start, stop in blocks:
        S = cache if cache is not None else similarity(Q2, X[start:stop])
        c = stop - start
        Ssorted = np.sort(S, axis=1)
        for m in range(M):
            lo = np.searchsorted(Ssorted[m], t[m], side="left")  # scores < t
            hi = np.searchsorted(Ssorted[m], t[m], side="right")  # scores <= t
            before = idx2[m] >= stop  # block entirely precedes the target: equal scores rank higher
            add = np.where(before, c - lo, c - hi)
            inside = (idx2[m] >= start) & (idx2[m] < stop) & (hi - lo > 1)
            for k in np.nonzero(inside)[0]:  # ties within the target's own block: rare, count them
                add[k] += int(np.count_nonzero(S[m, : idx2[m, k] - start] == t[m, k]))
            ranks[m] += add
    ranks[idx2 < 0] = -1
    return ranks[0] if single else ranks


def ranks_of(Q: np.ndarray, X: np.ndarray, items: Sequence[np.ndarray], chunk_size: int,
             similarity: Similarity = block_scores) -> list[np.ndarray]:
    """:func:`positive_ranks` for ragged per-query item lists (one array of db indices per query)."""
    Q2, _ = _as_queries(Q, np.asarray(X))
    if len(items) != Q2.shape[0]:
        raise DarksideError(f"ranking: {len(items)} item lists for {Q2.shape[0]} queries")
    width = max((len(a) for a in items), default=0)
    idx = np.full((len(items), width), -1, dtype=np.int64)
    for m, a in enumerate(items):
        idx[m, : len(a)] = np.asarray(a, dtype=np.int64)
    ranks = positive_ranks(Q2, X, idx, chunk_size, similarity)
    return [ranks[m, : len(a)] for m, a in enumerate(items)]


def topk(Q: np.ndarray, X: np.ndarray, k: int, chunk_size: int, exclude: np.ndarray | None = None,
         similarity: Similarity = block_scores) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` database indices and scores per query, (M, min(k, N)) or (k,) for one query; slots with nothing
    left hold index -1 and score -inf. ``exclude`` (M,) drops one database index per query (-1 drops nothing).

    A running (M, k) best list is merged with each block; as blocks arrive in index order and the merge sort is
    stable, ties stay ordered by database index (``np.argsort(-s, kind="stable")``).
    """
    X = np.asarray(X)
    Q2, single = _as_queries(Q, X)
    M, N = Q2.shape[0], X.shape[0]
    if k < 1:
        raise DarksideError(f"ranking: k must be >= 1, got {k}")
    kk = min(int(k), N)
    ex = None if exclude is None else np.asarray(exclude, dtype=np.int64).reshape(M)
    dtype = np.result_type(Q2.dtype, X.dtype)
    best_s, best_i = np.empty((M, 0), dtype=dtype), np.empty((M, 0), dtype=np.int64)
    for start, stop in _blocks(N, chunk_size):
        S = similarity(Q2, X[start:stop]).astype(dtype, copy=False)
        ids = np.broadcast_to(np.arange(start, stop, dtype=np.int64), S.shape)
        if ex is not None:
            S = np.where(ids == ex[:, None], -np.inf, S)
        cand_s = np.concatenate([best_s, S], axis=1)
        cand_i = np.concatenate([best_i, ids], axis=1)
        order = np.argsort(-cand_s, axis=1, kind="stable")[:, :kk]
        best_s = np.take_along_axis(cand_s, order, axis=1)
        best_i = np.take_along_axis(cand_i, order, axis=1)
    if ex is not None:
        dropped = best_i == ex[:, None]
        best_i = np.where(dropped, -1, best_i)
        best_s = np.where(dropped, -np.inf, best_s)
    return (best_i[0], best_s[0]) if single else (best_i, best_s)
