"""Teacher pre-training: balanced loss by hand, side outputs, a tiny run that learns and loads."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from darkside.data.manifest import GroundTruth, ImageRecord, write_dataset
from darkside.errors import ConfigError, DarksideError
from darkside.gan.edges import build_detector, load_detector_file
from darkside.gan.edges.pretrain import (
    EdgePretrainSettings,
    balanced_bce,
    load_teacher_file,
    pretrain_edges,
    random_crop,
    side_and_fused_logits,
    teacher_geometry,
)
from darkside.gan.edges.quality import score_detectors

torch.set_num_threads(1)

BASE = dict(crop=16, batch_size=4, steps=30, lr=0.01, beta1=0.9, beta2=0.999, weight_decay=0.0,
            side_weight=1.0, fuse_weight=1.0, hflip=True, split="train", domains=["day", "sunset"],
            log_every=10)


def settings(**kw) -> EdgePretrainSettings:
    return EdgePretrainSettings.from_dict({**BASE, **kw})


def test_settings_are_strict():
    assert settings().domains == ("day", "sunset")
    assert settings().to_dict()["domains"] == ["day", "sunset"]
    with pytest.raises(ConfigError, match=r"edges\.bogus: unknown key"):
        EdgePretrainSettings.from_dict({**BASE, "bogus": 1})
    d = dict(BASE)
    del d["steps"]
    with pytest.raises(ConfigError, match=r"edges\.steps: missing key"):
        EdgePretrainSettings.from_dict(d)
    with pytest.raises(ConfigError, match=r"edges\.crop"):
        settings(crop=True)
    with pytest.raises(ConfigError, match=r"edges\.domains"):
        settings(domains=[])


def test_balanced_bce_by_hand():
    # one image of 4 pixels, 1 edge: beta = 3/4 on the edge pixel, 1/4 on the 3 others.
    target = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    logits = torch.zeros_like(target)  # p = 0.5 everywhere: every pixel's BCE is ln 2
    expected = np.log(2) * (0.75 + 3 * 0.25) / 4
    assert float(balanced_bce(logits, target)) == pytest.approx(expected)
    # a confident correct prediction costs ~0; an image without edges costs nothing
    assert float(balanced_bce(target * 40 - 20, target)) < 1e-6
    assert float(balanced_bce(torch.full_like(target, 3.0), torch.zeros_like(target))) == 0.0


@pytest.mark.parametrize("kind", ["hed", "rcf"])
def test_side_outputs_are_what_the_fusion_sees(kind):
    torch.manual_seed(0)
    net = build_detector(kind, 0.0625)
    x = torch.rand(2, 3, 20, 24)
    sides, fused = side_and_fused_logits(net, x)
    assert sides.shape == (2, 5, 20, 24) and fused.shape == (2, 1, 20, 24)
    fusion = net.fusion[0] if kind == "hed" else net.score_fuse
    assert torch.allclose(fusion(sides), fused)
    assert torch.allclose(net(x, logits=True), fused)
    assert not fusion._forward_pre_hooks  # the hook is removed again


def test_random_crop_upscales_small_images_and_keeps_edges_binary():
    rng = np.random.default_rng(0)
    img = np.zeros((8, 12, 3), dtype=np.uint8)
    edges = np.zeros((8, 12), dtype=bool)
    edges[:, 6] = True
    im, ed = random_crop(img, edges, 16, False, rng)
    assert im.shape == (16, 16, 3) and ed.shape == (16, 16) and ed.dtype == bool
    # a 24 x 24 image cropped at 24: the whole image, flipped or not
    big = np.arange(24 * 24).reshape(24, 24) % 2 == 0
    _, ed = random_crop(np.zeros((24, 24, 3), np.uint8), big, 24, True, rng)
    assert np.array_equal(ed, big) or np.array_equal(ed, big[:, ::-1])


@pytest.fixture
def edge_dataset(tmp_path):
    """Day/night images whose edges are a rectangle outline: day = bright outline on dark, night =
    dim; plus an image in the val split that must not be used."""
    rng = np.random.default_rng(0)
    root = tmp_path / "ds"
    recs = []
    for i in range(8):
        for dom, gain in (("day", 1.0), ("night", 0.3)):
            split = "val" if i == 7 else "train"
            gt = np.zeros((20, 20), dtype=bool)
            t, left = rng.integers(2, 8, 2)
            gt[t, left:left + 9] = gt[t + 8, left:left + 9] = True
            gt[t:t + 9, left] = gt[t:t + 9, left + 8] = True
            img = np.repeat((gt * 200 * gain + 20)[..., None], 3, axis=2).astype(np.uint8)
            rel = f"{split}/{dom}{i}.png"
            for sub, arr in (("images", img), ("edges", gt.astype(np.uint8) * 255)):
                (root / sub / rel).parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(arr).save(root / sub / rel)
            recs.append(ImageRecord(rel, f"{dom}{i}", split, dom, f"c{i}", f"c{i}", 20, 20))
    write_dataset(root, "edgeds", recs, GroundTruth(protocol="training"))
    return root


def test_pretrain_learns_writes_atomically_and_loads(edge_dataset, tmp_path):
    out = tmp_path / "edges" / "hed" / "teacher.pt"
    s = settings()
    assert pretrain_edges("hed", edge_dataset, s, out, "cpu", seed=0, width=0.0625) == out
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp files left
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["images"] == 7 and meta["kind"] == "hed"  # the 7 train-split day images only
    assert meta["log"][-1]["loss"] < meta["log"][0]["loss"]
    # the family loader accepts it as detector_weights
    net = load_detector_file(build_detector("hed", 0.0625), out)
    assert isinstance(net, torch.nn.Module)
    teacher = load_teacher_file(out)
    torch.manual_seed(0)
    untrained = build_detector("hed", 0.0625).eval()
    res = score_detectors(edge_dataset, {"trained": teacher, "untrained": untrained}, domain="day",
                          split="train", tolerance_px=0)
    assert res["trained"]["ap"] > res["untrained"]["ap"]
    # seeded: a second run gives the same weights
    out2 = pretrain_edges("hed", edge_dataset, s, tmp_path / "again.pt", "cpu", seed=0, width=0.0625)
    a = torch.load(out, weights_only=True)["state_dict"]
    b = torch.load(out2, weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_pretrain_errors_name_the_problem(edge_dataset, tmp_path):
    with pytest.raises(DarksideError, match="no images of split 'train' in domains \\['other'\\]"):
        pretrain_edges("hed", edge_dataset, settings(domains=["other"]), tmp_path / "t.pt", width=0.0625)
    with pytest.raises(ConfigError, match="kind 'canny'"):
        pretrain_edges("canny", edge_dataset, settings(), tmp_path / "t.pt")
    (edge_dataset / "edges" / "train" / "day0.png").unlink()
    with pytest.raises(DarksideError, match=r"day0\.png: ground-truth edge map missing"):
        pretrain_edges("hed", edge_dataset, settings(), tmp_path / "t.pt", width=0.0625)
    assert not (tmp_path / "t.pt").exists()


def test_teacher_geometry_reads_the_gan_section():
    common = {"detector_width": 0.125, "detector_input": "caffe255"}
    fam = dict(crop=64, scale_min=0.8, pairs_per_epoch=10, batch_size=2, epochs_constant=1, epochs_decay=1,
               lr=2e-4, beta1=0.5, beta2=0.999, ngf=4, n_blocks=1, ndf=4, n_layers_d=2, norm="batch",
               init="kaiming", init_gain=0.2, cycle_weight=10.0, identity_weight=0.0, pool_size=0,
               edge_weight=5.0, detector_weights=None, student_lr=1e-6, student_beta1=0.9,
               student_beta2=0.999, student_weight_decay=2e-4, student_lr_multipliers=False,
               sample_images=1, cache_images=True)
    gan = {"common": common, "families": {"hedngan": {**fam, "detector": "hed"},
                                          "rcfngan": {**fam, "detector": "rcf"}}}
    assert teacher_geometry(gan, "hed") == (0.125, "caffe255")
    gan["families"]["hedgan"] = {**fam, "detector": "hed", "detector_width": 0.25}
    with pytest.raises(ConfigError, match="disagree"):
        teacher_geometry(gan, "hed")
