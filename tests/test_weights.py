import hashlib

import pytest

from darkside.data import weights
from darkside.errors import DarksideError


def _fake_download(content: bytes):
    def fake(url, dest, sha256, **kwargs):
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(content)
        return dest
    return fake


def test_digest_prefix_in_file_name_is_enforced(tmp_path, monkeypatch):
    content = b"not the real weights"
    digest = hashlib.sha256(content).hexdigest()
    name = f"imagenet-caffe-vgg16-features-{digest[:7]}.pth"
    monkeypatch.setitem(weights.WEIGHTS, name, "http://127.0.0.1/" + name)
    monkeypatch.setattr(weights, "download", _fake_download(content))
    assert weights.download_weights(name, tmp_path).read_bytes() == content
    bad = "imagenet-caffe-vgg16-features-d369c8e.pth"
    with pytest.raises(DarksideError, match="does not start with d369c8e"):
        weights.download_weights(bad, tmp_path)
    assert not (tmp_path / bad).exists()  # the bad file is removed


def test_unknown_weights_file(tmp_path):
    with pytest.raises(DarksideError, match=r"unknown file 'x\.pth'"):
        weights.download_weights("x.pth", tmp_path)


def test_paper_weights_are_registered(repo_root):
    from darkside.config import load_preset

    paper = load_preset(repo_root / "params.yaml", "paper")
    for b in paper.backbones:
        assert paper.backbone(b).weights.split("/")[-1] in weights.WEIGHTS


def test_paper_edge_detector_weights_are_registered(repo_root):
    from darkside.config import load_preset

    paper = load_preset(repo_root / "params.yaml", "paper")
    for fam in paper.raw["gan"]["families"].values():
        if fam.get("detector_weights"):
            assert fam["detector_weights"].split("/")[-1] in weights.WEIGHTS
