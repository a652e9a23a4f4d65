"""Paired scale-crop augmentation of gandtr's GAN training (SPEC §5) and the epoch's pair draw.

One scale s ~ U[max(scale_min, crop / min_side), 1] per pair; a square window of side
ceil(crop / s) at a uniform offset is cut from *both* images (same position) and resized to
crop x crop; no flip. ``min_side`` is the smaller side over both images so the window fits both.
"""

from __future__ import annotations

import math

import cv2
import numpy as np


def crop_window(height: int, width: int, crop: int, scale_min: float,
                rng: np.random.Generator) -> tuple[int, int, int]:
    """(top, left, side) of the square window for an image region ``height`` x ``width``.

    When the image is smaller than ``crop`` the lower bound exceeds 1: then s = 1 and the window
    is the whole smaller side (it is upsampled to ``crop``) rather than failing.
    """
    min_side = min(height, width)
    lo = min(1.0, max(scale_min, crop / min_side))
    s = float(rng.uniform(lo, 1.0)) if lo < 1.0 else 1.0
    side = min(math.ceil(crop / s), min_side)
    return int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1)), side  # top, left


def _cut(img: np.ndarray, top: int, left: int, side: int, crop: int) -> np.ndarray:
    win = img[top:top + side, left:left + side]
    if side == crop:
        return np.ascontiguousarray(win)
    return cv2.resize(win, (crop, crop), interpolation=cv2.INTER_LINEAR)


def paired_crop(day: np.ndarray, night: np.ndarray, crop: int, scale_min: float,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Cut the same window from ``day`` and ``night`` (H x W x 3 uint8) and resize both to crop."""
    top, left, side = crop_window(min(day.shape[0], night.shape[0]), min(day.shape[1], night.shape[1]), crop,
                                  scale_min, rng)
    return _cut(day, top, left, side, crop), _cut(night, top, left, side, crop)


def epoch_pairs(n_day: int, n_night: int, n_pairs: int, rng: np.random.Generator) -> np.ndarray:
    """(n_pairs, 2) indices: independent draws with replacement from the day and the night list."""
    return np.stack([rng.integers(0, n_day, n_pairs), rng.integers(0, n_night, n_pairs)], axis=1)


def domain_pairs(domains: np.ndarray, n_pairs: int, rng: np.random.Generator) -> np.ndarray:
    """(n_pairs, 2) (source, target) indices of images of different domains (``domains``: one integer per
    image; at least two domains): sources drawn with replacement from all images, each target uniformly
    from the images of the other domains."""
    domains = np.asarray(domains)
    src = rng.integers(0, len(domains), n_pairs)
    tgt = np.empty_like(src)
    others = {d: np.flatnonzero(domains != d) for d in np.unique(domains)}
    for i, s in enumerate(src):
        pool = others[domains[s]]
        tgt[i] = pool[rng.integers(0, len(pool))]
    return np.stack([src, tgt], axis=1)


def to_tensor_batch(images: list[np.ndarray]) -> np.ndarray:
    """uint8 H x W x 3 images -> float32 (B, 3, H, W) in [-1, 1] (mean 0.5, std 0.5)."""
    arr = np.stack(images).astype(np.float32) / 255.0
    return np.ascontiguousarray(arr.transpose(0, 3, 1, 2)) * 2.0 - 1.0
