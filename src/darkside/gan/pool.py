"""Image history pool (Shrivastava et al.; CycleGAN): D sees a mix of current and older fakes.

Once the pool holds ``size`` images, each new image is, with probability 0.5, swapped for a
random stored one (the stored one is returned); otherwise the new image is returned. The random
draws come from the pool's own seeded numpy Generator so a checkpoint can restore them exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


class ImagePool:
    def __init__(self, size: int, seed: int = 0) -> None:
        self.size = int(size)
        self.images: list[torch.Tensor] = []
        self.rng = np.random.default_rng(seed)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """Return a batch of the same shape mixing ``images`` with stored ones (detached)."""
        if self.size <= 0:
            return images
        out = []
        for img in images.detach():
            img = img.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(img.clone())
                out.append(img)
            elif self.rng.random() < 0.5:
                k = int(self.rng.integers(0, self.size))
                out.append(self.images[k].clone())
                self.images[k] = img.clone()
            else:
                out.append(img)
        return torch.cat(out, 0)

    def state_dict(self) -> dict[str, Any]:
        return {"size": self.size, "images": [t.cpu() for t in self.images],
                "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any], device: torch.device | str = "cpu") -> None:
        self.size = int(state["size"])
        self.images = [t.to(device) for t in state["images"]]
        self.rng.bit_generator.state = state["rng"]
