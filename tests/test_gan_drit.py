"""DRIT++ (concat 0): the paper's parameter counts, one training step, its losses by hand, the d_iter schedule,
resume after SIGTERM and the seeded translator."""

import math

import numpy as np
import pytest
import torch
from test_gan_settings import paper_entry

from darkside.errors import ConfigError
from darkside.gan.families.drit import (
    DritSettings,
    LayerNorm,
    bce_logits,
    drit_factor,
    l2_mean,
    mode_seeking,
    multiscale_d_loss,
    multiscale_g_loss,
)
from darkside.gan.family import GanSetup, GanTraining, build, family_class, setup_for
from darkside.gan.params import count_parameters
from darkside.gan.translator import load_translator
from darkside.settings import parse

torch.set_num_threads(1)

PAPER = paper_entry("drit")  # params.yaml's paper preset (pinned in test_gan_settings.py)


def common(crop: int) -> GanTraining:
    return GanTraining(crop=crop, scale_min=0.8, lr=2e-4, beta1=0.5, beta2=0.999, sample_images=2, cache_images=True)


def tiny(**kw) -> GanSetup:
    entry = {**PAPER, "pairs_per_epoch": 4, "epochs_constant": 1, "epochs_decay": 2, "width": 2, "content_blocks": 1,
             "attr_width": 2, "mlp_width": 4, "gen_blocks": 2, "ndf": 2, "d_layers": 3, "d_scales": 2,
             "content_d_kernel": 3, "content_d_last_kernel": 1, **kw}
    return setup_for("drit", common(32), parse(DritSettings, entry, "gan.families.drit"), {})


def batch(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(2, 3, 32, 32, generator=g) * 2 - 1, torch.rand(2, 3, 32, 32, generator=g) * 2 - 1


def test_paper_parameter_counts():
    setup = setup_for("drit", common(256), parse(DritSettings, PAPER, "gan.families.drit"), {})
    res = count_parameters(setup)
    assert {k: (b["role"], b["params"]) for k, b in res["blocks"].items()} == {
        "content_encoder": ("generator", 9_018_112), "attribute_encoder": ("generator", 5_529_872),
        "generator": ("generator", 17_146_374),
        "discriminator_day": ("discriminator", 8_271_171), "discriminator_night": ("discriminator", 8_271_171),
        "discriminator_day_random": ("discriminator", 8_271_171),
        "discriminator_night_random": ("discriminator", 8_271_171),
        "discriminator_content": ("discriminator", 10_683_649)}
    assert res["plain_total"] == res["paper_total"] == 75_462_691
    assert res["paper_millions"] == 75.5 and res["rule"].startswith("paper: every network once")
    # the generator file: day content branch 3,918,976 + shared block 1,180,160 + night decoder 8,573,187
    with torch.device("meta"):
        tr = family_class("drit").translator_net(setup, {"bank": torch.zeros(5, 8)})
    assert sum(p.numel() for p in tr.parameters()) == 3_918_976 + 1_180_160 + 8_573_187


def test_settings_and_crop_checks():
    with pytest.raises(ConfigError, match="batch_size"):
        parse(DritSettings, {**PAPER, "batch_size": 1}, "gan.families.drit")
    # DRIT's content discriminator (7x7 convs) does not fit the 16 x 16 content map of a 64 px crop
    s = parse(DritSettings, PAPER, "gan.families.drit")
    with pytest.raises(ConfigError, match="content discriminator sees"):
        build(setup_for("drit", common(64), s, {}))
    with pytest.raises(ConfigError, match="multiple of 4"):
        build(GanSetup("drit", common(30), tiny().settings))


def test_one_train_step_changes_generator_and_is_seeded():
    b = build(tiny(), "cpu", seed=0)
    before = {k: v.clone() for k, v in b.generator().state_dict().items()}
    losses = b.train_step(batch())    # 2 steps per epoch: both full updates (DRIT's last-two rule)
    assert {"D_day", "D_night_random", "D_content", "G", "latent", "mode_seeking"} <= set(losses)
    assert all(np.isfinite(v) for v in losses.values())
    after = b.generator().state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before if k != "bank")
    again = build(tiny(), "cpu", 0).generator().state_dict()
    assert all(torch.equal(before[k], v) for k, v in again.items())
    # DRIT's init: conv weights N(0, 0.02), the MLP's linear layers PyTorch's default (std of U(-1/sqrt(8), ..))
    mlp = build(tiny(), "cpu", 0).nets["generator"].night.mlp[0].weight
    assert 0.1 < float(mlp.detach().std()) < 0.3
    assert mlp.shape == (4, 8)
    conv = build(tiny(), "cpu", 0).nets["attribute_encoder"].day.model[1].weight
    assert float(conv.detach().std()) == pytest.approx(0.02, rel=0.3)


def test_d_iter_schedule_and_losses_repeat():
    """6 steps per epoch: iterations 0, 1, 3 update only the content D; 2 (every third) and 4, 5 (the last two)
    everything. The same seed gives the same losses whatever the global RNG (noise and z come from the bundle's
    checkpointed generator)."""
    setup = tiny(pairs_per_epoch=12)
    runs = []
    for _ in range(2):
        torch.manual_seed(len(runs))
        b = build(setup, "cpu", seed=0)
        b.set_epoch(0)
        runs.append([b.train_step(batch(i)) for i in range(6)])
    assert runs[0] == runs[1]
    assert [len(r) == 1 for r in runs[0]] == [True, True, False, True, False, False]
    assert b.iteration == 6 and b.training_state()["iteration"] == 6
    b.set_epoch(1)
    assert b.iteration == 0


def test_losses_by_hand():
    ln3 = math.log(3.0)   # sigmoid(ln 3) = 0.75
    # BCE(0.75, 1) = -ln 0.75 = 0.2876821; BCE(0.75, 0) = -ln 0.25 = 1.3862944; BCE(0.5, .) = ln 2 = 0.6931472
    assert float(bce_logits(torch.tensor([ln3]), 1.0)) == pytest.approx(0.2876821, abs=1e-6)
    assert float(bce_logits(torch.tensor([ln3]), 0.0)) == pytest.approx(1.3862944, abs=1e-6)
    # the content GAN's target 0.5: (0.2876821 + 1.3862944) / 2 = 0.8369882; at logit 0 it is ln 2
    assert float(bce_logits(torch.tensor([ln3, 0.0]), 0.5)) == pytest.approx((0.8369882 + 0.6931472) / 2, abs=1e-6)
    # two scales: real logits (ln 3 | 0, 0), fake (0 | ln 3): (0.2876821 + 0.6931472) + (0.6931472 + 1.3862944)
    real, fake = [torch.tensor([[ln3]]), torch.tensor([0.0, 0.0])], [torch.tensor([0.0]), torch.tensor([ln3])]
    assert float(multiscale_d_loss(real, fake)) == pytest.approx(3.0602709, abs=1e-6)
    # G side on the fakes: BCE(0.5, 1) + BCE(0.75, 1) = 0.6931472 + 0.2876821
    assert float(multiscale_g_loss(fake)) == pytest.approx(0.9808293, abs=1e-6)
    # mode seeking: mean |[0.5, 0.1] - 0| = 0.3, mean |[1, 0.2] - 0| = 0.6: 1 / (0.5 + 1e-5) = 1.99996
    f1, f2 = torch.zeros(2), torch.tensor([0.5, 0.1])
    assert float(mode_seeking(f1, f2, torch.zeros(2), torch.tensor([1.0, 0.2]))) == pytest.approx(1.99996, abs=1e-5)
    # mean square of [1, 2, 3] = 14 / 3
    assert float(l2_mean(torch.tensor([1.0, 2.0, 3.0]))) == pytest.approx(14 / 3)
    # layer norm over (C, H, W): channels [1, 3] -> mean 2, variance 1 -> [-1, 1] / sqrt(1 + 1e-5), then
    # gamma [2, 1], beta [0, 1]: [-2, 2] and ... -> [-1.99999, 1.999995]
    ln = LayerNorm(2)
    with torch.no_grad():
        ln.weight.copy_(torch.tensor([2.0, 1.0]))
        ln.bias.copy_(torch.tensor([0.0, 1.0]))
    y = ln(torch.tensor([1.0, 3.0]).view(1, 2, 1, 1)).flatten()
    assert y.tolist() == pytest.approx([-2 / math.sqrt(1 + 1e-5), 1 + 1 / math.sqrt(1 + 1e-5)], abs=1e-6)


def test_lr_schedule_is_drits():
    # DRIT's 1200 epochs with decay from 600: epoch 600 still at 1, the last at 2 / 601
    assert drit_factor(600, 600, 600) == 1.0
    assert drit_factor(601, 600, 600) == pytest.approx(1 - 1 / 601)
    assert drit_factor(1199, 600, 600) == pytest.approx(2 / 601)
    # the paper preset's 150 + 150
    assert drit_factor(299, 150, 150) == pytest.approx(2 / 151)


def test_resume_after_sigterm_matches_uninterrupted(interrupted_and_resumed):
    s = tiny(pairs_per_epoch=8)    # 4 steps per epoch: content-only, content-only, full, full
    ref, res, _, _ = interrupted_and_resumed(s)
    assert res.read_bytes() == ref.read_bytes()

    state = torch.load(res, weights_only=True)["state_dict"]
    assert state["bank"].shape == (3, 8)            # one attribute code per training night image
    tr = load_translator("drit", res, "cpu")
    x = torch.rand(1, 3, 30, 35, generator=torch.Generator().manual_seed(4))
    y = tr.translate(x)
    assert y.shape == (1, 3, 30, 35) and y.min() >= 0 and y.max() <= 1

    # deterministic: the same image twice, and in a batch with another, gives the same translation
    assert torch.equal(tr.translate(x), y)
    pair = tr.translate(torch.cat([torch.rand(1, 3, 30, 35), x]))
    assert torch.allclose(pair[1:], y, atol=1e-6)


def test_random_attribute_translator_is_seeded_per_image():
    b = build(tiny(translate_attribute="random"), "cpu", seed=0)
    b.prepare_translator(iter([torch.zeros(1, 3, 32, 32)]))
    assert len(b.bank) == 0                         # "random" keeps no bank
    gen = b.generator().eval()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        z = gen.attributes(x)
        assert torch.equal(gen.attributes(x.flip(0)), z.flip(0))
        assert not torch.equal(z[0], z[1])
        assert torch.equal(gen(x), gen(x))


def test_content_and_decoder_fit_one_image_as_an_autoencoder():
    """The DRIT networks as the bundle builds and initialises them, at the mini widths (width 8, MLP 32, four
    MisINS blocks), learn: day content -> day decoder fits one image of 8 px blocks to under a quarter of its
    initial L1 in 300 Adam steps at lr 1e-3. (The mini run gets about 130 full updates at DRIT's 1e-4, which is
    why its translations are not nights yet: a wiring fault would fail here, a slow recipe does not.)"""
    entry = {**PAPER, "width": 8, "content_blocks": 3, "attr_width": 8, "mlp_width": 32, "ndf": 8,
             "content_d_kernel": 3, "content_d_last_kernel": 2}
    bundle = build(setup_for("drit", common(64), parse(DritSettings, entry, "gan.families.drit"), {}), "cpu", 0)
    content, decoder = bundle.nets["content_encoder"].day, bundle.nets["generator"].day
    g = torch.Generator().manual_seed(0)
    blocks = torch.rand(1, 3, 8, 8, generator=g) * 2 - 1
    x = blocks.repeat_interleave(8, 2).repeat_interleave(8, 3)  # a 64 px image of 8 px blocks
    z = torch.randn(1, 8, generator=g)
    opt = torch.optim.Adam([*content.parameters(), *decoder.parameters()], 1e-3, betas=(0.5, 0.999))
    losses = []
    for _ in range(300):
        loss = (decoder(content(x), z) - x).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert losses[0] > 0.45 and losses[-1] < 0.25 * losses[0]  # measured: 0.54 -> 0.094
