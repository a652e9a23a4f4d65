"""cirtorch's average precision and mP@k, on 0-based ranks of ground-truth items.

The published Oxford/Paris/Tokyo numbers are computed with cirtorch's ``compute_ap`` (trapezoid
rule, not TREC AP) and its shrinking-denominator mP@k; both are reproduced exactly here because a
different AP definition would shift every cell of the paper's tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def compute_ap(pos_ranks: np.ndarray, n_pos: int) -> float:
    """Trapezoid-rule AP of positives at junk-adjusted 0-based ``pos_ranks`` (cirtorch's rule); NaN if ``n_pos`` is 0.

    The j-th positive (0-based, rank r_j) adds the mean of the precisions just before it, ``j / r_j`` (1 when
    r_j == 0), and just after it, ``(j + 1) / (r_j + 1)``, over n_pos: a single positive at rank r > 0 scores
    1 / (2 (r + 1)), not TREC's 1 / (r + 1). Positives never ranked (``n_pos > len(pos_ranks)``) add zero.
    """
    if n_pos <= 0:
        return float("nan")
    r = np.sort(np.asarray(pos_ranks, dtype=np.float64).ravel())
    j = np.arange(r.size, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        p0 = np.where(r == 0, 1.0, j / np.where(r == 0, 1.0, r))
    p1 = (j + 1.0) / (r + 1.0)
    return float(np.sum((p0 + p1) / 2.0) / n_pos)


def junk_adjusted_ranks(pos_ranks: np.ndarray, junk_ranks: np.ndarray | None) -> np.ndarray:
    """Sorted positive ranks after removing junk from the ranking: each moves up by the junk ranked before it
    (cirtorch's ``compute_map``: junk is neither rewarded nor punished)."""
    pos = np.sort(np.asarray(pos_ranks, dtype=np.int64).ravel())
    if junk_ranks is None or len(junk_ranks) == 0:
        return pos
    junk = np.sort(np.asarray(junk_ranks, dtype=np.int64).ravel())
    return pos - np.searchsorted(junk, pos, side="left")


def average_precision(pos_ranks: np.ndarray, junk_ranks: np.ndarray | None = None,
                      n_pos: int | None = None) -> float:
    """cirtorch AP of one query: junk removed, then :func:`compute_ap` (``n_pos``: default, the positives given)."""
    n = len(pos_ranks) if n_pos is None else n_pos
    return compute_ap(junk_adjusted_ranks(pos_ranks, junk_ranks), n)


def precision_at_k(pos_ranks: np.ndarray, junk_ranks: np.ndarray | None = None,
                   ks: Sequence[int] = (1, 5, 10)) -> np.ndarray:
    """cirtorch's P@k per k: ``kq = min(max positive position (1-based), k)``, P = #(pos <= kq) / kq (NaN without
    positives). The denominator shrinks when every positive is found before k: positives at ranks 1, 2 give P@10 = 1."""
    pos = junk_adjusted_ranks(pos_ranks, junk_ranks) + 1
    out = np.full(len(ks), np.nan)
    if pos.size == 0:
        return out
    for i, k in enumerate(ks):
        kq = min(int(pos.max()), int(k))
        out[i] = np.count_nonzero(pos <= kq) / kq
    return out


@dataclass(frozen=True)
class MapResult:
    """mAP and mP@k over queries (fractions in [0, 1]) plus per-query values (NaN = skipped)."""

    map: float
    mp_at_k: dict[int, float]
    ap: np.ndarray  # (Q,)
    p_at_k: np.ndarray  # (Q, len(ks))


def _nanmean(a: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64)
    keep = ~np.isnan(a)
    return float(a[keep].mean()) if keep.any() else float("nan")


def mean_average_precision(ok_ranks: Sequence[np.ndarray], junk_ranks: Sequence[np.ndarray | None],
                           ks: Sequence[int] = ()) -> MapResult:
    """cirtorch's ``compute_map`` on per-query ranks: mean over queries that have positives."""
    if len(ok_ranks) != len(junk_ranks):
        raise ValueError("ok_ranks and junk_ranks must have one entry per query")
    pairs = list(zip(ok_ranks, junk_ranks, strict=True))
    ap = np.array([average_precision(o, j) for o, j in pairs], dtype=np.float64)
    pk = np.array([precision_at_k(o, j, ks) for o, j in pairs], dtype=np.float64).reshape(len(ok_ranks), len(ks))
    return MapResult(map=_nanmean(ap), mp_at_k={int(k): _nanmean(pk[:, i]) for i, k in enumerate(ks)},
                     ap=ap, p_at_k=pk)
