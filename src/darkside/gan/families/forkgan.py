"""ForkGAN (Zheng et al., ECCV 2020) as its authors' TensorFlow 1.14 code trains it; DaCo's translator.

Written from the architecture description in the reference notes (§3.10) and from reading the official
graph for facts (zhengziqiang/ForkGAN carries no licence: nothing of it is copied). Day is TF's domain A,
night its domain B; ``generator_X`` is TF's ``generatorA2B`` (day->night), ``generator_Y`` its ``B2A``.

Networks (every conv without bias, every instance norm affine, TF "SAME" zero padding with the odd pixel
after, as :class:`TFConv2d`; only the 7x7 convs are reflect-padded):

* fork generator, per direction: a shared encoder (7x7 conv ``ngf``, 3x3 stride-2 convs to 2 and 4 ``ngf``,
  each IN + ReLU, ``encoder_blocks`` residual blocks of conv-IN-ReLU-conv-IN) whose output is the latent;
  a translation decoder (``decoder_blocks`` residual blocks, two 3x3 stride-2 transposed convs to 2 and 1
  ``ngf`` with IN + ReLU, 7x7 conv to RGB, tanh) and a reconstruction decoder of the same shape that gets
  Gaussian noise (std ``noise_std``) added to the latent and again after its first residual block.
* domain classifier on the latent (one, shared by both generators): three 4x4 stride-2 conv-IN-LReLU(0.2)
  layers (widths 4, 2, 2 ``ndf``), a 4x4 conv to 2 logits, averaged over space.
* multi-scale discriminators (:class:`MultiScaleDiscriminator`), ``n_discriminators`` independent ones per
  role and domain for three roles: translations (``discriminator_*``), reconstructions of real images
  (``reconstruction_*``) and "refinements", the reconstruction decoder's output on a translation
  (``refine_*``); X scores nights, Y days. TF: 2 x 3 x 2 = 12.

One step (the TF order; one Adam per network at ``gan.common``'s lr and betas, which is TF's one Adam per
group, Adam being per parameter):

1. forward: fake_night, rec_day, z_day = G_X(day); cyc_day, refine_night, z_fake_night = G_Y(fake_night);
   fake_day, rec_night, z_night = G_Y(night); cyc_night, refine_day, z_fake_day = G_X(fake_day).
2. G step (both generators):  L_G = adv + cycle_weight * (|day - cyc_day| + |night - cyc_night|)
   + reconstruction_weight * (|rec_day - day| + |rec_night - night|) + perceptual_weight * perc
   + classifier_weight * cls_G, where adv = sum over the n_discriminators of 0.5 * (LS(D_Y(fake_day)) +
   LS(D_X(fake_night))) + the same for the refine and the reconstruction discriminators, LS being LSGAN to
   1 averaged over the scales (:func:`multiscale_lsgan`); perc = :func:`latent_consistency` (z_day,
   z_fake_night) + (z_night, z_fake_day); cls_G = 0.5 * (BCE(C(z_fake_day), day) + BCE(C(z_fake_night),
   night)) (:func:`domain_bce`): each generator wants the latent of a translated image classified as the
   latent of a real image of that domain, which makes the latent domain-agnostic.
3. classifier step (the same forward, so it equals TF's simultaneous update): 0.25 * (BCE(C(z_day), day)
   + BCE(C(z_night), night) + BCE(C(z_fake_night), day) + BCE(C(z_fake_day), night)).
4. D step of every discriminator on real images against the pooled fakes of its role and domain:
   0.5 * (LS(D(real), 1) + LS(D(pooled), 0)), both domains summed per discriminator index (real and pooled
   images pass as one batch: instance norm is per image, so this equals two passes at half the calls).

The translator used downstream (:meth:`ForkGan.generator`, the generator file) is the translation branch of
G_X (encoder + translation decoder): it draws no noise, so it is deterministic in either mode.

Values the TF original leaves unstated or that differ here, and the choices made:

* schedule: TF trains ``--epoch 20`` with lr constant for ``--epoch_step 10`` and then lr * (20 - e) / 10 in
  0-based epoch e, which is exactly :func:`darkside.gan.schedule.late_decay_factor` with 10 + 10 (the last
  epoch at 0.1); its BDD100K script runs 10 epochs without decay. An epoch is ``pairs_per_epoch`` random
  pairs like every family here (TF: min(|A|, |B|) shuffled images).
* data: TF resizes to 286 x 572 and crops 256 x 512 with a random flip; here the shared square scale-crop
  pipeline of every family (``gan.common.crop``).
* pools: TF has ONE 50-slot pool of (A, B) pairs queried in turn by translations, reconstructions and
  refinements, so a stored image of one role can be handed to another role's discriminator, and A and B
  share one coin flip; that looks unintended. Here six :class:`~darkside.gan.pool.ImagePool` of
  ``pool_size`` each, one per role and domain (all six discriminators of a role/domain see the same
  pooled batch, as in TF).
* classifier averaging: TF averages the logits over batch and space (one prediction per batch); here per
  image over space, then the BCE is averaged over the batch: identical at batch 1.
* the latent fed to the classifier and the perceptual loss is the noisy one (TF's generator returns the
  latent after the reconstruction noise was added); the translation decoder gets the clean latent.
* multi-scale input: TF's legacy ``resize_bicubic`` to H / 2^s samples input pixel 2^s * i exactly (the cubic
  kernel is 1 at integer offsets), so scale s is the stride-2^s subsampling (:func:`subsample`).
* discriminator structure (TF ``dis_down``), per layer l of ``n_layers_d`` (width ``ndf`` * 2^l): branch s <
  n_scales - 1 applies a stride-1 4x4 conv-IN-LReLU to the previous output of branch s + 1; the last branch
  applies n_scales stride-2 convs to the previous output of branch 0; a 4x4 conv to 1 logit per branch.
  ``ndf`` is TF's ``--ndf 64 // --n_d 2`` = 32 (its per-discriminator and classifier width).
* init: conv weights ~ N(0, ``init_gain``), the plain and transposed convs' truncated at 2 ``init_gain`` (TF's
  truncated normal), the residual blocks' and the stride-1 discriminator convs' untruncated (TF's
  ``dilated_conv2d`` with rate 1); IN scales ~ N(1, ``init_gain``), offsets 0.
* the PyTorch port (seawee1/ForkGAN-pytorch) weights the perceptual term 20 (variant ``pytorch-port``); its
  other weights equal TF's (cycle 10, reconstruction 10, classifier 1, no identity) and its optional
  instance-level losses are not implemented.
* a 1x1 map (the classifier's last one at crops under 64) normalises to TF's value, the offset
  (:class:`TFInstanceNorm`; PyTorch refuses it), so such a layer passes no gradient upstream.
* noise, latents and everything random in a step are drawn from the bundle's checkpointed ``rng`` on the
  CPU, so they are the same on any device and after a resume.

Parameter counts (paper preset, pinned by tests/test_gan_forkgan.py): a fork generator 16,484,544 (encoder
6,282,304, each decoder 5,101,120), the translator 11,383,424, a discriminator 2,783,040, the classifier
723,456; total 2 G + 12 D + C = 67,089,024, matching the reference notes' unverified ~67 M (16.5 / 2.8 / 0.7 M).
Table 8: ForkGAN is not in the paper's Table 8 (an extra row); it is counted plainly, every network once, the
convention of the families trained with their authors' code (DRIT++, CyEDA), since the generator doubling
is an artefact of the paper's own (mdir) training code, which never trained ForkGAN.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from darkside.gan.family import (
    TRAINED_WITH_BASE_LR,
    BlockSpec,
    FamilySettings,
    GanBundle,
    GanSetup,
    register_family,
    set_requires_grad,
)
from darkside.gan.losses import l1
from darkside.gan.pool import ImagePool
from darkside.gan.schedule import late_decay_factor
from darkside.settings import setting

DAY, NIGHT = 0, 1          # the classifier's classes (TF: A = day, B = night)
ROLES = ("discriminator", "reconstruction", "refine")


@dataclass(frozen=True)
class ForkganSettings(FamilySettings):
    variant: Literal["official", "pytorch-port"] = setting(
        "official: the authors' TF code; pytorch-port: seawee1/ForkGAN-pytorch's perceptual weight 20")
    ngf: int = setting("generator base filters (paper 64)", ge=1)
    encoder_blocks: int = setting("residual blocks of the shared encoder (paper 5)", ge=0)
    decoder_blocks: int = setting("residual blocks of each decoder (paper 4)", ge=1)
    ndf: int = setting("base filters of each discriminator and of the classifier (TF ndf 64 // n_d 2 = 32)", ge=1)
    n_layers_d: int = setting("downsampling layers of each discriminator, widths ndf x 1, 2, 4, 8 (paper 4)", ge=1)
    n_scales: int = setting("scales of each multi-scale discriminator (paper 2)", ge=1)
    n_discriminators: int = setting("independent discriminators per role and domain (TF n_d, paper 2)", ge=1)
    init: Literal["normal"] = setting("conv weights ~ N(0, init_gain) (TF's plain convs truncated at 2 init_gain), "
                                      "instance-norm scales ~ N(1, init_gain)")
    init_gain: float = setting(ge=0)
    noise_std: float = setting("std of the Gaussian noise the reconstruction decoder adds (paper 0.02)", ge=0)
    cycle_weight: float = setting("cycle L1 per direction (paper 10)", ge=0)
    reconstruction_weight: float = setting("reconstruction-decoder L1 per domain (paper 10)", ge=0)
    perceptual_weight: float = setting("latent (\"perceptual\") consistency (TF 1, PyTorch port 20)", ge=0)
    classifier_weight: float = setting("adversarial domain-classifier term of the generators (paper 1)", ge=0)
    pool_size: int = setting("image pool of each role and domain (0 = off; paper 50)", ge=0)


# --- TF-style layers ----------------------------------------------------------------------------------

def _same_pads(size: int, k: int, s: int) -> tuple[int, int]:
    """TF "SAME": output ceil(size / s), the total padding split with the odd pixel after."""
    total = max((-(-size // s) - 1) * s + k - size, 0)
    return total // 2, total - total // 2


class TFConv2d(nn.Conv2d):
    """A bias-free conv with TF's padding: "same" (zero, the odd pixel after) or "valid". ``truncated`` marks
    the convs TF initialises from a truncated normal (its ``conv2d``) rather than a plain one."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, padding: Literal["same", "valid"] = "same",
                 truncated: bool = True) -> None:
        super().__init__(cin, cout, k, stride, padding=0, bias=False)
        self.tf_padding, self.truncated = padding, truncated

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.tf_padding == "same":
            k, s = self.kernel_size[0], self.stride[0]
            top, bottom = _same_pads(x.shape[-2], k, s)
            left, right = _same_pads(x.shape[-1], k, s)
            x = F.pad(x, (left, right, top, bottom))
        return self._conv_forward(x, self.weight, self.bias)


class TFDeconv2d(nn.ConvTranspose2d):
    """TF's "SAME" transposed conv (bias-free): output exactly ``stride`` x the input, aligned as the
    gradient of a "SAME" conv (the padding its forward conv would put before is cropped first)."""

    truncated = True

    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 2) -> None:
        super().__init__(cin, cout, k, stride, padding=0, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        k, s = self.kernel_size[0], self.stride[0]
        h, w = x.shape[-2] * s, x.shape[-1] * s
        top, left = _same_pads(h, k, s)[0], _same_pads(w, k, s)[0]
        return super().forward(x)[..., top:top + h, left:left + w]


class TFInstanceNorm(nn.InstanceNorm2d):
    """TF's ``instance_norm``: per-image statistics, eps 1e-5, learned scale and offset; a 1x1 map (the
    classifier's last layer on small crops) normalises to 0, so the output is the offset, where PyTorch
    refuses it in train mode."""

    def __init__(self, c: int) -> None:
        super().__init__(c, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2] * x.shape[-1] == 1:
            return x * 0.0 + self.bias.view(1, -1, 1, 1)
        return super().forward(x)


def _in(c: int) -> TFInstanceNorm:
    return TFInstanceNorm(c)


class ResBlock(nn.Module):
    """conv-IN-ReLU-conv-IN plus the input; 3x3 zero-"SAME" convs (TF's rate-1 atrous convs)."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.block = nn.Sequential(TFConv2d(c, c, 3, truncated=False), _in(c), nn.ReLU(True),
                                   TFConv2d(c, c, 3, truncated=False), _in(c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


def encoder(ngf: int, n_blocks: int) -> nn.Sequential:
    """Image in [-1, 1] -> latent (4 ngf channels at 1/4 of the size)."""
    return nn.Sequential(nn.ReflectionPad2d(3), TFConv2d(3, ngf, 7, padding="valid"), _in(ngf), nn.ReLU(True),
                         TFConv2d(ngf, 2 * ngf, 3, 2), _in(2 * ngf), nn.ReLU(True),
                         TFConv2d(2 * ngf, 4 * ngf, 3, 2), _in(4 * ngf), nn.ReLU(True),
                         *[ResBlock(4 * ngf) for _ in range(n_blocks)])


class Decoder(nn.Module):
    """Latent -> image in [-1, 1]: residual blocks, two x2 transposed convs, reflect-padded 7x7 conv, tanh."""

    def __init__(self, ngf: int, n_blocks: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(ResBlock(4 * ngf) for _ in range(n_blocks))
        self.up = nn.Sequential(TFDeconv2d(4 * ngf, 2 * ngf), _in(2 * ngf), nn.ReLU(True),
                                TFDeconv2d(2 * ngf, ngf), _in(ngf), nn.ReLU(True),
                                nn.ReflectionPad2d(3), TFConv2d(ngf, 3, 7, padding="valid"), nn.Tanh())

    def forward(self, z: torch.Tensor, noise: Any = None) -> torch.Tensor:
        """``noise``: None, or a function t -> t + noise applied after the first block (reconstruction)."""
        for i, block in enumerate(self.blocks):
            z = block(z)
            if i == 0 and noise is not None:
                z = noise(z)
        return self.up(z)


class TranslationBranch(nn.Module):
    """The deterministic translator: encoder + translation decoder of a fork generator."""

    def __init__(self, enc: nn.Module, translation: Decoder) -> None:
        super().__init__()
        self.encoder, self.translation = enc, translation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.translation(self.encoder(x))


class ForkGenerator(nn.Module):
    """One direction's fork generator: a shared encoder, a translation and a reconstruction decoder."""

    def __init__(self, ngf: int, encoder_blocks: int, decoder_blocks: int) -> None:
        super().__init__()
        self.encoder = encoder(ngf, encoder_blocks)
        self.translation = Decoder(ngf, decoder_blocks)
        self.reconstruction = Decoder(ngf, decoder_blocks)
        # the translator shares these modules; kept out of the module tree so the state dict names each
        # parameter once
        self.__dict__["branch"] = TranslationBranch(self.encoder, self.translation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.branch(x)

    def fork(self, x: torch.Tensor, noise_std: float, rng: torch.Generator
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(translation, reconstruction, noisy latent) of ``x``; the noise is drawn from ``rng`` on the CPU."""

        def noise(t: torch.Tensor) -> torch.Tensor:
            return t + noise_std * torch.randn(t.shape, generator=rng).to(t.device, t.dtype)

        z = self.encoder(x)
        zn = noise(z)
        return self.translation(z), self.reconstruction(zn, noise), zn


class DomainClassifier(nn.Module):
    """Latent (4 ngf channels) -> (B, 2) domain logits, averaged over space."""

    def __init__(self, latent_channels: int, ndf: int) -> None:
        super().__init__()
        w = (4 * ndf, 2 * ndf, 2 * ndf)
        layers: list[nn.Module] = []
        cin = latent_channels
        for c in w:
            layers += [TFConv2d(cin, c, 4, 2), _in(c), nn.LeakyReLU(0.2, True)]
            cin = c
        layers.append(TFConv2d(cin, 2, 4, 1))
        self.model = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.model(z).mean((2, 3))


def subsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    """TF1's legacy bicubic resize to floor(H / factor) x floor(W / factor): input pixel factor * i."""
    return x[..., ::factor, ::factor][..., :x.shape[-2] // factor, :x.shape[-1] // factor]


class MultiScaleDiscriminator(nn.Module):
    """ForkGAN's multi-scale discriminator (TF ``dis_down``): one logit map per scale, finest first."""

    def __init__(self, ndf: int, n_layers: int, n_scales: int, in_channels: int = 3) -> None:
        super().__init__()
        self.n_scales = n_scales
        self.layers = nn.ModuleList()
        cin = in_channels
        for layer in range(n_layers):
            c = ndf * 2 ** layer
            branches: list[nn.Module] = [nn.Sequential(TFConv2d(cin, c, 4, 1, truncated=False), _in(c),
                                                       nn.LeakyReLU(0.2, True)) for _ in range(n_scales - 1)]
            steps: list[nn.Module] = []
            for j in range(n_scales):
                steps += [TFConv2d(cin if j == 0 else c, c, 4, 2), _in(c), nn.LeakyReLU(0.2, True)]
            branches.append(nn.Sequential(*steps))
            self.layers.append(nn.ModuleList(branches))
            cin = c
        self.heads = nn.ModuleList(TFConv2d(cin, 1, 4, 1) for _ in range(n_scales))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        n = self.n_scales
        xs = [subsample(x, 2 ** s) for s in range(n)]
        for branches in self.layers:
            # branch s < n-1 reads branch s+1's previous output at stride 1; the last reads branch 0's
            xs = [branches[s](xs[s + 1] if s < n - 1 else xs[0]) for s in range(n)]
        return [head(t) for head, t in zip(self.heads, xs, strict=True)]


# --- losses -------------------------------------------------------------------------------------------

def multiscale_lsgan(preds: list[torch.Tensor], target_is_real: bool) -> torch.Tensor:
    """LSGAN of a multi-scale discriminator: the mean over scales of mean((pred - target)^2)."""
    target = 1.0 if target_is_real else 0.0
    return torch.stack([((p - target) ** 2).mean() for p in preds]).mean()


def latent_consistency(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """ForkGAN's "perceptual" loss: mean |mean_c(a) - mean_c(b)| of two (B, C, H, W) latents."""
    return (a.mean(1) - b.mean(1)).abs().mean()


def domain_bce(logits: torch.Tensor, domain: int) -> torch.Tensor:
    """Sigmoid cross-entropy of (B, 2) logits against the one-hot ``domain``, mean over batch and logits."""
    target = torch.zeros_like(logits)
    target[:, domain] = 1.0
    return F.binary_cross_entropy_with_logits(logits, target)


def _d_loss(d: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """0.5 * (LS(D(real), 1) + LS(D(fake), 0)); one pass over [real, fake] (instance norm is per image, so
    this equals two passes and halves the calls)."""
    preds = d(torch.cat([real, fake]))
    b = len(real)
    return 0.5 * (multiscale_lsgan([p[:b] for p in preds], True) + multiscale_lsgan([p[b:] for p in preds], False))


# --- the family ---------------------------------------------------------------------------------------

def _disc_names(role: str, side: str, n: int) -> list[str]:
    return [f"{role}_{side}_{k}" for k in range(n)]


def _tf_init(net: nn.Module, gain: float, g: torch.Generator) -> None:
    """TF's draws where they differ from init_weights' N(0, gain): truncated convs, IN scales N(1, gain)."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (TFConv2d, TFDeconv2d)) and m.truncated:
                w = torch.empty(m.weight.shape)
                nn.init.trunc_normal_(w, 0.0, gain, -2 * gain, 2 * gain, generator=g)
                m.weight.copy_(w)
            elif isinstance(m, nn.InstanceNorm2d) and m.affine:
                m.weight.copy_(1.0 + gain * torch.randn(m.weight.shape, generator=g))
                m.bias.zero_()


@register_family
class ForkGan(GanBundle):
    name = "forkgan"
    title = "ForkGAN"
    Settings = ForkganSettings
    variants: ClassVar = {"pytorch-port": {"perceptual_weight": 20.0}}
    schedule = staticmethod(late_decay_factor)   # = TF's lr * (epoch - epoch_step) rule, see the docstring
    paper_counts_plain: ClassVar[bool] = True    # not in Table 8; counted as the authors'-code families
    night_to_day_name = "generator_Y"            # its translation branch goes along (DaCo's B->A translations)

    @classmethod
    def block_specs(cls, setup: GanSetup) -> list[BlockSpec]:
        s = setup.settings

        def gen() -> ForkGenerator:
            return ForkGenerator(s.ngf, s.encoder_blocks, s.decoder_blocks)

        def disc() -> MultiScaleDiscriminator:
            return MultiScaleDiscriminator(s.ndf, s.n_layers_d, s.n_scales)

        specs = [BlockSpec("generator_X", "generator", gen), BlockSpec("generator_Y", "generator", gen),
                 BlockSpec("classifier", "discriminator", lambda: DomainClassifier(4 * s.ngf, s.ndf))]
        for role in ROLES:
            for side in ("X", "Y"):
                specs += [BlockSpec(n, "discriminator", disc) for n in _disc_names(role, side, s.n_discriminators)]
        return specs

    def __init__(self, setup: GanSetup, device: torch.device | str = "cpu", seed: int = 0) -> None:
        super().__init__(setup, device, seed)
        g = torch.Generator().manual_seed(0x466F726B ^ seed)   # its own stream, apart from self.rng's
        for name, role in self.roles.items():
            if role in TRAINED_WITH_BASE_LR:
                _tf_init(self.nets[name], self.settings.init_gain, g)
        self.pools = {f"{role}_{side}": ImagePool(self.settings.pool_size, seed * 8 + 1 + k)
                      for k, (role, side) in enumerate((r, sd) for r in ROLES for sd in ("X", "Y"))}

    @classmethod
    def translator_net(cls, setup: GanSetup, state_dict: Mapping[str, torch.Tensor]) -> nn.Module:
        s = setup.settings
        return TranslationBranch(encoder(s.ngf, s.encoder_blocks), Decoder(s.ngf, s.decoder_blocks))

    def generator(self) -> nn.Module:
        return self.nets["generator_X"].branch

    def night_to_day_generator(self) -> nn.Module:
        # B->A, the translation branch of G_Y: DaCo translates the training images of both domains
        return self.nets["generator_Y"].branch

    @classmethod
    def night_to_day_net(cls, setup: GanSetup) -> nn.Module:
        return cls.translator_net(setup, {})

    def _discs(self, role: str, side: str) -> list[nn.Module]:
        return [self.nets[n] for n in _disc_names(role, side, self.settings.n_discriminators)]

    def train_step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, float]:
        s, n = self.settings, self.nets
        day, night = (t.to(self.device) for t in batch)
        g_x, g_y, cls = n["generator_X"], n["generator_Y"], n["classifier"]
        discs = [name for name, role in self.roles.items() if role == "discriminator"]

        # 1. the four fork passes (TF order)
        fake_night, rec_day, z_day = g_x.fork(day, s.noise_std, self.rng)
        cyc_day, refine_night, z_fake_night = g_y.fork(fake_night, s.noise_std, self.rng)
        fake_day, rec_night, z_night = g_y.fork(night, s.noise_std, self.rng)
        cyc_night, refine_day, z_fake_day = g_x.fork(fake_day, s.noise_std, self.rng)

        # 2. generators
        set_requires_grad([n[k] for k in discs], False)
        fakes = {"discriminator": (fake_night, fake_day), "reconstruction": (rec_night, rec_day),
                 "refine": (refine_night, refine_day)}
        adv = {role: torch.zeros((), device=self.device) for role in ROLES}
        for role, (f_night, f_day) in fakes.items():
            for d_x, d_y in zip(self._discs(role, "X"), self._discs(role, "Y"), strict=True):
                adv[role] = adv[role] + 0.5 * (multiscale_lsgan(d_y(f_day), True)
                                               + multiscale_lsgan(d_x(f_night), True))
        adv_total = adv["discriminator"] + adv["reconstruction"] + adv["refine"]
        cycle = l1(day, cyc_day) + l1(night, cyc_night)
        recon = l1(rec_day, day) + l1(rec_night, night)
        perc = latent_consistency(z_day, z_fake_night) + latent_consistency(z_night, z_fake_day)
        cls_g = 0.5 * (domain_bce(cls(z_fake_day), DAY) + domain_bce(cls(z_fake_night), NIGHT))
        loss_g = (adv_total + s.cycle_weight * cycle + s.reconstruction_weight * recon + s.perceptual_weight * perc
                  + s.classifier_weight * cls_g)
        self.optimise(loss_g, "generator_X", "generator_Y")

        # 3. the domain classifier, on the same (pre-update) latents
        set_requires_grad([cls], True)
        zs = [z.detach() for z in (z_day, z_night, z_fake_night, z_fake_day)]
        loss_c = 0.25 * sum((domain_bce(cls(z), d) for z, d in zip(zs, (DAY, NIGHT, DAY, NIGHT), strict=True)),
                            torch.zeros((), device=self.device))
        self.optimise(loss_c, "classifier")

        # 4. discriminators: real images against the pooled fakes of their role and domain
        set_requires_grad([n[k] for k in discs if k != "classifier"], True)
        loss_d = {}
        for role, (f_night, f_day) in fakes.items():
            p_night = self.pools[f"{role}_X"].query(f_night.detach())
            p_day = self.pools[f"{role}_Y"].query(f_day.detach())
            total = torch.zeros((), device=self.device)
            for d_x, d_y in zip(self._discs(role, "X"), self._discs(role, "Y"), strict=True):
                total = total + _d_loss(d_x, night, p_night) + _d_loss(d_y, day, p_day)
            loss_d[role] = total
        names = [k for k in discs if k != "classifier"]
        self.optimise(loss_d["discriminator"] + loss_d["reconstruction"] + loss_d["refine"], *names)

        out = {"G": loss_g, "G_adv": adv["discriminator"], "G_adv_rec": adv["reconstruction"],
               "G_adv_refine": adv["refine"], "cycle": cycle, "rec": recon, "perceptual": perc, "G_cls": cls_g,
               "C": loss_c, "D": loss_d["discriminator"], "D_rec": loss_d["reconstruction"],
               "D_refine": loss_d["refine"]}
        return {k: float(v.detach()) for k, v in out.items()}
