"""The oracle translator: the synthetic benchmark's own night renderer, the ceiling of any generator.

A generator learns to turn a day photograph into a plausible night one; on the synthetic
benchmark the true night of a training view exists, rendered by the same code that renders the
test nights, at the same camera. ``synth`` writes it as ``night-twins/<image path>`` of the
training set (no manifest lists it, so no other recipe sees it). A recipe whose ``generator`` is
``oracle`` uses it instead of a generator's output for the same anchors a generator would
translate: the ``oracle-cd`` row measures how much room the benchmark leaves a perfect generator.
"""

from __future__ import annotations

import numpy as np

from darkside.data.images import load_rgb
from darkside.data.manifest import Manifest
from darkside.data.photometric import pil_to_float, resize_max_side
from darkside.data.synthetic import NIGHT_TWINS
from darkside.errors import DarksideError


class RenderedNight:
    """View translator: the night twin of a training image, resized like the image itself."""

    def translate_view(self, manifest: Manifest, image_id: str, max_side: int) -> np.ndarray:
        """RGB float32 (H, W, 3) in [0, 1] of ``image_id``'s night twin at ``max_side``."""
        record = manifest.records[manifest.index(image_id)]
        path = manifest.root / NIGHT_TWINS / record.path
        if not path.is_file():
            raise DarksideError(f"{path}: no night twin of {image_id!r}; the oracle translator needs a training set "
                                "written by `darkside synth`")
        return pil_to_float(resize_max_side(load_rgb(path), max_side))
