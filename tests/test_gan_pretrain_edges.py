"""Teacher pre-training: balanced loss by hand, side outputs, a tiny run that learns and loads."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from darkside.data.manifest import GroundTruth, ImageRecord, write_dataset
from darkside.errors import ConfigError, DarksideError
from darkside.gan.edges import DetectorGeometry, build_detector, load_detector_file
from darkside.gan.edges.pretrain import (
    EdgePretrainSettings,
    balanced_bce,
    pretrain_edges,
    random_crop,
    side_and_fused_logits,
)
from darkside.gan.edges.quality import score_detectors
from darkside.settings import parse

torch.set_num_threads(1)

BASE = dict(crop=16, batch_size=4, steps=30, lr=0.01, beta1=0.9, beta2=0.999, weight_decay=0.0,
            side_weight=1.0, fuse_weight=1.0, hflip=True, split="train", domains=["day", "sunset"],
            log_every=10, checkpoint_every=10)
GEOMETRY = DetectorGeometry(0.0625, "caffe255")


def settings(**kw) -> EdgePretrainSettings:
    return parse(EdgePretrainSettings, {**BASE, **kw}, "edges.pretrain")


def test_settings_are_strict():
    assert settings().domains == ("day", "sunset")
    with pytest.raises(ConfigError, match=r"edges\.pretrain\.bogus: unknown key"):
        parse(EdgePretrainSettings, {**BASE, "bogus": 1}, "edges.pretrain")
    d = dict(BASE)
    del d["steps"]
    with pytest.raises(ConfigError, match=r"edges\.pretrain\.steps: missing key"):
        parse(EdgePretrainSettings, d, "edges.pretrain")
    with pytest.raises(ConfigError, match=r"edges\.pretrain\.crop"):
        settings(crop=True)
    with pytest.raises(ConfigError, match=r"edges\.pretrain\.domains"):
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
    assert pretrain_edges("hed", edge_dataset, s, out, GEOMETRY, "cpu", seed=0) == out
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp files left
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["images"] == 7 and meta["kind"] == "hed"  # the 7 train-split day images only
    assert meta["log"][-1]["loss"] < meta["log"][0]["loss"]
    # the family loader accepts it as detector_weights
    net = load_detector_file(build_detector("hed", 0.0625), out)
    assert isinstance(net, torch.nn.Module)
    teacher = load_detector_file(build_detector("hed", 0.0625), out).eval()
    torch.manual_seed(0)
    untrained = build_detector("hed", 0.0625).eval()
    res = score_detectors(edge_dataset, {"trained": teacher, "untrained": untrained}, domain="day",
                          split="train", tolerance_px=0)
    assert res["trained"]["ap"] > res["untrained"]["ap"]
    # seeded: a second run gives the same weights
    out2 = pretrain_edges("hed", edge_dataset, s, tmp_path / "again.pt", GEOMETRY, "cpu", seed=0)
    a = torch.load(out, weights_only=True)["state_dict"]
    b = torch.load(out2, weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not (out.parent / "teacher.checkpoint.pt").exists()  # the checkpoint goes once the teacher is written


def test_pretrain_errors_name_the_problem(edge_dataset, tmp_path):
    with pytest.raises(DarksideError, match="no images of split 'train' in domains \\['other'\\]"):
        pretrain_edges("hed", edge_dataset, settings(domains=["other"]), tmp_path / "t.pt", GEOMETRY)
    with pytest.raises(ConfigError, match="kind 'canny'"):
        pretrain_edges("canny", edge_dataset, settings(), tmp_path / "t.pt", GEOMETRY)
    (edge_dataset / "edges" / "train" / "day0.png").unlink()
    with pytest.raises(DarksideError, match=r"day0\.png: ground-truth edge map missing"):
        pretrain_edges("hed", edge_dataset, settings(), tmp_path / "t.pt", GEOMETRY)
    assert not (tmp_path / "t.pt").exists()


def test_a_preempted_teacher_resumes_to_the_same_weights(edge_dataset, tmp_path, monkeypatch):
    import os
    import signal

    from darkside.errors import Preempted
    from darkside.gan.edges import pretrain

    whole = pretrain_edges("hed", edge_dataset, settings(), tmp_path / "whole.pt", GEOMETRY, seed=0)
    calls, sample = [0], pretrain.sample_batch

    def stop_at_step_15(*a):
        calls[0] += 1
        if calls[0] == 15:
            os.kill(os.getpid(), signal.SIGTERM)
        return sample(*a)

    monkeypatch.setattr(pretrain, "sample_batch", stop_at_step_15)
    with pytest.raises(Preempted):
        pretrain_edges("hed", edge_dataset, settings(), tmp_path / "cut.pt", GEOMETRY, seed=0)
    assert (tmp_path / "cut.checkpoint.pt").is_file() and not (tmp_path / "cut.pt").exists()
    monkeypatch.setattr(pretrain, "sample_batch", sample)
    cut = pretrain_edges("hed", edge_dataset, settings(), tmp_path / "cut.pt", GEOMETRY, seed=0)
    a, b = (torch.load(p, weights_only=True)["state_dict"] for p in (whole, cut))
    assert all(torch.equal(a[k], b[k]) for k in a)
