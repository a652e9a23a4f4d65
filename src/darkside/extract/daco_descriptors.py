"""Descriptors of a ``train-daco`` model for the ``cross_domain`` score: the unit-norm pooled trunk features of
the evaluation pairs' images, as DaCo evaluates (whole image, shorter side resized to the run's ``eval_resize``,
the run's normalisation; the projection head is not used). Only the pairs of the ground truth's
``database_split`` are extracted: they are all the score reads."""

from __future__ import annotations

import logging
from pathlib import Path

from darkside.data.manifest import load_groundtruth, load_manifest
from darkside.embed.daco import descriptors, load_daco_model
from darkside.errors import DarksideError
from darkside.extract.hdf5 import DescriptorSet, write_descriptors
from darkside.hashing import sha256_file
from darkside.settings import to_plain

log = logging.getLogger(__name__)


def extract_daco(model_path: str | Path, dataset_dir: str | Path, out_h5: str | Path, preset: str | None = None,
                 device: str = "cpu") -> Path:
    """Write the descriptors of the evaluation pairs' images of ``dataset_dir`` to ``out_h5``; return its path."""
    root = Path(dataset_dir)
    manifest = load_manifest(root)
    gt = load_groundtruth(root, manifest)
    if gt.protocol != "cross_domain":
        raise DarksideError(f"{root}: protocol {gt.protocol!r}; DaCo's descriptors are for a cross_domain pair set")
    ids = gt.evaluation_pair_ids()
    net, settings, norm = load_daco_model(model_path)
    net.to(device)
    log.info("DaCo descriptors of %d images (%d evaluation pairs) of %s", len(ids), len(ids) // 2, manifest.name)
    paths = [manifest.image_path(manifest.records[manifest.index(i)]) for i in ids]
    attrs = {"model": str(model_path), "model_sha256": sha256_file(model_path), "preset": preset,
             "dataset": manifest.name,
             "settings": {"eval_resize": settings.eval_resize, "normalisation": to_plain(norm)},
             "skipped_images": 0, "skipped_ids": []}
    return write_descriptors(out_h5, DescriptorSet(ids, descriptors(net, paths, settings, norm, device), attrs=attrs))
