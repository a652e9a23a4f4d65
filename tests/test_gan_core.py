"""Shared GAN machinery against hand-computed values: losses, schedule, crops, pool, networks."""

import math

import numpy as np
import pytest
import torch

from darkside.errors import ConfigError
from darkside.gan.crops import crop_window, epoch_pairs, paired_crop, to_tensor_batch
from darkside.gan.losses import discriminator_loss, edge_l1, generator_adv_loss, l1, lsgan, patch_nce, sobel_magnitude
from darkside.gan.networks import (
    BlurDown,
    BlurUp,
    PatchGAN,
    ResnetGenerator,
    count_params,
    encoder_channels,
    init_weights,
)
from darkside.gan.pool import ImagePool
from darkside.gan.schedule import late_decay_factor, lr_factor, set_epoch_lr

torch.set_num_threads(1)


def test_lsgan_values_by_hand():
    pred = torch.tensor([0.5, 2.0, -1.0])
    assert lsgan(pred, True).item() == pytest.approx((0.25 + 1.0 + 4.0) / 3)
    assert lsgan(pred, False).item() == pytest.approx((0.25 + 4.0 + 1.0) / 3)
    # D loss is halved: 0.5 * ((1-1)^2 + (0.5-0)^2) = 0.125
    assert discriminator_loss(torch.tensor([1.0]), torch.tensor([0.5])).item() == pytest.approx(0.125)
    assert generator_adv_loss(torch.tensor([0.0, 0.0])).item() == pytest.approx(1.0)
    assert l1(torch.tensor([1.0, -1.0]), torch.tensor([0.0, 0.0])).item() == pytest.approx(1.0)


def test_schedule_constant_then_linear():
    # 50 + 50 (CycleGAN): constant through epoch index 49, then 1 - k/51
    assert [lr_factor(e, 50, 50) for e in (0, 49)] == [1.0, 1.0]
    assert lr_factor(50, 50, 50) == pytest.approx(1 - 1 / 51)
    assert lr_factor(99, 50, 50) == pytest.approx(1 / 51)
    f = [lr_factor(e, 2, 3) for e in range(5)]
    assert f == pytest.approx([1.0, 1.0, 0.75, 0.5, 0.25])
    diffs = np.diff([lr_factor(e, 25, 25) for e in range(25, 50)])
    assert np.allclose(diffs, -1 / 26)


def test_set_epoch_lr_keeps_group_multipliers():
    p = torch.nn.Parameter(torch.zeros(1))
    q = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([{"params": [p], "lr": 1e-6}, {"params": [q], "lr": 1e-4}])
    set_epoch_lr(opt, 0.5)
    set_epoch_lr(opt, 0.25)  # always relative to the initial rate, never compounding
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([2.5e-7, 2.5e-5])


def test_crop_window_rule():
    rng = np.random.default_rng(0)
    for _ in range(200):
        top, left, side = crop_window(300, 400, 256, 0.8, rng)
        # s in [max(0.8, 256/300), 1] -> side = ceil(256/s) in [256, 300]
        assert 256 <= side <= 300 and top + side <= 300 and left + side <= 400
    sides = [crop_window(1000, 1000, 256, 0.8, rng)[2] for _ in range(500)]
    assert min(sides) >= 256 and max(sides) <= math.ceil(256 / 0.8) == 320
    assert max(sides) > 310  # the whole range is used
    # image exactly the crop size: no-op window
    assert crop_window(256, 256, 256, 0.8, rng) == (0, 0, 256)
    # smaller than the crop: whole smaller side, upsampled later
    assert crop_window(40, 50, 64, 0.8, rng)[2] == 40


def test_paired_crop_same_window_for_both_images():
    h, w = 90, 120
    yy, xx = np.mgrid[0:h, 0:w]
    day = np.stack([yy, xx, np.zeros_like(yy)], -1).astype(np.uint8)
    night = np.stack([yy, xx + 100, np.zeros_like(yy)], -1).astype(np.uint8)
    d, n = paired_crop(day, night, 64, 0.8, np.random.default_rng(3))
    assert d.shape == n.shape == (64, 64, 3)
    np.testing.assert_array_equal(d[..., 0], n[..., 0])            # same rows
    # same columns (bilinear resize rounding may differ by one grey level)
    assert np.abs(d[..., 1].astype(int) + 100 - n[..., 1].astype(int)).max() <= 1
    # the same rng state gives the same pair
    d2, _ = paired_crop(day, night, 64, 0.8, np.random.default_rng(3))
    np.testing.assert_array_equal(d, d2)
    t = to_tensor_batch([np.full((2, 2, 3), 255, np.uint8), np.zeros((2, 2, 3), np.uint8)])
    assert t.shape == (2, 3, 2, 2) and t[0].min() == 1.0 and t[1].max() == -1.0


def test_epoch_pairs_with_replacement():
    pairs = epoch_pairs(3, 2, 1000, np.random.default_rng(0))
    assert pairs.shape == (1000, 2)
    assert set(pairs[:, 0]) == {0, 1, 2} and set(pairs[:, 1]) == {0, 1}


def test_image_pool():
    pool = ImagePool(2, seed=0)
    a = torch.full((2, 1, 1, 1), 1.0)
    out = pool.query(a)
    assert torch.equal(out, a) and len(pool.images) == 2      # filling: returns the new images
    outs = torch.cat([pool.query(torch.full((1, 1, 1, 1), float(v))) for v in range(10, 60)])
    vals = outs.flatten().tolist()
    swapped = [v for v, new in zip(vals, range(10, 60), strict=True) if v != new]
    assert 10 < len(swapped) < 40                              # about half come from the pool
    assert all(v == 1.0 or 10 <= v < 60 for v in swapped)
    # state round trip reproduces the next draws
    st = pool.state_dict()
    p2 = ImagePool(2, seed=99)
    p2.load_state_dict(st)
    x = torch.full((4, 1, 1, 1), 7.0)
    assert torch.equal(pool.query(x), p2.query(x))
    assert torch.equal(ImagePool(0).query(x), x)


def test_network_parameter_counts_at_paper_widths():
    with torch.device("meta"):
        assert count_params(ResnetGenerator(64, 9, "instance")) == 11_378_179
        assert count_params(ResnetGenerator(64, 9, "batch")) == 11_383_427
        assert count_params(PatchGAN(64, 3, "instance")) == 2_764_737
        assert count_params(PatchGAN(64, 3, "batch")) == 2_765_633


def test_network_shapes_and_range():
    g = ResnetGenerator(8, 2, "batch")
    y = g(torch.randn(2, 3, 32, 32))
    assert y.shape == (2, 3, 32, 32) and y.abs().max() <= 1
    assert PatchGAN(8, 3, "instance")(torch.randn(1, 3, 256, 256)).shape == (1, 1, 30, 30)  # 70x70 patches
    with pytest.raises(ConfigError, match=r"gan\.norm"):
        ResnetGenerator(8, 2, "group")


def test_inits():
    torch.manual_seed(0)
    g = init_weights(ResnetGenerator(16, 2, "batch"), "normal", 0.2)
    w = g.model[1].weight
    assert w.std().item() == pytest.approx(0.2, rel=0.05) and abs(w.mean().item()) < 0.01
    bn = [m for m in g.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    gammas = torch.cat([m.weight.detach() for m in bn])
    assert gammas.mean().item() == pytest.approx(1.0, abs=0.05)
    assert all(torch.all(m.bias == 0) for m in bn)
    k = init_weights(ResnetGenerator(16, 2, "batch"), "kaiming", 0.2)
    w = k.model[4].weight  # 3x3 conv 16 -> 32: Kaiming fan-in std = sqrt(2 / (16 * 9))
    assert w.std().item() == pytest.approx(math.sqrt(2 / 144), rel=0.05)
    assert torch.all(k.model[-2].bias == 0)


def test_xavier_init_uses_the_gain():
    torch.manual_seed(0)
    g = init_weights(ResnetGenerator(16, 2, "instance"), "xavier", 0.02)
    w = g.model[4].weight  # 3x3 conv 16 -> 32: Xavier-normal std = gain * sqrt(2 / (fan_in + fan_out))
    assert w.std().item() == pytest.approx(0.02 * math.sqrt(2 / (16 * 9 + 32 * 9)), rel=0.05)


def test_patch_nce_by_hand():
    # two orthogonal patches matched to themselves: row i's logits are [<q_i,k_i>, masked -10, <q_i,k_j>] / tau
    q = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    tau = 0.5
    expected = -math.log(math.exp(1 / tau) / (math.exp(1 / tau) + math.exp(-10 / tau) + math.exp(0.0)))
    assert patch_nce(q, q.clone(), tau).item() == pytest.approx(expected, rel=1e-6)
    # a query that points at the other patch's key: positive 0, one negative 1
    swapped = torch.tensor([[[0.0, 1.0], [1.0, 0.0]]])
    wrong = -math.log(1.0 / (1.0 + math.exp(-10 / tau) + math.exp(1 / tau)))
    assert patch_nce(swapped, q, tau).item() == pytest.approx(wrong, rel=1e-6)
    # keys are constants: no gradient reaches them
    k = q.clone().requires_grad_(True)
    qq = q.clone().requires_grad_(True)
    patch_nce(qq, k, tau).backward()
    assert k.grad is None and qq.grad is not None


def test_blur_resampling_keeps_constants_and_sizes():
    x = torch.full((1, 4, 8, 10), 0.3)
    assert torch.allclose(BlurDown(4)(x), torch.full((1, 4, 4, 5), 0.3))
    assert torch.allclose(BlurUp(4)(x), torch.full((1, 4, 16, 20), 0.3))
    assert count_params(BlurDown(4)) == count_params(BlurUp(4)) == 0
    g = ResnetGenerator(8, 2, "instance", antialias=True)
    assert g(torch.randn(1, 3, 32, 32)).shape == (1, 3, 32, 32)
    assert g.encoder_layers == 4 + 2 * 4 + 2
    assert len(encoder_channels(8, 2, True)) == g.encoder_layers  # the heads' widths follow the same layout
    assert [f.shape[1:] for f in g.encode(torch.randn(1, 3, 32, 32), (0, 4, 8))] == [
        (3, 38, 38), (16, 32, 32), (32, 16, 16)]  # padded RGB, first down conv, second down conv
    with torch.device("meta"):
        assert count_params(ResnetGenerator(64, 9, "instance", antialias=True)) == 11_378_179


def test_cyeda_schedule_decays_one_epoch_later():
    # CyEDA 20 + 20: epochs 1-21 at the base rate, then 0.95 .. 0.05
    assert [late_decay_factor(e, 20, 20) for e in (0, 19, 20, 21, 39)] == pytest.approx([1, 1, 1, 0.95, 0.05])
    assert lr_factor(20, 20, 20) == pytest.approx(1 - 1 / 21)  # CycleGAN's rule already decays there


def test_sobel_magnitude_by_hand():
    # a vertical step from 0 to 1 between columns 1 and 2, the same in every channel: the half-Sobel x response
    # next to the step is (1/2 + 1 + 1/2) * 1 = 2 in the interior rows, y is 0
    img = torch.zeros(1, 3, 5, 4)
    img[..., 2:] = 1.0
    m = sobel_magnitude(img)
    assert m.shape == (1, 1, 5, 4)
    assert m[0, 0, 2, 1].item() == pytest.approx(2.0, abs=1e-4) and m[0, 0, 2, 2].item() == pytest.approx(2.0, abs=1e-4)
    assert m[0, 0, 2, 0].item() == pytest.approx(math.sqrt(1e-8), rel=1e-3)  # flat: only the epsilon
    # channels are averaged: the step in one channel of three gives a third of the response
    one = torch.zeros(1, 3, 5, 4)
    one[:, 0, :, 2:] = 1.0
    assert sobel_magnitude(one)[0, 0, 2, 1].item() == pytest.approx(2.0 / 3, abs=1e-4)
    assert edge_l1(img, img).item() == 0.0 and edge_l1(img, one).item() > 0


def test_cyeda_generator_blends_masks_and_loads_the_authors_names():
    from darkside.gan.families.cyeda import NoNormPatchGAN, UnetMaskGenerator

    with torch.device("meta"):
        assert count_params(UnetMaskGenerator(32, 3)) == 8_636_684
        assert count_params(NoNormPatchGAN(64, 5)) == 11_154_369
    g = UnetMaskGenerator(4, 3).eval()
    keys = set(g.state_dict())
    assert {"conv1_1.weight", "bn1_1.running_mean", "deconv5.weight", "conv9_2.bias", "conv10.weight",
            "conv11.bias"} <= keys and not any(k.startswith("bn9_2") for k in keys)
    x = torch.rand(1, 3, 20, 27) * 2 - 1  # not a multiple of 16: padded and cropped back
    with torch.no_grad():
        torch.nn.init.zeros_(g.conv11.weight)
        g.conv11.bias.fill_(-1e4)           # every mask 0: the input passes untouched
        assert torch.allclose(g(x), x, atol=1e-6)
        g.conv11.bias.fill_(1e4)            # every mask 1: the mean of the three latent images
        torch.nn.init.zeros_(g.conv10.weight)
        g.conv10.bias.copy_(torch.tensor([0.3, 0.3, 0.3, 0.0, 0.0, 0.0, -0.3, 0.6, 0.0]))
        y = g(x)
    t = math.tanh  # the latent images pass through tanh
    mean = torch.tensor([0.0, (t(0.3) + t(0.6)) / 3, t(0.3) / 3])
    assert torch.allclose(y, mean.view(1, 3, 1, 1).expand_as(y), atol=1e-6)
