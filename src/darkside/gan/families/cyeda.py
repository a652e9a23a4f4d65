"""CyEDA (cycle-object edge consistency domain adaptation) as its authors' code trains it.

Two U-Net generators with blending masks and two PatchGANs without normalisation; the G step first (both
generators), then the D step on pooled fakes, LSGAN, D loss halved. In place of CycleGAN's cycle
reconstruction, the generators are tied to their inputs by the L1 between Sobel-gradient magnitudes of
each image and its translation (day vs G_X(day), night vs G_Y(night)), ``edge_weight`` per direction;
there is no identity loss. Adam at the family's own lr (1e-4; gandtr's families run 2e-4), betas from
``gan.common``; the lr stays constant one epoch longer than CycleGAN's rule before its linear decay
(:func:`darkside.gan.schedule.late_decay_factor`); conv weights N(0, 0.02) with PyTorch's default biases.

The generator (``sid_unet_resize`` with three masks): the input reflect-padded to a multiple of 16; five
levels of two 3x3 convs (widths ``base_width`` x 1, 2, 4, 8, 16; 32 .. 512 in the paper), each conv
followed by LeakyReLU(0.2) and THEN batch norm, max-pooling between levels; each decoder level upsamples
x2 bilinearly, applies a 3x3 conv, concatenates [that, the skip] and runs two conv blocks (the last conv
without batch norm); 1x1 heads give ``n_masks`` latent images (tanh) and ``n_masks`` masks (sigmoid); the
output is mean_k [latent_k * mask_k + input * (1 - mask_k)], cropped back to the input size. Layer names
follow the authors' (``conv1_1`` .. ``conv11``, ``bn1_1`` ..) so their published checkpoints load.
The authors' code also halves images wider than 2,200 px before and doubles them after; no image here is
that wide, and that branch is left out.

Choices where the paper's use differs from the authors' script (recorded here, values in params.yaml):
the training images come from the shared paired scale-crop pipeline of every family (CyEDA resizes the
short side to 256 without cropping), and an epoch is ``pairs_per_epoch`` random pairs like the others.
``reconstructions``: the authors' step also computes both cycle reconstructions, which carry no loss but,
in train mode, move the generators' batch-norm running statistics that the frozen translator uses; the
paper preset keeps them, the mini preset leaves them out (a third of a step's time).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from darkside.gan.family import (
    BlockSpec,
    FamilySettings,
    GanBundle,
    GanSetup,
    adam,
    register_family,
    set_requires_grad,
)
from darkside.gan.losses import edge_l1, generator_adv_loss
from darkside.gan.pool import ImagePool
from darkside.gan.schedule import late_decay_factor
from darkside.settings import setting


@dataclass(frozen=True)
class CyedaSettings(FamilySettings):
    base_width: int = setting("channels of the U-Net's first level, doubled at each of the four below (paper 32)",
                              ge=1)
    n_masks: int = setting("blending masks (and latent images) of the generator's head", ge=1)
    ndf: int = setting("discriminator base filters (paper 64)", ge=1)
    n_layers_d: int = setting("stride-2 layers of the discriminator (paper 5)", ge=1)
    init: Literal["normal"] = setting("conv weights ~ N(0, init_gain), batch-norm gammas ~ N(1, init_gain)")
    init_gain: float = setting(ge=0)
    lr: float = setting("Adam lr of generators and discriminators (CyEDA 1e-4)", gt=0)
    edge_weight: float = setting("Sobel-gradient L1 between each input and its translation, per direction", ge=0)
    pool_size: int = setting("image pool of fakes the discriminators see (0 = off)", ge=0)
    reconstructions: bool = setting("compute the unused cycle reconstructions (they move batch-norm statistics)")


def _block(cin: int, cout: int, norm: bool = True) -> list[tuple[str, nn.Module]]:
    return [("conv", nn.Conv2d(cin, cout, 3, padding=1)), ("act", nn.LeakyReLU(0.2, inplace=True))] + (
        [("bn", nn.BatchNorm2d(cout))] if norm else [])


class UnetMaskGenerator(nn.Module):
    """CyEDA's U-Net with blending masks; images in [-1, 1] in and out (a convex blend, so no clamp)."""

    def __init__(self, base_width: int = 32, n_masks: int = 3) -> None:
        super().__init__()
        self.n_masks = n_masks
        w = [base_width * 2 ** i for i in range(5)]
        cin = 3
        for level in range(1, 6):                                   # encoder: conv{l}_{1,2}, bn{l}_{1,2}
            cout = w[level - 1]
            for j, c in ((1, cin), (2, cout)):
                setattr(self, f"conv{level}_{j}", nn.Conv2d(c, cout, 3, padding=1))
                setattr(self, f"bn{level}_{j}", nn.BatchNorm2d(cout))
            cin = cout
        for level in range(6, 10):                                  # decoder: deconv{l-1}, conv{l}_{1,2}
            cout = w[9 - level]
            setattr(self, f"deconv{level - 1}", nn.Conv2d(cin, cout, 3, padding=1))
            setattr(self, f"conv{level}_1", nn.Conv2d(2 * cout, cout, 3, padding=1))
            setattr(self, f"bn{level}_1", nn.BatchNorm2d(cout))
            setattr(self, f"conv{level}_2", nn.Conv2d(cout, cout, 3, padding=1))
            if level < 9:                                           # the last conv has no batch norm
                setattr(self, f"bn{level}_2", nn.BatchNorm2d(cout))
            cin = cout
        self.conv10 = nn.Conv2d(w[0], 3 * n_masks, 1)               # latent images
        self.conv11 = nn.Conv2d(w[0], n_masks, 1)                   # masks

    def _level(self, x: torch.Tensor, level: int) -> torch.Tensor:
        for j in (1, 2):
            x = F.leaky_relu(getattr(self, f"conv{level}_{j}")(x), 0.2)
            bn = getattr(self, f"bn{level}_{j}", None)
            x = bn(x) if bn is not None else x
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = (-h) % 16, (-w) % 16
        top, left = ph // 2, pw // 2
        xp = F.pad(x, (left, pw - left, top, ph - top), mode="reflect") if ph or pw else x
        skips, y = [], xp
        for level in range(1, 6):
            y = self._level(y, level)
            if level < 5:
                skips.append(y)
                y = F.max_pool2d(y, 2)
        for level in range(6, 10):
            y = F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)
            y = torch.cat([getattr(self, f"deconv{level - 1}")(y), skips.pop()], 1)
            y = self._level(y, level)
        latent = torch.tanh(self.conv10(y))
        mask = torch.sigmoid(self.conv11(y))
        out = torch.zeros_like(xp)
        for k in range(self.n_masks):
            m = mask[:, k:k + 1]
            out = out + latent[:, 3 * k:3 * k + 3] * m + xp * (1 - m)
        out = out / self.n_masks
        return out[..., top:top + h, left:left + w]


class NoNormPatchGAN(nn.Module):
    """PatchGAN without normalisation: 4x4 convs with padding 2, ``n_layers`` at stride 2 (ndf doubling,
    capped at 8 ndf), one at stride 1, then a 1-channel logit map; LeakyReLU 0.2 between; no sigmoid."""

    def __init__(self, ndf: int = 64, n_layers: int = 5, in_channels: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, stride=2, padding=2), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2 ** n, 8)
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=2 if n < n_layers else 1, padding=2),
                       nn.LeakyReLU(0.2, True)]
        layers += [nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=2)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


@register_family
class Cyeda(GanBundle):
    name = "cyeda"
    title = "CyEDA"
    Settings = CyedaSettings
    night_to_day_name = "generator_Y"
    schedule = staticmethod(late_decay_factor)
    zero_bias_init: ClassVar[bool] = False
    paper_counts_plain: ClassVar[bool] = True   # Table 8's 39.6 = 2 G + 2 D

    @classmethod
    def block_specs(cls, setup: GanSetup) -> list[BlockSpec]:
        s = setup.settings

        def gen() -> UnetMaskGenerator:
            return UnetMaskGenerator(s.base_width, s.n_masks)

        def disc() -> NoNormPatchGAN:
            return NoNormPatchGAN(s.ndf, s.n_layers_d)

        return [BlockSpec("generator_X", "generator", gen), BlockSpec("generator_Y", "generator", gen),
                BlockSpec("discriminator_X", "discriminator", disc),
                BlockSpec("discriminator_Y", "discriminator", disc)]

    def __init__(self, setup: GanSetup, device: torch.device | str = "cpu", seed: int = 0) -> None:
        super().__init__(setup, device, seed)
        self.pools = {"fake_night": ImagePool(self.settings.pool_size, seed * 2 + 1),
                      "fake_day": ImagePool(self.settings.pool_size, seed * 2 + 2)}

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c, s = self.setup.common, self.settings
        # one Adam per network equals CyEDA's one per pair: Adam's update is per parameter
        return {name: adam(self.nets[name].parameters(), s.lr, (c.beta1, c.beta2)) for name in self.roles}

    def train_step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, float]:
        s, n = self.settings, self.nets
        day, night = (t.to(self.device) for t in batch)
        g_x, g_y, d_x, d_y = n["generator_X"], n["generator_Y"], n["discriminator_X"], n["discriminator_Y"]

        set_requires_grad([d_x, d_y], False)
        fake_night, fake_day = g_x(day), g_y(night)
        if s.reconstructions:
            with torch.no_grad():
                g_y(fake_night)
                g_x(fake_day)
        adv = generator_adv_loss(d_x(fake_night)) + generator_adv_loss(d_y(fake_day))
        edge = s.edge_weight * (edge_l1(day, fake_night) + edge_l1(night, fake_day))
        loss_g = adv + edge
        self.optimise(loss_g, "generator_X", "generator_Y")

        loss_dx, loss_dy = self.pooled_discriminator_step(day, night, fake_day, fake_night)
        return {"G": float(loss_g.detach()), "G_adv": float(adv.detach()), "edge": float(edge.detach()),
                "D_X": float(loss_dx.detach()), "D_Y": float(loss_dy.detach())}
