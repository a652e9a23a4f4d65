"""Tokyo 24/7 protocol: every image queries all, plus the Table 6 lighting breakdown.

The standard protocol uses the ground truth's ``ok``/``junk`` lists as given. The breakdown (Dark Side Table 6)
asks, for an ordered pair of lighting classes A->B, how well a class-A query finds the class-B image of its own
scene: that image is the only positive, and the rest of the scene (the query itself and the image of the unused
class C) is junk, i.e. removed from the ranking, so a cell measures exactly one cross-illumination match.

Scored (:func:`score`) with every image's own descriptor. Metrics: ``{"mAP"}`` over every query with the ground
truth's ok/junk, ``per_query["mAP"]``. ``breakdown``: ``{"day->sunset": {"mAP", "n_queries"}, ...}`` for the six
ordered pairs, ``per_query["day->sunset"]`` etc. ``recall``: DaCo Recall@K over the scenes that have a day and a
night image (first of each, scenes in manifest order), ``{"day->night": {"R@1", "R@2", ...}, "night->day": {...},
"day<->night": {...}, "n_pairs"}``; per-query hits (0 or 100) in ``per_query["R@K day->night"] = {"ids", "hit"}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from darkside.config import ScoreSettings
from darkside.data.manifest import GroundTruth, Manifest
from darkside.evaluate.ap import MapResult, mean_average_precision
from darkside.evaluate.database import (
    Database,
    body,
    build_database,
    database_records,
    export_retrieval_pairs,
    ids_to_db,
    item_ranks,
    pct,
    pct_list,
    query_vectors,
    subset,
)
from darkside.evaluate.recall import recall_at_k
from darkside.extract.hdf5 import DescriptorSet

PROTOCOL = "tokyo"
LIGHTING: tuple[str, ...] = ("day", "sunset", "night")
#: Table 6's column order: {day, sunset}, {sunset, night}, {day, night}, both directions each.
PAIRS: tuple[tuple[str, str], ...] = (("day", "sunset"), ("sunset", "day"), ("sunset", "night"), ("night", "sunset"),
                                      ("day", "night"), ("night", "day"))


@dataclass(frozen=True)
class BreakdownCell:
    """Ground truth of one A->B cell: query db indices and per-query ok / junk db indices."""

    queries: np.ndarray
    ok: list[np.ndarray]
    junk: list[np.ndarray]


def breakdown_groundtruth(domains: Sequence[str], scenes: Sequence[str]) -> dict[str, BreakdownCell]:
    """The six A->B cells (see the module docstring) for a database where every image is also a query. A further
    class-A image of the scene is junk too; a query whose scene has no class-B image is skipped (NaN) as in cirtorch."""
    if len(domains) != len(scenes):
        raise ValueError("domains and scenes must have one entry per image")
    members: dict[str, list[int]] = {}
    for i, s in enumerate(scenes):
        members.setdefault(s, []).append(i)
    cells: dict[str, BreakdownCell] = {}
    for a, b in PAIRS:
        qs = [i for i, d in enumerate(domains) if d == a]
        sc = [members[scenes[q]] for q in qs]
        cells[f"{a}->{b}"] = BreakdownCell(np.array(qs, dtype=np.int64),
                                           [np.array([j for j in m if domains[j] == b], np.int64) for m in sc],
                                           [np.array([j for j in m if domains[j] != b], np.int64) for m in sc])
    return cells


def score(manifest: Manifest, gt: GroundTruth, ds: DescriptorSet, settings: ScoreSettings,
          gt_path: Path, h5: Path, pairs_dir: Path | None) -> dict[str, Any]:
    """The JSON body of a Tokyo dataset (see the module docstring); with ``pairs_dir``, top-k pairs too."""
    db = build_database(database_records(manifest, gt.database_split), ds)
    cells = breakdown_groundtruth([r.domain for r in db.records], [r.cluster for r in db.records])
    # one ranking pass serves the standard protocol and the breakdown: per query image, the
    # ranks of its ground-truth items and of its whole scene (a cell's ok + junk)
    need: dict[str, set[int]] = {}
    ok_db, junk_db = [], []
    for i, q in enumerate(gt.queries):
        where = f"{gt_path}: queries[{i}]"
        ok_db.append(ids_to_db(q.positives, db, where))
        junk_db.append(ids_to_db(q.junk, db, where))
        need.setdefault(q.query, set()).update(ok_db[-1].tolist(), junk_db[-1].tolist())
    for cell in cells.values():
        for qi, o, j in zip(cell.queries, cell.ok, cell.junk, strict=True):
            need.setdefault(db.records[qi].image_id, set()).update(o.tolist(), j.tolist())
    qids = list(need)
    needed = [np.array(sorted(need[q]), dtype=np.int64) for q in qids]
    ranks = item_ranks(query_vectors(qids, ds, cropped=False, where=str(h5)), db, needed, settings)
    lookup = {q: (n, r) for q, n, r in zip(qids, needed, ranks, strict=True)}

    def ap_of(ids: list[str], oks: Sequence[np.ndarray], junks: Sequence[np.ndarray]) -> MapResult:
        return mean_average_precision([subset(*lookup[q], o) for q, o in zip(ids, oks, strict=True)],
                                      [subset(*lookup[q], j) for q, j in zip(ids, junks, strict=True)])

    gqids = [q.query for q in gt.queries]
    res = ap_of(gqids, ok_db, junk_db)
    per_query: dict[str, Any] = {"mAP": {"ids": gqids, "ap": pct_list(res.ap)}}
    breakdown: dict[str, Any] = {}
    for name, cell in cells.items():
        cids = [db.records[qi].image_id for qi in cell.queries]
        r = ap_of(cids, cell.ok, cell.junk)
        breakdown[name] = {"mAP": pct(r.map), "n_queries": len(cids)}
        per_query[name] = {"ids": cids, "ap": pct_list(r.ap)}
    recall = _day_night_recall(db, settings, per_query)
    return body(db, len(gqids), {"mAP": pct(res.map)}, per_query, breakdown=breakdown,
                **({} if recall is None else {"recall": recall}),
                **export_retrieval_pairs(manifest, gqids, db, ds, settings, str(h5), pairs_dir, cropped=False))


def _day_night_recall(db: Database, settings: ScoreSettings, per_query: dict[str, Any]) -> dict[str, Any] | None:
    """DaCo Recall@K between each scene's first day and first night image (None: no such scene); the per-query
    hits go into ``per_query`` under ``R@K <mode>``."""
    day, night = LIGHTING[0], LIGHTING[2]
    first: dict[str, dict[str, int]] = {}  # scene -> lighting class -> its first db index, scenes in manifest order
    for i, r in enumerate(db.records):
        first.setdefault(r.cluster, {}).setdefault(r.domain, i)
    pairs = [(d[day], d[night]) for d in first.values()
             if day in d and night in d and db.present[d[day]] >= 0 and db.present[d[night]] >= 0]
    if not pairs:
        return None
    A = db.X[db.present[[a for a, _ in pairs]]]
    B = db.X[db.present[[b for _, b in pairs]]]
    rec = recall_at_k(A, B, settings.recall_ks, settings.chunk_size, names=(day, night), similarity=db.similarity)
    a_ids = [db.records[a].image_id for a, _ in pairs]
    b_ids = [db.records[b].image_id for _, b in pairs]
    mode_ids = {f"{day}->{night}": a_ids, f"{night}->{day}": b_ids, f"{day}<->{night}": a_ids + b_ids}
    recall: dict[str, Any] = {"n_pairs": len(pairs)}
    for mode, rr in rec.items():
        recall[mode] = {f"R@{k}": pct(rr.recall[k]) for k in rr.ks}
        for i, k in enumerate(rr.ks):
            per_query[f"R@{k} {mode}"] = {"ids": mode_ids[mode], "hit": pct_list(rr.hits[:, i])}
    return recall
