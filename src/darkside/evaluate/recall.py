"""DaCo's Recall@K between two domains whose images are paired by index (A[i] <-> B[i]).

Three modes, as in leftthomas/DaCo: A->B (A queries, gallery = all of B), B->A, and A<->B (all
2N images query all 2N, the query itself removed, its cross-domain counterpart the only
positive; same-domain images are distractors). A query hits at K when its positive is among
its K nearest gallery images. Ties are broken by gallery index (see :mod:`.ranking`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from darkside.errors import DarksideError
from darkside.evaluate.ranking import Similarity, block_scores, topk


@dataclass(frozen=True)
class RecallResult:
    """Recall@K as fractions, and per-query hits (Q, len(ks)) for the bootstrap."""

    ks: tuple[int, ...]
    recall: dict[int, float]
    hits: np.ndarray


def hits_at_k(top: np.ndarray, positive: np.ndarray, ks: Sequence[int]) -> np.ndarray:
    """(Q, len(ks)) bool: whether ``positive[q]`` is among the first K entries of ``top[q]``."""
    match = top == np.asarray(positive)[:, None]
    first = np.cumsum(match, axis=1) > 0  # hit by position p (0-based)
    cols = [np.minimum(int(k), top.shape[1]) - 1 for k in ks]
    return first[:, cols] if top.shape[1] else np.zeros((top.shape[0], len(ks)), dtype=bool)


def _result(hits: np.ndarray, ks: Sequence[int]) -> RecallResult:
    rec = {int(k): float(hits[:, i].mean()) if hits.shape[0] else float("nan") for i, k in enumerate(ks)}
    return RecallResult(tuple(int(k) for k in ks), rec, hits)


def recall_at_k(A: np.ndarray, B: np.ndarray, ks: Sequence[int], chunk_size: int,
                names: tuple[str, str] = ("A", "B"), similarity: Similarity = block_scores) -> dict[str, RecallResult]:
    """Recall@K for ``a->b``, ``b->a`` and ``a<->b`` (keys use ``names``); A[i] pairs with B[i]; ``similarity`` of
    rows as in :mod:`.ranking`."""
    A, B = np.asarray(A), np.asarray(B)
    if A.shape != B.shape or A.ndim != 2:
        raise DarksideError(f"recall: paired descriptor sets differ in shape: {A.shape} vs {B.shape}")
    if not ks or min(ks) < 1:
        raise DarksideError(f"evaluate.recall_ks: expected positive integers, got {list(ks)}")
    n, kmax = A.shape[0], max(int(k) for k in ks)
    a, b = names
    if n == 0:
        return {m: _result(np.zeros((0, len(ks)), dtype=bool), ks) for m in (f"{a}->{b}", f"{b}->{a}", f"{a}<->{b}")}
    own, every, X = np.arange(n, dtype=np.int64), np.arange(2 * n, dtype=np.int64), np.concatenate([A, B], axis=0)
    # mode -> (queries, gallery, excluded gallery index per query, positive per query)
    runs = {f"{a}->{b}": (A, B, None, own), f"{b}->{a}": (B, A, None, own),
            f"{a}<->{b}": (X, X, every, (every + n) % (2 * n))}
    return {m: _result(hits_at_k(topk(q, g, kmax, chunk_size, exclude=ex, similarity=similarity)[0], pos, ks), ks)
            for m, (q, g, ex, pos) in runs.items()}
