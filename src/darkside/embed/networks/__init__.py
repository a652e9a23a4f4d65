"""Descriptor networks: what goes around the backbone trunk, one module per network, behind a tiny registry.

A network is the trunk's setting: an optional input stem in front of it (CIConv's colour-invariant layer,
EdgeMAC's edge detector and edge filter), the pooling head behind it (GeM, MAC, HOW's attention-weighted
local features) and the L2 normalisation. Each module here calls :func:`register_network` with

- its settings, a frozen dataclass subclassing :class:`NetworkSettings`, whose optional schedule fields
  override the preset's ``finetune`` where the network's own paper trains differently (EdgeMAC's margin
  0.7, HOW's Adam 5e-6...), and whose own fields are the network's numbers;
- ``build(trunk, channels, spec, settings)``: the :class:`~darkside.embed.network.EmbeddingNet` around a
  trunk with ``channels`` output channels;
- optionally ``prepare(net, pipeline, image_ids, device)``: a data-dependent initialisation run once before
  the first epoch of fine-tuning (HOW's PCA-whitening of local descriptors), never on resume.

A recipe names its network (``Recipe.network``, ``gem`` unless it says otherwise), params.yaml's
``networks.<name>`` holds its settings (absent: every default), and a model file records the network's name
and settings, so :func:`~darkside.embed.network.load_model` rebuilds it. Adding a network: one module here
and, where its numbers differ from the defaults, one entry in params.yaml.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from torch import nn

from darkside.config import BackboneSpec
from darkside.errors import DarksideError
from darkside.recipes import FinetuneSettings
from darkside.settings import parse, setting

if TYPE_CHECKING:
    from darkside.embed.network import EmbeddingNet

DEFAULT_NETWORK = "gem"


@dataclass(frozen=True)
class NetworkSettings:
    """Where a network's training departs from the preset's ``finetune`` schedule (null: the preset's)."""

    margin: float | None = setting("contrastive margin (null: finetune.margins of the backbone)", gt=0, default=None)
    lr: float | None = setting("Adam learning rate (null: finetune.lr)", gt=0, default=None)
    weight_decay: float | None = setting("(null: finetune.weight_decay)", ge=0, default=None)
    lr_gamma: float | None = setting("(null: finetune.lr_gamma)", gt=0, le=1, default=None)
    epochs: int | None = setting("(null: finetune.epochs)", ge=1, default=None)
    image_size: int | None = setting("max side of training images (null: finetune.image_size)", ge=1,
                                     default=None)

    def schedule(self, settings: FinetuneSettings, backbone: str) -> FinetuneSettings:
        """``settings`` with this network's departures applied (the margin for ``backbone``)."""
        changes: dict[str, Any] = {k: getattr(self, k) for k in ("lr", "weight_decay", "lr_gamma", "epochs",
                                                                  "image_size") if getattr(self, k) is not None}
        if self.margin is not None:
            changes["margins"] = {**settings.margins, backbone: self.margin}
        return dataclasses.replace(settings, **changes)

    def input_files(self) -> tuple[str, ...]:
        """Files the network reads when fine-tuning starts (a frozen stem's weights): the finetune job's inputs,
        and their digests are part of what a checkpoint must match to be resumed. Default: none."""
        return ()


Builder = Callable[[nn.Sequential, int, BackboneSpec, Any], "EmbeddingNet"]
Preparer = Callable[..., None]


@dataclass(frozen=True)
class Network:
    settings: type[NetworkSettings]
    build: Builder
    prepare: Preparer | None = None
    # its head gives local descriptors (``local_features``, HOW): extracted with ``--local``, ranked by ASMK
    local: bool = False


#: network name -> Network, filled by the modules of this package (imported below) and by plugins
NETWORKS: dict[str, Network] = {}


def register_network(name: str, network: Network) -> Network:
    if name in NETWORKS and NETWORKS[name] is not network:
        raise DarksideError(f"network {name!r} is registered twice")
    NETWORKS[name] = network
    return network


def network_settings() -> dict[str, type]:
    """network name -> its settings class (the schema of ``networks``)."""
    return {name: n.settings for name, n in NETWORKS.items()}


def get_network(name: str) -> Network:
    try:
        return NETWORKS[name]
    except KeyError:
        raise DarksideError(f"network {name!r} is not one of {sorted(NETWORKS)}") from None


def parse_network_settings(name: str, data: Mapping[str, Any] | None, where: str) -> NetworkSettings:
    """The typed settings of network ``name`` from its params entry (None: every default)."""
    return parse(get_network(name).settings, dict(data or {}), where)


def build_network(name: str, settings: NetworkSettings, trunk: nn.Sequential, channels: int,
                  spec: BackboneSpec) -> EmbeddingNet:
    """Network ``name`` around ``trunk``; the result records its name and settings for its model file."""
    from darkside.settings import to_plain

    net = get_network(name).build(trunk, channels, spec, settings)
    net.meta["network"] = {"name": name, "settings": to_plain(settings)}
    return net


def rebuild_around(net: EmbeddingNet, name: str, settings: NetworkSettings) -> EmbeddingNet:
    """Network ``name`` around ``net``'s trunk (its weights, spec, preprocessing and extras kept); ``net`` itself
    when it already is that network with those settings (fine-tuning a GeM recipe from the GeM init)."""
    # a network without a record (a stand-in module) is a GeM network
    record = (getattr(net, "meta", None) or {}).get("network") or {"name": DEFAULT_NETWORK, "settings": {}}
    if record["name"] == name and parse_network_settings(name, record["settings"], "network") == settings:
        return net
    new = build_network(name, settings, net.backbone, net.channels, net.spec)
    new.preprocessing, new.extra = dict(net.preprocessing), dict(net.extra)
    return new


def adapt_first_conv(trunk: nn.Module, in_channels: int) -> nn.Module:
    """Make the trunk's first convolution take ``in_channels`` (1: a single-channel input such as an edge map or
    a colour invariant), its filters summed over the RGB channels, as EdgeMAC initialised its single-channel VGG16
    from ImageNet: a grey image g then gives the same first-layer response as the RGB image (g, g, g)."""
    first = next((m for m in trunk.modules() if isinstance(m, nn.Conv2d)), None)
    if first is None:
        raise DarksideError("network: the trunk has no convolution to adapt")
    if first.in_channels == in_channels:
        return trunk
    if in_channels != 1:
        raise DarksideError(f"network: cannot adapt a {first.in_channels}-channel first convolution to "
                            f"{in_channels} channels (only to 1)")
    import torch

    conv = nn.Conv2d(1, first.out_channels, first.kernel_size, first.stride, first.padding, first.dilation,
                     first.groups, first.bias is not None, first.padding_mode)
    with torch.no_grad():
        conv.weight.copy_(first.weight.sum(dim=1, keepdim=True))
        if first.bias is not None:
            conv.bias.copy_(first.bias)
    for parent in trunk.modules():  # replace it where it sits
        for key, child in parent.named_children():
            if child is first:
                setattr(parent, key, conv)
                return trunk
    raise AssertionError("unreachable: the first convolution has a parent")


for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
