"""Tuple mining on descriptor matrices: hard negatives, diverse anchors, the hashed anchor subset.

Pure functions (numpy) so that the rules can be checked against hand-computed cases; the
descriptors come from the current network in eval mode (see :mod:`darkside.embed.tuples`). Hard-negative
mining can rank on the model's device (a GPU): the paper's 2,000 anchors x 22,000 pool images are a 352 MB
similarity matrix and 44 M sorted entries per mining pass, which the CPU would otherwise compute in float64
while the GPU waits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import torch


def hash_selected(image_name: str, fraction: float) -> bool:
    """gandtr's fixed translated subset: last 4 hex digits of MD5(name) / 65536 < ``fraction``.

    ``image_name`` is the image base name without extension (the SfM cid). Because the rule
    depends only on the name, the same images are translated every epoch and in every mining
    pass, which is what the official code does.
    """
    digest = hashlib.md5(image_name.encode("utf-8")).hexdigest()
    return int(digest[-4:], 16) / 65536.0 < fraction


def _ranked_on(device: torch.device | str, a: np.ndarray, p: np.ndarray, width: int,
               chunk: int = 1024) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
    """The first ``width`` pool indices of each anchor by descending similarity, ranked on ``device`` in float64
    with a stable sort (ties by pool order, as ``np.argsort(-s, kind="stable")``); and the tensors to rank a row
    in full where ``width`` is not enough."""
    at = torch.as_tensor(a, dtype=torch.float64, device=device)
    pt = torch.as_tensor(p, dtype=torch.float64, device=device)
    width = min(width, p.shape[0])
    heads = [torch.sort(at[s:s + chunk] @ pt.T, dim=1, descending=True, stable=True).indices[:, :width].cpu()
             for s in range(0, at.shape[0], chunk)]
    order = torch.cat(heads).numpy() if heads else np.zeros((0, width), dtype=np.int64)
    return order, at, pt


def hard_negatives(anchor_desc: np.ndarray, pool_desc: np.ndarray, anchor_clusters: Sequence,
                   pool_clusters: Sequence, n: int = 5, device: torch.device | str | None = None,
                   width: int = 256) -> list[np.ndarray]:
    """For each anchor, up to ``n`` pool indices by descending similarity, one per cluster.

    Walks the pool from the most similar image down and skips images of the anchor's own
    cluster (they may be true matches: same 3D model) and of clusters already used (several
    views of one wrong landmark teach the same thing once). Fewer than ``n`` come back only if
    the pool has too few other clusters (cirtorch then trains with fewer negatives too).
    Ties in similarity are broken by pool order (stable sort), so the result is deterministic.

    ``device``: rank there (float64 products, stable sort) and bring back each anchor's first ``width``
    candidates only; an anchor whose first ``width`` hold fewer than ``n`` usable clusters is ranked in full.
    The result equals the numpy ranking (None: on the CPU in numpy) up to float64 summation order.
    """
    a = np.asarray(anchor_desc, dtype=np.float64)
    p = np.asarray(pool_desc, dtype=np.float64)
    pc = np.asarray(pool_clusters)
    if a.shape[0] != len(anchor_clusters) or p.shape[0] != len(pc):
        raise ValueError("descriptor and cluster counts differ")
    if device is None:
        sims = a @ p.T
        rows: Sequence[np.ndarray] = [np.argsort(-sims[i], kind="stable") for i in range(a.shape[0])]
    else:
        rows, at, pt = _ranked_on(device, a, p, width)
    out: list[np.ndarray] = []
    for i in range(a.shape[0]):
        chosen = _walk(rows[i], pc, anchor_clusters[i], n)
        if len(chosen) < n and len(rows[i]) < p.shape[0]:  # the head was not enough: this row in full
            full = torch.sort(at[i] @ pt.T, descending=True, stable=True).indices.cpu().numpy()
            chosen = _walk(full, pc, anchor_clusters[i], n)
        out.append(np.asarray(chosen, dtype=np.int64))
    return out


def _walk(order: np.ndarray, pool_clusters: np.ndarray, own: object, n: int) -> list[int]:
    used = {own}
    chosen: list[int] = []
    for j in order:
        c = pool_clusters[j]
        if c in used:
            continue
        used.add(c)
        chosen.append(int(j))
        if len(chosen) == n:
            break
    return chosen


def band_limits(remaining: int, band: tuple[float, float] = (0.2, 0.8)) -> tuple[int, int]:
    """Sorted positions [lo, hi) of the percentile band among ``remaining`` candidates.

    gandtr's edge guards: hi is at least 1 and lo at most hi - 1, so a pick always exists even
    when only one or two candidates remain.
    """
    hi = max(int(np.floor(band[1] * remaining)), 1)
    lo = min(int(np.floor(band[0] * remaining)), hi - 1)
    return lo, hi


def diverse_anchors(desc: np.ndarray, n: int, rng: np.random.Generator,
                    band: tuple[float, float] = (0.2, 0.8)) -> np.ndarray:
    """Pick ``n`` diverse candidates (indices into ``desc``, in pick order) - the paper's D.

    ``desc`` (P, D) are L2-normalised descriptors of a candidate pool that the caller already
    drew in random order; candidate 0 starts the set. Then repeatedly: s(c) = the highest
    similarity of c to the chosen set (kept as a running max vector rather than gandtr's growing
    P x k matrix - same values, linear memory), sort the V remaining candidates by s ascending
    (stable), and pick uniformly from sorted positions [floor(0.2 V), floor(0.8 V)): the 20% least
    similar are outliers, the 20% most similar are near-duplicates of anchors already chosen.
    """
    x = np.asarray(desc, dtype=np.float64)
    total = x.shape[0]
    n = min(int(n), total)
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    chosen = [0]
    taken = np.zeros(total, dtype=bool)
    taken[0] = True
    s = x @ x[0]
    while len(chosen) < n:
        remaining = np.flatnonzero(~taken)
        order = remaining[np.argsort(s[remaining], kind="stable")]
        lo, hi = band_limits(len(remaining), band)
        pick = int(order[rng.integers(lo, hi)])
        chosen.append(pick)
        taken[pick] = True
        np.maximum(s, x @ x[pick], out=s)
    return np.asarray(chosen, dtype=np.int64)
