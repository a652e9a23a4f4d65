"""ForkGAN: paper parameter counts, one step, its TF-style layers and losses by hand, resume, the translator."""

import dataclasses
import math

import numpy as np
import pytest
import torch
from test_gan_settings import paper_entry

from darkside.gan.families.forkgan import (
    ForkganSettings,
    MultiScaleDiscriminator,
    TFConv2d,
    TFDeconv2d,
    domain_bce,
    latent_consistency,
    multiscale_lsgan,
    subsample,
)
from darkside.gan.family import GanTraining, build, family_class, setup_for
from darkside.gan.params import count_parameters
from darkside.gan.translator import load_translator
from darkside.settings import parse

torch.set_num_threads(1)

PAPER = paper_entry("forkgan")  # params.yaml's paper preset (pinned in test_gan_settings.py)


def common(crop: int) -> GanTraining:
    return GanTraining(crop=crop, scale_min=0.8, lr=2e-4, beta1=0.5, beta2=0.999, sample_images=2,
                       cache_images=True)


def tiny(**kw):
    entry = {**PAPER, "batch_size": 2, "pairs_per_epoch": 4, "epochs_constant": 1, "epochs_decay": 2, "ngf": 4,
             "encoder_blocks": 1, "decoder_blocks": 1, "ndf": 2, "n_layers_d": 2, "pool_size": 3, **kw}
    return setup_for("forkgan", common(32), parse(ForkganSettings, entry, "gan.families.forkgan"), {})


def test_paper_parameter_counts():
    setup = setup_for("forkgan", common(256), parse(ForkganSettings, PAPER, "gan.families.forkgan"), {})
    res = count_parameters(setup)
    blocks = {k: (b["role"], b["params"]) for k, b in res["blocks"].items()}
    # generator: encoder 6,282,304 + two decoders of 5,101,120 (no conv biases, affine instance norms)
    assert blocks.pop("generator_X") == blocks.pop("generator_Y") == ("generator", 16_484_544)
    assert blocks.pop("classifier") == ("discriminator", 723_456)
    names = {f"{r}_{s}_{k}" for r in ("discriminator", "reconstruction", "refine") for s in "XY" for k in (0, 1)}
    assert blocks == {n: ("discriminator", 2_783_040) for n in names}      # 12 multi-scale discriminators
    assert res["plain_total"] == res["paper_total"] == 2 * 16_484_544 + 723_456 + 12 * 2_783_040 == 67_089_024
    assert res["paper_millions"] == 67.1 and res["rule"].startswith("paper: every network once")
    # the translator (encoder + translation decoder) that the generator file holds
    with torch.device("meta"):
        net = family_class("forkgan").translator_net(setup, {})
    assert sum(p.numel() for p in net.parameters()) == 11_383_424


def test_pytorch_port_is_a_named_variant():
    s = parse(ForkganSettings, PAPER, "gan.families.forkgan")
    cls = family_class("forkgan")
    assert cls.effective(s) is s
    port = cls.effective(dataclasses.replace(s, variant="pytorch-port"))
    assert (port.perceptual_weight, port.classifier_weight, port.cycle_weight) == (20.0, 1.0, 10.0)
    # TF's lr rule: constant for 10 epochs, then lr * (20 - e) / 10
    assert [cls.schedule(e, 10, 10) for e in (9, 10, 11, 19)] == pytest.approx([1.0, 1.0, 0.9, 0.1])


def test_one_train_step_changes_the_generator_and_seeds_repeat():
    b = build(tiny(), "cpu", seed=0)
    before = {k: v.clone() for k, v in b.generator().state_dict().items()}
    cls_before = [p.clone() for p in b.nets["classifier"].parameters()]
    assert set(before) == {k for k in b.nets["generator_X"].state_dict() if not k.startswith("reconstruction.")}
    g = torch.Generator().manual_seed(1)
    # 48 px: the classifier's last map is 2x2 (at 32 px it is 1x1 and instance norm leaves it no gradient)
    losses = b.train_step((torch.rand(2, 3, 48, 48, generator=g) * 2 - 1,
                           torch.rand(2, 3, 48, 48, generator=g) * 2 - 1))
    assert len(losses) == 12 and all(np.isfinite(v) for v in losses.values())
    after = b.generator().state_dict()
    assert all(not torch.equal(before[k], after[k]) for k in before)
    assert all(not torch.equal(a, c) for a, c in zip(cls_before, b.nets["classifier"].parameters(), strict=True))
    # same seed -> same initial networks (the instance-norm scales are drawn, not ones)
    again = build(tiny(), "cpu", 0)
    assert all(torch.equal(before[k], v) for k, v in again.generator().state_dict().items())
    assert not torch.equal(before["encoder.2.weight"], torch.ones(4))
    assert not torch.equal(before["encoder.1.weight"], build(tiny(), "cpu", 1).generator().state_dict()[
        "encoder.1.weight"])


def test_tf_same_padding_by_hand():
    # 3x3 stride 2 on 4x4 ones: TF pads one zero row/column AFTER, so the windows are rows/cols 0-2 and 2-4
    conv = TFConv2d(1, 1, 3, 2)
    torch.nn.init.ones_(conv.weight)
    y = conv(torch.ones(1, 1, 4, 4))
    assert y[0, 0].tolist() == [[9.0, 6.0], [6.0, 4.0]]            # PyTorch's padding=1 would give [[4,6],[6,9]]
    # 3x3 stride-2 transposed conv of [[1, 2], [3, 4]] with ones: input (i, j) adds to outputs 2i..2i+2,
    # cropped to 4x4, e.g. out[2][2] = 1 + 2 + 3 + 4, out[3][2] = 3 + 4
    de = TFDeconv2d(1, 1)
    torch.nn.init.ones_(de.weight)
    y = de(torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]]))
    assert y[0, 0].tolist() == [[1, 1, 3, 2], [1, 1, 3, 2], [4, 4, 10, 6], [3, 3, 7, 4]]
    # TF's legacy bicubic halving samples the even pixels
    x = torch.arange(36.0).reshape(1, 1, 6, 6)
    assert subsample(x, 2)[0, 0].tolist() == [[0, 2, 4], [12, 14, 16], [24, 26, 28]]
    # multi-scale D: 2 scales of a 32 crop after 2 layers give logit maps at 1/4 and 1/8
    d = MultiScaleDiscriminator(2, 2, 2)
    assert [tuple(p.shape) for p in d(torch.zeros(1, 3, 32, 32))] == [(1, 1, 8, 8), (1, 1, 4, 4)]


def test_losses_by_hand():
    # scale 0: ((1-1)^2 + (3-1)^2) / 2 = 2; scale 1: (0-1)^2 = 1; mean 1.5. To 0: (1 + 9) / 2 = 5 and 0 -> 2.5
    preds = [torch.tensor([[1.0, 3.0]]), torch.tensor([[0.0]])]
    assert float(multiscale_lsgan(preds, True)) == pytest.approx(1.5)
    assert float(multiscale_lsgan(preds, False)) == pytest.approx(2.5)
    # channel means of a: [2, 4], of b: [1, 1]; mean |diff| = (1 + 3) / 2 = 2
    a = torch.tensor([[[[1.0, 3.0]], [[3.0, 5.0]]]])
    b = torch.tensor([[[[0.0, 0.0]], [[2.0, 2.0]]]])
    assert float(latent_consistency(a, b)) == pytest.approx(2.0)
    # logits (0, 0): ln 2 each; (2, -1) against day = (1, 0): (log(1 + e^-2) + log(1 + e^-1)) / 2
    assert float(domain_bce(torch.zeros(1, 2), 0)) == pytest.approx(math.log(2))
    assert float(domain_bce(torch.tensor([[2.0, -1.0]]), 0)) == pytest.approx(0.5 * (0.126928 + 0.313262), abs=1e-6)
    # (2, -1) against night = (0, 1): (log(1 + e^2) + log(1 + e^1)) / 2
    assert float(domain_bce(torch.tensor([[2.0, -1.0]]), 1)) == pytest.approx(0.5 * (2.126928 + 1.313262), abs=1e-6)


def test_resume_after_sigterm_matches_uninterrupted_and_translates(interrupted_and_resumed):
    s = tiny()
    ref, res, _, _ = interrupted_and_resumed(s)
    assert res.read_bytes() == ref.read_bytes()

    tr = load_translator("forkgan", res, "cpu")
    x = torch.rand(1, 3, 30, 35, generator=torch.Generator().manual_seed(5))
    y = tr.translate(x)
    assert y.shape == (1, 3, 30, 35) and y.min() >= 0 and y.max() <= 1
    # deterministic: again, and inside a batch with another image
    other = torch.rand(1, 3, 30, 35, generator=torch.Generator().manual_seed(6))
    assert torch.equal(tr.translate(x), y)
    assert torch.allclose(tr.translate(torch.cat([other, x]))[1:], y, atol=1e-6)
