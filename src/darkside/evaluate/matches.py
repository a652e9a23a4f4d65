"""Ranking by matched local features: DaCo's SIFT baseline ("feature matching between all the testing images ...
in the brute-force manner ... the image with the most matched pairs to the query image is the top-1").

The similarity of a query image q to a gallery image x counts q's local descriptors whose nearest neighbour among
x's (exhaustive L2 search) is closer than ``ratio`` times the second nearest (Lowe's test; DaCo's reverted
``sift.py``: 0.7, one direction, query to gallery). It is not symmetric, which is why DaCo's SIFT rows differ
between A->B and B->A. ``score``: ``count`` (the paper's words: the number of matches) or ``jaccard`` (DaCo's
reverted code: matches / (|q| + |x| - matches)). An image without descriptors, or a gallery image with a single
one, matches nothing.

As ASMK (:mod:`.asmk`), it ranks through handles: :func:`matches_descriptor_set` replaces a descriptor file's rows
by their indices and sets the kernel of its ``/local`` features as the set's similarity.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from darkside.config import MatchCountSettings
from darkside.errors import DarksideError
from darkside.extract.hdf5 import DescriptorSet, LocalFeatures


def ratio_matches(q: np.ndarray, x: np.ndarray, ratio: float) -> int:
    """How many rows of ``q`` (m, D) pass the ratio test against ``x`` (n, D), by exhaustive L2 distance."""
    if len(q) == 0 or len(x) < 2:
        return 0
    q64, x64 = np.asarray(q, dtype=np.float64), np.asarray(x, dtype=np.float64)
    d2 = (q64 * q64).sum(1)[:, None] - 2.0 * q64 @ x64.T + (x64 * x64).sum(1)[None, :]
    two = np.sqrt(np.maximum(np.partition(d2, 1, axis=1)[:, :2], 0.0))
    return int((two[:, 0] < ratio * two[:, 1]).sum())


def match_score(matches: int, n_query: int, n_gallery: int, score: str) -> float:
    if score == "count":
        return float(matches)
    union = n_query + n_gallery - matches
    return matches / union if union > 0 else 0.0


class MatchSimilarity:
    """The similarity of handles (image row r -> r) by :func:`ratio_matches` of their local features; every pair
    is matched once and kept (the rankers ask for the same blocks more than once)."""

    def __init__(self, local: LocalFeatures, settings: MatchCountSettings) -> None:
        self.local, self.s = local, settings
        self._cache: dict[tuple[int, int], float] = {}

    def pair(self, q: int, x: int) -> float:
        if (q, x) not in self._cache:
            a, b = self.local.of(q), self.local.of(x)
            self._cache[q, x] = match_score(ratio_matches(a, b, self.s.ratio), len(a), len(b), self.s.score)
        return self._cache[q, x]

    def __call__(self, Q: np.ndarray, Xb: np.ndarray) -> np.ndarray:
        """(M, c) similarities of query handles ``Q`` (M, 1) to gallery handles ``Xb`` (c, 1)."""
        qh = np.asarray(Q, dtype=np.int64).reshape(-1)
        xh = np.asarray(Xb, dtype=np.int64).reshape(-1)
        return np.array([[self.pair(int(q), int(x)) for x in xh] for q in qh], dtype=np.float64).reshape(
            len(qh), len(xh))


def matches_descriptor_set(ds: DescriptorSet, settings: MatchCountSettings, where: str | Path) -> DescriptorSet:
    """``ds`` with its rows replaced by handles ranked by matches of its local features (module docstring)."""
    if ds.local is None:
        raise DarksideError(f"{where}: no /local features to rank by matches")
    if ds.query_ids is not None:
        raise DarksideError(f"{where}: cropped queries are not ranked by matches (no /queries/local kernel)")
    handles = np.arange(len(ds.image_ids), dtype=np.float64).reshape(-1, 1)
    return replace(ds, descriptors=handles, similarity=MatchSimilarity(ds.local, settings))
