"""HOW's pieces on hand-worked cases: attention, smoothing, whitened reduction, weighted SPoC, multi-scale top-k."""

import numpy as np
import pytest
import torch

from darkside.embed.how import Reduction, attention, multiscale_local, pca_whitening, smooth, weighted_spoc
from darkside.errors import DarksideError

torch.set_num_threads(1)
GRID = torch.arange(1.0, 10.0).reshape(1, 1, 3, 3)  # 1 2 3 / 4 5 6 / 7 8 9


def test_attention_is_the_channel_norm():
    f = torch.tensor([[3.0, 0.0], [0.0, 1.0]]).reshape(1, 1, 2, 2).repeat(1, 2, 1, 1)
    f[0, 1] = torch.tensor([[4.0, 2.0], [0.0, 0.0]])
    assert attention(f).tolist() == [[[5.0, 2.0], [0.0, 1.0]]]


def test_smoothing_averages_the_pixels_inside():
    s = smooth(GRID)[0, 0]
    assert s[0, 0].item() == pytest.approx((1 + 2 + 4 + 5) / 4)  # a corner: 4 pixels, not 9
    assert s[0, 1].item() == pytest.approx((1 + 2 + 3 + 4 + 5 + 6) / 6)
    assert s[1, 1].item() == pytest.approx(5.0) and s.shape == (3, 3)


def test_weighted_spoc():
    x = torch.zeros(1, 2, 1, 2)
    x[0, :, 0, 0] = torch.tensor([1.0, 0.0])
    x[0, :, 0, 1] = torch.tensor([0.0, 1.0])
    g = weighted_spoc(x, torch.tensor([[[3.0, 4.0]]]))
    np.testing.assert_allclose(g.numpy(), [[0.6, 0.8]], rtol=1e-6)


def test_pca_whitening_and_the_frozen_reduction():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 5)) @ np.diag([5.0, 3.0, 1.0, 0.5, 0.1]) + 2.0
    P, m = pca_whitening(X, 3)
    Y = (X - m) @ P.T
    np.testing.assert_allclose(np.cov(Y.T, bias=True), np.eye(3), atol=1e-8)
    assert np.abs(P[0]).argmax() == 0 and np.abs(P[1]).argmax() == 1  # by decreasing variance
    red = Reduction(5, 3)
    red.init_whitening(X)
    assert not any(p.requires_grad for p in red.parameters())
    out = red(torch.as_tensor(X[:2], dtype=torch.float32)[:, :, None, None])[:, :, 0, 0]
    want = Y[:2] / np.linalg.norm(Y[:2], axis=1, keepdims=True)
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-4, atol=1e-5)
    with pytest.raises(DarksideError, match="3 whitened dimensions"):
        pca_whitening(X[:3], 3)


def test_multiscale_top_k_by_hand():
    # identity trunk and reduction: attention = the pixel, descriptor = its 3x3 average. Scale 1/3 samples the
    # centre (5). Top 4: 9, 8, 7 (scale 1), then 6; attention over the maximum 9.
    (desc, att), = multiscale_local(lambda x: x, lambda x: x, GRID, (1.0, 1 / 3), features=4)
    np.testing.assert_allclose(att.numpy(), [1.0, 8 / 9, 7 / 9, 6 / 9], rtol=1e-6)
    np.testing.assert_allclose(desc[:, 0].numpy(), [(5 + 6 + 8 + 9) / 4, (4 + 5 + 6 + 7 + 8 + 9) / 6,
                                                    (4 + 5 + 7 + 8) / 4, (2 + 3 + 5 + 6 + 8 + 9) / 6], rtol=1e-6)
    # every location of every scale, 9 + 1: the two 5s tie and the earlier scale comes first
    (_, att), = multiscale_local(lambda x: x, lambda x: x, GRID, (1.0, 1 / 3), features=100)
    assert len(att) == 10 and att[4].item() == pytest.approx(5 / 9) and att[5].item() == pytest.approx(5 / 9)
    # the maximum is over every scale: at 1/3 alone the only location has attention 1
    (_, att), = multiscale_local(lambda x: x, lambda x: x, GRID, (1 / 3,), features=5)
    assert att.tolist() == [1.0]
    # a scale below the trunk's smallest input is left out; none left is an error
    (_, att), = multiscale_local(lambda x: x, lambda x: x, GRID, (1.0, 1 / 3), features=100, min_side=2)
    assert len(att) == 9
    with pytest.raises(DarksideError, match="no scale"):
        multiscale_local(lambda x: x, lambda x: x, GRID, (1 / 3,), features=1, min_side=2)
    # a batch: each image its own top-k over its own maximum
    (_, a0), (_, a1) = multiscale_local(lambda x: x, lambda x: x, torch.cat([GRID, 2 * GRID.flip(-1)]), (1.0,), 2)
    assert a0.tolist() == a1.tolist() == pytest.approx([1.0, 8 / 9])


# --- the HOW network (darkside.embed.networks.how), its extraction, codebook and scoring -----------------------

def _how_net(dims=4, images=3, features=5):
    from darkside.config import BackboneSpec
    from darkside.embed.backbones import build_backbone
    from darkside.embed.networks import build_network
    from darkside.embed.networks.how import HowSettings

    spec = BackboneSpec("resnet18", 0.125, (1, 1, 1, 1), "random", None, "resnet18")
    trunk, channels = build_backbone(spec)
    return build_network("how", HowSettings(dims=dims, whitening_images=images, whitening_features=features),
                         trunk, channels, spec)


class _Pipeline:
    def __init__(self):
        self.asked = []

    def tensor(self, image_id):
        self.asked.append(image_id)
        g = torch.Generator().manual_seed(len(self.asked))
        return torch.randn(3, 64, 48, generator=g)


def test_how_network_trains_on_weighted_spoc_with_a_frozen_whitened_reduction(tmp_path):
    from darkside.embed.network import load_model, save_model
    from darkside.embed.networks import get_network
    from darkside.embed.networks.how import activations, prepare

    net = _how_net()
    assert net.dim == 4 and net.multiscale_p == 1.0 and get_network("how").local
    assert not any(p.requires_grad for p in net.pool.reduction.parameters())  # never trained
    before = net.pool.reduction.weight.detach().clone()
    pipe = _Pipeline()
    prepare(net, pipe, ["a", "b", "c", "d"], "cpu")
    assert pipe.asked == ["a", "b", "c"]  # the first whitening_images training images
    assert not torch.equal(before, net.pool.reduction.weight)
    x = torch.randn(2, 3, 64, 48)
    net.eval()
    with torch.no_grad():
        g = net(x)
        f = activations(net, x)
        want = weighted_spoc(net.pool.reduction(smooth(f)), attention(f))
    np.testing.assert_allclose(g.numpy(), want.numpy(), rtol=1e-5, atol=1e-6)
    back = load_model(save_model(net, tmp_path / "how.pt"))
    assert back.network_name == "how" and back.meta["network"]["settings"]["dims"] == 4
    assert torch.equal(back.pool.reduction.weight, net.pool.reduction.weight)
    assert not any(p.requires_grad for p in back.pool.reduction.parameters())
    (d, a), _ = back.pool.local_features(back, x, (1.0, 0.5), 4)
    assert d.shape == (4, 4) and a[0] == 1.0 and np.all(np.diff(a) <= 0)
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1.0, rtol=1e-5)


def test_paper_preset_how_settings(repo_root):
    """HOW eccv20 R18: full ResNet-18 with torchvision's weights, 128-D reduction whitened from 5,000 images at
    1,000 features, margin 0.8, Adam 5e-6, weight decay 1e-4, gamma 0.99, 20 epochs at 1024 px."""
    from darkside.config import load_params
    from darkside.recipes import recipe_by_name

    paper = load_params(repo_root / "params.yaml")["presets"]["paper"]
    assert paper["backbones"]["resnet18"] == {"arch": "resnet18", "width": 1.0, "blocks": None,
                                              "init": "imagenet-torchvision", "weights": None}
    assert paper["networks"]["how"] == {"margin": 0.8, "lr": 5e-6, "weight_decay": 1e-4, "lr_gamma": 0.99,
                                        "epochs": 20, "image_size": 1024, "dims": 128, "whitening_images": 5000,
                                        "whitening_features": 1000}
    assert paper["recipes"]["resnet18"] == ["how", "how-nd", "how-hedngan-cd", "how-cyclegan-cd"]
    from darkside.embed.backbones.resnet import ARCHS
    assert ARCHS["resnet18"][1] == (2, 2, 2, 2)
    # the GeM recipes' ingredients around HOW's network
    fams = ["hedngan", "cyclegan"]
    for how, gem in (("how", "gem"), ("how-nd", "gem-nd"), ("how-hedngan-cd", "hedngan-cd"),
                     ("how-cyclegan-cd", "cyclegan-cd")):
        a, b = recipe_by_name(how, fams), recipe_by_name(gem, fams)
        assert a.network == "how" and (a.clahe, a.diverse_anchors, a.generator, a.day_night_pairs) == (
            b.clahe, b.diverse_anchors, b.generator, b.day_night_pairs)


def test_extract_local_codebook_and_asmk_score_through_the_cli(tmp_path, repo_root):
    import json

    import yaml
    from PIL import Image

    from darkside.cli import main
    from darkside.data.manifest import GroundTruth, ImageRecord, Query, write_dataset
    from darkside.embed.network import save_model
    from darkside.evaluate.asmk import read_codebook
    from darkside.extract.hdf5 import read_descriptors

    root = tmp_path / "toy"
    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    recs = []
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)).save(root / "images" / f"{i}.png")
        recs.append(ImageRecord(f"{i}.png", f"im{i}", "train" if i < 2 else "database", "day", f"s{i % 2}", "p",
                                56, 40))
    recs.append(ImageRecord("0.png", "q", "query", "day", "s0", "p", 56, 40))
    gt = GroundTruth("revisited", [Query("q", easy=["im2"], hard=[], junk=[], positives=["im2"],
                                         bbox=(4, 4, 40, 30))], database_split="database")
    write_dataset(root, "toy", recs, gt)
    p = yaml.safe_load((repo_root / "params.yaml").read_text())
    mini = p["presets"]["mini"]
    mini["local"] = {"extract": {"scales": [1.0, 0.5], "features": 3},
                     "codebook": {"words": 3, "iterations": 2, "images": 2, "seed": 0}, "asmk": mini["local"]["asmk"]}
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(p))
    net = _how_net()
    prepare_net = __import__("darkside.embed.networks.how", fromlist=["prepare"]).prepare
    prepare_net(net, _Pipeline(), ["a", "b", "c"], "cpu")
    model = save_model(net, tmp_path / "model.pt")
    common = ["--params", str(params), "--model", str(model), "--dataset", str(root)]
    assert main(["extract", *common, "--out", str(tmp_path / "d.h5"), "--local"]) == 0
    ds = read_descriptors(tmp_path / "d.h5")
    assert ds.local.offsets[-1] == len(ds.local.descriptors) and len(ds.local) == 5
    assert np.all(np.diff(ds.local.offsets) == 3) and ds.local.descriptors.shape[1] == 4
    assert len(ds.query_local) == 1 and ds.attrs["settings"]["local"] == {"scales": [1.0, 0.5], "features": 3}
    assert main(["codebook", *common, "--out", str(tmp_path / "cb.h5")]) == 0
    assert read_codebook(tmp_path / "cb.h5").shape == (3, 4)
    assert main(["score", "--params", str(params), "--descriptors", str(tmp_path / "d.h5"), "--dataset", str(root),
                 "--out", str(tmp_path / "m.json"), "--codebook", str(tmp_path / "cb.h5")]) == 0
    res = json.loads((tmp_path / "m.json").read_text())
    assert res["similarity"] == "asmk" and res["n_queries"] == 1


def test_batched_local_extraction_is_per_image():
    from PIL import Image

    from darkside.data.photometric import ClaheSettings
    from darkside.embed.how import LocalExtractSettings
    from darkside.extract.local_descriptors import extract_local

    rng = np.random.default_rng(0)
    imgs = [Image.fromarray(rng.integers(0, 255, (h, 56, 3), dtype=np.uint8)) for h in (40, 40, 48, 40)]
    net, s = _how_net(), LocalExtractSettings(scales=(1.0, 0.5), features=4)
    one = extract_local(net, imgs, 56, ClaheSettings.of(None), s, batch_size=1)
    many = extract_local(net, imgs, 56, ClaheSettings.of(None), s, batch_size=3)
    np.testing.assert_array_equal(one.offsets, many.offsets)
    np.testing.assert_allclose(one.descriptors, many.descriptors, atol=1e-5)
    np.testing.assert_allclose(one.attention, many.attention, atol=1e-6)
