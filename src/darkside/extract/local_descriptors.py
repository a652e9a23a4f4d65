"""Local descriptors (HOW) of image lists: the ``/local`` groups of descriptor files and a codebook's training set.

An image is prepared as for its global descriptor (:func:`~darkside.extract.global_descriptors.prepare_image`:
query crop, max side, CLAHE as the model file records, ImageNet normalisation) and handed, one at a time (every
image has its own set of scales and sizes), to its network's head, which must offer ``local_features(net, image,
scales, features)`` (:class:`darkside.embed.networks.how.HowHead`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from darkside.data.manifest import load_manifest
from darkside.data.photometric import ClaheSettings
from darkside.embed.how import LocalExtractSettings
from darkside.embed.network import EmbeddingNet, load_model
from darkside.errors import DarksideError, ImageError
from darkside.extract.global_descriptors import BBox, ImageLike, load_image, prepare_image
from darkside.extract.hdf5 import LocalFeatures
from darkside.training import resolve_device

log = logging.getLogger(__name__)


def has_local_features(net: EmbeddingNet) -> bool:
    """Whether the network's head gives local descriptors."""
    return callable(getattr(net.pool, "local_features", None))


def extract_local(net: EmbeddingNet, images: Sequence[ImageLike], image_size: int, clahe: ClaheSettings,
                  local: LocalExtractSettings, device: str | torch.device = "cpu",
                  bboxes: Sequence[BBox | None] | None = None, progress: bool = False,
                  skipped: list[int] | None = None, batch_size: int = 32) -> LocalFeatures:
    """The local descriptors of ``images``, in order; images of equal prepared size go through the network
    together (up to ``batch_size``; each image's features depend on it alone). An unreadable image is an error,
    unless ``skipped`` is given: then it is left out and its index appended there."""
    if not has_local_features(net):
        raise DarksideError(f"extract: network {net.network_name!r} has no local features (a HOW network has)")
    dev = resolve_device(device)
    net.to(dev)
    was = net.training
    net.eval()
    rows: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    buckets: dict[tuple[int, int], list[tuple[int, torch.Tensor]]] = {}

    def flush(key: tuple[int, int]) -> None:
        items = buckets.pop(key)
        x = torch.stack([t for _, t in items]).to(dev)
        for (i, _), r in zip(items, net.pool.local_features(net, x, local.scales, local.features), strict=True):
            rows[i] = r

    try:
        for i, item in enumerate(tqdm(images, desc="local features", disable=not progress)):
            try:
                img = load_image(item)
            except ImageError as exc:
                if skipped is None:
                    raise
                log.warning("local features: skipped %s", exc)
                skipped.append(i)
                continue
            t = prepare_image(img, image_size, clahe, None if bboxes is None else bboxes[i])
            key = (int(t.shape[1]), int(t.shape[2]))
            buckets.setdefault(key, []).append((i, t))
            if len(buckets[key]) >= batch_size:
                flush(key)
            elif sum(len(b) for b in buckets.values()) > 4 * batch_size:  # many sizes: bound the memory
                flush(max(buckets, key=lambda k: len(buckets[k])))
        for key in list(buckets):
            flush(key)
    finally:
        net.train(was)
    return LocalFeatures.concat([rows[i] for i in sorted(rows)], net.dim)


def codebook_descriptors(model_path: str | os.PathLike[str], dataset_dir: str | os.PathLike[str],
                         image_size: int, features: int, images: int, split: str = "train",
                         device: str | torch.device = "cpu", skip_corrupt: bool = False) -> np.ndarray:
    """Local descriptors (n, D) of the first ``images`` images of ``split`` at scale 1, the ``features`` of highest
    attention each (HOW's codebook training set); unreadable images are left out (logged)."""
    dataset_dir = Path(dataset_dir)
    manifest = load_manifest(dataset_dir, check_files=False)
    records = manifest.select(split=split)[:images]
    if not records:
        raise DarksideError(f"{dataset_dir / 'manifest.csv'}: no images in split {split!r} for the codebook")
    net = load_model(model_path)
    clahe = ClaheSettings.of(net.preprocessing["clahe"])
    one = LocalExtractSettings(scales=(1.0,), features=features)
    skipped: list[int] = []
    out = extract_local(net, [manifest.image_path(r) for r in records], image_size, clahe, one, device,
                        skipped=skipped if skip_corrupt else None)
    log.info("codebook: %d local descriptors of %d images", len(out.descriptors), len(records) - len(skipped))
    return out.descriptors
