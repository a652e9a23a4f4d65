"""EdgeMAC (Radenovic, Tolias, Chum, "Deep Shape Matching", ECCV 2018) on HED, HED^N and RCF^N edges (Table 4).

The network: a FROZEN edge detector (HED or RCF, :mod:`darkside.gan.edges`) turns the image into a continuous
edge map (sigmoid, no binarisation: the paper's Dark Side setting), the learned edge filter
f(e) = w e^p / (1 + exp(-beta (e - tau))) sharpens it, and a single-channel VGG16 trunk (first-layer filters
summed over RGB, :func:`~darkside.embed.networks.adapt_first_conv`) reads it; MAC pooling and L2 (512-D at the
paper width). The filter map goes straight into the trunk: the original subtracts no mean (its average image is
scaled by 0).

One Settings class, one network name per Table 4 row: ``edgemac-hed`` (HEDMAC: the teacher, the published BSDS
weights at the paper preset, the DAG's pre-trained teacher in the mini one), ``edgemac-hedn`` (HED^N MAC: the
student trained inside HED^N GAN) and ``edgemac-rcfn`` (RCF^N MAC: RCF^N GAN's student). Which file the
detector's weights come from is the settings' ``weights`` (``weights_kind``: a detector weight file, or the
``generator.pt`` of a family that trains a student, which carries it); the DAG hands that file to the finetune
job. The weights are loaded once before the first epoch (``prepare``) and travel in the model file as the
stem's frozen parameters, so whitening, extraction and ``load_model`` need no detector file.

Choices beside the original (``../reference/anchors-eval.md`` section 2):

- training: gandtr's fine-tuning loop (Adam, the preset's lr, weight decay, lr decay and epochs), not the
  MatConvNet original's SGD (momentum 0.9, lr 1e-3 exp(-0.1 epoch), 20 epochs, weight decay 5e-4); only the
  margin (0.7) and the image size (362, the Dark Side setting) are EdgeMAC's;
- the filter's p and tau train at lr x10 with the optimiser's weight decay (gandtr's parameter group sets only
  the lr); the original trains p at lr x1 and tau at x0.1. w and beta are fixed in both;
- gandtr's numerics: e clamped to >= 1e-6 before the power, tau projected into [0.01, 0.9] before each forward,
  the exponent's input clipped at 50 (exp would overflow for small tau at e = 0);
- test: the suite's extraction (its scales, summed: MAC's power mean 1; the learned whitening of every model),
  edge maps computed at the test image size; the original zero-pads edge maps by 30 px, which is not done here;
- training data: the preset's training set (the original: SfM-30k edge maps precomputed with the
  structured-forest detector; the structured-forest row ``EdgeMAC [29]`` is not produced, see paper_tables.yaml).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from darkside.config import BackboneSpec
from darkside.embed.network import IMAGENET_MEAN, IMAGENET_STD, EmbeddingNet, min_input_side
from darkside.embed.networks import (
    Network,
    NetworkSettings,
    adapt_first_conv,
    parse_network_settings,
    register_network,
)
from darkside.embed.pooling import MAC
from darkside.errors import ConfigError, DarksideError
from darkside.gan.edges import DETECTORS, build_detector, load_detector_file
from darkside.settings import setting

#: gandtr's numerics of the filter (fixed, not settings: they keep the formula finite, they do not shape it)
EDGE_EPS = 1e-6
TAU_RANGE = (0.01, 0.9)
EXP_CLIP = 50.0


class EdgeFilter(nn.Module):
    """f(e) = w e^p / (1 + exp(-beta (e - tau))): a learned soft threshold of an edge map (p, tau learned).

    ``lr_multiplier``: fine-tuning trains this module's parameters at lr x this (finetune.parameter_groups).
    """

    def __init__(self, w: float = 10.0, p: float = 0.5, beta: float = 500.0, tau: float = 0.1,
                 lr_multiplier: float = 10.0) -> None:
        super().__init__()
        self.w, self.beta, self.lr_multiplier = float(w), float(beta), float(lr_multiplier)
        self.p = nn.Parameter(torch.tensor([float(p)]))
        self.tau = nn.Parameter(torch.tensor([float(tau)]))

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        lo, hi = TAU_RANGE
        if not lo <= float(self.tau.detach()) <= hi:  # a projection of the parameter itself, as gandtr's
            with torch.no_grad():
                self.tau.clamp_(lo, hi)
        gate = (-self.beta * (e - self.tau)).clamp(max=EXP_CLIP).exp() + 1.0
        return self.w * e.clamp(min=EDGE_EPS).pow(self.p) / gate


class EdgeStem(nn.Module):
    """ImageNet-normalised RGB -> the frozen detector's edge map (RGB in [0, 1] in) -> the edge filter."""

    def __init__(self, detector: nn.Module, edge_filter: EdgeFilter) -> None:
        super().__init__()
        self.detector = detector
        self.filter = edge_filter
        for q in self.detector.parameters():  # frozen: in the model file, never in the optimiser
            q.requires_grad_(False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.detector.eval()

    def train(self, mode: bool = True) -> EdgeStem:
        super().train(mode)
        self.detector.eval()  # frozen also in train mode (no dropout or batch statistics of its own)
        return self

    def edges(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) edge map in [0, 1] of normalised images ``x``; no gradients (nothing before it trains)."""
        with torch.no_grad():  # channels-last as the detector's weights (EmbeddingNet's layout): faster on the CPU
            return self.detector((x * self.std + self.mean).contiguous(memory_format=torch.channels_last))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.filter(self.edges(x))


@dataclass(frozen=True)
class EdgeMacSettings(NetworkSettings):
    """EdgeMAC's own numbers and where its detector comes from; margin and image size depart from ``finetune``."""

    margin: float | None = setting("contrastive margin (EdgeMAC: 0.7)", gt=0, default=0.7)
    image_size: int | None = setting("max side of training images (Dark Side: 362; null: finetune.image_size)",
                                     ge=1, default=362)
    detector: Literal["hed", "rcf"] = setting("the frozen edge detector of the stem", choices=tuple(DETECTORS),
                                              default="hed")
    width: float = setting("the detector's channel multiplier (as edges.detectors.<detector>)", gt=0, default=1.0)
    input: Literal["caffe255", "gandtr01"] = setting("the detector's input scaling (as edges.detectors)",
                                                     default="caffe255")
    weights: str | None = setting("the detector's weights, read once before fine-tuning (the model file then "
                                  "holds them)", default=None)
    weights_kind: Literal["detector", "student"] = setting(
        "detector: a detector weight file (published or the DAG's teacher); student: the generator.pt of a "
        "family that trains a night student (HED^N GAN, RCF^N GAN), whose student it carries", default="detector")
    filter_w: float = setting("edge filter: w (fixed)", gt=0, default=10.0)
    filter_p: float = setting("edge filter: initial p (learned)", gt=0, default=0.5)
    filter_beta: float = setting("edge filter: beta (fixed)", gt=0, default=500.0)
    filter_tau: float = setting("edge filter: initial tau (learned)", ge=TAU_RANGE[0], le=TAU_RANGE[1], default=0.1)
    filter_lr_multiplier: float = setting("edge filter's p and tau train at lr x this (gandtr: 10)", gt=0,
                                          default=10.0)

    def input_files(self) -> tuple[str, ...]:
        return () if self.weights is None else (self.weights,)


def build(trunk: nn.Sequential, channels: int, spec: BackboneSpec, s: EdgeMacSettings) -> EmbeddingNet:
    # the detector is built empty: its weights come from `prepare` (fine-tuning) or the model file (load_model)
    detector = build_detector(s.detector, s.width, s.input)
    stem = EdgeStem(detector, EdgeFilter(s.filter_w, s.filter_p, s.filter_beta, s.filter_tau,
                                         s.filter_lr_multiplier))
    net = EmbeddingNet(adapt_first_conv(trunk, 1), channels, spec, pool=MAC(), stem=stem)
    # the detector's own pools bound the smallest image too (HED and RCF: VGG16's four 2x2 pools)
    net.min_side = max(net.min_side, min_input_side(detector))
    return net


def detector_weights(s: EdgeMacSettings, where: str = "networks") -> nn.Module:
    """The detector of ``s`` with its weights loaded from ``s.weights`` (one-line errors naming the file)."""
    if s.weights is None:
        raise ConfigError(f"{where}.weights: EdgeMAC needs its detector's weight file")
    model = build_detector(s.detector, s.width, s.input)
    if s.weights_kind == "detector":
        return load_detector_file(model, s.weights)
    from darkside.gan.family import load_student

    student = load_student(s.weights)
    if type(student) is not type(model):
        raise DarksideError(f"{s.weights}: its student is a {type(student).__name__}, but {where}.detector is "
                            f"{s.detector!r}")
    try:
        if student.input_mode != model.input_mode:  # a scaling of the input, not a weight: compare it here
            raise RuntimeError("input")
        model.load_state_dict(student.state_dict())
    except RuntimeError:
        raise DarksideError(f"{s.weights}: its student's geometry differs from {where}.width / .input "
                            f"({s.width}, {s.input!r})") from None
    return model


def prepare(net: EmbeddingNet, pipeline: Any, image_ids: Any, device: torch.device) -> None:
    """Before the first epoch: the frozen detector's weights from the settings' file (never on resume: the
    checkpoint has them)."""
    record = net.meta["network"]
    where = f"networks.{record['name']}"
    s = parse_network_settings(record["name"], record["settings"], where)
    stem = net.stem
    assert isinstance(stem, EdgeStem)
    stem.detector.load_state_dict(detector_weights(s, where).state_dict())
    stem.detector.to(device)
    for q in stem.detector.parameters():
        q.requires_grad_(False)


_EDGEMAC = Network(settings=EdgeMacSettings, build=build, prepare=prepare)
for _name in ("edgemac-hed", "edgemac-hedn", "edgemac-rcfn"):  # one per Table 4 row; their params entries differ
    register_network(_name, _EDGEMAC)
