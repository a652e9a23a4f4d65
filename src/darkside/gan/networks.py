"""ResNet generator, 70x70 PatchGAN and the weight initialisations gandtr and CycleGAN use.

Written from the architecture description in the CycleGAN paper / SPEC §5 (no code copied). The
parameter counts at the paper widths are pinned by tests (reference notes §4.1):
ResNet-9 instance 11,378,179, batch 11,383,427; PatchGAN n3 instance 2,764,737, batch 2,765,633.
The antialiased generator (official CUT) has the same count: its blur filters are buffers.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from darkside.errors import ConfigError

NORMS = ("instance", "batch")
INITS = ("normal", "kaiming", "xavier")


def norm_layer(norm: str) -> Callable[[int], nn.Module]:
    """Norm factory. Instance norm has no affine and no running stats (CycleGAN's choice);
    batch norm is affine with running statistics, so train/eval mode matters at inference."""
    if norm == "instance":
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    if norm == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    raise ConfigError(f"gan.norm: {norm!r} is not one of {list(NORMS)}")


def _conv_bias(norm: str) -> bool:
    # An affine batch norm right after a conv makes the conv bias redundant; instance norm
    # without affine does not, so CycleGAN keeps the bias there. This decides the parameter count.
    return norm == "instance"


class ResnetBlock(nn.Module):
    """pad-conv-norm-ReLU-pad-conv-norm with an identity skip and no activation after the sum."""

    def __init__(self, dim: int, norm: str) -> None:
        super().__init__()
        nl, bias = norm_layer(norm), _conv_bias(norm)
        self.block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), nl(dim), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), nl(dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class BlurDown(nn.Module):
    """Antialiased stride-2 downsampling: a fixed [1, 2, 1] x [1, 2, 1] / 16 blur per channel, reflect-padded,
    sampled every second pixel (Zhang 2019, as official CUT's ``Downsample``). No parameters."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        k = torch.tensor([1.0, 2.0, 1.0])
        self.register_buffer("kernel", (k[:, None] * k[None, :] / 16).expand(channels, 1, 3, 3).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), self.kernel, stride=2, groups=x.shape[1])


class BlurUp(nn.Module):
    """Antialiased x2 upsampling: a transposed conv with the fixed [1, 3, 3, 1] x [1, 3, 3, 1] / 16 kernel per
    channel (each output phase sums to one, so a constant image stays constant), replicate-padded by one and
    cropped to exactly twice the input size (as official CUT's ``Upsample``). No parameters."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        k = torch.tensor([1.0, 3.0, 3.0, 1.0])
        self.register_buffer("kernel", (k[:, None] * k[None, :] / 16).expand(channels, 1, 4, 4).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # padded size n + 2 -> (n + 1) * 2 - 2 * 3 + 4 = 2n
        return F.conv_transpose2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), self.kernel, stride=2, padding=3,
                                  groups=x.shape[1])


class ResnetGenerator(nn.Module):
    """Image-to-image ResNet generator: c7s1-ngf, two stride-2 downs, n_blocks residual blocks,
    two transposed-conv ups, c7s1-3 and tanh. Input and output are images in [-1, 1].

    ``antialias`` (official CUT): each down is a stride-1 conv, norm, ReLU and a blur-pool; each up a blur
    upsampling, a stride-1 conv, norm and ReLU. ``encoder_layers`` is the number of leading modules of
    ``model`` that form the encoder (CUT's NCE layers index ``model``).
    """

    def __init__(self, ngf: int = 64, n_blocks: int = 9, norm: str = "instance",
                 in_channels: int = 3, out_channels: int = 3, antialias: bool = False) -> None:
        super().__init__()
        nl, bias = norm_layer(norm), _conv_bias(norm)
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, ngf, 7, bias=bias),
                                   nl(ngf), nn.ReLU(True)]
        ch = ngf
        for _ in range(2):
            if antialias:
                layers += [nn.Conv2d(ch, ch * 2, 3, stride=1, padding=1, bias=bias), nl(ch * 2), nn.ReLU(True),
                           BlurDown(ch * 2)]
            else:
                layers += [nn.Conv2d(ch, ch * 2, 3, stride=2, padding=1, bias=bias), nl(ch * 2), nn.ReLU(True)]
            ch *= 2
        layers += [ResnetBlock(ch, norm) for _ in range(n_blocks)]
        self.encoder_layers = len(layers)
        for _ in range(2):
            if antialias:
                layers += [BlurUp(ch), nn.Conv2d(ch, ch // 2, 3, stride=1, padding=1, bias=bias), nl(ch // 2),
                           nn.ReLU(True)]
            else:
                layers += [nn.ConvTranspose2d(ch, ch // 2, 3, stride=2, padding=1, output_padding=1, bias=bias),
                           nl(ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ch, out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def encode(self, x: torch.Tensor, layers: tuple[int, ...]) -> list[torch.Tensor]:
        """The outputs of the modules ``layers`` (indices into ``model``, all in the encoder), in that order."""
        feats: dict[int, torch.Tensor] = {}
        for i, m in enumerate(self.model[:max(layers) + 1]):
            x = m(x)
            feats[i] = x
        return [feats[i] for i in layers]


def encoder_channels(ngf: int, n_blocks: int, antialias: bool, in_channels: int = 3) -> list[int]:
    """Output channels of each encoder module of :class:`ResnetGenerator` (its ``encoder_layers`` modules):
    c7s1 (pad, conv, norm, ReLU), two downs (conv, norm, ReLU and, antialiased, a blur-pool), the blocks."""
    per_down = 4 if antialias else 3
    downs = [c for k in (2, 4) for c in [ngf * k] * per_down]
    return [in_channels, ngf, ngf, ngf, *downs, *[ngf * 4] * n_blocks]


class PatchGAN(nn.Module):
    """70x70 PatchGAN (n_layers=3): 4x4 convs ndf stride 2 (no norm), then doubling widths (capped
    at 8*ndf) stride 2, one stride-1 layer, and a 1-channel stride-1 logit map; LeakyReLU 0.2."""

    def __init__(self, ndf: int = 64, n_layers: int = 3, norm: str = "instance",
                 in_channels: int = 3) -> None:
        super().__init__()
        nl, bias = norm_layer(norm), _conv_bias(norm)
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1),
                                   nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2 ** n, 8)
            stride = 2 if n < n_layers else 1
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=stride, padding=1, bias=bias),
                       nl(ndf * mult), nn.LeakyReLU(0.2, True)]
        layers += [nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def init_weights(net: nn.Module, kind: str, gain: float, zero_bias: bool = True) -> nn.Module:
    """Initialise ``net`` in place and return it.

    ``normal``: conv/linear weights ~ N(0, gain) (see the CycleGAN family for the gains); ``kaiming``:
    Kaiming-normal fan-in; ``xavier``: Xavier-normal with ``gain`` (official CUT). All: biases 0, batch-norm
    weights ~ N(1, gain), batch-norm biases 0 (conv/linear biases keep PyTorch's default unless ``zero_bias``).
    """
    if kind not in INITS:
        raise ConfigError(f"gan.init: {kind!r} is not one of {list(INITS)}")
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            if kind == "normal":
                nn.init.normal_(m.weight, 0.0, gain)
            elif kind == "xavier":
                nn.init.xavier_normal_(m.weight, gain=gain)
            else:
                nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
            if m.bias is not None and zero_bias:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
    return net


def count_params(net: nn.Module) -> int:
    """Number of parameters (weights, biases, affine norm terms; buffers excluded)."""
    return sum(p.numel() for p in net.parameters())
