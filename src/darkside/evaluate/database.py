"""What every protocol scorer shares: the database of a descriptor file, bounded-memory ranks, JSON numbers and
the retrieval-pair files. The protocol modules import from here, so this module imports none of them.

Database images without a descriptor (skipped at extraction) rank after every other image, in manifest order; a
retrieval query without a descriptor is an error (its AP would be undefined).

Pair files, written for every protocol (kapture's localization paradigms 2a/2b): hloc text (``query db`` per
line) and kapture CSV (``query, db, score``, the score a similarity). The writers take the names they are given:
:func:`export_retrieval_pairs` (revisited, tokyo) names images by manifest path (the qualitative figure reads them
back so), the localization protocol by image id, i.e. the kapture image name (see :mod:`.localization`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import reduce
from pathlib import Path
from typing import Any

import numpy as np

from darkside.atomic import atomic_write_text
from darkside.config import ScoreSettings
from darkside.data.manifest import ImageRecord, Manifest
from darkside.errors import DarksideError, ManifestError
from darkside.evaluate.ranking import Similarity, block_scores, ranks_of, topk
from darkside.extract.hdf5 import DescriptorSet

_SIM_BUDGET = 1 << 24  # similarity entries per (query batch x block): 64 MB of float32


@dataclass
class Database:
    """Database rows (manifest order) and the descriptors of those that have one."""

    records: list[ImageRecord]
    X: np.ndarray  # (n_present, D)
    present: np.ndarray  # (n_db,) position in X, -1 if the image has no descriptor
    missing_rank: np.ndarray  # (n_db,) rank of a missing image (after all present ones), -1 if present
    index: dict[str, int]
    similarity: Similarity = block_scores  # of query rows and X rows (the descriptor file's, see ranking)

    @property
    def n_missing(self) -> int:
        """Database images without a descriptor (reported as ``n_database_missing``)."""
        return int((self.present < 0).sum())


def row_lookup(ds: DescriptorSet) -> dict[str, int]:
    """image id -> row of the descriptor file."""
    return {i: r for r, i in enumerate(ds.image_ids)}


def database_records(manifest: Manifest, split: str | None) -> list[ImageRecord]:
    """Rows of the database split; every row when the ground truth names none (every image queries all)."""
    return manifest.select(split=split) if split is not None else list(manifest.records)


def build_database(records: list[ImageRecord], ds: DescriptorSet) -> Database:
    """The database of ``records``: descriptors of those present, and the last ranks of the missing ones."""
    rows = row_lookup(ds)
    pos = np.array([rows.get(r.image_id, -1) for r in records], dtype=np.int64)
    have = pos >= 0
    present = np.full(len(records), -1, dtype=np.int64)
    present[have] = np.arange(int(have.sum()))
    missing_rank = np.full(len(records), -1, dtype=np.int64)
    missing_rank[~have] = int(have.sum()) + np.arange(int((~have).sum()))
    X = ds.descriptors[pos[have]] if have.any() else np.zeros((0, ds.descriptors.shape[1]), np.float32)
    return Database(records, X, present, missing_rank, {r.image_id: i for i, r in enumerate(records)},
                    ds.similarity or block_scores)


def query_batch(settings: ScoreSettings, n_db: int) -> int:
    """Queries ranked together, so that a batch's similarity block stays within the memory budget."""
    return max(1, _SIM_BUDGET // max(1, min(settings.chunk_size, n_db)))


def item_ranks(Q: np.ndarray, db: Database, items: Sequence[np.ndarray],
               settings: ScoreSettings) -> list[np.ndarray]:
    """0-based ranks of db items (db indices) for each query; images without descriptors rank last."""
    out: list[np.ndarray] = []
    qb = query_batch(settings, len(db.X))
    for s in range(0, len(items), qb):
        batch = items[s:s + qb]
        present = [db.present[a][db.present[a] >= 0] for a in batch]
        got = (ranks_of(Q[s:s + qb], db.X, present, settings.chunk_size, db.similarity) if len(db.X)
               else [np.zeros(0, np.int64) for _ in batch])
        for a, r in zip(batch, got, strict=True):
            full = db.missing_rank[a].copy()
            full[db.present[a] >= 0] = r
            out.append(full)
    return out


def subset(needed: np.ndarray, ranks: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Ranks of ``items`` (db indices) given the ranks of the sorted unique ``needed`` db indices."""
    return ranks[np.searchsorted(needed, np.asarray(items, dtype=np.int64))]


def list_ranks(Q: np.ndarray, db: Database, lists: Sequence[Sequence[np.ndarray]],
               settings: ScoreSettings) -> list[list[np.ndarray]]:
    """Per query, the ranks of each of its db-index lists, read from one ranking of their union."""
    needed = [reduce(np.union1d, items) for items in lists]
    ranks = item_ranks(Q, db, needed, settings)
    return [[subset(n, r, a) for a in items] for n, r, items in zip(needed, ranks, lists, strict=True)]


def ids_to_db(ids: Sequence[str], db: Database, where: str) -> np.ndarray:
    """Sorted unique db indices of image ids; an id outside the database split is a ground-truth error."""
    try:
        return np.array(sorted({db.index[i] for i in ids}), dtype=np.int64)
    except KeyError as exc:
        raise ManifestError(f"{where}: image id {exc.args[0]!r} is not in the database split") from None


def query_vectors(ids: Sequence[str], ds: DescriptorSet, cropped: bool, where: str) -> np.ndarray:
    """Query descriptors: the cropped /queries group where present (and asked for), else the image's own row."""
    rows = row_lookup(ds)
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


def pct(x: float) -> float | None:
    """A fraction as a JSON percentage (x100 like the paper); NaN (nothing to average) becomes null."""
    return None if np.isnan(x) else float(100.0 * x)


def pct_list(a: np.ndarray) -> list[float | None]:
    """:func:`pct` of every entry (per-query APs and hits)."""
    return [pct(float(v)) for v in np.asarray(a, dtype=np.float64)]


def body(db: Database, n_queries: int, metrics: dict[str, Any], per_query: dict[str, Any],
         **more: Any) -> dict[str, Any]:
    """The fields of a protocol's JSON body that every protocol has, plus ``more``."""
    return {"n_queries": n_queries, "n_database": len(db.records), "n_database_missing": db.n_missing,
            "metrics": metrics, "per_query": per_query, **more}


def write_lines(path: str | Path, lines: Sequence[str]) -> Path:
    """Write ``lines``, each ending in a newline, atomically."""
    return atomic_write_text(path, "".join(line + "\n" for line in lines))


def write_pairs_hloc(path: str | Path, query_names: Sequence[str], db_names: Sequence[str],
                     indices: np.ndarray) -> Path:
    """hloc pairs file: ``query db`` per line, queries in order, each with its ranked db images."""
    return write_lines(path, [f"{q} {db_names[j]}" for q, row in zip(query_names, indices, strict=True)
                              for j in row if j >= 0])


def write_pairs_kapture(path: str | Path, query_names: Sequence[str], db_names: Sequence[str],
                        indices: np.ndarray, scores: np.ndarray) -> Path:
    """kapture pairs file: header comment, then ``query, db, score`` per line (score as similarity)."""
    return write_lines(path, ["# query_image, map_image, score"] + [
        f"{q}, {db_names[j]}, {float(s):.6f}" for q, row, srow in zip(query_names, indices, scores, strict=True)
        for j, s in zip(row, srow, strict=True) if j >= 0])


def export_retrieval_pairs(manifest: Manifest, qids: Sequence[str], db: Database, ds: DescriptorSet,
                           settings: ScoreSettings, where: str, pairs_dir: Path | None,
                           cropped: bool) -> dict[str, list[str]]:
    """``{"pairs_files": [...]}``: top-k pairs (k = ``pairs_topk``) of every query as hloc text and kapture CSV
    (``{}`` without ``pairs_dir``). ``cropped`` queries (revisited) use their cropped descriptors and are not
    in the database; otherwise every image queries all and the query itself is dropped from its own list."""
    if pairs_dir is None:
        return {}
    pairs_dir.mkdir(parents=True, exist_ok=True)
    Q = query_vectors(qids, ds, cropped=cropped, where=where)
    names = [r.path for r, p in zip(db.records, db.present, strict=True) if p >= 0]
    exclude = None if cropped else np.array([db.present[db.index[q]] if q in db.index else -1 for q in qids],
                                            dtype=np.int64)
    k = min(settings.pairs_topk, len(names))
    top, top_s = topk(Q, db.X, k, settings.chunk_size, exclude=exclude, similarity=db.similarity)
    qnames = [manifest.records[manifest.index(q)].path for q in qids]
    return {"pairs_files": [write_pairs_hloc(pairs_dir / f"pairs-top{k}.txt", qnames, names, top).name,
                            write_pairs_kapture(pairs_dir / f"pairs-top{k}.csv", qnames, names, top, top_s).name]}
