"""HED / RCF: published key layouts load, sizes, counts, Caffe preprocessing, student param groups."""

import pytest
import torch

from darkside.errors import DarksideError
from darkside.gan.edges import HED, RCF, detector_param_groups, load_detector, load_detector_file
from darkside.gan.edges.hed import caffe_input
from darkside.gan.edges.rcf import bilinear_kernel
from darkside.gan.networks import count_params

torch.set_num_threads(1)
ORD = ("One", "Two", "Thr", "Fou", "Fiv")


def test_counts_at_published_width():
    with torch.device("meta"):
        assert count_params(HED()) == 14_716_171
        assert count_params(RCF()) == 14_803_781


def sniklaus_state(width: float, prefix: str = "net") -> dict:
    """A state dict in sniklaus/pytorch-hed's layout, generated from its documented key names."""
    ref = HED(width)
    out = {}
    for k, v in ref.state_dict().items():
        head, rest = k.split(".", 1)
        if head.startswith("vgg"):
            out[f"{prefix}Vgg{ORD[int(head[3]) - 1]}.{rest}"] = torch.randn_like(v)
        elif head.startswith("score"):
            out[f"{prefix}Score{ORD[int(head[5]) - 1]}.{rest}"] = torch.randn_like(v)
        else:
            out[f"{prefix}Combine.{rest}"] = torch.randn_like(v)
    return out


@pytest.mark.parametrize("prefix", ["net", "module"])
def test_hed_loads_sniklaus_layout(prefix):
    state = sniklaus_state(0.125, prefix)
    assert f"{prefix}VggOne.0.weight" in state and f"{prefix}VggTwo.1.weight" in state
    assert f"{prefix}Combine.0.weight" in state and len(state) == 13 * 2 + 5 * 2 + 2
    m = load_detector(HED(0.125), state, "hed.pth")
    assert torch.equal(m.vgg2[1].weight, state[f"{prefix}VggTwo.1.weight"])
    assert torch.equal(m.fusion[0].bias, state[f"{prefix}Combine.0.bias"])


def test_hed_loads_gandtr_layout_from_file(tmp_path):
    src = HED(0.125)
    state = {k: torch.randn_like(v) for k, v in src.state_dict().items()}
    assert "vgg5.5.weight" in state and "score3.weight" in state and "fusion.0.weight" in state
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "w.pth")
    m = load_detector_file(HED(0.125), tmp_path / "w.pth")
    assert torch.equal(m.vgg5[5].weight, state["vgg5.5.weight"])


def test_rcf_loads_published_layout():
    keys = [f"conv{s}_{j}" for s, n in zip(range(1, 6), (2, 2, 3, 3, 3), strict=True)
            for j in range(1, n + 1)]
    ref = RCF(0.125).state_dict()
    names = {k.rsplit(".", 1)[0] for k in ref}
    assert names == set(keys) | {f"{k}_down" for k in keys} | {f"score_dsn{i}" for i in range(1, 6)} | \
        {"score_fuse"}
    state = {k: torch.randn_like(v) for k, v in ref.items()}
    state["weight_deconv2"] = torch.zeros(1, 1, 4, 4)  # some forks store the fixed kernels
    m = load_detector(RCF(0.125), state, "rcf.pth")
    assert torch.equal(m.conv5_3_down.weight, state["conv5_3_down.weight"])


def test_loader_errors_name_the_file():
    bad = {k: v for k, v in HED(0.125).state_dict().items() if k != "score1.bias"}
    with pytest.raises(DarksideError, match=r"^hed\.pth: weights do not fit HED \(missing key 'score1\.bias'"):
        load_detector(HED(0.125), bad, "hed.pth")
    with pytest.raises(DarksideError, match="wrong width"):
        load_detector(HED(0.25), HED(0.125).state_dict(), "hed.pth")


def test_outputs_at_input_size_and_in_range():
    x = torch.rand(2, 3, 33, 40)
    for m in (HED(0.125), RCF(0.125)):
        e = m(x)
        assert e.shape == (2, 1, 33, 40) and e.min() >= 0 and e.max() <= 1
        assert torch.allclose(torch.sigmoid(m(x, logits=True)), e)


def test_caffe_preprocessing():
    x = torch.zeros(1, 3, 1, 1)
    x[0, 0] = 1.0  # pure red in RGB
    y = caffe_input(x, "caffe255").flatten().tolist()
    assert y == pytest.approx([-104.00698793, -116.66876762, 255 - 122.67891434])  # BGR order
    assert caffe_input(x, "gandtr01").flatten().tolist() == pytest.approx(
        [-104.00698793 / 255, -116.66876762 / 255, 1 - 122.67891434 / 255])


def test_bilinear_kernel():
    k = bilinear_kernel(4)[0, 0]
    assert k[0].tolist() == pytest.approx([0.0625, 0.1875, 0.1875, 0.0625])
    assert k.sum().item() == pytest.approx(4.0)  # stride-2 upsampling preserves a constant map


def test_hed_student_groups_use_caffe_multipliers():
    groups = {g["name"]: g for g in detector_param_groups(HED(0.125), 1e-6, 2e-4, multipliers=True)}
    assert groups["conv.weight"]["lr"] == pytest.approx(1e-6)
    assert groups["conv.bias"]["lr"] == pytest.approx(2e-6) and groups["conv.bias"]["weight_decay"] == 0
    assert groups["conv5.weight"]["lr"] == pytest.approx(1e-4)
    assert groups["conv5.bias"]["lr"] == pytest.approx(2e-4)
    assert groups["score.weight"]["lr"] == pytest.approx(1e-8)
    assert groups["fusion.bias"]["lr"] == pytest.approx(2e-9)
    assert groups["fusion.weight"]["weight_decay"] == pytest.approx(2e-4)
    assert len(groups["conv5.weight"]["params"]) == 3 and len(groups["score.weight"]["params"]) == 5
    plain = detector_param_groups(RCF(0.125), 1e-6, 2e-4, multipliers=False)
    assert len(plain) == 1 and plain[0]["weight_decay"] == 2e-4
