"""CIConv (Lengyel, Garg, Milford, van Gemert, ICCV 2021): a colour-invariant layer in front of a GeM network.

The layer reads raw RGB in [0, 1] (it undoes the ImageNet normalisation every network receives), estimates the
Gaussian colour model (E, E_lambda, E_lambdalambda: a fixed linear map of RGB), takes Gaussian derivatives of
the three at one learnable scale sigma = 2 ** scale, and forms the W invariant

    W = sum over c in (E, E_l, E_ll), d in (x, y) of (c_d / (E + eps)) ** 2,

which does not change when the image is multiplied by a constant (a darker or brighter scene): the derivatives
and E scale alike. Its output, log(W + eps) normalised per image (instance normalisation, no affine), is one
channel, fed to the trunk through its first convolution summed over RGB (:func:`adapt_first_conv`, as the
authors adapted ImageNet weights where they had no W-trained ones). GeM pooling and L2 follow, as in GeM.

Facts taken from the authors' description and code (Attila94/CIConv, ``method/ciconv2d.py``, and their
cirtorch fork that trained the retrieval model): the colour-model matrix; W (the invariant their retrieval
model ``w_resnet101`` uses); filters truncated at ceil(k * sigma + 0.5) pixels with k = 3, the Gaussian
normalised to sum 1 and each derivative filter to absolute sum 1, zero "same" padding; the scale initialised
0 (sigma 1) and its stored value clamped to [-2.5, 2.5]; eps 1e-5 in W and in the log; instance normalisation
after the log; the scale trains with the trunk's learning rate and weight decay (it sits among the features);
the network sees RGB in [0, 1] (the fork trains with mean 0, std 1).

Choices of this suite (recorded, not the authors'):
- training: the preset's ``finetune`` schedule, as for GeM. The fork's launch script matches the paper preset
  (Adam 5e-7, weight decay 5e-4, margin 0.85, 5 negatives, 2,000 anchors, batch 5, max side 362) except that
  it mines from 20,000 images (preset 22,000) and leaves cirtorch's default of 100 epochs (preset 40); the
  preset's values keep the row comparable with GeM, differing only by the layer;
- initialisation: the backbone's ImageNet (mini: stand-in) weights with the first convolution summed over
  RGB; the authors started from a ResNet-101 trained on ImageNet with the W layer (``w_resnet101.pth``),
  which the suite does not have, so this is CIConv retrained with this suite's recipe, not their model. Their
  fine-tuned retrieval model (a cirtorch checkpoint) was fetched from an AARNet CloudStor share, a service
  retired in 2023, so Table 1's rows do not score it and their cells say so;
- x and y are columns and rows, and the derivative filter's sign is that of d/dx (W squares it);
- the layer runs in float32 even under mixed precision (a ratio and a log of small numbers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from darkside.config import BackboneSpec
from darkside.embed.network import IMAGENET_MEAN, IMAGENET_STD, EmbeddingNet
from darkside.embed.networks import Network, NetworkSettings, adapt_first_conv, register_network
from darkside.settings import setting

#: RGB -> (E, E_lambda, E_lambdalambda), the Gaussian colour model's estimate from RGB (rows), as CIConv uses it
GAUSSIAN_COLOUR_MODEL: tuple[tuple[float, float, float], ...] = (
    (0.06, 0.63, 0.27),
    (0.30, 0.04, -0.35),
    (0.34, -0.60, 0.17),
)


@dataclass(frozen=True)
class CIConvSettings(NetworkSettings):
    """The W layer's numbers (the authors' values); the training schedule is the preset's ``finetune``."""

    scale: float = setting("initial log2 of the derivative filters' sigma (CIConv: 0, sigma 1)", default=0.0)
    scale_limit: float = setting("the learned scale is clamped to [-limit, limit] (CIConv: 2.5)", gt=0,
                                 default=2.5)
    truncate: float = setting("filters reach ceil(truncate * sigma + 0.5) pixels from their centre (CIConv: 3)",
                              gt=0, default=3.0)
    eps: float = setting("added to E in W's denominators and to W in the log (CIConv: 1e-5)", gt=0,
                         default=1e-5)


def gaussian_colour_model(rgb: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB in [0, 1] -> (B, 3, H, W) (E, E_lambda, E_lambdalambda)."""
    m = torch.tensor(GAUSSIAN_COLOUR_MODEL, dtype=rgb.dtype, device=rgb.device)
    return F.conv2d(rgb, m.view(3, 3, 1, 1))


def filter_radius(sigma: float, truncate: float) -> int:
    """Half-width of the filters at ``sigma``: ceil(truncate * sigma + 0.5)."""
    return math.ceil(truncate * sigma + 0.5)


def gaussian_derivative_filters(sigma: torch.Tensor, truncate: float) -> torch.Tensor:
    """(2, K) one-dimensional filters for cross-correlation: the Gaussian g (sum 1) and its derivative (absolute
    sum 1), K = 2r + 1 with r = :func:`filter_radius` (the size follows the current sigma).

    The 2-D filters are their products: G(y, x) = g(y) g(x) (sum 1), G_x = g(y) d(x) and G_y = d(y) g(x)
    (absolute sum 1 each, as the normalisations factorise).
    ``sigma`` is a tensor so that the responses are differentiable in it.
    """
    r = filter_radius(float(sigma.detach()), truncate)
    t = torch.arange(-r, r + 1, dtype=sigma.dtype, device=sigma.device)
    g = torch.exp(-(t ** 2) / (2 * sigma ** 2))
    # correlating with t * g gives sum_t f(p + t) t g(t): the sign of the derivative of f
    return torch.stack([g / g.sum(), t * g / (t * g).abs().sum()])


def filter_colour_model(colour: torch.Tensor, filters: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) colour model -> (B, 9, H, W): per channel its Gaussian smoothing, d/dx and d/dy (zero "same"
    padding), ordered (E, E_x, E_y, El, El_x, El_y, Ell, Ell_x, Ell_y); ``filters``: the (2, K) pair."""
    b, c, h, w = colour.shape
    g, d = filters
    kernels = torch.stack([torch.outer(g, g), torch.outer(g, d), torch.outer(d, g)])[:, None]  # rows y, columns x
    # the channels as a batch of single-channel images: on the CPU twice as fast as a grouped convolution and
    # faster than two 1-D passes (forward and backward to sigma, benchmarked at the mini sizes)
    out = F.conv2d(colour.reshape(b * c, 1, h, w), kernels, padding=kernels.shape[-1] // 2)
    return out.reshape(b, 3 * c, h, w)


def w_invariant(responses: torch.Tensor, eps: float) -> torch.Tensor:
    """W from the filtered colour model: (B, 9, H, W) ordered (E, E_x, E_y, El, El_x, El_y, Ell, Ell_x, Ell_y)
    -> (B, 1, H, W); the smoothed E_lambda and E_lambdalambda do not enter W."""
    e = responses[:, 0:1]
    derivatives = responses[:, [1, 2, 4, 5, 7, 8]]
    return (derivatives / (e + eps)).pow(2).sum(dim=1, keepdim=True)


class ColourInvariant(nn.Module):
    """The W layer: ImageNet-normalised RGB -> one channel, instance-normalised log W at a learned scale."""

    def __init__(self, settings: CIConvSettings) -> None:
        super().__init__()
        self.truncate, self.eps, self.limit = settings.truncate, settings.eps, settings.scale_limit
        self.scale = nn.Parameter(torch.tensor([float(settings.scale)]))
        # buffers (not in the state dict): every network receives the same normalisation (network.py)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @property
    def sigma(self) -> float:
        return float(2.0 ** self.scale.detach().clamp(-self.limit, self.limit))

    def invariant(self, rgb: torch.Tensor) -> torch.Tensor:
        """W of (B, 3, H, W) RGB in [0, 1], before the log and the normalisation."""
        # the authors clamp the stored value (it can come back from the bound, unlike a clamp in the graph); only
        # when it is out of range, i.e. after an optimiser step: an in-place change of a value in range would
        # break the backward pass of the earlier forwards of a tuple that share the graph
        if not -self.limit <= float(self.scale.detach()) <= self.limit:
            with torch.no_grad():
                self.scale.clamp_(-self.limit, self.limit)
        filters = gaussian_derivative_filters(2.0 ** self.scale[0], self.truncate).to(rgb.dtype)
        return w_invariant(filter_colour_model(gaussian_colour_model(rgb), filters), self.eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=x.device.type, enabled=False):
            rgb = x.float().contiguous() * self.std + self.mean
            return F.instance_norm(torch.log(self.invariant(rgb) + self.eps))

    def extra_repr(self) -> str:
        return f"invariant=W, sigma={self.sigma:.4f}, truncate={self.truncate}, eps={self.eps}"


def build(trunk: nn.Sequential, channels: int, spec: BackboneSpec, settings: CIConvSettings) -> EmbeddingNet:
    return EmbeddingNet(adapt_first_conv(trunk, 1), channels, spec, stem=ColourInvariant(settings))


register_network("ciconv", Network(settings=CIConvSettings, build=build))
