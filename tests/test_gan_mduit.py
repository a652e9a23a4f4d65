"""MDUIT: paper parameter counts, one step, the hand-checked losses and ops, resume and the translator."""

import math

import numpy as np
import pytest
import torch
from test_gan_settings import paper_entry

from darkside.errors import ConfigError
from darkside.gan.families.mduit import (
    MduitSettings,
    VggRelu33,
    content_consistency,
    content_pairs,
    contrastive_nce,
    dynamic_conv,
    filter_consistency,
    gem,
    load_vgg_file,
)
from darkside.gan.family import GanTraining, build, setup_for
from darkside.gan.params import count_parameters
from darkside.gan.translator import load_translator
from darkside.settings import parse

torch.set_num_threads(1)

PAPER = paper_entry("mduit")  # params.yaml's paper preset (pinned in test_gan_settings.py)


def setup(entry: dict, crop: int, **kw):
    common = GanTraining(crop=crop, scale_min=0.8, lr=2e-4, beta1=0.5, beta2=0.999, sample_images=2, cache_images=True)
    return setup_for("mduit", common, parse(MduitSettings, {**entry, **kw}, "gan.families.mduit"), {})


def tiny(**kw):
    # groups 4 of 8 content channels: two input channels per group, not only the paper's depthwise case
    entry = dict(PAPER, batch_size=2, pairs_per_epoch=4, epochs_constant=1, epochs_decay=2, ngf=2, n_blocks_content=1,
                 n_blocks_generator=1, filter_size=5, filter_groups=4, appearance_width=8, vgg_width=0.0625,
                 head_dim=8, ndf=4, n_layers_d=2, init_gain=0.02, nce_negatives=3)
    return setup(entry, 32, **kw)


def test_paper_parameter_counts():
    res = count_parameters(setup(PAPER, 256))
    blocks = {k: (b["role"], b["params"]) for k, b in res["blocks"].items()}
    assert blocks == {
        # c7s1-64 9,472 + downs 73,856 + 295,168 + 4 blocks x 2 x 590,080
        "content_encoder": ("generator", 5_099_136),
        # 256 -> 256 -> 256 (2 x 65,792) -> 256 x 5 x 5 filter + 256 bias (256 x 6,656 + 6,656)
        "appearance_encoder": ("generator", 1_842_176),
        # 4 blocks x 2 x (590,080 + 512 LN) + ups 295,296 + 73,920 + c7s1-3 9,411
        "generator": ("generator", 5_103_363),
        "discriminator_image": ("discriminator", 2_764_737),       # PatchGAN n3, instance (reference §4.1)
        "discriminator_appearance": ("discriminator", 2_767_809),  # + 3 x 64 x 16 for the 6-channel input
        # GeM p 1 + Linear(256, 256) 65,792 + Linear(256, 128) 32,896
        "head": ("head", 98_689),
        "vgg": ("frozen", 1_735_488),                               # VGG16 conv1_1 .. conv3_3
    }
    assert res["plain_total"] == res["paper_total"] == 19_411_398  # not in Table 8: the plain count
    assert res["paper_millions"] == 19.4
    assert "every network once" in res["rule"]


def test_settings_are_checked():
    with pytest.raises(ConfigError, match="filter_groups"):
        tiny(filter_groups=3)
    with pytest.raises(ConfigError, match="vgg_width"):
        tiny(vgg_weights="x.pth")


def test_one_train_step_changes_generator_and_same_seed_same_init():
    b = build(tiny(), "cpu", seed=0)
    weights = lambda m: {k: v.clone() for k, v in m.state_dict().items() if k != "bank"}  # noqa: E731
    before = weights(b.generator())
    vgg_before = [p.clone() for p in b.nets["vgg"].parameters()]
    g = torch.Generator().manual_seed(1)
    x = lambda: torch.rand(2, 3, 32, 32, generator=g) * 2 - 1  # noqa: E731
    for _ in range(2):  # the second step has a history batch and NCE negatives
        losses = b.train_step((x(), x()))
        assert all(np.isfinite(v) for v in losses.values()), losses
    assert losses["NCE"] > 0
    after = b.generator().state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert all(torch.equal(a, p) for a, p in zip(vgg_before, b.nets["vgg"].parameters(), strict=True))
    assert after["bank"].shape == (2, 16)  # the last batch's nights until prepare_translator
    fresh = weights(build(tiny(), "cpu", 0).generator())
    assert all(torch.equal(before[k], v) for k, v in fresh.items())


def test_dynamic_conv_by_hand():
    # k = 1, groups 2 (depthwise), two images with their own filters and biases
    x = torch.arange(18.0).reshape(1, 2, 3, 3).repeat(2, 1, 1, 1)
    w = torch.tensor([[2.0, 3.0], [-1.0, 0.5]]).reshape(2, 2, 1, 1, 1)
    bias = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    y = dynamic_conv(x, w, bias, 2)
    assert torch.equal(y[0, 0], 2 * x[0, 0] + 1) and torch.equal(y[0, 1], 3 * x[0, 1])
    assert torch.equal(y[1, 0], -x[1, 0]) and torch.equal(y[1, 1], 0.5 * x[1, 1] + 2)
    # k = 3 box mean over x[r, c] = 3r + c, reflect-padded: centre 36/9 = 4; corner (0, 0) sees rows and
    # columns {1, 0, 1}: sum 3 * 3 * 2 + 3 * 2 = 24, mean 24/9 = 2.6667
    x = torch.arange(9.0).reshape(1, 1, 3, 3)
    y = dynamic_conv(x, torch.full((1, 1, 1, 3, 3), 1 / 9), None, 1)
    assert y.shape == (1, 1, 3, 3)
    assert y[0, 0, 1, 1].item() == pytest.approx(4.0) and y[0, 0, 0, 0].item() == pytest.approx(24 / 9)
    # one group over two channels: out = sum of the two input channels
    x = torch.stack([torch.ones(2, 2), 2 * torch.ones(2, 2)])[None]
    assert torch.equal(dynamic_conv(x, torch.ones(1, 1, 2, 1, 1), None, 1), 3 * torch.ones(1, 1, 2, 2))


def test_content_consistency_by_hand():
    # image 0: d_pos = mean(1, 1) = 1, d_neg = mean(4, 0) = 2 -> max(0, 1 - 2 + 0.1) = 0
    # image 1: d_pos = mean(1, 0) = 0.5, d_neg = 0 -> 0.6; batch mean 0.3
    f_s = torch.zeros(2, 1, 1, 2)
    f_st = torch.tensor([[1.0, 1.0], [1.0, 0.0]]).reshape(2, 1, 1, 2)
    f_neg = torch.tensor([[2.0, 0.0], [0.0, 0.0]]).reshape(2, 1, 1, 2)
    assert content_consistency(f_s, f_st, f_neg, 0.1).item() == pytest.approx(0.3)


def test_filter_consistency_by_hand():
    # image 0: cos([1,0],[1,1]) = 0.70711, cos([1,0],[0,1]) = 0 -> 1 - 0.70711 = 0.29289
    # image 1: cos = -1 and 1 -> 1 + 1 + 1 = 3; batch mean 1.64645
    w_t = torch.tensor([[1.0, 0.0], [1.0, 0.0]]).reshape(2, 2, 1, 1, 1)
    w_st = torch.tensor([[1.0, 1.0], [-1.0, 0.0]]).reshape(2, 2, 1, 1, 1)
    w_neg = torch.tensor([[0.0, 1.0], [1.0, 0.0]]).reshape(2, 2, 1, 1, 1)
    assert filter_consistency(w_t, w_st, w_neg).item() == pytest.approx(1.646447, abs=1e-5)


def test_contrastive_nce_by_hand():
    # q.p = 1, q.n = 0 and -1, tau 0.5 -> logits 2, 0, -2: -log(e^2 / (e^2 + 1 + e^-2)) = log(1 + e^-2 + e^-4)
    # = log(1.153651) = 0.142932
    q = torch.tensor([[1.0, 0.0]])
    negatives = torch.tensor([[0.0, 1.0], [-1.0, 0.0]])
    assert contrastive_nce(q, q, negatives, 0.5).item() == pytest.approx(0.142932, abs=1e-6)
    assert math.log(1 + math.exp(-2) + math.exp(-4)) == pytest.approx(0.142932, abs=1e-6)
    assert contrastive_nce(q, q, None, 0.5).item() == 0.0


def test_gem_by_hand():
    # p 2: sqrt((4 + 16) / 2) = sqrt(10) = 3.16228; p 1 with a negative value clamped to 1e-6: (3 + 1e-6) / 2
    assert gem(torch.tensor([2.0, 4.0]).reshape(1, 1, 1, 2), torch.tensor([2.0])).item() == pytest.approx(3.162278)
    assert gem(torch.tensor([-5.0, 3.0]).reshape(1, 1, 1, 2), torch.tensor([1.0])).item() == pytest.approx(1.5)


def test_content_pairs_take_the_most_similar_night():
    day_z = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    night_z = torch.tensor([[0.0, 2.0], [3.0, 0.0], [1.0, 1.0]])  # day 0 -> night 1, day 1 -> night 0 (cos 1)
    pairs = content_pairs(day_z, night_z, 6, np.random.default_rng(5))
    assert pairs.shape == (6, 2)
    assert np.array_equal(pairs[:, 0], np.random.default_rng(5).integers(0, 2, 6))
    assert np.array_equal(pairs[:, 1], np.array([1, 0])[pairs[:, 0]])


def test_choose_pairs_embeds_with_the_current_networks():
    b = build(tiny(), "cpu", seed=0)
    g = torch.Generator().manual_seed(2)
    day = [torch.rand(1, 3, 32, 32, generator=g) * 2 - 1 for _ in range(3)]
    night = [torch.rand(1, 3, 32, 32, generator=g) * 2 - 1 for _ in range(2)]
    pairs = b.choose_pairs(day, night, 5, np.random.default_rng(0))
    assert pairs.shape == (5, 2) and pairs[:, 1].max() < 2
    assert np.array_equal(pairs, b.choose_pairs(day, night, 5, np.random.default_rng(0)))
    assert b.nets["content_encoder"].training  # the networks' mode is restored


def test_vgg_weights_file_loads_torchvision_keys(tmp_path):
    torch.manual_seed(0)
    src = VggRelu33(0.0625)
    torch.save({f"features.{k}": v for k, v in src.features.state_dict().items()}, tmp_path / "vgg.pth")
    dst = VggRelu33(0.0625)
    load_vgg_file(dst, tmp_path / "vgg.pth")
    assert all(torch.equal(a, b) for a, b in zip(src.parameters(), dst.parameters(), strict=True))


def test_resume_after_sigterm_matches_uninterrupted_and_translates(interrupted_and_resumed):
    s = tiny()
    ref, res, _ = interrupted_and_resumed(s)
    assert res.read_bytes() == ref.read_bytes()  # the same bytes as the uninterrupted run

    state = torch.load(res, weights_only=True)["state_dict"]
    assert state["bank"].shape == (3, 16)                 # the three training nights' pooled relu3_3
    assert not any(k.startswith("vgg") for k in state)    # the trunk is not needed to translate

    tr = load_translator("mduit", res, "cpu")
    y = tr.translate(torch.rand(1, 3, 30, 35))
    assert y.shape == (1, 3, 30, 35) and y.min() >= 0 and y.max() <= 1

    # deterministic: the same image twice, and beside another image in a batch, gives the same night
    g = torch.Generator().manual_seed(4)
    a, other = torch.rand(1, 3, 32, 36, generator=g), torch.rand(1, 3, 32, 36, generator=g)
    ya = tr.translate(a)
    assert torch.equal(ya, tr.translate(a))
    # (equal up to float rounding: a batch of two runs other conv kernels)
    assert torch.allclose(tr.translate(torch.cat([other, a]))[1:], ya, atol=1e-6)
