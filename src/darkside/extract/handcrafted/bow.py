"""DaCo's BoW baseline (its reverted ``bow.py``): k-means words over the SIFT of every evaluation image, each
image's histogram of nearest words weighted by idf = log((N + 1) / (n_w + 1)) (N images, n_w of them holding word
w), L2-normalised and compared by dot product."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from darkside.errors import DarksideError
from darkside.evaluate.asmk import kmeans, nearest_words
from darkside.extract.handcrafted import Encoding, every_descriptor, l2_rows, register_encoding
from darkside.settings import setting


@dataclass(frozen=True)
class BowSettings:
    words: int = setting("k-means vocabulary size (DaCo 64)", ge=1)
    iterations: int = setting("Lloyd iterations (scikit-learn's KMeans, DaCo's: until converged, at most 300)",
                              ge=1)
    seed: int = setting("the k-means start", ge=0)


def bow_histograms(per_image: list[np.ndarray], centroids: np.ndarray) -> np.ndarray:
    """(N, words) word counts of each image's descriptors."""
    out = np.zeros((len(per_image), len(centroids)), np.float32)
    for i, d in enumerate(per_image):
        if len(d):
            out[i] = np.bincount(nearest_words(d, centroids, 1)[:, 0], minlength=len(centroids))
    return out


def tf_idf(counts: np.ndarray) -> np.ndarray:
    """DaCo's weighting of word counts (N, words): count x log((N + 1) / (images holding the word + 1))."""
    n = len(counts)
    holding = (counts > 0).sum(0)
    return counts * np.log((n + 1.0) / (holding + 1.0)).astype(np.float32)


@register_encoding
class Bow(Encoding):
    name = "bow"
    Settings = BowSettings

    def encode(self, per_image: list[np.ndarray]) -> np.ndarray:
        s = self.settings
        every = every_descriptor(per_image)
        if len(every) < s.words:
            raise DarksideError(f"bow: {s.words} words need at least as many SIFT descriptors, got {len(every)}")
        return l2_rows(tf_idf(bow_histograms(per_image, kmeans(every, s.words, s.iterations, s.seed))))
