"""The registry of descriptor networks: building, the model file's record, schedule departures, stems' trunks."""

from dataclasses import dataclass

import pytest
import torch
from torch import nn

from darkside.config import BackboneSpec
from darkside.embed import networks
from darkside.embed.backbones import build_backbone
from darkside.embed.network import EmbeddingNet, build_embedding_net, load_model, save_model
from darkside.embed.networks import (
    Network,
    NetworkSettings,
    adapt_first_conv,
    build_network,
    parse_network_settings,
    rebuild_around,
    register_network,
)
from darkside.embed.pooling import MAC, mac
from darkside.errors import ConfigError, DarksideError
from darkside.recipes import FinetuneSettings
from darkside.settings import setting

torch.set_num_threads(1)
VGG = BackboneSpec("vgg16", 0.0625, None, "random", None, "vgg16")


@dataclass(frozen=True)
class GreyMacSettings(NetworkSettings):
    gain: float = setting("scales the grey input", gt=0, default=1.0)


class Grey(nn.Module):
    def __init__(self, gain: float) -> None:
        super().__init__()
        self.gain = gain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gain * x.mean(dim=1, keepdim=True)


def _grey_mac(trunk: nn.Sequential, channels: int, spec: BackboneSpec, s: GreyMacSettings) -> EmbeddingNet:
    return EmbeddingNet(adapt_first_conv(trunk, 1), channels, spec, pool=MAC(), stem=Grey(s.gain))


@pytest.fixture
def grey_mac():
    """A throw-away network (a grey stem, a single-channel trunk, MAC), registered for one test."""
    register_network("greymac", Network(settings=GreyMacSettings, build=_grey_mac))
    yield "greymac"
    del networks.NETWORKS["greymac"]


def test_the_default_network_is_gem_and_off_the_shelf_models_record_it():
    net = build_embedding_net(VGG)
    assert net.meta["network"]["name"] == "gem" and net.network_name == "gem"
    assert net.multiscale_p == net.gem_p == 3.0
    # a GeM recipe fine-tunes the very network it loaded: nothing is rebuilt
    assert rebuild_around(net, "gem", parse_network_settings("gem", None, "gem")) is net


def test_mac_is_the_spatial_maximum_and_sums_its_scales():
    x = torch.tensor([[[[1.0, -2.0], [3.0, 0.5]], [[-1.0, -4.0], [-0.5, -3.0]]]])
    assert mac(x).tolist() == [[3.0, -0.5]]
    assert MAC.multiscale_p == 1.0


def test_first_convolution_summed_over_rgb_gives_grey_images_the_rgb_response():
    trunk, _ = build_backbone(VGG, seed=0)
    first = next(m for m in trunk.modules() if isinstance(m, nn.Conv2d))
    g = torch.rand(2, 1, 20, 20)
    want = first(g.expand(-1, 3, -1, -1))
    adapted = adapt_first_conv(trunk, 1)
    conv = next(m for m in adapted.modules() if isinstance(m, nn.Conv2d))
    assert conv.in_channels == 1 and conv is not first
    torch.testing.assert_close(conv(g), want, rtol=1e-5, atol=1e-5)
    with pytest.raises(DarksideError, match="only to 1"):
        adapt_first_conv(build_backbone(VGG)[0], 2)


def test_a_network_of_its_own_round_trips_through_its_model_file(grey_mac, tmp_path):
    trunk, channels = build_backbone(VGG, seed=0)
    settings = parse_network_settings(grey_mac, {"gain": 2.0, "margin": 0.7}, "networks.greymac")
    net = build_network(grey_mac, settings, trunk, channels, VGG).eval()
    assert net.meta["network"] == {"name": "greymac", "settings": {
        "margin": 0.7, "lr": None, "weight_decay": None, "lr_gamma": None, "epochs": None, "image_size": None,
        "gain": 2.0}}
    x = torch.rand(2, 3, 32, 40)
    loaded = load_model(save_model(net, tmp_path / "m.pt"))
    assert isinstance(loaded.stem, Grey) and loaded.stem.gain == 2.0 and isinstance(loaded.pool, MAC)
    assert loaded.multiscale_p == 1.0
    torch.testing.assert_close(loaded(x), net(x))


def test_rebuilding_around_a_gem_model_keeps_its_trunk_and_preprocessing(grey_mac):
    gem = build_embedding_net(VGG)
    gem.preprocessing = {"clahe": {"clip_limit": 1.0, "grid": 8}}
    net = rebuild_around(gem, grey_mac, parse_network_settings(grey_mac, None, "networks.greymac"))
    assert net.network_name == "greymac" and net.backbone is gem.backbone
    assert net.preprocessing == gem.preprocessing


def test_schedule_departures_replace_the_presets_values_and_only_those():
    base = FinetuneSettings(margins={"vgg16": 0.75, "resnet101": 0.85}, lr=1e-3, betas=(0.9, 0.999),
                            weight_decay=5e-4, gem_lr_multiplier=10.0, gem_weight_decay=0.0, lr_gamma=0.99,
                            epochs=40, anchors_per_epoch=10, anchor_pool=20, negative_pool=20, negatives=5,
                            tuples_per_batch=5, image_size=362, seed=0, val_every=1, band=(0.2, 0.8),
                            clahe_clip_limit=1.0, clahe_grid=8, mining_batch_size=8, cache_images=False)
    s = NetworkSettings(margin=0.7, lr=5e-6, epochs=20).schedule(base, "vgg16")
    assert s.margins == {"vgg16": 0.7, "resnet101": 0.85} and s.lr == 5e-6 and s.epochs == 20
    assert (s.weight_decay, s.lr_gamma, s.image_size) == (5e-4, 0.99, 362)
    assert NetworkSettings().schedule(base, "vgg16") == base


def test_unknown_networks_and_settings_are_named():
    with pytest.raises(DarksideError, match="network 'nope' is not one of"):
        parse_network_settings("nope", None, "networks.nope")
    with pytest.raises(ConfigError, match=r"networks\.gem\.gain: unknown key"):
        parse_network_settings("gem", {"gain": 1}, "networks.gem")
