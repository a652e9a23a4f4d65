"""DRIT++ (disentangled representations for image-to-image translation) with ``--concat 0``, as its authors'
code (HsinYingLee/DRIT) trains it; written from the architecture description, no code copied.

Domains: A = day, B = night. Networks (a ``width`` of 64 and the other paper values give DRIT's layout):

* content encoder E_c, one block holding both domains' branches and the shared part: per domain a 7x7 conv
  (``width``, reflect-padded, LeakyReLU 0.01), two 3x3 stride-2 convs (reflect pad, instance norm without
  affine, ReLU; 2 and 4 ``width``), ``content_blocks`` residual blocks (reflect-padded 3x3 conv, instance norm,
  ReLU, 3x3 conv, instance norm, identity skip); then ``shared_blocks`` such blocks shared by both domains and,
  in training only, Gaussian noise of std ``content_noise`` on the content map (4 ``width`` x H/4 x W/4);
* attribute encoder E_a, both domains in one block: 7x7 conv ``attr_width``, four 4x4 stride-2 convs (2, 4, 4,
  4 ``attr_width``), reflect-padded, ReLU after each, global average pool, 1x1 conv to the ``nz``-d code
  (deterministic, concat 0);
* generator G, both domains in one block, per domain: an MLP (nz -> ``mlp_width`` -> ``mlp_width`` ->
  ``gen_blocks`` x C, ReLU between) gives one C-d vector per block; ``gen_blocks`` MisINS residual blocks
  (3x3 conv + instance norm, then two 1x1 convs with ReLU on [features, vector broadcast]: C + C -> C + C -> C,
  twice, identity skip); two up-samplers (3x3 stride-2 transposed conv, layer norm over (C, H, W) per image
  with a per-channel affine, ReLU; C/2, C/4); a 1x1 transposed conv to RGB and tanh;
* four multi-scale image discriminators (day / night, judging translations with encoded attributes, and
  day_random / night_random, judging those with random z): per scale ``d_layers`` 4x4 stride-2 convs
  (reflect pad 1, LeakyReLU 0.01, widths ``ndf`` doubling) and a 1x1 conv to one logit map; the next scale sees
  the image average-pooled (3x3, stride 2, padding 1, padding not counted); ``d_scales`` scales;
* the content discriminator: three ``content_d_kernel`` stride-2 convs (reflect pad 1), a
  ``content_d_last_kernel`` conv, LeakyReLU 0.01 after each, and a 1x1 conv to logits, all C wide.

Exact parameter counts at the paper settings (reference notes section 4.1; pinned by tests/test_gan_drit.py):
E_c 9,018,112 = 2 x 3,918,976 (c7s1 9,472; downs 73,856 and 295,168; three blocks of 1,180,160) + the shared
block 1,180,160; E_a 5,529,872 = 2 x 2,764,936; G 17,146,374 = 2 x 8,573,187 (four MisINS blocks of 1,968,128:
two 3x3 convs 590,080 each and two 1x1 pairs 262,656 + 131,328; ups 295,040 + 256 and 73,792 + 128 with the
layer-norm affine; the RGB conv 195; the MLP 2,304 + 65,792 + 263,168); each multi-scale D 8,271,171 = 3 x
2,757,057; the content D 10,683,649 (3 x 3,211,520 + 1,048,832 + 257). Every conv has a bias, instance norms
have no affine. Total 75,462,691, Table 8's 75.5 M, counted plainly (the paper ran the authors' code). The
generator file holds the day branch of E_c, the shared blocks, the night decoder and the attribute bank.

Training step (DRIT's ``d_iter`` loop): the iteration counter restarts each epoch (DRIT's ``it``); iteration
``it`` of an epoch of n steps only updates the content discriminator if ``(it + 1) % d_iter != 0`` and
``it < n - 2`` (DRIT also runs the full update on an epoch's last two iterations); otherwise the full update:
one forward, the four image discriminators, the content discriminator, then the encoders and generators.
The batch is split into halves: the first ``B // 2`` images of each domain are "encoded" (their content and
attribute codes are used), the rest are the real images the random-z discriminators see (at DRIT's batch 2:
one and one, as its ``half_size = 1``). The forward: G_night(c_day, a_night) and G_day(c_night, a_day) (cross
translations), G_day(c_day, a_day) and G_night(c_night, a_night) (self-reconstructions), both decoders on the
encoded content with z and z2 ~ N(0, I) (random branches); the cross translations are encoded again and
translated back (cross-cycle); E_a encodes the z translations (latent regression). Losses (vanilla GAN, BCE on
logits, summed over scales): D: BCE(D(real), 1) + BCE(D(fake), 0) per image discriminator (the random-z ones
see both z and z2 fakes, each against the real "random" half); content D: day content labelled 0, night 1,
its gradient norm clipped to ``content_grad_clip``, lr / ``content_lr_divisor``. E and G, first update (E_c,
E_a, G): image GAN on the cross translations + content GAN (BCE of the content D towards 0.5 for both
contents) + ``cross_cycle_weight`` x L1 of the cycle + ``self_recon_weight`` x L1 of the self-reconstructions
+ ``attr_l2_weight`` x mean a^2 + ``content_l2_weight`` x mean c^2, per domain. Second update (E_c and G
only): image GAN of the random-z translations (z and z2) + ``latent_weight`` x mean |E_a(G(c, z)) - z| per
domain + ``mode_seeking_weight`` x 1 / (mean |G(c, z2) - G(c, z)| / mean |z2 - z| + 1e-5) per direction.
Adam (the family's ``lr``, betas from ``gan.common``, ``weight_decay``) for every network; conv weights
N(0, ``init_gain``) with PyTorch's default biases, the MLP's linear layers keep PyTorch's default init
(DRIT's ``gaussian_weights_init`` only touches classes named Conv*), layer-norm gammas 1 and betas 0.

Values the sources leave unstated or that had to be decided (and why):

* DRIT's second update back-propagates a graph built before the first update's optimiser steps (its old
  PyTorch updated ``p.data`` behind autograd's back, mixing pre- and post-step weights). Here both losses come
  from the same forward: the second loss's gradients for E_c and G are taken before the first step, and then
  applied as a second Adam step of E_c and G, so E_c and G take two Adam steps per full iteration, as in DRIT.
* DRIT's ``LeakyReLUConv2d`` tests ``'norm' == 'Instance'`` (a string literal), so its content discriminator
  has no instance norm despite asking for one; it is built without, as the authors' code ran (the count is
  unaffected: instance norm has no affine).
* Sigmoid + BCE is computed as BCE with logits (the same loss, numerically stable).
* The content discriminator's kernels are settings (paper 7 and 4): at the mini preset's 64 px crop the 16 x 16
  content map is too small for three 7x7 stride-2 convs; padding stays 1 as in DRIT. Its width is the content
  map's (4 ``width``; DRIT's hard-coded 256). ``mlp_width``: DRIT's hard-coded 256; ``nz`` is also the MLP's
  input (DRIT hard-codes 8 = nz).
* Learning rate: DRIT keeps the base rate for ``n_ep_decay`` epochs and then factor 1 - (e - n_ep_decay) /
  (n_ep - n_ep_decay + 1) for 0-based epoch e (:func:`drit_factor`; 600 + 600 of its 1,200 epochs, decay from
  half way). The paper preset's 300 epochs (Table 8) are 150 + 150 with the same rule; an epoch is 10,000 random
  pairs like every family here (DRIT's epoch is one pass over its dataset; DRIT's resize 256 / crop 216 / flip
  is replaced by the shared paired scale-crop pipeline).
* Random draws in training (the content noise, z and z2) come from the bundle's checkpointed ``self.rng`` on
  the CPU, not the global RNG: train_gan does not seed the global RNG for a fresh run, so global draws would make
  epoch 0 (and a resumed run's bytes) depend on the process.
* The image pool is not used (DRIT has none). A batch needs at least two images (an encoded and a random half).
* Translator (``translate_attribute``): the day image's content (eval mode: no noise) decoded by the night
  generator with a night attribute. "night-image" (default): after training, :meth:`Drit.prepare_translator`
  encodes every training night image (its centre square at the crop size) into a bank of attribute codes saved
  in the generator file; each anchor uses the code of one bank entry drawn with a generator seeded by
  :func:`darkside.gan.family.input_seeds` (a function of the anchor alone). "random": z ~ N(0, I), seeded the
  same way. Before the bank exists (the per-epoch sample grids) "night-image" uses the seeded random z.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from darkside.errors import ConfigError
from darkside.gan.family import (
    BlockSpec,
    FamilySettings,
    GanBundle,
    GanSetup,
    adam,
    input_seeds,
    register_family,
    set_requires_grad,
)
from darkside.gan.losses import l1
from darkside.gan.networks import ResnetBlock
from darkside.settings import setting

DAY, NIGHT = "day", "night"


@dataclass(frozen=True)
class DritSettings(FamilySettings):
    width: int = setting("content encoder's first conv width; its downs give 2 and 4 x (paper 64)", ge=1)
    content_blocks: int = setting("residual blocks of each domain's content encoder (paper 3)", ge=0)
    shared_blocks: int = setting("residual blocks shared by both content encoders (paper 1)", ge=0)
    content_noise: float = setting("std of the Gaussian noise on the content map in training (paper 1)", ge=0)
    attr_width: int = setting("attribute encoder's first conv width; then 2, 4, 4, 4 x (paper 64)", ge=1)
    nz: int = setting("attribute code size (paper 8)", ge=1)
    mlp_width: int = setting("hidden width of the generator's attribute MLP (paper 256)", ge=1)
    gen_blocks: int = setting("MisINS residual blocks of each generator (paper 4)", ge=1)
    ndf: int = setting("image discriminators' first width, doubled per layer (paper 64)", ge=1)
    d_layers: int = setting("stride-2 conv layers per discriminator scale (paper 4)", ge=1)
    d_scales: int = setting("scales of each multi-scale image discriminator (paper 3)", ge=1)
    content_d_kernel: int = setting("kernel of the content discriminator's three stride-2 convs (paper 7)", ge=1)
    content_d_last_kernel: int = setting("kernel of the content discriminator's last conv (paper 4)", ge=1)
    init: Literal["normal"] = setting("conv weights ~ N(0, init_gain), default biases; MLP keeps PyTorch's init")
    init_gain: float = setting("std of the conv weights (paper 0.02)", ge=0)
    lr: float = setting("Adam lr of encoders, generators and image discriminators (DRIT 1e-4)", gt=0)
    content_lr_divisor: float = setting("the content discriminator's lr is lr / this (DRIT 2.5)", gt=0)
    content_grad_clip: float = setting("gradient-norm clip of the content discriminator (DRIT 5)", gt=0)
    weight_decay: float = setting("Adam weight decay of every network (DRIT 1e-4)", ge=0)
    d_iter: int = setting("one full update every d_iter iterations, content D only in between (DRIT 3)", ge=1)
    cross_cycle_weight: float = setting("L1 of the cross-cycle reconstructions (paper 10)", ge=0)
    self_recon_weight: float = setting("L1 of the self-reconstructions (paper 10)", ge=0)
    latent_weight: float = setting("latent regression L1 |E_a(G(c, z)) - z| (paper 10)", ge=0)
    attr_l2_weight: float = setting("mean square of the attribute codes (paper 0.01)", ge=0)
    content_l2_weight: float = setting("mean square of the content maps (paper 0.01)", ge=0)
    mode_seeking_weight: float = setting("mode-seeking loss (paper 1; 0 = DRIT's --no_ms, no second z branch)",
                                         ge=0)
    translate_attribute: Literal["night-image", "random"] = setting(
        "translator's night attribute: a training night image's code, or z ~ N(0, I); drawn per anchor")

    def __post_init__(self) -> None:
        if self.batch_size < 2:
            raise ConfigError("gan.families.drit.batch_size: DRIT++ needs at least 2 (an encoded and a random half)")


def drit_factor(epoch: int, n_constant: int, n_decay: int) -> float:
    """DRIT's ``lambda`` rule: 0-based ``epoch`` trains at 1 - max(0, epoch - n_constant) / (n_decay + 1)
    (n_ep_decay = n_constant, n_ep = n_constant + n_decay: epoch n_constant still at the base rate)."""
    return 1.0 - max(0, epoch - n_constant) / float(n_decay + 1)


def check_crop(s: DritSettings, crop: int) -> None:
    """Raise a ConfigError if a training crop of side ``crop`` is too small for a layer (a reflect pad must be
    smaller than its input, a kernel no larger than the padded input) or not a multiple of 4."""
    where = "gan.families.drit"
    if crop % 4 or crop < 4:
        raise ConfigError(f"{where}: DRIT++ needs a training crop that is a multiple of 4, not {crop}")

    def conv(side: int, kernel: int, pad: int, stride: int, what: str) -> int:
        if (pad and side <= pad) or side + 2 * pad < kernel:
            raise ConfigError(f"{where}: the {what} sees {side} px at crop {crop}, too small for its "
                              f"{kernel}x{kernel} conv")
        return (side + 2 * pad - kernel) // stride + 1

    content = conv(conv(conv(crop, 7, 3, 1, "content encoder"), 3, 1, 2, "content encoder"), 3, 1, 2,
                   "content encoder")
    side = content
    for _ in range(3):
        side = conv(side, s.content_d_kernel, 1, 2, "content discriminator")
    conv(side, s.content_d_last_kernel, 0, 1, "content discriminator")
    side = conv(crop, 7, 3, 1, "attribute encoder")
    for _ in range(4):
        side = conv(side, 4, 1, 2, "attribute encoder")
    scale = crop
    for k in range(s.d_scales):
        side = scale
        for _ in range(s.d_layers):
            side = conv(side, 4, 1, 2, f"image discriminator (scale {k + 1})")
        scale = (scale - 1) // 2 + 1


# --- losses ------------------------------------------------------------------------------------------

def bce_logits(pred: torch.Tensor, target: float) -> torch.Tensor:
    """Mean BCE of sigmoid(pred) against the constant ``target`` (DRIT's sigmoid + BCE, on logits)."""
    return F.binary_cross_entropy_with_logits(pred, torch.full_like(pred, target))


def multiscale_d_loss(real: list[torch.Tensor], fake: list[torch.Tensor]) -> torch.Tensor:
    """Vanilla GAN loss of a multi-scale discriminator: sum over scales of BCE(real, 1) + BCE(fake, 0)."""
    return torch.stack([bce_logits(r, 1.0) + bce_logits(f, 0.0) for r, f in zip(real, fake, strict=True)]).sum()


def multiscale_g_loss(fake: list[torch.Tensor]) -> torch.Tensor:
    """The generator's side: sum over scales of BCE(D(fake), 1)."""
    return torch.stack([bce_logits(f, 1.0) for f in fake]).sum()


def split_scales(outs: list[torch.Tensor], sizes: list[int]) -> list[list[torch.Tensor]]:
    """The per-scale logits of a batched discriminator call, split back into its parts (batch ``sizes``)."""
    per_scale = [torch.split(o, sizes) for o in outs]
    return [[chunks[k] for chunks in per_scale] for k in range(len(sizes))]


def l2_mean(x: torch.Tensor) -> torch.Tensor:
    """DRIT's ``_l2_regularize``: the mean square of a code."""
    return x.pow(2).mean()


def mode_seeking(fake1: torch.Tensor, fake2: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor,
                 eps: float = 1e-5) -> torch.Tensor:
    """MSGAN's term: 1 / (mean |fake2 - fake1| / mean |z2 - z1| + eps); small when different z give
    different images."""
    return 1.0 / (l1(fake2, fake1) / l1(z2, z1) + eps)


# --- networks ----------------------------------------------------------------------------------------

def _conv(cin: int, cout: int, kernel: int, stride: int, pad: int) -> list[nn.Module]:
    # DRIT pads by reflection and convolves unpadded, every conv with a bias
    return [nn.ReflectionPad2d(pad), nn.Conv2d(cin, cout, kernel, stride)] if pad else [
        nn.Conv2d(cin, cout, kernel, stride)]


class ContentBranch(nn.Module):
    """One domain's content encoder: c7s1 (LeakyReLU 0.01), two stride-2 IN-ReLU downs, residual blocks (DRIT's
    are CycleGAN's with instance norm: reflect-padded biased 3x3 convs, no norm affine)."""

    def __init__(self, width: int, n_blocks: int) -> None:
        super().__init__()
        self.model = nn.Sequential(
            *_conv(3, width, 7, 1, 3), nn.LeakyReLU(0.01, True),
            *_conv(width, 2 * width, 3, 2, 1), nn.InstanceNorm2d(2 * width), nn.ReLU(True),
            *_conv(2 * width, 4 * width, 3, 2, 1), nn.InstanceNorm2d(4 * width), nn.ReLU(True),
            *[ResnetBlock(4 * width, "instance") for _ in range(n_blocks)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class ContentEncoder(nn.Module):
    """E_c: both domains' branches, the shared blocks and (training only) Gaussian noise on the content."""

    def __init__(self, width: int, n_blocks: int, n_shared: int, noise: float) -> None:
        super().__init__()
        self.day, self.night = ContentBranch(width, n_blocks), ContentBranch(width, n_blocks)
        self.shared = nn.Sequential(*[ResnetBlock(4 * width, "instance") for _ in range(n_shared)])
        self.noise = noise

    def forward(self, x: torch.Tensor, domain: str, rng: torch.Generator | None = None) -> torch.Tensor:
        """The content map of ``x`` from the ``domain`` branch; in training plus noise drawn from ``rng`` (the
        bundle's checkpointed generator, on the CPU so that every device draws the same) or the global RNG."""
        c = self.shared(getattr(self, domain)(x))
        if self.training and self.noise > 0:
            eps = torch.randn(c.shape, generator=rng).to(c.device) if rng is not None else torch.randn_like(c)
            c = c + self.noise * eps
        return c


class AttributeBranch(nn.Module):
    """One domain's attribute encoder (concat 0): convs with ReLU, global average pool, 1x1 conv to nz."""

    def __init__(self, width: int, nz: int) -> None:
        super().__init__()
        w = [width, 2 * width, 4 * width, 4 * width, 4 * width]
        layers: list[nn.Module] = [*_conv(3, w[0], 7, 1, 3), nn.ReLU(True)]
        for cin, cout in itertools.pairwise(w):
            layers += [*_conv(cin, cout, 4, 2, 1), nn.ReLU(True)]
        self.model = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Conv2d(w[-1], nz, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).flatten(1)


class AttributeEncoder(nn.Module):
    def __init__(self, width: int, nz: int) -> None:
        super().__init__()
        self.day, self.night = AttributeBranch(width, nz), AttributeBranch(width, nz)

    def forward(self, x: torch.Tensor, domain: str) -> torch.Tensor:
        return getattr(self, domain)(x)


class LayerNorm(nn.Module):
    """Layer norm over (C, H, W) of each image with a per-channel scale and shift (MUNIT's, as DRIT uses)."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape[1:]
        return F.layer_norm(x, shape, self.weight[:, None, None].expand(shape),
                            self.bias[:, None, None].expand(shape), self.eps)


class MisINSBlock(nn.Module):
    """Residual block modulated by a C-d vector: (conv3x3 + IN, then 1x1 convs on [features, vector]) twice."""

    def __init__(self, dim: int, extra: int) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(*_conv(dim, dim, 3, 1, 1), nn.InstanceNorm2d(dim))
        self.conv2 = nn.Sequential(*_conv(dim, dim, 3, 1, 1), nn.InstanceNorm2d(dim))
        self.mix1 = nn.Sequential(nn.Conv2d(dim + extra, dim + extra, 1), nn.ReLU(),
                                  nn.Conv2d(dim + extra, dim, 1), nn.ReLU())
        self.mix2 = nn.Sequential(nn.Conv2d(dim + extra, dim + extra, 1), nn.ReLU(),
                                  nn.Conv2d(dim + extra, dim, 1), nn.ReLU())

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        zmap = z[:, :, None, None].expand(-1, -1, *x.shape[2:])
        y = self.mix1(torch.cat([self.conv1(x), zmap], 1))
        y = self.mix2(torch.cat([self.conv2(y), zmap], 1))
        return x + y


class Decoder(nn.Module):
    """One domain's generator: attribute MLP, MisINS blocks, two layer-norm up-samplers, 1x1 to RGB, tanh."""

    def __init__(self, channels: int, nz: int, mlp_width: int, n_blocks: int) -> None:
        super().__init__()
        self.channels = channels
        self.mlp = nn.Sequential(nn.Linear(nz, mlp_width), nn.ReLU(True), nn.Linear(mlp_width, mlp_width),
                                 nn.ReLU(True), nn.Linear(mlp_width, n_blocks * channels))
        self.blocks = nn.ModuleList(MisINSBlock(channels, channels) for _ in range(n_blocks))
        c = channels
        self.up = nn.Sequential(
            nn.ConvTranspose2d(c, c // 2, 3, 2, 1, output_padding=1), LayerNorm(c // 2), nn.ReLU(True),
            nn.ConvTranspose2d(c // 2, c // 4, 3, 2, 1, output_padding=1), LayerNorm(c // 4), nn.ReLU(True),
            nn.ConvTranspose2d(c // 4, 3, 1), nn.Tanh())

    def forward(self, content: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        x = content
        for block, zk in zip(self.blocks, torch.split(self.mlp(z), self.channels, dim=1), strict=True):
            x = block(x, zk)
        return self.up(x)


class Generator(nn.Module):
    def __init__(self, channels: int, nz: int, mlp_width: int, n_blocks: int) -> None:
        super().__init__()
        self.day = Decoder(channels, nz, mlp_width, n_blocks)
        self.night = Decoder(channels, nz, mlp_width, n_blocks)

    def forward(self, content: torch.Tensor, z: torch.Tensor, domain: str) -> torch.Tensor:
        return getattr(self, domain)(content, z)


class MultiScaleDiscriminator(nn.Module):
    """``n_scales`` no-norm PatchGANs of ``n_layers`` 4x4 stride-2 convs, each on a 2x average-pooled image."""

    def __init__(self, ndf: int, n_layers: int, n_scales: int) -> None:
        super().__init__()

        def net() -> nn.Sequential:
            layers: list[nn.Module] = []
            cin, cout = 3, ndf
            for _ in range(n_layers):
                layers += [*_conv(cin, cout, 4, 2, 1), nn.LeakyReLU(0.01, True)]
                cin, cout = cout, cout * 2
            return nn.Sequential(*layers, nn.Conv2d(cin, 1, 1))

        self.scales = nn.ModuleList(net() for _ in range(n_scales))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for k, d in enumerate(self.scales):
            if k:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            outs.append(d(x))
        return outs


class ContentDiscriminator(nn.Module):
    """Which domain a content map came from: three stride-2 convs, one more conv, LeakyReLU 0.01, 1x1 logits
    (no norm: DRIT's instance norm here is switched off by a typo in its code)."""

    def __init__(self, channels: int, kernel: int, last_kernel: int) -> None:
        super().__init__()
        c = channels
        layers: list[nn.Module] = []
        for _ in range(3):
            layers += [*_conv(c, c, kernel, 2, 1), nn.LeakyReLU(0.01, True)]
        self.model = nn.Sequential(*layers, nn.Conv2d(c, c, last_kernel), nn.LeakyReLU(0.01, True),
                                   nn.Conv2d(c, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).flatten(1)   # (B, logits per image)


class DritTranslator(nn.Module):
    """Day -> night: the day content (no noise) decoded by the night generator with an attribute drawn per
    image from a generator seeded by its pixels (:func:`input_seeds`): a bank entry ("night-image", bank not
    empty) or z ~ N(0, I)."""

    def __init__(self, content: ContentBranch, shared: nn.Sequential, decoder: Decoder, nz: int, mode: str,
                 bank: torch.Tensor) -> None:
        super().__init__()
        self.content, self.shared, self.decoder = content, shared, decoder
        self.nz, self.mode = nz, mode
        self.register_buffer("bank", bank)

    def attributes(self, x: torch.Tensor) -> torch.Tensor:
        codes = []
        for seed in input_seeds(x):
            g = torch.Generator().manual_seed(seed)
            if self.mode == "night-image" and len(self.bank):
                codes.append(self.bank[int(torch.randint(len(self.bank), (1,), generator=g))])
            else:
                codes.append(torch.randn(self.nz, generator=g).to(x.device))
        return torch.stack(codes).to(x.device, x.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.shared(self.content(x)), self.attributes(x))


def _translator(s: DritSettings, bank_size: int) -> DritTranslator:
    return DritTranslator(ContentBranch(s.width, s.content_blocks),
                          nn.Sequential(*[ResnetBlock(4 * s.width, "instance") for _ in range(s.shared_blocks)]),
                          Decoder(4 * s.width, s.nz, s.mlp_width, s.gen_blocks), s.nz, s.translate_attribute,
                          torch.zeros(bank_size, s.nz))


# --- the family --------------------------------------------------------------------------------------

IMAGE_DS = ("discriminator_day", "discriminator_night", "discriminator_day_random", "discriminator_night_random")
EG = ("content_encoder", "attribute_encoder", "generator")


@register_family
class Drit(GanBundle):
    name = "drit"
    title = "DRIT++"
    Settings = DritSettings
    generator_name: ClassVar[str] = "generator"
    schedule = staticmethod(drit_factor)
    zero_bias_init: ClassVar[bool] = False      # DRIT initialises conv weights only
    paper_counts_plain: ClassVar[bool] = True   # Table 8's 75.5 = every network once

    @classmethod
    def block_specs(cls, setup: GanSetup) -> list[BlockSpec]:
        s = setup.settings
        c = 4 * s.width

        def disc() -> MultiScaleDiscriminator:
            return MultiScaleDiscriminator(s.ndf, s.d_layers, s.d_scales)

        return [BlockSpec("content_encoder", "generator",
                          lambda: ContentEncoder(s.width, s.content_blocks, s.shared_blocks, s.content_noise)),
                BlockSpec("attribute_encoder", "generator", lambda: AttributeEncoder(s.attr_width, s.nz)),
                BlockSpec("generator", "generator", lambda: Generator(c, s.nz, s.mlp_width, s.gen_blocks)),
                *[BlockSpec(n, "discriminator", disc) for n in IMAGE_DS],
                BlockSpec("discriminator_content", "discriminator",
                          lambda: ContentDiscriminator(c, s.content_d_kernel, s.content_d_last_kernel))]

    def __init__(self, setup: GanSetup, device: torch.device | str = "cpu", seed: int = 0) -> None:
        check_crop(setup.settings, setup.common.crop)
        super().__init__(setup, device, seed)
        # the base class drew N(0, gain) for the MLPs' linear layers too; DRIT leaves them at PyTorch's default
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + 1)
            for dec in (self.nets["generator"].day, self.nets["generator"].night):
                for m in dec.mlp:
                    if isinstance(m, nn.Linear):
                        m.reset_parameters()
        self.iteration = 0   # DRIT's ``it``: the iteration within the epoch
        self.bank = torch.zeros(0, self.settings.nz, device=self.device)

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c, s = self.setup.common, self.settings
        lrs = {n: s.lr for n in self.roles} | {"discriminator_content": s.lr / s.content_lr_divisor}
        return {n: adam(self.nets[n].parameters(), lrs[n], (c.beta1, c.beta2), s.weight_decay) for n in self.roles}

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        self.iteration = 0

    def training_state(self) -> dict[str, Any]:
        return {**super().training_state(), "iteration": self.iteration}

    def load_training_state(self, state: Mapping[str, Any]) -> None:
        super().load_training_state(state)
        self.iteration = int(state["iteration"])

    def full_update(self, it: int) -> bool:
        """DRIT's rule: the full update on every d_iter-th iteration and on an epoch's last two."""
        s = self.settings
        return (it + 1) % s.d_iter == 0 or it >= s.pairs_per_epoch // s.batch_size - 2

    def content_d_step(self, c_day: torch.Tensor, c_night: torch.Tensor) -> torch.Tensor:
        """One step of the content discriminator: day content labelled 0, night 1; gradient norm clipped."""
        d = self.nets["discriminator_content"]
        set_requires_grad([d], True)
        pred_day, pred_night = torch.split(d(torch.cat([c_day, c_night]).detach()), [len(c_day), len(c_night)])
        loss = bce_logits(pred_day, 0.0) + bce_logits(pred_night, 1.0)
        opt = self.optimizers["discriminator_content"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(d.parameters(), self.settings.content_grad_clip)
        opt.step()
        return loss

    def train_step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, float]:
        s, n = self.settings, self.nets
        day, night = (t.to(self.device) for t in batch)
        half = day.shape[0] // 2
        day_enc, day_rand, night_enc, night_rand = day[:half], day[half:], night[:half], night[half:]
        e_c, e_a, gen = n["content_encoder"], n["attribute_encoder"], n["generator"]
        it, self.iteration = self.iteration, self.iteration + 1

        if not self.full_update(it):
            with torch.no_grad():  # the content D sees detached codes: no graph through E_c needed
                c_day, c_night = e_c(day_enc, DAY, self.rng), e_c(night_enc, NIGHT, self.rng)
            return {"D_content": float(self.content_d_step(c_day, c_night).detach())}

        ms = s.mode_seeking_weight > 0
        c_day, c_night = e_c(day_enc, DAY, self.rng), e_c(night_enc, NIGHT, self.rng)
        a_day, a_night = e_a(day_enc, DAY), e_a(night_enc, NIGHT)
        # every draw from the bundle's own generator (checkpointed; train_gan does not seed the global RNG)
        z1 = torch.randn(half, s.nz, generator=self.rng).to(self.device)
        zs = [z1, torch.randn(half, s.nz, generator=self.rng).to(self.device)] if ms else [z1]
        # one batched decoder call per domain: [cross, self, random z (, z2)], as DRIT
        to_day = gen(torch.cat([c_night, c_day, *[c_night] * len(zs)]), torch.cat([a_day, a_day, *zs]), DAY)
        to_night = gen(torch.cat([c_day, c_night, *[c_day] * len(zs)]), torch.cat([a_night, a_night, *zs]), NIGHT)
        fake_day, self_day, *rand_day = torch.split(to_day, half)
        fake_night, self_night, *rand_night = torch.split(to_night, half)
        # cross-cycle: encode the translations and swap back
        c_night_rec, c_day_rec = e_c(fake_day, DAY, self.rng), e_c(fake_night, NIGHT, self.rng)
        # one attribute-encoder call per domain: [cross translation (cycle), random-z translation (regression)]
        a_day_rec, z_day_rec = torch.split(e_a(torch.cat([fake_day, rand_day[0]]), DAY), half)
        a_night_rec, z_night_rec = torch.split(e_a(torch.cat([fake_night, rand_night[0]]), NIGHT), half)
        day_cycle, night_cycle = gen(c_day_rec, a_day_rec, DAY), gen(c_night_rec, a_night_rec, NIGHT)

        # discriminators (the random-z ones see the z and z2 fakes against the real "random" half)
        d_day, d_night, d_day_r, d_night_r = (n[k] for k in IMAGE_DS)
        set_requires_grad([n[k] for k in IMAGE_DS], True)
        loss_d = {}
        for name, real, fakes in zip(IMAGE_DS, (day_enc, night_enc, day_rand, night_rand),
                                     ([fake_day], [fake_night], rand_day, rand_night), strict=True):
            # real and fakes in one batch (no batch statistics in D: the same logits as separate calls)
            pred_real, *pred_fakes = split_scales(n[name](torch.cat([real, *fakes]).detach()),
                                                  [len(real), *[len(f) for f in fakes]])
            loss = torch.stack([multiscale_d_loss(pred_real, f) for f in pred_fakes]).sum()
            self.optimise(loss, name)
            loss_d[name.replace("discriminator", "D")] = loss
        loss_dc = self.content_d_step(c_day, c_night)

        # encoders and generators
        set_requires_grad([n[k] for k in (*IMAGE_DS, "discriminator_content")], False)
        d_c = n["discriminator_content"]
        adv = multiscale_g_loss(d_day(fake_day)) + multiscale_g_loss(d_night(fake_night))
        adv_content = 2 * bce_logits(d_c(torch.cat([c_day, c_night])), 0.5)  # = the sum of the two domains' means
        cycle = s.cross_cycle_weight * (l1(day_cycle, day_enc) + l1(night_cycle, night_enc))
        recon = s.self_recon_weight * (l1(self_day, day_enc) + l1(self_night, night_enc))
        reg = (s.attr_l2_weight * (l2_mean(a_day) + l2_mean(a_night))
               + s.content_l2_weight * (l2_mean(c_day) + l2_mean(c_night)))
        loss_eg = adv + adv_content + cycle + recon + reg

        sizes = [half] * len(zs)
        adv_random = torch.stack([multiscale_g_loss(f) for d, fakes in ((d_day_r, rand_day), (d_night_r, rand_night))
                                  for f in split_scales(d(torch.cat(fakes)), sizes)]).sum()
        latent = s.latent_weight * (l1(z_day_rec, z1) + l1(z_night_rec, z1))
        seek = (s.mode_seeking_weight * (mode_seeking(rand_night[0], rand_night[1], zs[0], zs[1])
                                         + mode_seeking(rand_day[0], rand_day[1], zs[0], zs[1]))
                if ms else torch.zeros((), device=self.device))
        loss_alone = adv_random + latent + seek
        # DRIT's second update (E_c and G alone): its gradients at the same forward, taken before any step
        alone_params = [p for k in ("content_encoder", "generator") for p in n[k].parameters()]
        grads = torch.autograd.grad(loss_alone, alone_params, retain_graph=True, allow_unused=True)
        self.optimise(loss_eg, *EG)
        for p, g in zip(alone_params, grads, strict=True):
            p.grad = g if g is not None else torch.zeros_like(p)  # DRIT's zeroed grads: Adam still steps
        for k in ("content_encoder", "generator"):
            self.optimizers[k].step()

        out = {k: float(v.detach()) for k, v in loss_d.items()}
        out |= {"D_content": float(loss_dc.detach()), "G": float(loss_eg.detach()), "G_adv": float(adv.detach()),
                "G_content": float(adv_content.detach()), "cross_cycle": float(cycle.detach()),
                "self_recon": float(recon.detach()), "G_random": float(loss_alone.detach()),
                "latent": float(latent.detach()), "mode_seeking": float(seek.detach())}
        return out

    # -- the translator -----------------------------------------------------------------------------
    def generator(self) -> nn.Module:
        """The day->night composite on the bundle's own networks (day content, night decoder, the bank)."""
        e_c = self.nets["content_encoder"]
        return DritTranslator(e_c.day, e_c.shared, self.nets["generator"].night, self.settings.nz,
                              self.settings.translate_attribute, self.bank)

    @classmethod
    def translator_net(cls, setup: GanSetup, state_dict: Mapping[str, torch.Tensor]) -> nn.Module:
        return _translator(setup.settings, int(state_dict["bank"].shape[0]))

    def prepare_translator(self, nights: Iterable[torch.Tensor]) -> None:
        """"night-image": the attribute code of every training night image becomes the translator's bank."""
        if self.settings.translate_attribute != "night-image":
            return
        e_a = self.nets["attribute_encoder"]
        was_training = e_a.training
        e_a.eval()
        with torch.no_grad():
            codes = [e_a(x.to(self.device), NIGHT) for x in nights]
        e_a.train(was_training)
        self.bank = torch.cat(codes) if codes else torch.zeros(0, self.settings.nz, device=self.device)
