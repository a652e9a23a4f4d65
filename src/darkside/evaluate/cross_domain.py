"""DaCo's cross-domain protocol: Recall@K between the two images of each evaluation pair.

The ground truth's ``pairs[database_split]`` lists the evaluation pairs as (domain-B image, domain-A image), in
DaCo's index order (pair k of domain A is the k-th A image of its sorted validation folder, and so for B); the
other splits' pairs are training data. Scored (:func:`score`) with :func:`darkside.evaluate.recall.recall_at_k`:
A queries all B images (``A->B``), B queries all A (``B->A``), and all 2N images query all 2N with the query
itself removed (``A<->B``, the same-domain images distractors). Every image of an evaluation pair needs a
descriptor: a missing one would make its pair's recall undefined, so it is an error naming the image.

Metrics: ``{"A->B": {"R@1", "R@2", ...}, "B->A": {...}, "A<->B": {...}}``; ``domains``: the manifest domain of
each side (``{"A": "day", "B": "night"}``); per-query hits (0 or 100) in ``per_query["R@K A->B"] = {"ids",
"hit"}`` (the A ids for ``A->B``, the B ids for ``B->A``, A ids then B ids for ``A<->B``) for the bootstrap.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from darkside.config import ScoreSettings
from darkside.data.manifest import GroundTruth, Manifest
from darkside.errors import DarksideError
from darkside.evaluate.database import body, build_database, pct, pct_list
from darkside.evaluate.recall import recall_at_k
from darkside.extract.hdf5 import DescriptorSet

PROTOCOL = "cross_domain"
#: the settings' keys, in DaCo's column order
MODES: tuple[str, ...] = ("A->B", "B->A", "A<->B")


def score(manifest: Manifest, gt: GroundTruth, ds: DescriptorSet, settings: ScoreSettings, gt_path: Path,
          h5: Path, pairs_dir: Path | None) -> dict[str, Any]:
    """Recall@K of the evaluation pairs (see the module docstring); ``pairs_dir`` is unused (no kapture pairs)."""
    split = gt.database_split
    pairs = gt.pairs.get(split or "", [])
    if not pairs:
        raise DarksideError(f"{gt_path}: pairs.{split}: no evaluation pairs to score")
    b_ids, a_ids = [b for b, _ in pairs], [a for _, a in pairs]
    if len(set(a_ids + b_ids)) != 2 * len(pairs):
        raise DarksideError(f"{gt_path}: pairs.{split}: an image appears in more than one pair")
    db = build_database([manifest.records[manifest.index(i)] for i in a_ids + b_ids], ds)
    missing = [r.image_id for r, p in zip(db.records, db.present, strict=True) if p < 0]
    if missing:
        raise DarksideError(f"{h5}: {len(missing)} image(s) of the evaluation pairs have no descriptor "
                            f"(first {missing[0]!r}; skipped at extraction?)")
    n = len(pairs)
    A, B = db.X[:n], db.X[n:]
    rec = recall_at_k(A, B, settings.recall_ks, settings.chunk_size, names=("A", "B"), similarity=db.similarity)
    mode_ids = {"A->B": a_ids, "B->A": b_ids, "A<->B": a_ids + b_ids}
    metrics: dict[str, Any] = {}
    per_query: dict[str, Any] = {}
    for mode in MODES:
        rr = rec[mode]
        metrics[mode] = {f"R@{k}": pct(rr.recall[k]) for k in rr.ks}
        for i, k in enumerate(rr.ks):
            per_query[f"R@{k} {mode}"] = {"ids": mode_ids[mode], "hit": pct_list(rr.hits[:, i].astype(np.float64))}
    domains = {"A": db.records[0].domain, "B": db.records[n].domain}
    return body(db, n, metrics, per_query, domains=domains)
