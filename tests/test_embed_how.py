"""HOW's pieces on hand-worked cases: attention, smoothing, whitened reduction, weighted SPoC, multi-scale top-k."""

import numpy as np
import pytest
import torch

from darkside.embed.how import Reduction, attention, multiscale_local, pca_whitening, smooth, weighted_spoc
from darkside.errors import DarksideError

torch.set_num_threads(1)
GRID = torch.arange(1.0, 10.0).reshape(1, 1, 3, 3)  # 1 2 3 / 4 5 6 / 7 8 9


def test_attention_is_the_channel_norm():
    f = torch.tensor([[3.0, 0.0], [0.0, 1.0]]).reshape(1, 1, 2, 2).repeat(1, 2, 1, 1)
    f[0, 1] = torch.tensor([[4.0, 2.0], [0.0, 0.0]])
    assert attention(f).tolist() == [[[5.0, 2.0], [0.0, 1.0]]]


def test_smoothing_averages_the_pixels_inside():
    s = smooth(GRID)[0, 0]
    assert s[0, 0].item() == pytest.approx((1 + 2 + 4 + 5) / 4)  # a corner: 4 pixels, not 9
    assert s[0, 1].item() == pytest.approx((1 + 2 + 3 + 4 + 5 + 6) / 6)
    assert s[1, 1].item() == pytest.approx(5.0) and s.shape == (3, 3)


def test_weighted_spoc():
    x = torch.zeros(1, 2, 1, 2)
    x[0, :, 0, 0] = torch.tensor([1.0, 0.0])
    x[0, :, 0, 1] = torch.tensor([0.0, 1.0])
    g = weighted_spoc(x, torch.tensor([[[3.0, 4.0]]]))
    np.testing.assert_allclose(g.numpy(), [[0.6, 0.8]], rtol=1e-6)


def test_pca_whitening_and_the_frozen_reduction():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 5)) @ np.diag([5.0, 3.0, 1.0, 0.5, 0.1]) + 2.0
    P, m = pca_whitening(X, 3)
    Y = (X - m) @ P.T
    np.testing.assert_allclose(np.cov(Y.T, bias=True), np.eye(3), atol=1e-8)
    assert np.abs(P[0]).argmax() == 0 and np.abs(P[1]).argmax() == 1  # by decreasing variance
    red = Reduction(5, 3)
    red.init_whitening(X)
    assert not any(p.requires_grad for p in red.parameters())
    out = red(torch.as_tensor(X[:2], dtype=torch.float32)[:, :, None, None])[:, :, 0, 0]
    want = Y[:2] / np.linalg.norm(Y[:2], axis=1, keepdims=True)
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-4, atol=1e-5)
    with pytest.raises(DarksideError, match="3 whitened dimensions"):
        pca_whitening(X[:3], 3)


def test_multiscale_top_k_by_hand():
    # identity trunk and reduction: attention = the pixel, descriptor = its 3x3 average. Scale 1/3 samples the
    # centre (5). Top 4: 9, 8, 7 (scale 1), then 6; attention over the maximum 9.
    desc, att = multiscale_local(lambda x: x, lambda x: x, GRID, (1.0, 1 / 3), features=4)
    np.testing.assert_allclose(att.numpy(), [1.0, 8 / 9, 7 / 9, 6 / 9], rtol=1e-6)
    np.testing.assert_allclose(desc[:, 0].numpy(), [(5 + 6 + 8 + 9) / 4, (4 + 5 + 6 + 7 + 8 + 9) / 6,
                                                    (4 + 5 + 7 + 8) / 4, (2 + 3 + 5 + 6 + 8 + 9) / 6], rtol=1e-6)
    # every location of every scale, 9 + 1: the two 5s tie and the earlier scale comes first
    _, att = multiscale_local(lambda x: x, lambda x: x, GRID, (1.0, 1 / 3), features=100)
    assert len(att) == 10 and att[4].item() == pytest.approx(5 / 9) and att[5].item() == pytest.approx(5 / 9)
    # the maximum is over every scale: at 1/3 alone the only location has attention 1
    _, att = multiscale_local(lambda x: x, lambda x: x, GRID, (1 / 3,), features=5)
    assert att.tolist() == [1.0]
    # a scale below the trunk's smallest input is left out; none left is an error
    _, att = multiscale_local(lambda x: x, lambda x: x, GRID, (1.0, 1 / 3), features=100, min_side=2)
    assert len(att) == 9
    with pytest.raises(DarksideError, match="no scale"):
        multiscale_local(lambda x: x, lambda x: x, GRID, (1 / 3,), features=1, min_side=2)
