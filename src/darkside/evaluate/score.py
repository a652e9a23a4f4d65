"""``darkside score``: metrics of one descriptor file on one prepared dataset, written to JSON.

Dispatches on the ground truth's protocol (``revisited``, ``tokyo``, ``localization``). All
percentages are x100 like the paper; NaN (a query without positives, a metric with no query)
is written as ``null``. Keys are sorted. The file looks like::

    {
      "dataset": "tokyo247", "protocol": "tokyo",
      "model": <h5 attr or null>, "model_sha256": <h5 attr or null>, "preset": <h5 attr or null>,
      "n_queries": 1125, "n_database": 1125, "n_database_missing": 0,
      "metrics": {...},            # headline numbers, see below
      "per_query": {"<name>": {"ids": [query ids], "ap": [AP x100 or null, ...]}, ...},
      "breakdown": {...},          # tokyo only
      "recall": {...},             # tokyo only (when the dataset has day/night scene pairs)
      "localization": {...}        # localization only
    }

``metrics`` per protocol:

- revisited: ``{"mAP": <medium mAP>, "easy"|"medium"|"hard": {"mAP", "mP@1", "mP@5", "mP@10"}}``;
  ``per_query`` has ``easy``, ``medium``, ``hard``.
- tokyo: ``{"mAP"}`` over every query with the ground truth's ok/junk; ``per_query["mAP"]``.
  ``breakdown``: Table 6, ``{"day->sunset": {"mAP", "n_queries"}, ...}`` for the six ordered pairs
  of day/sunset/night (queries of class A, the scene's class-B image the only positive, the
  rest of the scene junk); ``per_query["day->sunset"]`` etc. ``recall``: DaCo Recall@K over the
  scenes that have a day and a night image (first of each, scenes in manifest order),
  ``{"day->night": {"R@1", "R@2", ...}, "night->day": {...}, "day<->night": {...}, "n_pairs"}``;
  per-query hits (0 or 100) in ``per_query["R@K day->night"] = {"ids", "hit"}``.
- localization: queries = rows of split ``query``, database = the ground truth's
  ``database_split`` (default ``database``). ``metrics`` holds the percentage localised within
  each threshold, keyed ``"0.25m,2deg"`` etc. (paradigm 1, pose of the top-1 image), plus
  ``mAP`` when the ground truth lists positives. ``localization``: ``{"thresholds", "rates",
  "n_scored", "median_position_error_m", "median_rotation_error_deg", "files"}`` and per-query
  ``{"ids", "top1", "position_error_m", "rotation_error_deg"}`` (null = no estimate, a failure).
  With ``pairs_dir``: ``pairs-top{K}.txt`` / ``.csv`` (K = pairs_topk), ``pairs-top1.txt`` /
  ``.csv`` (hloc ``query db``; kapture ``query, db, score``) and ``poses-top1.txt`` (LTVL2020),
  image names = manifest paths.

Database images without a descriptor (skipped at extraction) rank after every other image, in
manifest order; a retrieval query without a descriptor is an error (its AP would be undefined).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from darkside.atomic import atomic_write_json
from darkside.config import EvaluateSettings
from darkside.data.manifest import GroundTruth, ImageRecord, Manifest, load_groundtruth, load_manifest
from darkside.errors import DarksideError, ManifestError
from darkside.evaluate.ap import MapResult, mean_average_precision
from darkside.evaluate.localization import (
    approximate_poses,
    localization_rates,
    pose_errors,
    threshold_key,
    write_ltvl_poses,
    write_pairs_hloc,
    write_pairs_kapture,
)
from darkside.evaluate.ranking import ranks_of, topk
from darkside.evaluate.recall import recall_at_k
from darkside.evaluate.revisited import SETTINGS, evaluate_revisited
from darkside.evaluate.tokyo import LIGHTING, breakdown_groundtruth, evaluate_tokyo, pair_name
from darkside.extract.hdf5 import DescriptorSet, read_descriptors

_SIM_BUDGET = 1 << 24  # similarity entries per (query batch x block): 64 MB of float32


@dataclass
class _Database:
    """Database rows (manifest order) and the descriptors of those that have one."""

    records: list[ImageRecord]
    X: np.ndarray  # (n_present, D)
    present: np.ndarray  # (n_db,) position in X, -1 if the image has no descriptor
    missing_rank: np.ndarray  # (n_db,) rank of a missing image (after all present ones), -1 if present
    index: dict[str, int]


def _row_lookup(ds: DescriptorSet) -> dict[str, int]:
    return {i: r for r, i in enumerate(ds.image_ids)}


def _database(records: list[ImageRecord], ds: DescriptorSet) -> _Database:
    rows = _row_lookup(ds)
    pos = np.array([rows.get(r.image_id, -1) for r in records], dtype=np.int64)
    have = pos >= 0
    present = np.full(len(records), -1, dtype=np.int64)
    present[have] = np.arange(int(have.sum()))
    missing_rank = np.full(len(records), -1, dtype=np.int64)
    missing_rank[~have] = int(have.sum()) + np.arange(int((~have).sum()))
    X = ds.descriptors[pos[have]] if have.any() else np.zeros((0, ds.descriptors.shape[1]), np.float32)
    return _Database(records, X, present, missing_rank, {r.image_id: i for i, r in enumerate(records)})


def _query_batch(settings: EvaluateSettings, n_db: int) -> int:
    return max(1, _SIM_BUDGET // max(1, min(settings.chunk_size, n_db)))


def _item_ranks(Q: np.ndarray, db: _Database, items: Sequence[np.ndarray],
                settings: EvaluateSettings) -> list[np.ndarray]:
    """0-based ranks of db items (db indices) for each query; images without descriptors rank last."""
    out: list[np.ndarray] = []
    qb = _query_batch(settings, len(db.X))
    for s in range(0, len(items), qb):
        batch = items[s:s + qb]
        present = [db.present[a][db.present[a] >= 0] for a in batch]
        if len(db.X):
            got = ranks_of(Q[s:s + qb], db.X, present, settings.chunk_size)
        else:
            got = [np.zeros(0, np.int64) for _ in batch]
        for a, r in zip(batch, got, strict=True):
            full = db.missing_rank[a].copy()
            full[db.present[a] >= 0] = r
            out.append(full)
    return out


def _subset(needed: np.ndarray, ranks: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Ranks of ``items`` (db indices) given the ranks of the sorted unique ``needed`` db indices."""
    return ranks[np.searchsorted(needed, np.asarray(items, dtype=np.int64))]


def _ids_to_db(ids: Sequence[str], db: _Database, where: str) -> np.ndarray:
    try:
        return np.array(sorted({db.index[i] for i in ids}), dtype=np.int64)
    except KeyError as exc:
        raise ManifestError(f"{where}: image id {exc.args[0]!r} is not in the database split") from None


def _pct(x: float) -> float | None:
    return None if np.isnan(x) else float(100.0 * x)


def _pct_list(a: np.ndarray) -> list[float | None]:
    return [_pct(float(v)) for v in np.asarray(a, dtype=np.float64)]


def _query_vectors(ids: Sequence[str], ds: DescriptorSet, cropped: bool, where: str) -> np.ndarray:
    """Query descriptors: the cropped /queries group where present, else the image's own row."""
    rows = _row_lookup(ds)
    qrows = {i: r for r, i in enumerate(ds.query_ids)} if (cropped and ds.query_ids is not None) else {}
    out = []
    for i in ids:
        if i in qrows:
            out.append(ds.query_descriptors[qrows[i]])
        elif i in rows:
            out.append(ds.descriptors[rows[i]])
        else:
            raise DarksideError(f"{where}: query {i!r} has no descriptor (skipped at extraction?)")
    return np.asarray(out, dtype=ds.descriptors.dtype).reshape(len(ids), ds.descriptors.shape[1])


def _map_entry(res: MapResult, ks: Sequence[int] = ()) -> dict[str, Any]:
    entry: dict[str, Any] = {"mAP": _pct(res.map)}
    for k in ks:
        entry[f"mP@{k}"] = _pct(res.mp_at_k[k])
    return entry


def _database_records(manifest: Manifest, split: str | None) -> list[ImageRecord]:
    return manifest.select(split=split) if split is not None else list(manifest.records)


def _score_revisited(manifest: Manifest, gt: GroundTruth, ds: DescriptorSet, settings: EvaluateSettings,
                     gt_path: Path, h5: Path) -> dict[str, Any]:
    db = _database(_database_records(manifest, gt.database_split), ds)
    qids = [q.query for q in gt.queries]
    Q = _query_vectors(qids, ds, cropped=True, where=str(h5))
    easy, hard, junk = [], [], []
    for i, q in enumerate(gt.queries):
        where = f"{gt_path}: queries[{i}]"
        easy.append(_ids_to_db(q.easy, db, where))
        hard.append(_ids_to_db(q.hard, db, where))
        junk.append(_ids_to_db(q.junk, db, where))
    needed = [np.union1d(np.union1d(e, h), j) for e, h, j in zip(easy, hard, junk, strict=True)]
    ranks = _item_ranks(Q, db, needed, settings)
    sub = [(_subset(n, r, e), _subset(n, r, h), _subset(n, r, j))
           for n, r, e, h, j in zip(needed, ranks, easy, hard, junk, strict=True)]
    res = evaluate_revisited([s[0] for s in sub], [s[1] for s in sub], [s[2] for s in sub])
    metrics: dict[str, Any] = {s: _map_entry(res[s], (1, 5, 10)) for s in SETTINGS}
    metrics["mAP"] = metrics["medium"]["mAP"]
    per_query = {s: {"ids": qids, "ap": _pct_list(res[s].ap)} for s in SETTINGS}
    return {"n_queries": len(qids), "n_database": len(db.records),
            "n_database_missing": int((db.present < 0).sum()), "metrics": metrics, "per_query": per_query}


def _scene_pairs(records: list[ImageRecord], a: str, b: str) -> list[tuple[int, int]]:
    """(a, b) db indices per scene having both classes: first image of each, scenes in manifest order."""
    first: dict[str, dict[str, int]] = {}
    for i, r in enumerate(records):
        first.setdefault(r.cluster, {}).setdefault(r.domain, i)
    return [(d[a], d[b]) for d in first.values() if a in d and b in d]


def _score_tokyo(manifest: Manifest, gt: GroundTruth, ds: DescriptorSet, settings: EvaluateSettings,
                 gt_path: Path, h5: Path) -> dict[str, Any]:
    db = _database(_database_records(manifest, gt.database_split), ds)
    domains = [r.domain for r in db.records]
    scenes = [r.cluster for r in db.records]
    cells = breakdown_groundtruth(domains, scenes)
    members: dict[str, list[int]] = {}
    for i, s in enumerate(scenes):
        members.setdefault(s, []).append(i)
    # one ranking pass serves the standard protocol and the breakdown: per query image, the
    # ranks of its ground-truth items and of its whole scene
    need: dict[str, set[int]] = {}
    ok_db, junk_db = [], []
    for i, q in enumerate(gt.queries):
        where = f"{gt_path}: queries[{i}]"
        ok_db.append(_ids_to_db(q.positives, db, where))
        junk_db.append(_ids_to_db(q.junk, db, where))
        need.setdefault(q.query, set()).update(ok_db[-1].tolist(), junk_db[-1].tolist())
    for cell in cells.values():
        for qi in cell.queries:
            need.setdefault(db.records[qi].image_id, set()).update(members[scenes[qi]])
    qids = list(need)
    needed = [np.array(sorted(need[q]), dtype=np.int64) for q in qids]
    ranks = _item_ranks(_query_vectors(qids, ds, cropped=False, where=str(h5)), db, needed, settings)
    lookup = {q: (n, r) for q, n, r in zip(qids, needed, ranks, strict=True)}

    def sub(qid: str, items: np.ndarray) -> np.ndarray:
        n, r = lookup[qid]
        return _subset(n, r, items)

    gqids = [q.query for q in gt.queries]
    res = evaluate_tokyo([sub(q, o) for q, o in zip(gqids, ok_db, strict=True)],
                         [sub(q, j) for q, j in zip(gqids, junk_db, strict=True)])
    per_query: dict[str, Any] = {"mAP": {"ids": gqids, "ap": _pct_list(res.ap)}}
    breakdown: dict[str, Any] = {}
    for name, cell in cells.items():
        cids = [db.records[qi].image_id for qi in cell.queries]
        r = mean_average_precision([sub(q, o) for q, o in zip(cids, cell.ok, strict=True)],
                                   [sub(q, j) for q, j in zip(cids, cell.junk, strict=True)])
        breakdown[name] = {"mAP": _pct(r.map), "n_queries": len(cids)}
        per_query[name] = {"ids": cids, "ap": _pct_list(r.ap)}
    out: dict[str, Any] = {"n_queries": len(gqids), "n_database": len(db.records),
                           "n_database_missing": int((db.present < 0).sum()),
                           "metrics": {"mAP": _pct(res.map)}, "per_query": per_query, "breakdown": breakdown}
    pairs = [(a, b) for a, b in _scene_pairs(db.records, LIGHTING[0], LIGHTING[2])
             if db.present[a] >= 0 and db.present[b] >= 0]
    if pairs:
        A = db.X[db.present[[a for a, _ in pairs]]]
        B = db.X[db.present[[b for _, b in pairs]]]
        rec = recall_at_k(A, B, settings.recall_ks, settings.chunk_size, names=(LIGHTING[0], LIGHTING[2]))
        a_ids = [db.records[a].image_id for a, _ in pairs]
        b_ids = [db.records[b].image_id for _, b in pairs]
        mode_ids = {pair_name(LIGHTING[0], LIGHTING[2]): a_ids, pair_name(LIGHTING[2], LIGHTING[0]): b_ids,
                    f"{LIGHTING[0]}<->{LIGHTING[2]}": a_ids + b_ids}
        recall: dict[str, Any] = {"n_pairs": len(pairs)}
        for mode, rr in rec.items():
            recall[mode] = {f"R@{k}": _pct(rr.recall[k]) for k in rr.ks}
            for i, k in enumerate(rr.ks):
                per_query[f"R@{k} {mode}"] = {"ids": mode_ids[mode], "hit": _pct_list(rr.hits[:, i])}
        out["recall"] = recall
    return out


def _score_localization(manifest: Manifest, gt: GroundTruth, ds: DescriptorSet, settings: EvaluateSettings,
                        gt_path: Path, pairs_dir: Path | None) -> dict[str, Any]:
    db = _database(manifest.select(split=gt.database_split or "database"), ds)
    queries = manifest.select(split="query")
    rows = _row_lookup(ds)
    have = [r.image_id in rows for r in queries]
    Q = np.asarray([ds.descriptors[rows[r.image_id]] for r, h in zip(queries, have, strict=True) if h],
                   dtype=ds.descriptors.dtype).reshape(-1, ds.descriptors.shape[1])
    kmax = max(1, settings.pairs_topk)
    top = np.full((len(queries), kmax), -1, dtype=np.int64)
    top_s = np.full((len(queries), kmax), -np.inf)
    if len(Q) and len(db.X):
        present_db = np.nonzero(db.present >= 0)[0]  # X position -> db index
        qb = _query_batch(settings, len(db.X))
        got_i, got_s = [], []
        for s in range(0, len(Q), qb):
            i, sc = topk(Q[s:s + qb], db.X, kmax, settings.chunk_size)
            got_i.append(i)
            got_s.append(sc)
        idx, sc = np.concatenate(got_i), np.concatenate(got_s)
        sel = np.nonzero(have)[0]
        top[sel, : idx.shape[1]] = np.where(idx >= 0, present_db[np.maximum(idx, 0)], -1)
        top_s[sel, : idx.shape[1]] = sc
    db_poses = np.array([r.pose if r.pose is not None else (np.nan,) * 7 for r in db.records],
                        dtype=np.float64).reshape(-1, 7)
    est = approximate_poses(top[:, 0], db_poses)
    scored = [i for i, r in enumerate(queries) if r.pose is not None]
    gt_poses = np.array([queries[i].pose for i in scored], dtype=np.float64).reshape(-1, 7)
    perr, rerr = pose_errors(est[scored], gt_poses) if scored else (np.zeros(0), np.zeros(0))
    thresholds = [(float(t), float(r)) for t, r in settings.localization_thresholds]
    rates = localization_rates(perr, rerr, thresholds)
    metrics: dict[str, Any] = {threshold_key(t, r): v for (t, r), v in zip(thresholds, rates, strict=True)}
    files: list[str] = []
    if pairs_dir is not None:
        qnames = [r.path for r, h in zip(queries, have, strict=True) if h]
        dbnames = [r.path for r in db.records]
        hv = np.asarray(have, dtype=bool)
        for k in sorted({kmax, 1}):
            files.append(write_pairs_hloc(pairs_dir / f"pairs-top{k}.txt", qnames, dbnames, top[hv, :k]).name)
            files.append(write_pairs_kapture(pairs_dir / f"pairs-top{k}.csv", qnames, dbnames, top[hv, :k],
                                             top_s[hv, :k]).name)
        files.append(write_ltvl_poses(pairs_dir / "poses-top1.txt", [r.path for r in queries], est).name)
    finite = ~np.isnan(perr)
    loc = {
        "thresholds": [list(t) for t in thresholds],
        "rates": dict(metrics),
        "n_scored": len(scored),
        "median_position_error_m": float(np.median(perr[finite])) if finite.any() else None,
        "median_rotation_error_deg": float(np.median(rerr[finite])) if finite.any() else None,
        "files": files,
        "per_query": {
            "ids": [queries[i].image_id for i in scored],
            "top1": [db.records[t].image_id if t >= 0 else None for t in top[scored, 0]],
            "position_error_m": [None if np.isnan(v) else float(v) for v in perr],
            "rotation_error_deg": [None if np.isnan(v) else float(v) for v in rerr],
        },
    }
    out: dict[str, Any] = {"n_queries": len(queries), "n_database": len(db.records),
                           "n_database_missing": int((db.present < 0).sum()), "metrics": metrics,
                           "per_query": {}, "localization": loc}
    gq = [q for q in gt.queries if q.positives]
    if gq:  # retrieval ground truth as well (e.g. the synthetic benchmark): mAP like tokyo
        qids = [q.query for q in gq]
        ok = [_ids_to_db(q.positives, db, f"{gt_path}: query {q.query}") for q in gq]
        jk = [_ids_to_db(q.junk, db, f"{gt_path}: query {q.query}") for q in gq]
        needed = [np.union1d(o, j) for o, j in zip(ok, jk, strict=True)]
        ranks = _item_ranks(_query_vectors(qids, ds, cropped=False, where=str(gt_path)), db, needed, settings)
        res = mean_average_precision([_subset(n, r, o) for n, r, o in zip(needed, ranks, ok, strict=True)],
                                     [_subset(n, r, j) for n, r, j in zip(needed, ranks, jk, strict=True)])
        metrics["mAP"] = _pct(res.map)
        out["per_query"]["mAP"] = {"ids": qids, "ap": _pct_list(res.ap)}
    return out


def _export_retrieval_pairs(manifest: Manifest, gt: GroundTruth, ds: DescriptorSet, settings: EvaluateSettings,
                            h5: Path, pairs_dir: Path) -> list[str]:
    """Top-k retrieval pairs of every query (hloc text and kapture CSV), as for localization."""
    db = _database(_database_records(manifest, gt.database_split), ds)
    cropped = gt.protocol == "revisited"
    qids = [q.query for q in gt.queries]
    Q = _query_vectors(qids, ds, cropped=cropped, where=str(h5))
    names = [r.path for r, p in zip(db.records, db.present, strict=True) if p >= 0]
    exclude = None
    if not cropped:  # every image queries all: drop the query itself from its own list
        exclude = np.array([db.present[db.index[q]] if q in db.index else -1 for q in qids], dtype=np.int64)
    k = min(settings.pairs_topk, len(names))
    top, top_s = topk(Q, db.X, k, settings.chunk_size, exclude=exclude)
    qnames = [manifest.records[manifest.index(q)].path for q in qids]
    return [write_pairs_hloc(pairs_dir / f"pairs-top{k}.txt", qnames, names, top).name,
            write_pairs_kapture(pairs_dir / f"pairs-top{k}.csv", qnames, names, top, top_s).name]


def score_dataset(descriptors_h5: Path, dataset_dir: Path, settings: EvaluateSettings, out_json: Path,
                  pairs_dir: Path | None = None) -> Path:
    """Score a descriptor file against a prepared dataset's ground truth; write the JSON, return its path."""
    h5, root = Path(descriptors_h5), Path(dataset_dir)
    ds = read_descriptors(h5)
    manifest = load_manifest(root, check_files=False)
    gt = load_groundtruth(root, manifest)
    gt_path = root / "groundtruth.json"
    if gt.protocol == "revisited":
        body = _score_revisited(manifest, gt, ds, settings, gt_path, h5)
    elif gt.protocol == "tokyo":
        body = _score_tokyo(manifest, gt, ds, settings, gt_path, h5)
    elif gt.protocol == "localization":
        body = _score_localization(manifest, gt, ds, settings, gt_path,
                                   Path(pairs_dir) if pairs_dir is not None else None)
    else:
        raise DarksideError(f"{gt_path}: protocol {gt.protocol!r} has no queries to score")
    if pairs_dir is not None and gt.protocol in ("revisited", "tokyo"):
        Path(pairs_dir).mkdir(parents=True, exist_ok=True)
        body["pairs_files"] = _export_retrieval_pairs(manifest, gt, ds, settings, h5, Path(pairs_dir))
    result = {"dataset": manifest.name, "protocol": gt.protocol, "model": ds.attrs.get("model"),
              "model_sha256": ds.attrs.get("model_sha256"), "preset": ds.attrs.get("preset"), **body}
    return atomic_write_json(out_json, result)
