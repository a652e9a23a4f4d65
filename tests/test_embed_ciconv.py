"""CIConv's W layer: the colour model, the filters and the invariant against hand-computed values, its
invariance to a global intensity scaling, the learned scale, the model file, and the paper preset's numbers."""

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml

from darkside.config import BackboneSpec
from darkside.embed.backbones import build_backbone
from darkside.embed.finetune import parameter_groups
from darkside.embed.network import IMAGENET_MEAN, IMAGENET_STD, build_embedding_net, load_model, save_model
from darkside.embed.networks import build_network, parse_network_settings, rebuild_around
from darkside.embed.networks.ciconv import (
    CIConvSettings,
    ColourInvariant,
    filter_colour_model,
    filter_radius,
    gaussian_colour_model,
    gaussian_derivative_filters,
)
from darkside.embed.pooling import GeM
from darkside.recipes import FinetuneSettings, recipe_by_name

torch.set_num_threads(1)
VGG = BackboneSpec("vgg16", 0.0625, None, "random", None, "vgg16")
RESNET = BackboneSpec("resnet101", 0.0625, (1, 1, 1, 1), "random", None, "resnet101")
_PRESETS = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())["presets"]
EPS = 1e-5


def _normalised(rgb: torch.Tensor) -> torch.Tensor:
    """What every network receives: RGB in [0, 1] with ImageNet statistics."""
    return (rgb - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)


def _layer(**kw) -> ColourInvariant:
    return ColourInvariant(CIConvSettings(**kw))


def test_colour_model_of_primaries_and_grey():
    rgb = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.5, 0.5, 0.5]]).T.reshape(1, 3, 1, 4)
    e = gaussian_colour_model(rgb)[0, :, 0].T
    torch.testing.assert_close(e, torch.tensor([[0.06, 0.30, 0.34], [0.63, 0.04, -0.60], [0.27, -0.35, 0.17],
                                                [0.48, -0.005, -0.045]]))


def test_filters_at_sigma_one():
    g, d = gaussian_derivative_filters(torch.tensor(1.0), 3.0)
    assert filter_radius(1.0, 3.0) == 4 and g.shape == d.shape == (9,)
    one_d = torch.tensor([math.exp(-t * t / 2) for t in range(-4, 5)])
    torch.testing.assert_close(g, one_d / one_d.sum())
    ramp = torch.arange(-4.0, 5.0) * one_d
    torch.testing.assert_close(d, ramp / ramp.abs().sum())
    assert filter_radius(2.0 ** 2.5, 3.0) == 18


def test_filtering_gives_each_channel_its_three_2d_filters():
    torch.manual_seed(0)
    colour = torch.rand(2, 3, 20, 17)
    g, d = gaussian_derivative_filters(torch.tensor(1.3), 3.0)
    got = filter_colour_model(colour, torch.stack([g, d]))
    # 2-D: G = g(y) g(x), G_x = g(y) d(x) (x: columns), G_y = d(y) g(x)
    w = torch.stack([torch.outer(g, g), torch.outer(g, d), torch.outer(d, g)])[:, None]
    want = F.conv2d(colour, w.repeat(3, 1, 1, 1), padding=w.shape[-1] // 2, groups=3)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_a_constant_image_has_no_gradient_inside():
    layer = _layer()
    w = layer.invariant(torch.full((1, 3, 24, 24), 0.4))
    r = filter_radius(1.0, 3.0)  # the zero padding makes an edge at the border
    assert float(w[..., r:-r, r:-r].abs().max()) < 1e-10
    assert float(w[..., 0, 12]) > 0


@pytest.mark.parametrize("along", ["columns", "rows"])
def test_a_grey_step_edge_gives_the_hand_computed_w(along):
    a, b, step = 0.2, 0.7, 12
    rgb = torch.full((1, 3, 24, 24), a)
    rgb[..., step:] = b
    w = _layer().invariant(rgb if along == "columns" else rgb.transpose(-1, -2))
    w = w if along == "columns" else w.transpose(-1, -2)
    # at the first column of the step: d/dx of the image is (b - a) / 2 for any symmetric filter; the smoothed
    # image is (a h + b (1 + h)) / (1 + 2h) with h = sum_{t=1..4} exp(-t^2 / 2); grey (v, v, v) has
    # E = 0.96 v, E_lambda = -0.01 v, E_lambdalambda = -0.09 v
    h = sum(math.exp(-t * t / 2) for t in range(1, 5))
    smooth = (a * h + b * (1 + h)) / (1 + 2 * h)
    want = ((b - a) / 2) ** 2 * (0.96 ** 2 + 0.01 ** 2 + 0.09 ** 2) / (0.96 * smooth + EPS) ** 2
    assert float(w[0, 0, 12, step]) == pytest.approx(want, rel=1e-5)
    assert float(w[0, 0, 12, step - 6]) == pytest.approx(0.0, abs=1e-12)  # beyond the filter's reach


def test_w_and_the_layer_are_unchanged_by_a_global_intensity_scaling():
    torch.manual_seed(0)
    rgb = torch.rand(2, 3, 32, 32) * 0.8 + 0.2
    layer = _layer()
    w, w_dark = layer.invariant(rgb), layer.invariant(0.1 * rgb)
    torch.testing.assert_close(w_dark, w, rtol=1e-3, atol=1e-6)
    out, out_dark = layer(_normalised(rgb)), layer(_normalised(0.1 * rgb))
    assert out.shape == (2, 1, 32, 32)
    torch.testing.assert_close(out_dark, out, rtol=1e-3, atol=1e-3)
    # not a constant: a colour change does change it
    assert float((layer(_normalised(rgb.flip(1))) - out).abs().max()) > 0.1


def test_the_scale_is_learned_and_clamped():
    torch.manual_seed(0)
    trunk, channels = build_backbone(VGG, seed=0)
    net = build_network("ciconv", CIConvSettings(), trunk, channels, VGG)
    assert isinstance(net.pool, GeM) and net.dim == channels
    first = next(m for m in net.backbone.modules() if isinstance(m, torch.nn.Conv2d))
    assert first.in_channels == 1
    # a tuple's images go through one at a time and share one backward pass
    a, b = net(torch.randn(1, 3, 40, 40)), net(torch.randn(1, 3, 40, 32))
    (a[0] @ b[0]).backward()
    grad = net.stem.scale.grad
    assert grad is not None and math.isfinite(float(grad)) and float(grad) != 0
    settings = FinetuneSettings(
        margins={"vgg16": 0.75}, lr=1e-3, betas=(0.9, 0.999), weight_decay=5e-4, gem_lr_multiplier=10.0,
        gem_weight_decay=0.0, lr_gamma=0.99, epochs=1, anchors_per_epoch=1, anchor_pool=1, negative_pool=1,
        negatives=1, tuples_per_batch=1, image_size=32, seed=0, val_every=1, band=(0.2, 0.8),
        clahe_clip_limit=1.0, clahe_grid=8, mining_batch_size=1, cache_images=False)
    groups = parameter_groups(net, settings)
    assert any(q is net.stem.scale for q in groups[0]["params"])  # with the trunk's lr and weight decay
    with torch.no_grad():
        net.stem.scale.fill_(4.0)
    net(torch.randn(1, 3, 32, 32))
    assert float(net.stem.scale) == 2.5


@pytest.mark.parametrize("spec", [VGG, RESNET], ids=["vgg16", "resnet101"])
def test_model_file_round_trip_gives_the_same_descriptors(spec, tmp_path):
    gem = build_embedding_net(spec)
    net = rebuild_around(gem, "ciconv", parse_network_settings("ciconv", None, "networks.ciconv")).eval()
    with torch.no_grad():
        net.stem.scale.fill_(0.6)  # a learned value travels in the state dict
    x = torch.rand(2, 3, 48, 40)
    loaded = load_model(save_model(net, tmp_path / "m.pt"))
    assert loaded.network_name == "ciconv" and isinstance(loaded.stem, ColourInvariant)
    assert float(loaded.stem.scale) == pytest.approx(0.6)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), net(x))


def test_the_recipe_and_the_paper_presets_numbers():
    r = recipe_by_name("ciconv")
    assert r.network == "ciconv" and not (r.clahe or r.diverse_anchors or r.generator or r.day_night_pairs)
    s = parse_network_settings("ciconv", _PRESETS["paper"]["networks"]["ciconv"], "networks.ciconv")
    assert (s.scale, s.scale_limit, s.truncate, s.eps) == (0.0, 2.5, 3.0, 1e-5)
    # the paper's schedule is the preset's finetune (the authors' retrieval training matches it)
    assert (s.margin, s.lr, s.weight_decay, s.lr_gamma, s.epochs, s.image_size) == (None,) * 6
    for preset in ("mini", "paper"):
        assert all("ciconv" in _PRESETS[preset]["recipes"][b] for b in ("vgg16", "resnet101"))  # Table 1: not HOW's


def test_the_layer_computes_in_float32_under_mixed_precision():
    torch.manual_seed(0)
    x = _normalised(torch.rand(1, 3, 32, 32) * 0.8 + 0.2)
    layer = _layer()
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        out = layer(x)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, layer(x))
