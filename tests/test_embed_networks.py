"""The registry of descriptor networks: building, the model file's record, schedule departures, stems' trunks."""

import math
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


# --- NetVLAD (MDUIT's Table 1 baseline) and a generator's content embedding (MDUIT's z_s) ------------------

def test_kmeans_by_hand():
    from darkside.embed.networks.netvlad import kmeans

    # two pairs of points; from any two distinct starting rows Lloyd's ends at the pairs' means
    x = torch.tensor([[0.0, 0.0], [0.0, 1.0], [10.0, 10.0], [10.0, 11.0]])
    for seed in range(4):
        c = kmeans(x, 2, 10, torch.Generator().manual_seed(seed))
        assert sorted(c.tolist()) == [[0.0, 0.5], [10.0, 10.5]]
    with pytest.raises(DarksideError, match="3 centres need at least as many features"):
        kmeans(x[:2], 3, 1, torch.Generator())


class _Images:
    """A fine-tuning pipeline's ``tensor(id)``: a fixed random 64 x 48 image per id."""

    def tensor(self, image_id: str) -> torch.Tensor:
        return torch.randn(3, 64, 48, generator=torch.Generator().manual_seed(ord(image_id)))


def test_netvlad_network_pools_the_trunk_and_is_initialised_from_its_features(tmp_path):
    from darkside.embed.networks import get_network

    gem = build_embedding_net(VGG)
    s = parse_network_settings("netvlad", {"clusters": 3, "init_images": 2, "init_features": 100,
                                           "kmeans_iterations": 5}, "networks.netvlad")
    net = rebuild_around(gem, "netvlad", s)
    assert net.backbone is gem.backbone and (net.channels, net.dim) == (32, 96) and net.multiscale_p == 1.0
    torch.manual_seed(0)  # as fine-tuning reseeds before a network's initialisation
    get_network("netvlad").prepare(net, _Images(), ["a", "b", "c"], "cpu")
    # every location of the first two images (12 each, fewer than init_features) entered the k-means; alpha makes a
    # feature's logit on its nearest centre exceed the second nearest's by log(100) on average
    with torch.no_grad():
        f = torch.cat([net.backbone(_Images().tensor(i)[None]).flatten(2)[0].t() for i in "ab"])
        logits = net.pool.assign(nn.functional.normalize(f, dim=1)[:, :, None, None]).flatten(1)
    top = logits.sort(dim=1, descending=True).values
    assert len(f) == 24 and (top[:, 0] - top[:, 1]).mean().item() == pytest.approx(math.log(100), rel=1e-4)
    x = torch.rand(2, 3, 64, 48)
    net.eval()
    loaded = load_model(save_model(net, tmp_path / "m.pt"))
    assert loaded.network_name == "netvlad" and loaded.meta["network"]["settings"]["clusters"] == 3
    torch.testing.assert_close(loaded(x), net(x))
    torch.testing.assert_close(net(x).norm(dim=1), torch.ones(2))


def _mduit_generator(tmp_path, variant=None):
    from test_gan_mduit import tiny

    from darkside.gan.family import build, save_generator

    b = build(tiny(), "cpu", seed=0)
    g = torch.Generator().manual_seed(1)
    b.train_step((torch.rand(2, 3, 32, 32, generator=g) * 2 - 1, torch.rand(2, 3, 32, 32, generator=g) * 2 - 1))
    b.prepare_translator([torch.rand(1, 3, 32, 32, generator=g) * 2 - 1])
    return b, save_generator(b, tmp_path / "generator.pt", variant=variant)


def test_a_content_model_embeds_images_as_the_generators_z_s_without_its_file(tmp_path):
    from darkside.embed.network import IMAGENET_MEAN, IMAGENET_STD
    from darkside.embed.networks.content import ContentSettings, init_content_model

    bundle, generator = _mduit_generator(tmp_path)
    path = init_content_model(VGG, generator, ContentSettings(), tmp_path / "model.pt")
    generator.unlink()  # the model file holds the setup and the weights
    net = load_model(path)
    assert net.network_name == "content" and net.meta["network"]["settings"]["setup"]["family"] == "mduit"
    assert (net.dim, net.multiscale_p, net.min_side) == (8, 1.0, 16) and net.extra["kind"] == "content embedding"
    x = torch.rand(2, 3, 40, 36)
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        z_s = bundle.nets["head"](bundle.nets["content_encoder"](x * 2 - 1))
        torch.testing.assert_close(net((x - mean) / std), z_s, rtol=1e-5, atol=1e-5)
    with pytest.raises(ConfigError, match=r"networks\.content\.setup: recorded from the generator file"):
        init_content_model(VGG, path, ContentSettings(setup={"family": "mduit"}), tmp_path / "other.pt")
    with pytest.raises(ConfigError, match=r"networks\.content\.setup: a content embedding is built from a generator"):
        build_network("content", ContentSettings(), nn.Sequential(), 0, VGG)


def test_init_model_builds_a_variants_content_model_through_the_cli(tmp_path, repo_root, capsys):
    from darkside.cli import main

    _, generator = _mduit_generator(tmp_path, variant="mduit-no-i2i")
    base = ["--params", str(repo_root / "params.yaml"), "init-model", "--backbone", "vgg16"]
    out = tmp_path / "vgg16-mduit-no-i2i-content" / "model.pt"
    # the recipe exists because the file says which variant it is
    assert main([*base, "--recipe", "mduit-no-i2i-content", "--generator", str(generator), "--out", str(out)]) == 0
    assert load_model(out).network_name == "content"
    assert main([*base, "--recipe", "gem", "--generator", str(generator), "--out", str(tmp_path / "x.pt")]) == 2
    assert "init-model --recipe gem: not a content embedding" in capsys.readouterr().err
