"""Percentile bootstrap over queries: the 95% intervals every regenerated table cell carries.

With ~80 single-positive queries in the mini benchmark the seed-to-seed spread is several mAP
points, so a claimed ordering of two rows holds only where their intervals separate. Resampling
per-query values (APs or hits) is cheap because scoring keeps them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_BATCH = 1 << 22  # resampled values drawn at once, bounds memory for large query sets


def _resampled_means(values: np.ndarray, samples: int, rng: np.random.Generator) -> np.ndarray:
    n = values.size
    out = np.empty(samples)
    step = max(1, _BATCH // max(n, 1))
    for s in range(0, samples, step):
        e = min(samples, s + step)
        out[s:e] = values[rng.integers(0, n, size=(e - s, n))].mean(axis=1)
    return out


def _clean(per_query: np.ndarray) -> np.ndarray:
    v = np.asarray(per_query, dtype=np.float64).ravel()
    return v[~np.isnan(v)]


def _interval(means: np.ndarray, alpha: float) -> tuple[float, float]:
    lo, hi = np.quantile(means, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(lo), float(hi)


def bootstrap_ci(per_query: np.ndarray, samples: int, seed: int,
                 alpha: float = 0.05) -> tuple[float, float, float]:
    """(mean, lo, hi): mean of the non-NaN values and its percentile bootstrap (1 - alpha) interval, deterministic
    for a seed. All NaN / empty input gives (nan, nan, nan); ``samples`` 0 the degenerate (mean, mean, mean)."""
    v = _clean(per_query)
    if v.size == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(v.mean())
    if samples <= 0:
        return mean, mean, mean
    return (mean, *_interval(_resampled_means(v, samples, np.random.default_rng(seed)), alpha))


def bootstrap_mean_of_means(per_query: Sequence[np.ndarray], samples: int, seed: int,
                            alpha: float = 0.05) -> tuple[float, float, float]:
    """(mean, lo, hi) of the average of several datasets' means (Table 1's "Avg" column).

    Each dataset is resampled independently (its own child stream of ``seed``, so adding a
    dataset does not change another's draws) and the resampled means are averaged per replicate.
    """
    sets = [_clean(p) for p in per_query]
    if not sets or any(s.size == 0 for s in sets):
        return float("nan"), float("nan"), float("nan")
    mean = float(np.mean([s.mean() for s in sets]))
    if samples <= 0:
        return mean, mean, mean
    rngs = [np.random.default_rng(ss) for ss in np.random.SeedSequence(seed).spawn(len(sets))]
    means = np.mean([_resampled_means(s, samples, g) for s, g in zip(sets, rngs, strict=True)], axis=0)
    return (mean, *_interval(means, alpha))


def _seed_weights(rng: np.random.Generator, rows: int, draws: int) -> np.ndarray:
    """(draws, rows): each draw's share of every seed row when ``rows`` seeds are resampled with replacement."""
    picks = rng.integers(0, rows, (draws, rows))
    return np.apply_along_axis(np.bincount, 1, picks, minlength=rows) / rows


def paired_seed_query_ci(a: np.ndarray, b: np.ndarray, samples: int, seed: int,
                         alpha: float = 0.05) -> tuple[float, float, float]:
    """(mean, lo, hi) of mean(a) - mean(b) over training seeds and queries, with an interval that resamples both.

    ``a`` (S_a, Q) and ``b`` (S_b, Q) are two recipes' per-query values, one row per training seed, on the same
    Q queries. A query bootstrap of one seed's models says how sure the difference is for those two models; the
    mini fine-tunes move a day cell by a few points from one seed to the next, so a claim about the recipes needs
    the seeds resampled too. Each replicate draws each recipe's seeds with replacement (independent runs: its
    own child stream of ``seed``) and the queries once for both (paired: a third stream), so with one seed each
    the interval is the paired query bootstrap of ``a - b``, whatever the seed streams draw. Queries with a NaN
    in any row are dropped. Empty input gives (nan, nan, nan); ``samples`` 0 the degenerate (mean, mean, mean).
    """
    a, b = np.atleast_2d(np.asarray(a, dtype=np.float64)), np.atleast_2d(np.asarray(b, dtype=np.float64))
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"paired values need the same queries: {a.shape[1]} against {b.shape[1]}")
    keep = ~(np.isnan(a).any(axis=0) | np.isnan(b).any(axis=0))
    a, b = a[:, keep], b[:, keep]
    if a.size == 0 or b.size == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(a.mean() - b.mean())
    if samples <= 0:
        return mean, mean, mean
    seed_a, seed_b, queries = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
    n_q = a.shape[1]
    out = np.empty(samples)
    step = max(1, _BATCH // max(n_q, 1))
    for s in range(0, samples, step):
        e = min(samples, s + step)
        # per replicate: the mean over resampled seeds of every query, as seed weights times the rows
        diff = _seed_weights(seed_a, a.shape[0], e - s) @ a - _seed_weights(seed_b, b.shape[0], e - s) @ b
        out[s:e] = np.take_along_axis(diff, queries.integers(0, n_q, (e - s, n_q)), axis=1).mean(axis=1)
    return (mean, *_interval(out, alpha))
