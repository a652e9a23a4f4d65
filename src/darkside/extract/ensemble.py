"""Ensembles of descriptor files (Table 4's 1024-D rows): per image, and per cropped query of ``/queries``, the
parts' L2-normalised descriptors concatenated, then L2-normalised.

With K unit parts the concatenation has norm sqrt(K), so the dot product of two ensemble descriptors is the mean
of the parts' similarities: equal weights, gandtr/mdir's "paste" of descriptor matrices without a PCA. The parts
are descriptor files of the same dataset; images are matched by id (the files' orders may differ). An image a
part lacks (skipped at extraction, or a row that is not finite) is missing in the ensemble as well, as the scorer
expects a missing image: left out of the ids and counted in ``skipped_ids``. Only global descriptors are
combined (a part's ``/local`` features are not carried over).

Reads and writes descriptor files only: no network, no torch.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from darkside.errors import DarksideError
from darkside.extract.hdf5 import DescriptorSet, read_descriptors, write_descriptors
from darkside.hashing import sha256_file

log = logging.getLogger(__name__)

#: the ``settings`` attribute's record of how the parts were combined
COMBINATION = "concatenation of the parts' L2-normalised descriptors, then L2 (similarity = mean of the parts')"


def _unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def combine(parts: Sequence[np.ndarray]) -> np.ndarray:
    """Aligned (N, D_k) descriptor matrices -> (N, sum D_k) float32: each part's rows L2-normalised, concatenated,
    then L2-normalised (the dot product of two rows is the mean of the parts' dot products)."""
    if not parts:
        raise ValueError("combine: no parts")
    joined = np.concatenate([_unit_rows(p) for p in parts], axis=1)
    return _unit_rows(joined).astype(np.float32)


def _skipped(ds: DescriptorSet) -> set[str]:
    return {str(i) for i in ds.attrs.get("skipped_ids") or []}


def _check_ids(paths: Sequence[Path], sets: Sequence[DescriptorSet], ids_of: Any, what: str) -> None:
    """Every id a part has is in each other part, or that part says it skipped it; else a one-line error."""
    first, first_ids = paths[0], set(ids_of(sets[0]))
    for path, ds in zip(paths[1:], sets[1:], strict=True):
        ids = set(ids_of(ds))
        for a, b, a_ids, b_ids, b_skipped in ((first, path, first_ids, ids, _skipped(ds)),
                                               (path, first, ids, first_ids, _skipped(sets[0]))):
            if extra := sorted(a_ids - b_ids - b_skipped):
                raise DarksideError(f"{a}: {what} do not match those of {b} ({extra[0]!r} is in the first only, "
                                    f"and not among the second's skipped ids)")


def _aligned(ids: list[str], part_ids: Sequence[list[str]], part_desc: Sequence[np.ndarray]
             ) -> tuple[list[str], list[np.ndarray], list[str]]:
    """The ids every part has with a finite row (in ``ids``' order), each part's rows in that order, and the ids
    left out because a part has no finite row for them."""
    rows = [{i: r for r, i in enumerate(p)} for p in part_ids]
    present = [i for i in ids if all(i in r for r in rows)]
    idx = [np.array([r[i] for i in present], dtype=np.int64) for r in rows]
    mats = [np.asarray(d)[ix] for d, ix in zip(part_desc, idx, strict=True)]
    finite = np.ones(len(present), dtype=bool)
    for m in mats:
        finite &= np.isfinite(m).all(axis=1)
    dropped = [i for i, ok in zip(present, finite, strict=True) if not ok]
    return [i for i, ok in zip(present, finite, strict=True) if ok], [m[finite] for m in mats], dropped


def _same(paths: Sequence[Path], sets: Sequence[DescriptorSet], key: str) -> Any:
    """The attribute ``key`` the parts share (None where none records it); differing values name both files."""
    seen = [(p, ds.attrs[key]) for p, ds in zip(paths, sets, strict=True) if ds.attrs.get(key) is not None]
    for p, v in seen[1:]:
        if v != seen[0][1]:
            raise DarksideError(f"{seen[0][0]}: {key} {seen[0][1]!r} differs from {p}'s {v!r} (an ensemble's "
                                f"parts describe the same dataset)")
    return seen[0][1] if seen else None


def ensemble_descriptors(parts: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str]) -> Path:
    """Combine the descriptor files ``parts`` (two or more, same dataset) into the ensemble file ``out``, written
    atomically; return its path. The attributes record each part: its file, the file's SHA-256, its model."""
    paths = [Path(p) for p in parts]
    if len(paths) < 2:
        raise DarksideError(f"{out}: an ensemble needs two or more descriptor files, got {len(paths)}")
    sets = [read_descriptors(p) for p in paths]
    dataset, preset = _same(paths, sets, "dataset"), _same(paths, sets, "preset")
    _check_ids(paths, sets, lambda ds: ds.image_ids, "image ids")
    ids, mats, dropped = _aligned(sets[0].image_ids, [ds.image_ids for ds in sets], [ds.descriptors for ds in sets])

    with_queries = [ds.query_ids is not None for ds in sets]
    qids = qdesc = None
    if any(with_queries):
        if not all(with_queries):
            has, lacks = paths[with_queries.index(True)], paths[with_queries.index(False)]
            raise DarksideError(f"{has}: has cropped queries (/queries) but {lacks} has none")
        _check_ids(paths, sets, lambda ds: ds.query_ids, "query ids")
        qids, qmats, qdropped = _aligned(sets[0].query_ids, [ds.query_ids for ds in sets],  # type: ignore[arg-type]
                                         [ds.query_descriptors for ds in sets])  # type: ignore[misc]
        qdesc = combine(qmats)
        dropped += [q for q in qdropped if q not in dropped]

    # what any part skipped, then what the ensemble leaves out because a part's row is not finite
    skipped = list(dict.fromkeys([str(i) for ds in sets for i in ds.attrs.get("skipped_ids") or []] + dropped))
    records = [{"descriptors": str(p), "sha256": sha256_file(p), "model": ds.attrs.get("model"),
                "model_sha256": ds.attrs.get("model_sha256"), "dim": int(ds.descriptors.shape[1])}
               for p, ds in zip(paths, sets, strict=True)]
    attrs: dict[str, Any] = {
        "model": " + ".join(str(r["model"]) for r in records),
        "model_sha256": " + ".join(str(r["model_sha256"]) for r in records),
        "parts": records,
        "settings": {"ensemble": COMBINATION, "parts": [ds.attrs.get("settings") for ds in sets]},
        "skipped_images": len(skipped), "skipped_ids": skipped,
    }
    attrs.update({k: v for k, v in (("dataset", dataset), ("preset", preset)) if v is not None})
    log.info("%s: %d images of %d parts, %d-D%s", out, len(ids), len(paths), sum(r["dim"] for r in records),
             f"; {len(skipped)} missing in a part: {', '.join(skipped[:10])}" if skipped else "")
    return write_descriptors(out, DescriptorSet(ids, combine(mats), qids, qdesc, attrs))
