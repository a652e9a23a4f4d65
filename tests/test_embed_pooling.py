"""GeM and L2N against hand-computed values."""

import math

import pytest
import torch

from darkside.embed.pooling import L2N, GeM, gem, l2n


def _map(values):
    # one image, one channel per list, 2x2 spatial
    return torch.tensor([[[[v[0], v[1]], [v[2], v[3]]] for v in values]], dtype=torch.float64)


def test_gem_hand_values():
    x = _map([[1, 2, 3, 4], [0, 0, 0, 8]])
    out = gem(x, 3.0)
    assert out.shape == (1, 2)
    assert out[0, 0].item() == pytest.approx(25.0 ** (1 / 3))  # mean(1, 8, 27, 64) = 25
    # zeros are clamped to 1e-6: (512 / 4 + 3e-18 / 4) ** (1/3) = 128 ** (1/3)
    assert out[0, 1].item() == pytest.approx(128.0 ** (1 / 3))
    assert gem(x, 2.0)[0, 0].item() == pytest.approx(math.sqrt(7.5))


def test_gem_p1_is_average_pooling():
    x = torch.rand(2, 5, 3, 4, dtype=torch.float64) + 0.1
    torch.testing.assert_close(gem(x, 1.0), x.mean(dim=(2, 3)))
    torch.testing.assert_close(GeM(p=1.0).double()(x), torch.nn.functional.adaptive_avg_pool2d(x, 1).flatten(1))


def test_gem_large_p_tends_to_max():
    x = torch.rand(1, 3, 4, 4, dtype=torch.float64) + 0.5
    torch.testing.assert_close(gem(x, 200.0), x.amax(dim=(2, 3)), rtol=0.02, atol=0)


def test_gem_module_p_is_learnable_scalar():
    g = GeM()
    assert g.p.shape == (1,) and g.p.item() == 3.0 and g.p.requires_grad
    assert not GeM(learnable=False).p.requires_grad
    x = torch.rand(1, 2, 3, 3) + 0.1
    g(x).sum().backward()
    assert g.p.grad is not None and torch.isfinite(g.p.grad).all()


def test_gem_half_precision_is_computed_in_float32():
    x = torch.full((1, 1, 2, 2), 300.0, dtype=torch.float16)  # 300**3 overflows float16
    assert gem(x, 3.0).item() == pytest.approx(300.0, rel=1e-4)


def test_l2n_hand_values():
    y = l2n(torch.tensor([[3.0, 4.0], [0.0, 0.0]], dtype=torch.float64))
    assert y[0].tolist() == pytest.approx([3 / (5 + 1e-6), 4 / (5 + 1e-6)], abs=1e-12)
    assert y[1].tolist() == [0.0, 0.0]  # the eps keeps a zero vector finite
    torch.testing.assert_close(L2N()(torch.tensor([[6.0, 8.0]])), torch.tensor([[0.6, 0.8]]))


def test_netvlad_by_hand():
    """Two locations x = (3, 4) -> (0.6, 0.8) after its L2, and (1, 0); centres (1, 0), (0, 1)."""
    from darkside.embed.pooling import netvlad

    x = torch.tensor([[3.0, 1.0], [4.0, 0.0]], dtype=torch.float64).reshape(1, 2, 1, 2)
    centres = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    # uniform assignment (w, b = 0): V_1 = 0.5 (-0.4, 0.8) + 0.5 (0, 0) = (-0.2, 0.4) -> (-0.44721, 0.89443);
    # V_2 = 0.5 (0.6, -0.2) + 0.5 (1, -1) = (0.8, -0.6), a unit vector; the whole / sqrt(2)
    v = netvlad(x, centres, torch.zeros(2, 2, dtype=torch.float64), torch.zeros(2, dtype=torch.float64))
    expected = torch.tensor([[-0.44721, 0.89443, 0.8, -0.6]], dtype=torch.float64) / math.sqrt(2)
    torch.testing.assert_close(v, expected, atol=2e-5, rtol=0)
    # bias (log 3, 0): every location 3/4 to centre 1: V_1 = 0.75 (-0.4, 0.8) = (-0.3, 0.6) -> (-0.44721, 0.89443);
    # V_2 = 0.25 (1.6, -1.2) = (0.4, -0.3) -> (0.8, -0.6): intra-normalisation makes it the same vector
    bias = torch.tensor([math.log(3), 0.0], dtype=torch.float64)
    v = netvlad(x, centres, torch.zeros(2, 2, dtype=torch.float64), bias)
    torch.testing.assert_close(v, expected, atol=2e-5, rtol=0)
    # the assignment from the features: w = (1, 0), (0, 0) gives location 1 logits (0.6, 0), location 2 (1, 0):
    # a_1 = 1 / (1 + e^-0.6) = 0.64566 and 1 / (1 + e^-1) = 0.73106. V_1 = 0.64566 (-0.4, 0.8) = (-0.25826,
    # 0.51653) -> (-0.44721, 0.89443); V_2 = 0.35434 (0.6, -0.2) + 0.26894 (1, -1) = (0.48155, -0.33981)
    # -> (0.81705, -0.57656)
    v = netvlad(x, centres, torch.tensor([[1.0, 0.0], [0.0, 0.0]], dtype=torch.float64), None)
    torch.testing.assert_close(v, torch.tensor([[-0.44721, 0.89443, 0.81705, -0.57656]], dtype=torch.float64)
                               / math.sqrt(2), atol=2e-5, rtol=0)


def test_netvlad_initialisation_by_hand():
    """Centres (1, 0), (0, 1); features (1, 0) and (0.6, 0.8): squared distances (0, 2) and (0.8, 0.4), so the
    gaps to the second nearest are 2 and 0.4, mean 1.2; alpha = log(100) / 1.2 = 3.83764; w_k = 2 alpha c_k,
    b_k = -alpha |c_k|^2 = -alpha."""
    from darkside.embed.pooling import NetVLAD

    pool = NetVLAD(2, 2)
    centres = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    alpha = pool.init_from(centres, torch.tensor([[1.0, 0.0], [0.6, 0.8]]), 100.0)
    assert alpha == pytest.approx(math.log(100) / 1.2)
    torch.testing.assert_close(pool.assign.weight.flatten(1), 2 * alpha * centres)
    torch.testing.assert_close(pool.assign.bias, torch.full((2,), -alpha))
    torch.testing.assert_close(pool.centres.data, centres)
    # the nearest centre of (1, 0) weighs e^(alpha (2 - 0)) = 2154 times the other (the init aims at 100 on average)
    a = torch.softmax(pool.assign(torch.tensor([1.0, 0.0]).view(1, 2, 1, 1)).flatten(), 0)
    assert (a[0] / a[1]).item() == pytest.approx(math.exp(2 * alpha), rel=1e-4)
    assert pool.multiscale_p == 1.0
