import numpy as np
import pytest
import torch
from PIL import Image

from darkside.config import BackboneSpec
from darkside.data.manifest import GroundTruth, ImageRecord, write_dataset
from darkside.embed.backbones import build_backbone
from darkside.embed.pretrain import BackbonePretrainSettings, pretrain_backbone
from darkside.errors import ConfigError
from darkside.settings import parse

SETTINGS = dict(steps=30, batch_size=8, lr=3e-3, image_size=32, crop=[24, 32], scale_min=0.7, brightness=[0.5, 1.2],
                colour_gain=[0.8, 1.2], contrast=[0.8, 1.2], gamma=[0.7, 1.4], grayscale=0.3, logit_scale=10.0,
                split="whiten", domains=["day"], checkpoint_every=10)
S = parse(BackbonePretrainSettings, SETTINGS, "backbone_pretrain")


def _dataset(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "images").mkdir()
    records = []
    for scene in range(3):  # three scenes of distinct colours, 4 views each
        base = rng.integers(0, 255, 3)
        for v in range(4):
            img = np.clip(base + rng.normal(0, 20, (24, 32, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(tmp_path / "images" / f"{scene}_{v}.png")
            records.append(ImageRecord(f"{scene}_{v}.png", f"{scene}_{v}", "whiten", "day", f"s{scene}", "p", 32, 24))
    records.append(ImageRecord("0_0.png", "night", "whiten", "night", "s0", "p", 32, 24))  # not trained on
    write_dataset(tmp_path, "toy", records, GroundTruth("training"))
    return tmp_path


def test_pretrained_trunk_loads_as_init_and_learned(tmp_path):
    spec = BackboneSpec("vgg16", 0.125, (1, 1, 1, 1, 1), "random", None, "vgg16")
    out = pretrain_backbone(spec, _dataset(tmp_path), S,
                            tmp_path / "w" / "pretrained.pt", seed=0)
    state = torch.load(out, weights_only=True)
    assert "0.weight" in state  # cirtorch's trunk layout
    log = __import__("json").loads(out.with_suffix(".json").read_text())
    assert log["classes"] == 3 and log["images"] == 12
    assert log["loss_last_quarter"] < log["loss_first_quarter"]
    trunk, _ = build_backbone(BackboneSpec("vgg16", 0.125, (1, 1, 1, 1, 1), "pretrained", str(out), "vgg16"))
    torch.testing.assert_close(trunk.state_dict()["0.weight"], state["0.weight"])
    again = pretrain_backbone(spec, tmp_path, S, tmp_path / "again.pt", seed=0)
    assert again.read_bytes() == out.read_bytes()  # seeded, and the file is a pure function of the weights
    assert not list(tmp_path.glob("w/*.checkpoint.pt"))  # the checkpoint goes once the weights are written


def test_a_preempted_pretraining_resumes_to_the_same_weights(tmp_path, monkeypatch):
    """SIGTERM at step 15 of 30 stops the run (exit 143 from the CLI) after the step-10 checkpoint; the
    rerun resumes there and ends with the bytes an uninterrupted run writes."""
    import os
    import signal

    from darkside.embed import pretrain
    from darkside.errors import Preempted

    spec = BackboneSpec("vgg16", 0.125, (1, 1, 1, 1, 1), "random", None, "vgg16")
    data = _dataset(tmp_path)
    whole = pretrain_backbone(spec, data, S, tmp_path / "whole.pt", seed=0)
    calls, augment = [0], pretrain._augment

    def stop_at_step_15(*a):
        calls[0] += 1
        if calls[0] == 15 * S.batch_size:
            os.kill(os.getpid(), signal.SIGTERM)
        return augment(*a)

    monkeypatch.setattr(pretrain, "_augment", stop_at_step_15)
    with pytest.raises(Preempted):
        pretrain_backbone(spec, data, S, tmp_path / "cut.pt", seed=0)
    assert (tmp_path / "cut.checkpoint.pt").is_file() and not (tmp_path / "cut.pt").exists()
    monkeypatch.setattr(pretrain, "_augment", augment)
    assert pretrain_backbone(spec, data, S, tmp_path / "cut.pt", seed=0).read_bytes() == whole.read_bytes()


def test_settings_are_strict():
    with pytest.raises(ConfigError, match=r"backbone_pretrain\.stepz: unknown key"):
        parse(BackbonePretrainSettings, {**SETTINGS, "stepz": 1}, "backbone_pretrain")
    bad = dict(SETTINGS)
    del bad["lr"]
    with pytest.raises(ConfigError, match=r"backbone_pretrain\.lr: missing"):
        parse(BackbonePretrainSettings, bad, "backbone_pretrain")


def test_steps_per_backbone():
    per = parse(BackbonePretrainSettings, {**SETTINGS, "steps": {"vgg16": 600, "resnet101": 1200}}, "backbone_pretrain")
    assert per.steps_for("vgg16") == 600 and per.steps_for("resnet101") == 1200
    assert S.steps_for("anything") == 30
    with pytest.raises(ConfigError, match=r"^backbone_pretrain\.steps: no entry for backbone 'resnet50'"):
        per.steps_for("resnet50")


def test_tone_curve_and_grey_copies_of_the_augmentation():
    from darkside.embed.pretrain import _augment

    img = np.random.default_rng(0).uniform(0.05, 0.95, (24, 32, 3)).astype(np.float32)
    plain = {**SETTINGS, "scale_min": 1.0, "brightness": [1.0, 1.0], "colour_gain": [1.0, 1.0], "contrast": [1.0, 1.0],
             "crop": [24, 32], "gamma": [1.0, 1.0], "grayscale": 0.0}
    base = _augment(img, parse(BackbonePretrainSettings, plain, "bp"), np.random.default_rng(1))
    np.testing.assert_allclose(base.numpy(), img.transpose(2, 0, 1), atol=1e-6)  # identity jitter: the image
    squared = _augment(img, parse(BackbonePretrainSettings, {**plain, "gamma": [2.0, 2.0]}, "bp"),
                       np.random.default_rng(1))
    np.testing.assert_allclose(squared.numpy(), base.numpy() ** 2, atol=1e-6)
    grey = _augment(img, parse(BackbonePretrainSettings, {**plain, "grayscale": 1.0}, "bp"), np.random.default_rng(1))
    want = (img @ np.array([0.299, 0.587, 0.114], np.float32))[None]
    np.testing.assert_allclose(grey.numpy(), np.repeat(want, 3, 0), atol=1e-6)
    with pytest.raises(ConfigError, match=r"bp\.grayscale"):
        parse(BackbonePretrainSettings, {**plain, "grayscale": 1.5}, "bp")
