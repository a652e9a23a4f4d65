"""``darkside score``: metrics of one descriptor file on one prepared dataset, written to JSON.

The ground truth's protocol picks the scorer in :data:`PROTOCOLS`: each protocol module
(:mod:`.revisited`, :mod:`.tokyo`, :mod:`.localization`, :mod:`.cross_domain`) declares its ``PROTOCOL`` name and a
``score`` function of the :data:`Scorer` signature, and documents its own ``metrics``. All
percentages are x100 like the paper; NaN (a query without positives, a metric with no query)
is written as ``null``. Keys are sorted. The file looks like::

    {
      "dataset": "tokyo247", "protocol": "tokyo",
      "model": <h5 attr or null>, "model_sha256": <h5 attr or null>, "preset": <h5 attr or null>,
      "n_queries": 1125, "n_database": 1125, "n_database_missing": 0,
      "metrics": {...},            # headline numbers, see the protocol module
      "per_query": {"<name>": {"ids": [query ids], "ap": [AP x100 or null, ...]}, ...},
      "breakdown": {...},          # tokyo only
      "recall": {...},             # tokyo only (when the dataset has day/night scene pairs)
      "localization": {...},       # localization only
      "domains": {"A": ..., "B": ...},  # cross_domain only
      "pairs_files": [...]         # revisited and tokyo, with pairs_dir
    }

With ``pairs_dir``, every protocol writes the top-k retrieval pairs there (hloc ``query db``,
kapture ``query, db, score``; see :mod:`.database`), localization also its top-1 pairs and the
LTVL2020 poses. Image names: manifest paths for revisited and tokyo; for localization the image ids (the kapture
image names) in the pairs and the benchmark's names in the poses file (:mod:`.localization`, :mod:`.ltvl`).
Missing descriptors: see :mod:`.database`.

With a ``codebook`` the file's local features (``/local``, HOW) are ranked by ASMK (:mod:`.asmk`) instead of the
dot products of its global descriptors, in every protocol; the JSON then also says ``"similarity": "asmk"`` and
names the ``codebook`` file. With ``matches`` they are ranked by ratio-test matches (:mod:`.matches`, DaCo's SIFT
baseline; ``"similarity": "matches"``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from darkside.atomic import atomic_write_json
from darkside.config import MatchCountSettings, ScoreSettings
from darkside.data.manifest import GroundTruth, Manifest, load_groundtruth, load_manifest
from darkside.errors import DarksideError
from darkside.evaluate import cross_domain, localization, revisited, tokyo
from darkside.evaluate.asmk import AsmkSettings, asmk_descriptor_set, read_codebook
from darkside.evaluate.matches import matches_descriptor_set
from darkside.extract.hdf5 import DescriptorSet, read_descriptors
from darkside.settings import to_plain

#: ``score(manifest, groundtruth, descriptors, settings, groundtruth_path, descriptors_h5, pairs_dir)``
#: -> the protocol's part of the JSON (everything but dataset, protocol and the model attributes).
Scorer = Callable[[Manifest, GroundTruth, DescriptorSet, ScoreSettings, Path, Path, Path | None], dict[str, Any]]

#: protocol name (``groundtruth.json``) -> scorer. A new protocol is one module and one entry here;
#: ``darkside.data.manifest.PROTOCOLS`` must list the same names plus ``training`` (no queries).
PROTOCOLS: dict[str, Scorer] = {m.PROTOCOL: m.score for m in (revisited, tokyo, localization, cross_domain)}


def score_dataset(descriptors_h5: Path, dataset_dir: Path, settings: ScoreSettings, out_json: Path,
                  pairs_dir: Path | None = None, codebook: Path | None = None,
                  asmk: AsmkSettings | None = None, matches: MatchCountSettings | None = None) -> Path:
    """Score a descriptor file against a prepared dataset's ground truth (by ASMK on its local features with a
    ``codebook`` and ``asmk`` settings, by ratio-test matches of them with ``matches``); write the JSON, return its
    path."""
    h5, root = Path(descriptors_h5), Path(dataset_dir)
    ds = read_descriptors(h5)
    kernel: dict[str, Any] = {}
    if codebook is not None:
        if asmk is None:
            raise DarksideError(f"{codebook}: scoring with a codebook needs the local.asmk settings")
        ds = asmk_descriptor_set(ds, read_codebook(codebook), asmk, h5)
        kernel = {"similarity": "asmk", "codebook": str(codebook)}
    elif matches is not None:
        ds = matches_descriptor_set(ds, matches, h5)
        kernel = {"similarity": "matches", "matches": to_plain(matches)}
    manifest = load_manifest(root, check_files=False)
    gt = load_groundtruth(root, manifest)
    gt_path = root / "groundtruth.json"
    scorer = PROTOCOLS.get(gt.protocol)
    if scorer is None:
        raise DarksideError(f"{gt_path}: protocol {gt.protocol!r} has no queries to score")
    body = scorer(manifest, gt, ds, settings, gt_path, h5, Path(pairs_dir) if pairs_dir is not None else None)
    result = {"dataset": manifest.name, "protocol": gt.protocol, "model": ds.attrs.get("model"),
              "model_sha256": ds.attrs.get("model_sha256"), "preset": ds.attrs.get("preset"), **kernel, **body}
    return atomic_write_json(out_json, result)
