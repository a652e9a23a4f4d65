"""Backbone trunks: cirtorch layouts at width 1.0, scaled nets, seeded init, weight loading."""

import pytest
import torch
import torchvision

from darkside.config import BackboneSpec
from darkside.embed import backbones as bb
from darkside.embed.backbones import build_backbone, resnet
from darkside.errors import DarksideError

torch.set_num_threads(1)


def spec(arch, width=1.0, blocks=None, init="random", weights=None):
    return BackboneSpec(arch, width, blocks, init, weights, "b")


def _shapes(module):
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


@pytest.mark.parametrize("arch", ["vgg16", "resnet18", "resnet50", "resnet101"])
def test_width_one_layout_equals_cirtorch_trunk_of_torchvision(arch):
    # the meta device builds full-size nets without allocating or initialising weights
    with torch.device("meta"):
        trunk, channels = build_backbone(spec(arch))
        tv = getattr(torchvision.models, arch)()
    ref = (torch.nn.Sequential(*list(tv.features.children())[:-1]) if arch == "vgg16"
           else torch.nn.Sequential(*list(tv.children())[:-2]))
    assert _shapes(trunk) == _shapes(ref)
    assert list(_shapes(trunk)) == list(_shapes(ref))  # same order too
    assert channels == {"vgg16": 512, "resnet18": 512, "resnet50": 2048, "resnet101": 2048}[arch]
    assert isinstance(trunk[-1], torch.nn.ReLU if arch == "vgg16" else torch.nn.Sequential)


def test_resnet_keys_named_like_the_caffe_file():
    with torch.device("meta"):
        keys = set(build_backbone(spec("resnet101"))[0].state_dict())
    assert {"0.weight", "1.running_mean", "4.0.conv1.weight", "4.0.downsample.0.weight",
            "6.22.conv3.weight", "7.2.bn3.running_var"} <= keys


@pytest.mark.parametrize(("arch", "blocks", "channels", "spatial"), [
    ("vgg16", None, 64, (3, 4)),  # 4 max-pools left: /16
    ("resnet101", (1, 1, 2, 1), 256, (2, 2)),  # /32, rounded up by the padded strides
    ("resnet18", (1, 1, 1, 1), 64, (2, 2)),
])
def test_scaled_width_nets_run_on_64x48(arch, blocks, channels, spatial):
    trunk, c = build_backbone(spec(arch, 0.125, blocks))
    assert c == channels
    out = trunk.eval()(torch.rand(2, 3, 48, 64))
    assert out.shape == (2, channels, *spatial)
    assert (out >= 0).all()  # every trunk ends in a ReLU


def test_blocks_per_stage_are_respected():
    trunk, _ = build_backbone(spec("resnet50", 0.125, (1, 2, 1, 3)))
    assert [len(trunk[i]) for i in range(4, 8)] == [1, 2, 1, 3]
    with pytest.raises(DarksideError, match="4 positive integers"):
        build_backbone(spec("resnet50", 0.125, (1, 2, 1)))
    with pytest.raises(DarksideError, match="5 positive integers"):
        build_backbone(spec("vgg16", 0.125, (1, 1, 1, 1)))
    trunk, c = build_backbone(spec("vgg16", 0.25, (1, 1, 2, 1, 1)))
    convs = [m for m in trunk if isinstance(m, torch.nn.Conv2d)]
    assert [m.out_channels for m in convs] == [16, 32, 64, 64, 128, 128] and c == 128
    assert isinstance(trunk[-1], torch.nn.ReLU)  # still ends in its last ReLU (no final max-pool)
    with pytest.raises(DarksideError, match=r"backbones\.b\.arch"):
        build_backbone(spec("alexnet"))


def test_random_init_is_seeded_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    a, _ = build_backbone(spec("vgg16", 0.0625), seed=5)
    assert torch.equal(torch.rand(3), expected_next)
    b, _ = build_backbone(spec("vgg16", 0.0625), seed=5)
    c, _ = build_backbone(spec("vgg16", 0.0625), seed=6)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    assert not torch.equal(a[0].weight, c[0].weight)
    assert torch.all(a[0].bias == 0)


def test_caffe_weights_load_from_file(tmp_path):
    source, _ = build_backbone(spec("resnet18", 0.125, (1, 1, 1, 1)), seed=9)
    # the Caffe conversions predate BatchNorm's num_batches_tracked buffer
    state = {k: v for k, v in source.state_dict().items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "imagenet-caffe-resnet18-features.pth"
    torch.save(state, path)
    trunk, _ = build_backbone(spec("resnet18", 0.125, (1, 1, 1, 1), "imagenet-caffe", str(path)), seed=0)
    for k, v in state.items():
        assert torch.equal(trunk.state_dict()[k], v), k


def test_caffe_weights_errors(tmp_path):
    tiny = spec("vgg16", 0.0625, None, "imagenet-caffe", str(tmp_path / "missing.pth"))
    with pytest.raises(DarksideError, match=r"missing\.pth: backbone weight file does not exist"):
        build_backbone(tiny)
    other, _ = build_backbone(spec("vgg16", 0.125))
    wrong = tmp_path / "wrong.pth"
    torch.save(other.state_dict(), wrong)
    with pytest.raises(DarksideError, match=r"wrong\.pth: weights do not fit the backbone \(key '0.weight' has shape"):
        build_backbone(spec("vgg16", 0.0625, None, "imagenet-caffe", str(wrong)))
    source, _ = build_backbone(spec("vgg16", 0.0625))
    extra = tmp_path / "extra.pth"
    torch.save({**source.state_dict(), "30.weight": torch.zeros(1)}, extra)
    with pytest.raises(DarksideError, match=r"unexpected key '30.weight'"):
        build_backbone(spec("vgg16", 0.0625, None, "imagenet-caffe", str(extra)))
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(DarksideError, match=r"garbage\.pth: unreadable backbone weight file"):
        build_backbone(spec("vgg16", 0.0625, None, "imagenet-caffe", str(garbage)))
    with pytest.raises(DarksideError, match=r"backbones\.b\.weights"):
        build_backbone(spec("vgg16", 0.0625, None, "imagenet-caffe", None))


def _to_torchvision_keys(arch, state):
    inverse = {v: k for k, v in resnet._CHILDREN.items()}
    if arch == "vgg16":
        out = {f"features.{k}": v for k, v in state.items()}
        out["classifier.0.weight"] = torch.zeros(2, 2)
    else:
        out = {f"{inverse[k.split('.', 1)[0]]}.{k.split('.', 1)[1]}": v for k, v in state.items()}
        out["fc.weight"] = torch.zeros(2, 2)
    return out


@pytest.mark.parametrize(("arch", "blocks"), [("vgg16", None), ("resnet18", (1, 1, 1, 1))])
def test_torchvision_weights_from_hub_cache(tmp_path, monkeypatch, arch, blocks):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    s = spec(arch, 0.0625, blocks, "imagenet-torchvision")
    expected = tmp_path / "checkpoints" / bb.ARCHS[arch].torchvision_file
    with pytest.raises(DarksideError, match=f"{expected}: torchvision ImageNet weights not in the local"):
        build_backbone(s)
    source, _ = build_backbone(spec(arch, 0.0625, blocks), seed=3)
    expected.parent.mkdir()
    torch.save(_to_torchvision_keys(arch, source.state_dict()), expected)
    trunk, _ = build_backbone(s, seed=0)
    for k, v in source.state_dict().items():
        assert torch.equal(trunk.state_dict()[k], v), k


def test_restated_blocks_compute_what_torchvision_computes():
    """Our BasicBlock/Bottleneck/VGG layers are torchvision's: same keys, and the same outputs
    when given the same weights."""
    import torch
    from torchvision.models import resnet as tv_resnet
    from torchvision.models import vgg as tv_vgg

    from darkside.embed.backbones import blocks

    torch.manual_seed(0)
    x = torch.randn(2, 8, 12, 10)
    for ours_cls, tv_cls in ((blocks.BasicBlock, tv_resnet.BasicBlock), (blocks.Bottleneck, tv_resnet.Bottleneck)):
        def down(expansion: int = ours_cls.expansion) -> torch.nn.Sequential:
            return torch.nn.Sequential(torch.nn.Conv2d(8, 4 * expansion, 1, 2, bias=False),
                                       torch.nn.BatchNorm2d(4 * expansion))

        tv, ours = tv_cls(8, 4, 2, down()).eval(), ours_cls(8, 4, 2, down()).eval()
        assert list(tv.state_dict()) == list(ours.state_dict())
        ours.load_state_dict(tv.state_dict())
        torch.testing.assert_close(ours(x), tv(x))
    assert blocks.VGG_CFGS["vgg16"] == tv_vgg.cfgs["D"]
    tv_layers, our_layers = tv_vgg.make_layers(tv_vgg.cfgs["D"]), blocks.make_vgg_layers(blocks.VGG_CFGS["vgg16"])
    assert [type(m) for m in tv_layers] == [type(m) for m in our_layers]
    assert {k: v.shape for k, v in tv_layers.state_dict().items()} == {
        k: v.shape for k, v in our_layers.state_dict().items()}
