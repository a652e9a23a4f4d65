"""MDUIT (Jeong, Lee, Sohn, ICASSP 2022: multi-domain unsupervised translation with appearance adaptive
convolution), implemented from the paper alone: no public code exists (reference notes §3.12).

Networks (Fig. 2, eq. 1): a content encoder E_c (image -> f in R^{c x h/4 x w/4}); a frozen VGG16 trunk up to
relu3_3 whose activation is average-pooled and passed to the appearance filter encoder E_a, an MLP whose output
is reshaped into a per-image grouped dynamic filter W (c' x c/groups x k x k; paper c' = c = 256, 256 groups,
k = 5, i.e. 256 x 1 x 5 x 5 = 6,400 numbers per image); the appearance-representative content f (x) W (a 2D
convolution of f with the image's own W, ``groups`` groups) goes through the generator G to the image. An image
discriminator D_i (real or translated) and an appearance discriminator D_a (do two channel-concatenated images
share an appearance) judge it; a head H (trainable GeM, two-layer MLP, L2) embeds the content for the NCE.

Losses per step (eq. 2-6), with I_s -> I_t the translation G(E_c(I_s) (x) E_a(I_t)):

* adversarial (x ``adv_weight``): D_i on I_s, I_t (real) and I_s->t (fake); D_a on (I_t, I_t+) (real, I_t+ of
  I_t's domain) and (I_t, I_s->t) (fake); the D step (both, one Adam step each) comes first on the detached
  fakes, then the G step (E_c, E_a, G, H) scores the fakes with the updated discriminators;
* self- and cycle-reconstruction L1 (x ``self_weight``, ``cycle_weight``): G(f_s (x) W_s) and
  G(E_c(I_s->t) (x) W_s) against I_s;
* content consistency (x ``content_weight``, :func:`content_consistency`) with margin ``content_margin``;
* filter consistency (x ``filter_weight``, :func:`filter_consistency`), cosine, margin 1 as in eq. 4;
* NCE (x ``nce_weight``, :func:`contrastive_nce`): z_s = H(f_s) must pick z_s->t = H(E_c(I_s->t)) among
  ``nce_negatives`` negatives, temperature ``nce_temperature``.

Init N(0, ``init_gain``) for all trained convs and linears (paper 0.001) but H's (``head_init``), Adam at
gan.common's lr and betas (paper 2e-4, 0.5, 0.999), 35 constant + 15 linearly decayed epochs, batch 1. H keeps
PyTorch's default init: the paper says every network's weights start at N(0, 0.001), but H is the part whose
layers it leaves unstated, and with that init Adam's steps of 2e-4 on weights of 1e-3 left z one vector for
every image after two epochs of the mini preset (the NCE at log(1 + N_neg), all logits alike), whether or not
the negatives carried gradients; with the default init, and the negatives embedded anew each step, it fell to
0.9 over the same four epochs. ``head_init: family`` is the literal reading.

Every lighting domain. MDUIT trains one network on every lighting domain of a mixed set (``multi_domain``):
the training loop gives it every kept training image with its domain (filter-day-night's domains.tsv: day,
sunset and night on the mini set; day and night from the paper's lists, ``other`` images as the classifier
labels them) and :class:`~darkside.gan.family.DomainBatch` es of (source, target) pairs of images of
DIFFERENT domains, any two of them. Each pair is used in both directions (sources [a, b], targets [b, a], one
batch of 2B, as the (day, night) pairs were): every image of a batch is a source once and a target once.
The pairs are chosen by content similarity (§3.1: "the most similar ones", refreshed every epoch): sources
drawn with replacement from all images from the epoch RNG, each with its most similar image among the
other domains' images (:func:`content_pairs`, cosine of the embeddings of :meth:`Mduit.embed_contents`,
which the training loop asks for at the start of every epoch through :meth:`Mduit.choose_pairs`; it embeds
every training image once per epoch). A source is therefore drawn in proportion to its domain's share of
the images; the reverse direction (b -> a) pairs a target with a source that is not necessarily its own
nearest. ``train_gan`` without domain labels takes the day and the night list as the two domains.

As a day->night translator (:class:`MduitTranslator`, what :meth:`generator` returns and the generator file
holds): E_c, E_a, G and a bank of the training nights' pooled relu3_3 descriptors (``prepare_translator``;
c_vgg floats each, 256 at the paper width); the night whose appearance an image gets is drawn from the bank by
a generator seeded with :func:`~darkside.gan.family.input_seeds` of the image, so it is a function of the image
alone. The VGG trunk is not needed at translation time. During training (the sample grids) the bank is the
last batch's nights (see below).

Values the paper leaves unstated, and the choices made here (why):

* E_c: c7s1-ngf, two stride-2 3x3 convs (2 ngf, 4 ngf), ``n_blocks_content`` ResNet blocks, instance norm
  (the DRIT/MUNIT content encoder the paper builds on); c = 4 ngf = 256 at ngf 64, matching W's 256 x 256.
  4 blocks (MUNIT's).
* G: ``n_blocks_generator`` ResNet blocks (4, MUNIT's decoder), two transposed-conv x2 ups, c7s1-3, tanh; its
  norm is layer norm (one group over C x H x W, affine), not instance norm: instance norm would erase the
  per-channel statistics the appearance filter just wrote into the features (MUNIT's decoder uses layer norm
  for the same reason); the init N(0, 0.001) needs some norm to keep the signal alive through the layers.
* The dynamic filter is applied with reflect padding k // 2 (same size; replicate where a map is smaller than
  that), and E_a also predicts a per-channel bias (``filter_bias``): a depthwise filter alone can only scale
  and blur each channel, while AdaIN, which the paper says the filter generalises, also shifts it.
* E_a: average pooling is global (a c_vgg vector per image, which also keeps the translator's bank small); the
  MLP is c_vgg -> ``appearance_width`` -> ``appearance_width`` -> c' (c / groups) k^2 (+ c' bias), ReLUs.
* VGG16: torchvision's layout of ``features[:16]`` (conv1_1 .. relu3_3), so a torchvision VGG16 state dict
  (``vgg_weights``: a file with ``features.N.*`` or ``N.*`` keys) loads; input RGB in [0, 1] normalised with
  ImageNet's mean/std. Without the file (no weights can be downloaded here) the trunk keeps its seeded
  PyTorch default init: a fixed random feature extractor. ``vgg_width`` scales its channels (1.0 for the
  published weights; the mini preset narrows the seeded trunk for speed).
* D_i and D_a: PatchGAN (``ndf``, ``n_layers_d``, ``norm_d``); D_a takes 6 channels. Adversarial loss:
  eq. 2's log form, ``adversarial: vanilla`` (BCE on the logits, non-saturating for G); ``lsgan`` is an
  option. The D loss is eq. 2's sum: D_i's terms on I_s and on I_t (each real image appears as both, so
  2 x BCE(real) + BCE(fake)) plus D_a's; not halved.
* I_t+ (same domain as I_t) and I_s- (different content from I_s, eq. 4) come from a per-domain history:
  the last real image seen of each domain in an earlier batch (checkpointed): I_t+ is the one of I_t's
  domain, I_s- the one of I_s's domain (so that content, not appearance, tells f_s- from f_s); where a
  domain has no history yet (its first batch) the current image stands in. I_t- (another domain than I_t)
  is I_s, of another domain by construction of the pairs.
* The bank of the sample grids during training is the last batch's night images (a batch without one keeps
  the previous bank).
* ||.||_2^2 of eq. 4 is the mean over the c h w elements (the sum would dwarf the margin 0.1 and grow with the
  crop); Delta is the cosine similarity of the flattened filter weights (without the bias).
* NCE negatives: "randomly sampled images" through H: the last ``nce_negatives`` real source images of earlier
  steps (a FIFO of images, checkpointed; batch 1 has no other images), embedded by the current E_c and H at
  every step, with gradients, fewer while it fills (no negatives at the first step: zero loss). Gradients reach
  z_s, z_s->t and the negatives. H: GeM (p initialised to 3,
  trainable, clamp 1e-6) -> Linear(c, c) -> ReLU -> Linear(c, ``head_dim``) -> L2; K = 128 (SimCLR's).
* An epoch is ``pairs_per_epoch`` (10,000) pairs like the other families (the paper's epoch is its RobotCar
  set). Paper pair selection by pose thresholds (8 deg, 7 m) needs poses the training lists lack; only the
  content-similarity choice is implemented.

Table 8 has no MDUIT row (a marked extra row): its count is the plain one (every network once, the frozen VGG
trunk included).

Table 1's ablations (§3.3, retrieval-based localization with z_s) are two settings whose defaults are the full
method, trained as named runs of the family (``gan.variants``, each into its own ``results/gans/<name>``):

* ``translation: colour-jitter`` ("w/o I2I"): "a randomly colour-jittered input image is treated as the translated
  image" (footnote 1). Without the I2I module nothing of it is trained: a step is the contrastive module alone,
  E_c and H on z_s = H(E_c(I_s)) against z_s->t = H(E_c(jitter(I_s))) (:func:`colour_jitter`, drawn from the
  family's checkpointed RNG); E_a, G and both discriminators keep their initialisation (their generator file
  still translates, badly: it is there for the content embedding). The paper gives no jitter parameters; the
  choice is SimCLR's colour distortion at strength 1 (``jitter_brightness``, ``_contrast``, ``_saturation``
  0.8, ``jitter_hue`` 0.2: torchvision's ``ColorJitter(0.8, 0.8, 0.8, 0.2)``), since MDUIT's contrastive module
  follows SimCLR [23]; applied to every image (SimCLR: with probability 0.8) in torchvision's order (brightness,
  contrast, saturation, hue; torchvision permutes it at random), each factor drawn per image.
* ``consistency: l1`` ("w/o L_NCE"): "a simple L1 consistency loss between the positive vectors" replaces eq. 5:
  the mean |z_s - z_s->t| over the batch and the K dimensions (:func:`consistency_loss`), in eq. 6's place with
  its weight ``nce_weight``; no negatives are kept. Both settings together give "w/o I2I, L_NCE".

The generator file also carries E_c and H (:meth:`Mduit.content_embedding`), so that a descriptor network
(``darkside.embed.networks.content``) can embed test images as z_s for retrieval.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from darkside.errors import ConfigError, DarksideError
from darkside.gan.family import (
    NIGHT,
    BlockSpec,
    ContentEmbedding,
    DomainBatch,
    FamilySettings,
    GanBundle,
    GanSetup,
    input_seeds,
    register_family,
    set_requires_grad,
)
from darkside.gan.losses import l1
from darkside.gan.networks import PatchGAN, ResnetBlock
from darkside.gan.pool import ImagePool
from darkside.image_ops import grey
from darkside.settings import setting

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class MduitSettings(FamilySettings):
    ngf: int = setting("content encoder / generator base filters; content channels c = 4 ngf (paper 256)", ge=1)
    n_blocks_content: int = setting("ResNet blocks of the content encoder (unstated; MUNIT's 4)", ge=0)
    n_blocks_generator: int = setting("ResNet blocks of the generator (unstated; MUNIT's 4)", ge=0)
    filter_size: int = setting("k of the k x k appearance filter (paper 5)", ge=1)
    filter_groups: int = setting("groups of the appearance convolution (paper 256 = depthwise)", ge=1)
    filter_bias: bool = setting("E_a also predicts a per-channel bias of the appearance convolution")
    appearance_width: int = setting("hidden width of the appearance filter encoder's MLP", ge=1)
    vgg_width: float = setting("channel multiplier of the frozen VGG16 trunk (1.0 for published weights)", gt=0)
    vgg_weights: str | None = setting("torchvision VGG16 state dict for the trunk; null: its seeded init")
    head_dim: int = setting("K, the NCE embedding size of the GeM + MLP head", ge=1)
    ndf: int = setting("base filters of both PatchGAN discriminators", ge=1)
    n_layers_d: int = setting("PatchGAN layers (3 = 70x70)", ge=1)
    norm_d: Literal["instance", "batch"] = setting("norm of both discriminators")
    init: Literal["normal", "kaiming", "xavier"] = setting("init of every trained network (paper N(0, 0.001))")
    init_gain: float = setting("std of the normal init", ge=0)
    adversarial: Literal["vanilla", "lsgan"] = setting("eq. 2's log loss (vanilla, BCE on logits) or LSGAN")
    adv_weight: float = setting("weight of each adversarial term (image and appearance)", ge=0)
    self_weight: float = setting("beta_rs, self-reconstruction L1 (paper 100)", ge=0)
    cycle_weight: float = setting("beta_rc, cycle-reconstruction L1 (paper 100)", ge=0)
    content_weight: float = setting("beta_cc, content consistency (paper 10)", ge=0)
    content_margin: float = setting("m_c of the content consistency (paper 0.1)", ge=0)
    filter_weight: float = setting("beta_ca, filter consistency (paper 1)", ge=0)
    nce_weight: float = setting("beta_NCE (paper 1)", ge=0)
    nce_temperature: float = setting("tau of the NCE (paper 0.07)", gt=0)
    nce_negatives: int = setting("N_neg, negatives of the NCE (paper 16)", ge=0)
    # Table 1's ablations (module docstring); the defaults are the full method
    translation: Literal["generator", "colour-jitter"] = setting(
        "what I_s->t of the contrastive term is: the translation (the full method), or I_s colour-jittered with the "
        "I2I module not trained (Table 1's 'w/o I2I')", default="generator")
    consistency: Literal["nce", "l1"] = setting(
        "the contrastive term between z_s and z_s->t: eq. 5's NCE, or the L1 consistency of Table 1's 'w/o L_NCE' "
        "(weight nce_weight either way)", default="nce")
    head_init: Literal["default", "family"] = setting(
        "H's initial weights: PyTorch's default (Kaiming-uniform) or N(0, init_gain) as every other network (the "
        "paper's 'all networks' read literally: z collapses to one vector at init_gain 0.001, see the module "
        "docstring)", default="default")
    jitter_brightness: float = setting("colour-jitter: brightness factor in [1 - this, 1 + this] (unstated; "
                                       "SimCLR's 0.8)", ge=0, le=1, default=0.8)
    jitter_contrast: float = setting("colour-jitter: contrast factor range, as brightness (SimCLR's 0.8)", ge=0, le=1,
                                     default=0.8)
    jitter_saturation: float = setting("colour-jitter: saturation factor range, as brightness (SimCLR's 0.8)", ge=0,
                                       le=1, default=0.8)
    jitter_hue: float = setting("colour-jitter: hue shift in [-this, this] turns (SimCLR's 0.2)", ge=0, le=0.5,
                                default=0.2)

    def __post_init__(self) -> None:
        c = 4 * self.ngf
        if c % self.filter_groups:
            raise ConfigError(f"gan.families.mduit.filter_groups: {self.filter_groups} does not divide the "
                              f"content channels 4 ngf = {c}")
        if self.vgg_weights is not None and self.vgg_width != 1.0:
            raise ConfigError("gan.families.mduit.vgg_weights: published VGG16 weights need vgg_width 1.0")


# --- pure functions -----------------------------------------------------------------------------------

def dynamic_conv(content: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, groups: int
                 ) -> torch.Tensor:
    """Each image's content (B, C, h, w) convolved with its own filter (B, C', C / groups, k, k) (and bias
    (B, C')): f (x) W of eq. 1, same size (reflect padding k // 2; replicate on maps too small for it)."""
    b, c, h, w = content.shape
    k = weight.shape[-1]
    pad = k // 2
    x = content
    if pad:
        x = F.pad(x, (pad, pad, pad, pad), mode="reflect" if min(h, w) > pad else "replicate")
    # the batch folded into the channels: one grouped conv applies every image's own filter to it alone
    y = F.conv2d(x.reshape(1, b * c, *x.shape[-2:]), weight.reshape(-1, *weight.shape[2:]),
                 bias.reshape(-1) if bias is not None else None, groups=b * groups)
    return y.reshape(b, -1, h, w)


def content_consistency(f_s: torch.Tensor, f_st: torch.Tensor, f_neg: torch.Tensor, margin: float) -> torch.Tensor:
    """Eq. 4's L_con^c: the batch mean of max(0, d(f_s, f_s->t) - d(f_s, f_s-) + margin), d the mean squared
    difference over the c h w elements of one image's content features."""
    d_pos = (f_s - f_st).pow(2).flatten(1).mean(1)
    d_neg = (f_s - f_neg).pow(2).flatten(1).mean(1)
    return F.relu(d_pos - d_neg + margin).mean()


def filter_consistency(w_t: torch.Tensor, w_st: torch.Tensor, w_neg: torch.Tensor, margin: float = 1.0
                       ) -> torch.Tensor:
    """Eq. 4's L_con^a: the batch mean of max(0, margin - cos(W_t, W_s->t) + cos(W_t, W_t-)), each filter
    flattened per image (margin 1 in the paper)."""
    pos = F.cosine_similarity(w_t.flatten(1), w_st.flatten(1), dim=1)
    neg = F.cosine_similarity(w_t.flatten(1), w_neg.flatten(1), dim=1)
    return F.relu(margin - pos + neg).mean()


def contrastive_nce(query: torch.Tensor, positive: torch.Tensor, negatives: torch.Tensor | None,
                    temperature: float) -> torch.Tensor:
    """Eq. 5: the batch mean of -log(e^{q.p/tau} / (e^{q.p/tau} + sum_i e^{q.n_i/tau})) for L2-normalised
    (B, K) queries and positives and (N, K) negatives shared by the batch (None or N = 0: zero loss)."""
    pos = (query * positive).sum(1, keepdim=True)
    if negatives is None or len(negatives) == 0:
        return pos.sum() * 0.0  # keeps the graph (and the device)
    logits = torch.cat([pos, query @ negatives.t()], dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(len(query), dtype=torch.long, device=query.device))


def consistency_loss(query: torch.Tensor, positive: torch.Tensor, negatives: torch.Tensor | None, mode: str,
                     temperature: float) -> torch.Tensor:
    """The contrastive module's term between the (B, K) embeddings z_s and z_s->t: eq. 5's NCE (``nce``, with
    the (N, K) ``negatives``), or Table 1's 'w/o L_NCE' L1 consistency (``l1``): the mean |z_s - z_s->t| over the
    batch and the K dimensions, no negatives."""
    if mode == "l1":
        return l1(query, positive)
    return contrastive_nce(query, positive, negatives, temperature)


def shift_hue(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB in [0, 1] with each image's hue turned by ``shift`` (B,) of a full turn (torchvision's
    ``adjust_hue``: through HSV, saturation and value kept)."""
    r, g, b = x.unbind(1)
    v, _ = x.max(1)
    delta = v - x.min(1)[0]
    s = torch.where(v > 0, delta / v.clamp_min(1e-12), torch.zeros_like(v))
    d = delta.clamp_min(1e-12)
    h = torch.where(v == r, (g - b) / d, torch.where(v == g, 2.0 + (b - r) / d, 4.0 + (r - g) / d))
    h = torch.where(delta > 0, h / 6.0, torch.zeros_like(h))
    h = torch.remainder(h + shift.view(-1, 1, 1), 1.0)
    i = torch.floor(h * 6.0)
    f = h * 6.0 - i
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    i = i.long() % 6
    sectors = ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q))  # (r, g, b) per sixth of a turn
    out = torch.zeros_like(x)
    for k, rgb in enumerate(sectors):
        out = torch.where((i == k).unsqueeze(1), torch.stack(rgb, 1), out)
    return out


def colour_jitter(x: torch.Tensor, rng: torch.Generator, brightness: float, contrast: float, saturation: float,
                  hue: float) -> torch.Tensor:
    """Table 1's 'w/o I2I' stand-in for the translation: each image of ``x`` (B, 3, H, W) in [-1, 1] randomly
    colour-jittered, in [-1, 1]. Per image four uniform numbers u (B, 4) are drawn from ``rng`` (always four, so
    a zero range changes no other draw): brightness b = 1 + brightness (2 u0 - 1), contrast c and saturation s
    alike from u1, u2, hue shift h = hue (2 u3 - 1); applied in torchvision's order and formulas on [0, 1]
    (each clamped to [0, 1]): x b; c x + (1 - c) mean(luma x); s x + (1 - s) luma x; the hue turned by h."""
    u = torch.rand(len(x), 4, generator=rng).to(x.device, x.dtype)
    ranges = torch.tensor([brightness, contrast, saturation], dtype=x.dtype, device=x.device)
    factors = 1.0 + ranges * (2 * u[:, :3] - 1)
    b, c, s = (f.view(-1, 1, 1, 1) for f in factors.unbind(1))
    y = (x + 1.0) / 2.0
    if brightness:
        y = (y * b).clamp(0, 1)
    if contrast:
        y = (c * y + (1 - c) * grey(y).mean((2, 3), keepdim=True)).clamp(0, 1)
    if saturation:
        y = (s * y + (1 - s) * grey(y)).clamp(0, 1)
    if hue:
        y = shift_hue(y, hue * (2 * u[:, 3] - 1))
    return y * 2.0 - 1.0


def gem(x: torch.Tensor, p: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Generalised mean pooling (Radenovic et al.): (B, C, H, W) -> (B, C), (mean x^p)^(1/p), x clamped at eps."""
    return x.clamp(min=eps).pow(p).mean((2, 3)).pow(1.0 / p)


def content_pairs(z: torch.Tensor, domains: np.ndarray, n_pairs: int, rng: np.random.Generator,
                  chunk: int = 1024) -> np.ndarray:
    """(n_pairs, 2) (source, target) indices into the N images of content embeddings ``z`` (N, K) and
    integer ``domains`` (N,): sources drawn with replacement from all images (as ``epoch_pairs``), each paired
    with its most similar image of another domain by the cosine of the embeddings (MDUIT §3.1: the most
    similar image as target; ties to the lowest index). Refreshed every epoch with the current embeddings;
    only the drawn sources' rows of the similarity are computed, ``chunk`` at a time."""
    domains = np.asarray(domains)
    if len(np.unique(domains)) < 2:
        raise DarksideError("mduit: content pairs need images of at least two lighting domains")
    sources = rng.integers(0, len(z), n_pairs)
    zn = F.normalize(z.float(), dim=1)
    dom = torch.as_tensor(domains, device=zn.device)
    rows = np.unique(sources)
    nearest = np.empty(len(z), dtype=np.int64)
    for i in range(0, len(rows), chunk):
        r = torch.as_tensor(rows[i:i + chunk], device=zn.device)
        sim = (zn[r] @ zn.t()).masked_fill(dom[r][:, None] == dom[None, :], float("-inf"))
        nearest[rows[i:i + chunk]] = sim.argmax(1).cpu().numpy()
    return np.stack([sources, nearest[sources]], axis=1)


# --- networks -----------------------------------------------------------------------------------------

def _layer_norm(ch: int) -> nn.Module:
    return nn.GroupNorm(1, ch)  # over C x H x W per image, affine per channel


class ContentEncoder(nn.Module):
    """E_c: c7s1-ngf, two stride-2 downs, ResNet blocks; instance norm; (B, 3, H, W) -> (B, 4 ngf, H/4, W/4)."""

    def __init__(self, ngf: int, n_blocks: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7), nn.InstanceNorm2d(ngf), nn.ReLU(True)]
        ch = ngf
        for _ in range(2):
            layers += [nn.Conv2d(ch, ch * 2, 3, stride=2, padding=1), nn.InstanceNorm2d(ch * 2), nn.ReLU(True)]
            ch *= 2
        layers += [ResnetBlock(ch, "instance") for _ in range(n_blocks)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class AppearanceEncoder(nn.Module):
    """E_a: a pooled relu3_3 descriptor (B, c_vgg) -> the appearance filter (B, c', c / groups, k, k) and its
    bias (B, c') (None without ``bias``)."""

    def __init__(self, c_vgg: int, width: int, channels: int, groups: int, k: int, bias: bool) -> None:
        super().__init__()
        self.shape = (channels, channels // groups, k, k)
        self.n_weight = channels * (channels // groups) * k * k
        self.n_bias = channels if bias else 0
        self.mlp = nn.Sequential(nn.Linear(c_vgg, width), nn.ReLU(True), nn.Linear(width, width), nn.ReLU(True),
                                 nn.Linear(width, self.n_weight + self.n_bias))

    def forward(self, desc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        out = self.mlp(desc)
        w = out[:, :self.n_weight].reshape(len(desc), *self.shape)
        return w, (out[:, self.n_weight:] if self.n_bias else None)


class _LnResnetBlock(nn.Module):
    """ResNet block with layer norm (the generator's: keeps the per-channel appearance statistics)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.block = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), _layer_norm(dim), nn.ReLU(True),
                                   nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), _layer_norm(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class AppearanceGenerator(nn.Module):
    """G: appearance-representative content (B, 4 ngf, h, w) -> image (B, 3, 4h, 4w) in [-1, 1]."""

    def __init__(self, ngf: int, n_blocks: int) -> None:
        super().__init__()
        ch = 4 * ngf
        layers: list[nn.Module] = [_LnResnetBlock(ch) for _ in range(n_blocks)]
        for _ in range(2):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 3, stride=2, padding=1, output_padding=1),
                       _layer_norm(ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ch, 3, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def vgg_channels(width: float) -> tuple[int, int, int]:
    return tuple(max(1, round(c * width)) for c in (64, 128, 256))  # type: ignore[return-value]


class VggRelu33(nn.Module):
    """VGG16 conv1_1 .. relu3_3 (torchvision's ``features[:16]`` indices); x in [-1, 1] -> (B, c_vgg, H/4, W/4)."""

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        c1, c2, c3 = vgg_channels(width)
        layers: list[nn.Module] = []
        cin = 3
        for stage, (cout, n) in enumerate(((c1, 2), (c2, 2), (c3, 3))):
            if stage:
                layers.append(nn.MaxPool2d(2, 2))
            for _ in range(n):
                layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(True)]
                cin = cout
        self.features = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(((x + 1.0) / 2.0 - self.mean) / self.std)

    def descriptor(self, x: torch.Tensor) -> torch.Tensor:
        """The average-pooled relu3_3 activation (B, c_vgg): what E_a and the translator's bank take."""
        return self(x).mean((2, 3))


def load_vgg_file(net: VggRelu33, path: str | Path) -> None:
    """Load a torchvision VGG16 (features) state dict into the trunk: keys ``features.N.*`` or ``N.*``, N < 16."""
    p = Path(path)
    if not p.is_file():
        raise DarksideError(f"{p}: VGG16 weights file does not exist")
    obj = torch.load(p, map_location="cpu", weights_only=True)
    obj = obj.get("state_dict", obj) if isinstance(obj, dict) else obj
    state = {}
    for k, v in obj.items():
        key = k[len("features."):] if k.startswith("features.") else k
        idx = key.split(".")[0]
        if idx.isdigit() and int(idx) < len(net.features):
            state[key] = v
    try:
        net.features.load_state_dict(state)
    except RuntimeError as exc:
        raise DarksideError(f"{p}: not VGG16 weights ({str(exc).splitlines()[0]})") from None


class ContentHead(nn.Module):
    """H: trainable GeM (p from 3) -> Linear(c, c) -> ReLU -> Linear(c, K) -> L2; (B, c, h, w) -> (B, K)."""

    def __init__(self, channels: int, dim: int) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.full((1,), 3.0))
        self.mlp = nn.Sequential(nn.Linear(channels, channels), nn.ReLU(True), nn.Linear(channels, dim))

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.mlp(gem(f, self.p)), dim=1)


class MduitTranslator(nn.Module):
    """The day->night module: E_c, E_a, G and a bank (N, c_vgg) of night appearance descriptors; each image
    gets the appearance of the bank entry drawn by a generator seeded with its own pixels' hash."""

    def __init__(self, content: ContentEncoder, appearance: AppearanceEncoder, generator: AppearanceGenerator,
                 bank: torch.Tensor, groups: int) -> None:
        super().__init__()
        self.content, self.appearance, self.decoder = content, appearance, generator
        self.groups = groups
        self.register_buffer("bank", bank)

    def choose(self, x: torch.Tensor) -> torch.Tensor:
        """Indices into the bank, one per image, drawn with the image's own seed."""
        n = len(self.bank)
        if n == 0:
            raise DarksideError("mduit: the translator has no night appearances (prepare_translator not run)")
        return torch.tensor([int(torch.randint(n, (1,), generator=torch.Generator().manual_seed(s)))
                             for s in input_seeds(x)], device=self.bank.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w, b = self.appearance(self.bank[self.choose(x)])
        return self.decoder(dynamic_conv(self.content(x), w, b, self.groups))


# --- the family ---------------------------------------------------------------------------------------

class _DomainHistory(ImagePool):
    """The last real image seen of each lighting domain (I_t+, I_s-): ``recall`` gives, for each image of a
    batch, the stored image of its domain (the image itself where its domain has none yet, or a stored one
    of another shape); ``store`` keeps the batch's last image of each of its domains. Checkpointed with the
    pools (the images and their domains)."""

    def __init__(self) -> None:
        super().__init__(0, 0)
        self.domains: list[str] = []

    def recall(self, images: torch.Tensor, domains: tuple[str, ...]) -> torch.Tensor:
        last = dict(zip(self.domains, self.images, strict=True))
        return torch.cat([last[d] if d in last and last[d].shape == x[None].shape else x[None].detach()
                          for x, d in zip(images, domains, strict=True)])

    def store(self, images: torch.Tensor, domains: tuple[str, ...]) -> None:
        last = dict(zip(self.domains, self.images, strict=True))
        last.update({d: x[None].detach().clone() for x, d in zip(images, domains, strict=True)})
        self.domains, self.images = sorted(last), [last[d] for d in sorted(last)]

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "domains": list(self.domains)}

    def load_state_dict(self, state: dict[str, Any], device: torch.device | str = "cpu") -> None:
        super().load_state_dict(state, device)
        self.domains = list(state.get("domains", []))
        if len(self.domains) != len(self.images):  # a two-domain checkpoint's one-batch history: none kept
            self.domains, self.images = [], []


class _Queue(ImagePool):
    """FIFO of the last ``size`` detached real images (rows): the NCE negatives, embedded anew at every step."""

    def negatives(self) -> list[torch.Tensor]:
        """The queued images, concatenated per run of one shape (the last batch of an epoch may differ)."""
        runs: list[list[torch.Tensor]] = []
        for x in self.images:
            if runs and runs[-1][-1].shape == x.shape:
                runs[-1].append(x)
            else:
                runs.append([x])
        return [torch.cat(r) for r in runs]

    def push(self, rows: torch.Tensor) -> None:
        if self.size <= 0:
            return
        self.images += [r[None].detach().clone() for r in rows]
        self.images = self.images[-self.size:]


def _adv(pred: torch.Tensor, real: bool, mode: str) -> torch.Tensor:
    if mode == "lsgan":
        return ((pred - (1.0 if real else 0.0)) ** 2).mean()
    target = torch.ones_like(pred) if real else torch.zeros_like(pred)
    return F.binary_cross_entropy_with_logits(pred, target)


def _swap(x: torch.Tensor) -> torch.Tensor:
    """[a; b] -> [b; a]: the targets of the sources [a; b] of a batch of pairs (a_i, b_i) used both ways."""
    h = len(x) // 2
    return torch.cat([x[h:], x[:h]])


@register_family
class Mduit(GanBundle):
    name = "mduit"
    title = "MDUIT"
    Settings = MduitSettings
    generator_name = "generator"
    paper_counts_plain: ClassVar[bool] = True   # not in Table 8: the plain count
    multi_domain: ClassVar[bool] = True         # trains on every lighting domain (domains.tsv)

    @classmethod
    def block_specs(cls, setup: GanSetup) -> list[BlockSpec]:
        s = setup.settings
        c, c_vgg = 4 * s.ngf, vgg_channels(s.vgg_width)[2]
        return [
            BlockSpec("content_encoder", "generator", lambda: ContentEncoder(s.ngf, s.n_blocks_content)),
            BlockSpec("appearance_encoder", "generator", lambda: AppearanceEncoder(
                c_vgg, s.appearance_width, c, s.filter_groups, s.filter_size, s.filter_bias)),
            BlockSpec("generator", "generator", lambda: AppearanceGenerator(s.ngf, s.n_blocks_generator)),
            BlockSpec("discriminator_image", "discriminator", lambda: PatchGAN(s.ndf, s.n_layers_d, s.norm_d)),
            BlockSpec("discriminator_appearance", "discriminator",
                      lambda: PatchGAN(s.ndf, s.n_layers_d, s.norm_d, in_channels=6)),
            BlockSpec("head", "head", lambda: ContentHead(c, s.head_dim), family_init=s.head_init == "family"),
            BlockSpec("vgg", "frozen", lambda: VggRelu33(s.vgg_width)),
        ]

    def __init__(self, setup: GanSetup, device: torch.device | str = "cpu", seed: int = 0) -> None:
        super().__init__(setup, device, seed)
        if self.settings.vgg_weights is not None:
            load_vgg_file(self.nets["vgg"], self.settings.vgg_weights)
        self.pools = {"previous": _DomainHistory(), "negatives": _Queue(self.settings.nce_negatives, 0)}
        c_vgg = vgg_channels(self.settings.vgg_width)[2]
        # not checkpointed: the last batch's nights (sample grids), then the training nights (prepare_translator)
        self.bank = torch.zeros(0, c_vgg, device=self.device)

    # -- translator ----------------------------------------------------------------------------
    @classmethod
    def translator_net(cls, setup: GanSetup, state_dict: Mapping[str, torch.Tensor]) -> nn.Module:
        nets = {s.name: s.build() for s in cls.block_specs(setup) if s.role == "generator"}
        return MduitTranslator(nets["content_encoder"], nets["appearance_encoder"], nets["generator"],
                               torch.zeros_like(state_dict["bank"], device="cpu"), setup.settings.filter_groups)

    @classmethod
    def content_embedding(cls, setup: GanSetup, nets: Mapping[str, nn.Module] | None = None) -> ContentEmbedding:
        """z_s = H(E_c(x)) (§3.3's retrieval-based localization): E_c's (B, 4 ngf, h, w) map, then the head."""
        s = setup.settings
        if nets is None:
            nets = {b.name: b.build() for b in cls.block_specs(setup) if b.name in ("content_encoder", "head")}
        return ContentEmbedding(nets["content_encoder"], nets["head"], 4 * s.ngf, s.head_dim)

    def generator(self) -> nn.Module:
        n = self.nets
        t = MduitTranslator(n["content_encoder"], n["appearance_encoder"], n["generator"], self.bank,
                            self.settings.filter_groups)
        return t.train(n["generator"].training)

    @torch.no_grad()
    def descriptors(self, images: Iterable[torch.Tensor]) -> torch.Tensor:
        """Pooled relu3_3 descriptors (N, c_vgg) of (B, 3, H, W) batches in [-1, 1]."""
        vgg = self.nets["vgg"]
        out = [vgg.descriptor(x.to(self.device)) for x in images]
        return torch.cat(out) if out else self.bank[:0]

    def prepare_translator(self, nights: Iterable[torch.Tensor]) -> None:
        self.bank = self.descriptors(nights)

    # -- pairs by content similarity (to be called by the training loop, see the module docstring) ---------
    @torch.no_grad()
    def embed_contents(self, images: Iterable[torch.Tensor]) -> torch.Tensor:
        """H(E_c(x)) (N, K) of (B, 3, H, W) batches in [-1, 1], networks in eval mode (no norm statistics
        move; instance and layer norm have none anyway)."""
        e, h = self.nets["content_encoder"], self.nets["head"]
        modes = e.training, h.training
        e.eval()
        h.eval()
        z = torch.cat([h(e(x.to(self.device))) for x in images])
        e.train(modes[0])
        h.train(modes[1])
        return z

    def choose_pairs(self, images: Iterable[torch.Tensor], domains: np.ndarray, n_pairs: int,
                     rng: np.random.Generator) -> np.ndarray:
        """The epoch's (source, target) index pairs of different domains by content similarity
        (:func:`content_pairs`) of all the training images (centre squares at the crop size, (1, 3, crop, crop)
        in [-1, 1], in list order), with the networks as the epoch starts (restored by a resume, so the pairs
        repeat); only ``rng`` is drawn."""
        return content_pairs(self.embed_contents(images), domains, n_pairs, rng)

    # -- one step ------------------------------------------------------------------------------
    def train_step(self, batch: DomainBatch | tuple[torch.Tensor, torch.Tensor]) -> dict[str, float]:
        """One step on a :class:`DomainBatch` of (source, target) pairs, each used both ways (a (day, night)
        tuple: the domains ``day`` and ``night``)."""
        s, n = self.settings, self.nets
        if not isinstance(batch, DomainBatch):
            batch = DomainBatch(*batch, ("day",) * len(batch[0]), (NIGHT,) * len(batch[1]))
        a, b = (t.to(self.device) for t in batch[:2])
        e_c, e_a, g, h, vgg = (n[k] for k in ("content_encoder", "appearance_encoder", "generator", "head", "vgg"))
        d_i, d_a = n["discriminator_image"], n["discriminator_appearance"]
        mode, groups = s.adversarial, s.filter_groups

        src = torch.cat([a, b])                    # I_s; the targets I_t = _swap(src), of other domains
        src_domains = batch.source_domains + batch.target_domains
        if s.translation == "colour-jitter":       # 'w/o I2I': the contrastive module alone
            return self._contrastive_step(src, src_domains)
        tgt = _swap(src)
        history = self.pools["previous"]
        prev = history.recall(src, src_domains)    # of the sources' domains: I_s- = prev, I_t+ = _swap(prev)
        history.store(src, src_domains)
        with torch.no_grad():
            desc = vgg.descriptor(src)
        w_s, b_s = e_a(desc)
        w_t, b_t = _swap(w_s), (_swap(b_s) if b_s is not None else None)
        f_s = e_c(src)
        out = g(dynamic_conv(torch.cat([f_s, f_s]), torch.cat([w_t, w_s]),
                             torch.cat([b_t, b_s]) if b_s is not None else None, groups))
        fake, self_rec = out[:len(src)], out[len(src):]
        f_st = e_c(fake)
        w_st, _ = e_a(vgg.descriptor(fake))        # the frozen trunk passes the gradient to the fake
        cyc = g(dynamic_conv(f_st, w_s, b_s, groups))
        f_neg = e_c(prev)

        set_requires_grad([d_i, d_a], True)
        fd = fake.detach()
        loss_di = 2.0 * _adv(d_i(src), True, mode) + _adv(d_i(fd), False, mode)
        loss_da = (_adv(d_a(torch.cat([tgt, _swap(prev)], 1)), True, mode)
                   + _adv(d_a(torch.cat([tgt, fd], 1)), False, mode))
        self.optimise(loss_di + loss_da, "discriminator_image", "discriminator_appearance")
        set_requires_grad([d_i, d_a], False)

        adv = s.adv_weight * (_adv(d_i(fake), True, mode) + _adv(d_a(torch.cat([tgt, fake], 1)), True, mode))
        rec_self = s.self_weight * l1(self_rec, src)
        rec_cyc = s.cycle_weight * l1(cyc, src)
        con_c = s.content_weight * content_consistency(f_s, f_st, f_neg, s.content_margin)
        con_a = s.filter_weight * filter_consistency(w_t, w_st, w_s)   # I_t- = I_s, of another domain
        z_s, z_st = h(f_s), h(f_st)
        contrast = self._contrast(z_s, z_st)
        loss_g = adv + rec_self + rec_cyc + con_c + con_a + contrast
        self.optimise(loss_g, "content_encoder", "appearance_encoder", "generator", "head")
        self._remember(z_s, src, desc, src_domains)
        return {"G": float(loss_g.detach()), "G_adv": float(adv.detach()), "rec_self": float(rec_self.detach()),
                "rec_cyc": float(rec_cyc.detach()), "con_c": float(con_c.detach()), "con_a": float(con_a.detach()),
                self._contrast_key(): float(contrast.detach()), "D_i": float(loss_di.detach()),
                "D_a": float(loss_da.detach())}

    def _contrast(self, z_s: torch.Tensor, z_st: torch.Tensor) -> torch.Tensor:
        """The weighted contrastive term of eq. 6 (NCE against the queue's negatives, or the L1 consistency)."""
        s = self.settings
        negatives = None
        if s.consistency == "nce":
            e_c, h = self.nets["content_encoder"], self.nets["head"]
            images = self.pools["negatives"].negatives()
            negatives = torch.cat([h(e_c(x.to(self.device))) for x in images]) if images else None
        return s.nce_weight * consistency_loss(z_s, z_st, negatives, s.consistency, s.nce_temperature)

    def _contrast_key(self) -> str:
        return "NCE" if self.settings.consistency == "nce" else "L1_z"

    def _remember(self, z_s: torch.Tensor, src: torch.Tensor, desc: torch.Tensor | None,
                  src_domains: tuple[str, ...]) -> None:
        """After a step: the source images join the NCE negatives (the L1 term has none), and the batch's
        nights become the sample grids' bank (any appearance until the first night is seen), from the step's
        pooled relu3_3 ``desc`` of ``src`` (None: computed here, only for the rows kept)."""
        if self.settings.consistency == "nce":
            self.pools["negatives"].push(src)
        nights = [i for i, d in enumerate(src_domains) if d == NIGHT]
        if nights or not len(self.bank):
            rows = nights or slice(None)
            if desc is None:
                with torch.no_grad():
                    desc = self.nets["vgg"].descriptor(src[rows])
                rows = slice(None)
            self.bank = desc[rows].detach()

    def _contrastive_step(self, src: torch.Tensor, src_domains: tuple[str, ...]) -> dict[str, float]:
        """Table 1's 'w/o I2I' step: E_c and H only, I_s against its colour jitter (the I2I module untrained)."""
        s, n = self.settings, self.nets
        e_c, h = n["content_encoder"], n["head"]
        jittered = colour_jitter(src, self.rng, s.jitter_brightness, s.jitter_contrast, s.jitter_saturation,
                                 s.jitter_hue)
        z_s, z_st = h(e_c(src)), h(e_c(jittered))
        contrast = self._contrast(z_s, z_st)
        self.optimise(contrast, "content_encoder", "head")
        self._remember(z_s, src, None, src_domains)  # the untrained translator still paints the sample grids
        value = float(contrast.detach())
        return {"G": value, "G_adv": 0.0, self._contrast_key(): value}
