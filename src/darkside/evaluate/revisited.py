"""Revisited Oxford / Paris protocol (revisitop): easy, medium and hard settings.

Each query's ground truth has ``easy``, ``hard`` and ``junk`` items. The three settings decide
which of them are positives and which are removed from the ranking (junk); the metrics are
cirtorch's mAP and mP@1/5/10 (see :mod:`darkside.evaluate.ap`). The functions work on anything
that can be concatenated: db indices or their ranks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from darkside.evaluate.ap import MapResult, mean_average_precision

SETTINGS: tuple[str, ...] = ("easy", "medium", "hard")
KS: tuple[int, ...] = (1, 5, 10)


def _cat(*parts: np.ndarray) -> np.ndarray:
    return np.concatenate([np.asarray(p, dtype=np.int64).ravel() for p in parts])


def setting_split(setting: str, easy: np.ndarray, hard: np.ndarray,
                  junk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ok, junk) of one setting: easy (easy; junk+hard), medium (easy+hard; junk), hard (hard; junk+easy)."""
    if setting == "easy":
        return _cat(easy), _cat(junk, hard)
    if setting == "medium":
        return _cat(easy, hard), _cat(junk)
    if setting == "hard":
        return _cat(hard), _cat(junk, easy)
    raise ValueError(f"unknown revisited setting {setting!r} (expected one of {SETTINGS})")


def evaluate_revisited(easy_ranks: Sequence[np.ndarray], hard_ranks: Sequence[np.ndarray],
                       junk_ranks: Sequence[np.ndarray], ks: Sequence[int] = KS) -> dict[str, MapResult]:
    """mAP, mP@k and per-query AP for each setting, from per-query ranks of easy/hard/junk items.

    A query without positives in a setting (e.g. no hard images) is skipped in that setting only.
    """
    out: dict[str, MapResult] = {}
    for setting in SETTINGS:
        oks, junks = [], []
        for e, h, j in zip(easy_ranks, hard_ranks, junk_ranks, strict=True):
            ok, jk = setting_split(setting, e, h, j)
            oks.append(ok)
            junks.append(jk)
        out[setting] = mean_average_precision(oks, junks, ks)
    return out
