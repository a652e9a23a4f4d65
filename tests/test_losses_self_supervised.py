"""DaCo's loss and its baselines' (SimCLR, MoCo, NPID, SimSiam) against values computed by hand."""

import math

import pytest
import torch

from darkside.embed.self_supervised_losses import (
    daco_loss,
    fifo_enqueue,
    momentum_update,
    npid_bank_update,
    npid_loss,
    nt_xent,
    simsiam_loss,
)

D64 = torch.float64


def t(rows):
    return torch.tensor(rows, dtype=D64)


def _nt_xent_by_hand(z1, z2, tau):
    # DaCo's formula: -log(exp(s_pos / tau) / sum over the 2B - 1 others of exp(s / tau)), mean over 2B anchors
    z = z1 + z2
    b = len(z1)
    total = 0.0
    for i, a in enumerate(z):
        pos = z[(i + b) % (2 * b)]
        dot = lambda u, v: sum(x * y for x, y in zip(u, v, strict=True))  # noqa: E731
        den = sum(math.exp(dot(a, o) / tau) for j, o in enumerate(z) if j != i)
        total += -math.log(math.exp(dot(a, pos) / tau) / den)
    return total / (2 * b)


Z1 = [[1.0, 0.0], [0.0, 1.0]]
Z2 = [[0.6, 0.8], [0.8, -0.6]]


def test_nt_xent_by_hand():
    # anchor (1,0): others (0,1) s 0, (0.6,0.8) s 0.6 (positive), (0.8,-0.6) s 0.8 -> -log(e^1.2 / (1 + e^1.2 + e^1.6))
    first = -math.log(math.exp(1.2) / (1 + math.exp(1.2) + math.exp(1.6)))
    assert first == pytest.approx(1.0271, abs=1e-4)
    value = nt_xent(t(Z1), t(Z2), 0.5).item()
    assert value == pytest.approx(_nt_xent_by_hand(Z1, Z2, 0.5), rel=1e-12)
    assert value == pytest.approx(2.0301903, abs=1e-6)
    # perfectly aligned, orthogonal pairs at low temperature: the loss vanishes
    # aligned, orthogonal pairs: -log(e^10 / (e^10 + 2)) per anchor at tau 0.1
    e = torch.eye(2, dtype=D64)
    assert nt_xent(e, e, 0.1).item() == pytest.approx(math.log1p(2 * math.exp(-10)), rel=1e-9)


def test_daco_combines_within_and_cross_domain_terms():
    o1, o2, g1, g2 = t(Z1), t(Z2), t([[0.0, 1.0], [1.0, 0.0]]), t([[0.8, 0.6], [-0.6, 0.8]])
    ntx = lambda a, b: _nt_xent_by_hand(a.tolist(), b.tolist(), 0.1)  # noqa: E731
    within, cross = ntx(o1, o2) + ntx(g1, g2), ntx(o1, g1) + ntx(o1, g2)
    assert daco_loss(o1, o2, g1, g2, 0.8, 0.1).item() == pytest.approx(within + 0.8 * cross, rel=1e-12)
    assert daco_loss(o1, o2, g1, g2, 0.0, 0.1).item() == pytest.approx(within, rel=1e-12)
    assert cross > 0 and within > 0
    extra = ntx(o2, g1) + ntx(o2, g2)  # Table 5's two terms, at the same weight
    assert daco_loss(o1, o2, g1, g2, 0.8, 0.1, extra_cross=True).item() == pytest.approx(
        within + 0.8 * (cross + extra), rel=1e-12)


def test_moco_logits_are_key_then_queue_and_the_queue_is_first_in_first_out():
    from darkside.embed.self_supervised_losses import moco_loss

    q, k, queue = t([[1.0, 0.0]]), t([[0.6, 0.8]]), t([[0.0, 1.0], [-1.0, 0.0]])
    # logits (0.6, 0, -1) / 0.5 = (1.2, 0, -2); class 0
    expected = -math.log(math.exp(1.2) / (math.exp(1.2) + 1.0 + math.exp(-2.0)))
    assert moco_loss(q, k, queue, 0.5).item() == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(0.2941, abs=1e-4)
    rows = t([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    assert fifo_enqueue(rows, t([[0.6, 0.8], [0.8, 0.6]])).tolist() == [[-1.0, 0.0], [0.6, 0.8], [0.8, 0.6]]


def test_momentum_update_moves_the_key_encoder_a_fraction_towards_the_query_encoder():
    target, online = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    with torch.no_grad():
        target.weight.copy_(torch.tensor([[1.0, 2.0]]))
        online.weight.copy_(torch.tensor([[3.0, -2.0]]))
        target.bias.fill_(0.0)
        online.bias.fill_(1.0)
    momentum_update(target, online, 0.75)
    assert target.weight.tolist() == [[1.5, 1.0]] and target.bias.tolist() == [0.25]


def test_npid_nce_by_hand_with_the_first_batch_normaliser():
    bank = t([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.6, 0.8]])  # n = 4
    v = t([[0.6, 0.8]])
    samples = torch.tensor([[3, 0, 2]])  # own entry 3, negatives 0 and 2 (negs = 2)
    # exp(s / 1): own exp(1), e^0.6, e^-0.6; Z = mean * n
    out = [math.exp(1.0), math.exp(0.6), math.exp(-0.6)]
    z = sum(out) / 3 * 4
    p = [o / z for o in out]
    noise = 2 / 4
    expected = -(math.log(p[0] / (p[0] + noise)) + sum(math.log(noise / (pj + noise)) for pj in p[1:]))
    loss, normaliser = npid_loss(v, bank, samples, 1.0, None)
    assert normaliser == pytest.approx(z, rel=1e-12) and loss.item() == pytest.approx(expected, rel=1e-12)
    # a later batch keeps the first batch's Z
    loss2, again = npid_loss(v, bank, samples, 1.0, 10.0)
    p = [o / 10.0 for o in out]
    assert again == 10.0 and loss2.item() == pytest.approx(
        -(math.log(p[0] / (p[0] + noise)) + sum(math.log(noise / (pj + noise)) for pj in p[1:])), rel=1e-12)


def test_npid_bank_update_weights_the_new_feature_by_the_momentum():
    bank = t([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    out = npid_bank_update(bank, t([[0.0, 1.0]]), torch.tensor([0]), 0.5)
    # 0.5 (0, 1) + 0.5 (1, 0) = (0.5, 0.5) -> normalised (0.7071, 0.7071); the others untouched
    assert out[0].tolist() == pytest.approx([math.sqrt(0.5)] * 2)
    assert out[1:].tolist() == bank[1:].tolist() and bank[0].tolist() == [1.0, 0.0]


def test_simsiam_by_hand_and_no_gradient_into_the_encodings():
    z1, z2 = t([[1.0, 0.0]]).requires_grad_(), t([[0.6, 0.8]]).requires_grad_()
    p1, p2 = t([[0.0, 1.0]]).requires_grad_(), t([[0.8, 0.6]]).requires_grad_()
    loss = simsiam_loss(z1, z2, p1, p2)
    # -(p1.z2 + p2.z1) / 2 = -(0.8 + 0.8) / 2
    assert loss.item() == pytest.approx(-0.8, rel=1e-12)
    loss.backward()
    assert z1.grad is None and z2.grad is None
    assert p1.grad.tolist() == [[-0.3, -0.4]] and p2.grad.tolist() == [[-0.5, 0.0]]
