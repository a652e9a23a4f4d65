"""The paper's non-learned baseline generator: invert the lightness channel in Lab.

Section 4.4 of the paper: "using images with inverted intensity channel in the LAB colour space"
as the night version of an anchor. It has no weights, so it is always "frozen".
"""

from __future__ import annotations

import numpy as np
import torch

from darkside.gan.translator import check_batch


class LabInversion:
    """Translator: L* -> 100 - L* per image, a and b kept (via ``darkside.data.photometric``)."""

    @torch.no_grad()
    def translate(self, images: torch.Tensor) -> torch.Tensor:
        from darkside.data.photometric import invert_lightness

        check_batch(images)
        out = []
        for img in images.detach().cpu():
            rgb = np.ascontiguousarray(img.permute(1, 2, 0).numpy().astype(np.float32))
            inv = np.clip(np.asarray(invert_lightness(rgb), dtype=np.float32), 0.0, 1.0)
            out.append(torch.from_numpy(inv).permute(2, 0, 1))
        return torch.stack(out).to(device=images.device, dtype=images.dtype)
