"""EmbeddingNet: forward contract, checkpoint round trip, BatchNorm freezing, optimizer groups."""

import dataclasses
from pathlib import Path

import pytest
import torch

from darkside.config import BackboneSpec
from darkside.embed.network import (
    EmbeddingNet,
    build_embedding_net,
    freeze_batchnorm,
    load_model,
    save_model,
)
from darkside.errors import DarksideError
from darkside.training import resolve_device

torch.set_num_threads(1)
VGG = BackboneSpec("vgg16", 0.0625, None, "random", None, "vgg16")
RES = BackboneSpec("resnet101", 0.125, (1, 1, 1, 1), "random", None, "resnet101")


def test_forward_gives_unit_descriptors_of_dim():
    net = build_embedding_net(VGG, seed=0).eval()
    assert isinstance(net, EmbeddingNet) and net.dim == 32 and net.spec is VGG
    assert net.meta["dim"] == 32 and net.meta["architecture"] == "vgg16"
    y = net(torch.rand(3, 3, 48, 64))
    assert y.shape == (3, 32)
    torch.testing.assert_close(y.norm(dim=1), torch.ones(3))
    # the network is trunk -> GeM(p=3) -> L2, nothing else
    f = net.backbone(torch.rand(1, 3, 32, 32))
    ref = f.clamp(min=1e-6).pow(3).mean(dim=(2, 3)).pow(1 / 3)
    torch.testing.assert_close(net.norm(net.pool(f)), ref / (ref.norm() + 1e-6))
    assert net.gem_p == 3.0


def test_min_input_side():
    assert build_embedding_net(VGG).min_side == 16
    assert build_embedding_net(RES).min_side == 1
    assert build_embedding_net(RES).eval()(torch.rand(1, 3, 5, 3)).shape == (1, 256)


def test_save_load_round_trip(tmp_path):
    net = build_embedding_net(RES, seed=1)
    with torch.no_grad():
        net.pool.p.fill_(2.5)
        net.backbone[1].running_mean.add_(0.25)
    path = save_model(net, tmp_path / "m" / "model.pt", {"epoch": 3, "losses": [0.5, 0.25], "recipe": None})
    assert path == tmp_path / "m" / "model.pt"
    assert not list(path.parent.glob(".*part"))  # no temp left behind
    raw = torch.load(path, weights_only=True)  # plain types only
    assert raw["extra"]["epoch"] == 3 and raw["spec"]["blocks"] == [1, 1, 1, 1]
    loaded = load_model(path)
    assert loaded.spec == RES and loaded.extra["losses"] == [0.5, 0.25] and not loaded.training
    assert loaded.gem_p == 2.5
    x = torch.rand(2, 3, 40, 40)
    torch.testing.assert_close(loaded(x), net.eval()(x))
    # identical weights give identical bytes, whatever the file's (or its temporary's) name, so the
    # SHA-256 that descriptor and metric files record reproduces; other weights give other bytes
    again = save_model(loaded, tmp_path / "again.pt", extra=loaded.extra)
    assert again.read_bytes() == path.read_bytes()
    with torch.no_grad():
        loaded.pool.p.add_(0.5)
    assert save_model(loaded, tmp_path / "other.pt", extra=loaded.extra).read_bytes() != path.read_bytes()
    assert raw["preprocessing"] == {"clahe": None}  # the off-the-shelf network prepares no CLAHE


def test_load_does_not_need_the_original_weight_file(tmp_path):
    net = build_embedding_net(VGG)
    net.spec = dataclasses.replace(VGG, init="imagenet-caffe", weights=str(tmp_path / "gone.pth"))
    loaded = load_model(save_model(net, tmp_path / "model.pt"))
    assert loaded.spec.init == "imagenet-caffe"
    torch.testing.assert_close(loaded.backbone[0].weight, net.backbone[0].weight)


def test_save_rejects_non_plain_extra(tmp_path):
    with pytest.raises(DarksideError, match=r"extra\.where: PosixPath is not a plain type"):
        save_model(build_embedding_net(VGG), tmp_path / "model.pt", {"where": Path("x")})
    assert not (tmp_path / "model.pt").exists()


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(DarksideError, match=r"nothere\.pt: model file does not exist"):
        load_model(tmp_path / "nothere.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00garbage")
    with pytest.raises(DarksideError, match=r"bad\.pt: corrupt or unreadable model file"):
        load_model(bad)
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, other)
    with pytest.raises(DarksideError, match=r"other\.pt: not a darkside embedding model file"):
        load_model(other)
    truncated = tmp_path / "truncated.pt"
    good = save_model(build_embedding_net(VGG), tmp_path / "good.pt").read_bytes()
    truncated.write_bytes(good[: len(good) // 2])
    with pytest.raises(DarksideError, match=r"truncated\.pt: corrupt or unreadable model file"):
        load_model(truncated)


def test_freeze_batchnorm_keeps_running_stats():
    net = build_embedding_net(RES)
    net.train()
    freeze_batchnorm(net)
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and not any(m.training for m in bns)
    assert net.training and net.backbone[0].training
    before = bns[0].running_mean.clone()
    net(torch.rand(2, 3, 40, 40) * 5)
    assert torch.equal(bns[0].running_mean, before)


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(DarksideError, match="no CUDA device"):
            resolve_device("cuda")
