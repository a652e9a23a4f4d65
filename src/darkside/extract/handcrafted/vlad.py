"""DaCo's VLAD baseline (its reverted ``vlad.py``): per cluster the sum of residuals of the descriptors assigned to
it, concatenated, signed square root, L2-normalised. DaCo clustered each image's own descriptors (k-means with
4 clusters per image), so two images' VLADs refer to different centroids, which explains the row's near-chance
numbers; ``codebook: per-image`` is that, ``shared`` the usual VLAD (Jegou et al. 2010) with one vocabulary over
every evaluation image's descriptors. With per-image codebooks an image with fewer descriptors than clusters gets a
zero row (ranked last; DaCo's run would have stopped there)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from darkside.evaluate.asmk import kmeans, nearest_words
from darkside.extract.handcrafted import Encoding, every_descriptor, l2_rows, register_encoding
from darkside.settings import setting


@dataclass(frozen=True)
class VladSettings:
    clusters: int = setting("k-means centroids (DaCo 4)", ge=1)
    codebook: Literal["per-image", "shared"] = setting("each image's own centroids (DaCo) or one vocabulary for all")
    iterations: int = setting("Lloyd iterations", ge=1)
    seed: int = setting("the k-means start", ge=0)


def vlad(d: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """(clusters x D,) VLAD of descriptors ``d`` (n, D): residual sums per nearest centroid, signed square root,
    L2 norm (zero for an image without descriptors)."""
    out = np.zeros(centroids.shape, np.float64)
    if len(d):
        words = nearest_words(d, centroids, 1)[:, 0]
        np.add.at(out, words, d.astype(np.float64) - centroids[words])
    v = np.sign(out) * np.sqrt(np.abs(out))
    return l2_rows(v.reshape(1, -1))[0]


@register_encoding
class Vlad(Encoding):
    name = "vlad"
    Settings = VladSettings

    def encode(self, per_image: list[np.ndarray]) -> np.ndarray:
        s = self.settings
        if s.codebook == "shared":
            shared = kmeans(every_descriptor(per_image), s.clusters, s.iterations, s.seed)
            return np.stack([vlad(d, shared) for d in per_image]).astype(np.float32)
        # too few descriptors for a codebook of their own (DaCo's KMeans would stop): a zero row
        return np.stack([vlad(d, kmeans(d, s.clusters, s.iterations, s.seed)) if len(d) >= s.clusters
                         else np.zeros(s.clusters * 128, np.float32) for d in per_image]).astype(np.float32)
