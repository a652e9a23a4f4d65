"""Revisited Oxford / Paris protocol (revisitop): easy, medium and hard settings.

Each query's ground truth has ``easy``, ``hard`` and ``junk`` items. The three settings decide which of them are
positives and which are removed from the ranking (junk); the metrics are cirtorch's mAP and mP@1/5/10 (see
:mod:`darkside.evaluate.ap`). The functions work on anything that can be concatenated: db indices or their ranks.

Scored (:func:`score`) with the cropped query descriptors where the file has them. Metrics: ``{"mAP": <medium mAP>,
"easy"|"medium"|"hard": {"mAP", "mP@1", "mP@5", "mP@10"}}``; ``per_query`` has ``easy``, ``medium``, ``hard``
(``{"ids", "ap"}``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from darkside.config import ScoreSettings
from darkside.data.manifest import GroundTruth, Manifest
from darkside.evaluate.ap import MapResult, mean_average_precision
from darkside.evaluate.database import (
    body,
    build_database,
    database_records,
    export_retrieval_pairs,
    ids_to_db,
    list_ranks,
    pct,
    pct_list,
    query_vectors,
)
from darkside.extract.hdf5 import DescriptorSet

PROTOCOL = "revisited"
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
    """mAP, mP@k and per-query AP for each setting (a query without positives in one is skipped there only)."""
    out: dict[str, MapResult] = {}
    for setting in SETTINGS:
        split = [setting_split(setting, e, h, j) for e, h, j in zip(easy_ranks, hard_ranks, junk_ranks, strict=True)]
        out[setting] = mean_average_precision([s[0] for s in split], [s[1] for s in split], ks)
    return out


def score(manifest: Manifest, gt: GroundTruth, ds: DescriptorSet, settings: ScoreSettings,
          gt_path: Path, h5: Path, pairs_dir: Path | None) -> dict[str, Any]:
    """The JSON body of a revisited dataset (see the module docstring); with ``pairs_dir``, top-k pairs too."""
    db = build_database(database_records(manifest, gt.database_split), ds)
    qids = [q.query for q in gt.queries]
    Q = query_vectors(qids, ds, cropped=True, where=str(h5))
    lists = [[ids_to_db(ids, db, f"{gt_path}: queries[{i}]") for ids in (q.easy, q.hard, q.junk)]
             for i, q in enumerate(gt.queries)]
    sub = list_ranks(Q, db, lists, settings)
    res = evaluate_revisited([s[0] for s in sub], [s[1] for s in sub], [s[2] for s in sub])
    metrics: dict[str, Any] = {s: {"mAP": pct(res[s].map), **{f"mP@{k}": pct(res[s].mp_at_k[k]) for k in KS}}
                               for s in SETTINGS}
    metrics["mAP"] = metrics["medium"]["mAP"]
    per_query = {s: {"ids": qids, "ap": pct_list(res[s].ap)} for s in SETTINGS}
    return body(db, len(qids), metrics, per_query,
                **export_retrieval_pairs(manifest, qids, db, ds, settings, str(h5), pairs_dir, cropped=True))
