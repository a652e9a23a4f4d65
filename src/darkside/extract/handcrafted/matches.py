"""DaCo's SIFT baseline: the local descriptors kept in the file's ``/local`` group and ranked by the number of
ratio-test matches (``darkside score --matches``, :mod:`darkside.evaluate.matches`). The global rows are each
image's mean descriptor, L2-normalised: the file format needs rows, and a plain ``score`` of this file ranks by
them, which is not what DaCo's SIFT row reports."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from darkside.extract.handcrafted import Encoding, l2_rows, register_encoding


@dataclass(frozen=True)
class MatchesSettings:
    """None of its own: the kernel's ratio and score are ``evaluate.matches`` (read by the score job)."""


@register_encoding
class Matches(Encoding):
    name = "matches"
    Settings = MatchesSettings
    keeps_local = True

    def encode(self, per_image: list[np.ndarray]) -> np.ndarray:
        return l2_rows(np.stack([d.mean(0) if len(d) else np.zeros(128, np.float32) for d in per_image]))
