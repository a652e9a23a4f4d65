"""CUT (contrastive unpaired translation) as gandtr ran it: one generator, one PatchGAN, PatchNCE heads.

Per step: the D step first (LSGAN on real nights against the fresh fake, no image pool), then one step of
the generator and the MLP heads F together on

    L_G = gan_weight * LSGAN(D(G(x)), 1) + 1/2 * (nce_weight * NCE(x, G(x)) + nce_identity_weight * NCE(y, G(y)))

(without identity, ``nce_identity_weight`` 0, the bracket is ``nce_weight * NCE(x, G(x))`` alone, as in
CUT's code). NCE(a, b): the encoder features of ``b`` at each layer of ``nce_layers`` (indices into the
generator's module list) are matched to those of ``a`` at ``num_patches`` random locations, the same
locations for both, through a per-layer two-layer MLP head (C -> head_dim -> head_dim, ReLU) and L2
normalisation; :func:`darkside.gan.losses.patch_nce` per layer, averaged over layers.

gandtr's "tuned variant" (the default here): plain stride-2 downs and transposed-conv ups (no antialias),
layers 4, 8, 12, 16 (first down conv, second down's norm, residual blocks 3 and 7 of nine), Kaiming init,
identity-NCE weight 10, 25 + 25 epochs of 10,000 pairs at batch 1. The named variants are official CUT
(antialiased, layers 0, 4, 8, 12, 16, Xavier init with gain 0.02, both NCE weights 1) and FastCUT
(official, NCE weight 10, no identity NCE, flip-equivariance). The heads are built eagerly from the
generator's layer widths (CUT builds them lazily on the first batch), so they are part of the parameter
count and the checkpoint from the start. Patch locations (and FastCUT's flips) come from the bundle's own
seeded generator, which the checkpoint saves, so a resumed run draws the same ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from darkside.errors import ConfigError
from darkside.gan.family import (
    BlockSpec,
    GanBundle,
    GanSetup,
    ResnetGanSettings,
    discriminator_spec,
    register_family,
    set_requires_grad,
)
from darkside.gan.losses import discriminator_loss, generator_adv_loss, patch_nce
from darkside.gan.networks import ResnetGenerator, encoder_channels
from darkside.settings import setting


@dataclass(frozen=True)
class CutSettings(ResnetGanSettings):
    variant: Literal["gandtr", "official", "fastcut"] = setting(
        "gandtr: the paper's tuned CUT; official: the CUT repository's CUT mode; fastcut: its FastCUT mode")
    antialias: bool = setting("blur-pool downs and blur ups in the generator (official CUT)")
    nce_layers: tuple[int, ...] = setting("generator modules whose outputs PatchNCE matches (encoder only)",
                                          ge=0)
    num_patches: int = setting("random locations per layer and image", ge=1)
    nce_temperature: float = setting("tau of PatchNCE", gt=0)
    head_dim: int = setting("width of the two-layer MLP head per layer", ge=1)
    gan_weight: float = setting("weight of the LSGAN term", ge=0)
    nce_weight: float = setting("weight of NCE(x, G(x))", ge=0)
    nce_identity_weight: float = setting("weight of NCE(y, G(y)) on night images (0: no identity NCE)", ge=0)
    flip_equivariance: bool = setting("FastCUT: half the steps translate the mirrored day image and mirror "
                                      "the translation's features back")

    def __post_init__(self) -> None:
        n = len(encoder_channels(self.ngf, self.n_blocks, self.antialias))
        if not self.nce_layers:
            raise ConfigError("gan.families.cut.nce_layers: at least one layer is needed")
        if bad := [i for i in self.nce_layers if i >= n]:
            raise ConfigError(f"gan.families.cut.nce_layers: layer {bad[0]} is not in the encoder (modules 0.."
                              f"{n - 1} with n_blocks {self.n_blocks}, antialias {self.antialias})")


class PatchHeads(nn.Module):
    """CUT's F: one MLP (Linear C -> d, ReLU, Linear d -> d) per NCE layer, outputs L2-normalised."""

    def __init__(self, channels: list[int], dim: int) -> None:
        super().__init__()
        self.mlps = nn.ModuleList(nn.Sequential(nn.Linear(c, dim), nn.ReLU(), nn.Linear(dim, dim)) for c in channels)

    def forward(self, feats: list[torch.Tensor], num_patches: int, ids: list[torch.Tensor] | None = None,
                rng: torch.Generator | None = None) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """(B, C, H, W) per layer -> (B, P, d) features at P locations; ``ids`` None draws the locations from
        ``rng`` (one permutation per layer, shared by the batch, as CUT) and returns them for the other side."""
        out, drawn = [], []
        for k, (f, mlp) in enumerate(zip(feats, self.mlps, strict=True)):
            flat = f.flatten(2).transpose(1, 2)                          # (B, HW, C)
            idx = ids[k] if ids is not None else torch.randperm(flat.shape[1], generator=rng)[:num_patches]
            drawn.append(idx)
            out.append(F.normalize(mlp(flat[:, idx.to(flat.device)]), dim=-1))
        return out, drawn


def _generator(s: CutSettings) -> ResnetGenerator:
    return ResnetGenerator(s.ngf, s.n_blocks, s.norm, antialias=s.antialias)


@register_family
class Cut(GanBundle):
    name = "cut"
    title = "CUT"
    Settings = CutSettings
    variants: ClassVar = {
        "official": {"antialias": True, "nce_layers": (0, 4, 8, 12, 16), "init": "xavier", "init_gain": 0.02,
                     "nce_weight": 1.0, "nce_identity_weight": 1.0, "flip_equivariance": False},
        "fastcut": {"antialias": True, "nce_layers": (0, 4, 8, 12, 16), "init": "xavier", "init_gain": 0.02,
                    "nce_weight": 10.0, "nce_identity_weight": 0.0, "flip_equivariance": True},
    }

    @classmethod
    def block_specs(cls, setup: GanSetup) -> list[BlockSpec]:
        s = setup.settings
        def heads() -> PatchHeads:
            widths = encoder_channels(s.ngf, s.n_blocks, s.antialias)
            return PatchHeads([widths[i] for i in s.nce_layers], s.head_dim)

        return [BlockSpec("generator_X", "generator", lambda: _generator(s)),
                discriminator_spec(s, "discriminator_X"), BlockSpec("heads", "head", heads)]

    def nce(self, source: torch.Tensor, translated: torch.Tensor, flipped: bool) -> torch.Tensor:
        """Mean PatchNCE over the layers between ``source`` and its translation (features of the translation
        are the queries; ``flipped``: the translation was made from the mirrored source)."""
        s, g, f = self.settings, self.nets["generator_X"], self.nets["heads"]
        feat_q = g.encode(translated, s.nce_layers)
        if flipped:
            feat_q = [torch.flip(q, [3]) for q in feat_q]
        keys, ids = f(g.encode(source, s.nce_layers), s.num_patches, rng=self.rng)
        queries, _ = f(feat_q, s.num_patches, ids)
        return torch.stack([patch_nce(q, k, s.nce_temperature) for q, k in zip(queries, keys, strict=True)]).mean()

    def train_step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, float]:
        s = self.settings
        day, night = (t.to(self.device) for t in batch)
        g, d = self.nets["generator_X"], self.nets["discriminator_X"]
        identity = s.nce_identity_weight > 0
        flipped = s.flip_equivariance and bool(torch.rand((), generator=self.rng) < 0.5)
        real = torch.cat([day, night]) if identity else day
        out = g(torch.flip(real, [3]) if flipped else real)
        fake, idt = (out[:len(day)], out[len(day):]) if identity else (out, None)

        set_requires_grad([d], True)
        loss_d = discriminator_loss(d(night), d(fake.detach()))
        self.optimise(loss_d, "discriminator_X")
        set_requires_grad([d], False)  # the G step must not leave gradients in D

        adv = s.gan_weight * generator_adv_loss(d(fake))
        nce_x = self.nce(day, fake, flipped)
        nce_y = self.nce(night, idt, flipped) if idt is not None else torch.zeros((), device=self.device)
        nce = 0.5 * (s.nce_weight * nce_x + s.nce_identity_weight * nce_y) if identity else s.nce_weight * nce_x
        loss_g = adv + nce
        self.optimise(loss_g, "generator_X", "heads")
        return {"G": float(loss_g.detach()), "G_adv": float(adv.detach()), "NCE_X": float(nce_x.detach()),
                "NCE_Y": float(nce_y.detach()), "D": float(loss_d.detach())}
