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
