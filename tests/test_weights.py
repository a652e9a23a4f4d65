import hashlib

import pytest
import yaml

from darkside.cli import weight_urls
from darkside.data import weights
from darkside.errors import DarksideError


def _fake_download(content: bytes):
    def fake(url, dest, sha256, **kwargs):
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(content)
        return dest, hashlib.sha256(content).hexdigest()
    return fake


def test_digest_prefix_in_file_name_is_enforced(tmp_path, monkeypatch):
    content = b"not the real weights"
    digest = hashlib.sha256(content).hexdigest()
    name = f"imagenet-caffe-vgg16-features-{digest[:7]}.pth"
    bad = "imagenet-caffe-vgg16-features-d369c8e.pth"
    urls = {n: "http://127.0.0.1/" + n for n in (name, bad)}
    monkeypatch.setattr(weights, "download_verified", _fake_download(content))
    assert weights.download_weights(name, tmp_path, urls).read_bytes() == content
    with pytest.raises(DarksideError, match="does not start with d369c8e"):
        weights.download_weights(bad, tmp_path, urls)
    assert not (tmp_path / bad).exists()  # the bad file is removed


def test_unknown_weights_file(tmp_path):
    with pytest.raises(DarksideError, match=r"unknown file 'x\.pth'"):
        weights.download_weights("x.pth", tmp_path, weight_urls())


def test_every_paper_weight_file_is_published_by_a_registry(repo_root):
    """The backbone and detector registries know where each weight file of the paper preset comes from."""
    paper = yaml.safe_load((repo_root / "params.yaml").read_text())["presets"]["paper"]
    # a null weights file is torchvision's own (HOW's ResNet-18), read from the local torch hub cache
    files = [b["weights"] for b in paper["backbones"].values() if b["weights"] is not None] + \
            [d["weights"] for d in paper["edges"]["detectors"].values()]
    urls = weight_urls()
    for f in files:
        assert f.startswith("data/weights/") and f.split("/")[-1] in urls, f
    assert urls["imagenet-caffe-vgg16-features-d369c8e.pth"].startswith("http://cmp.felk.cvut.cz/")
    assert urls["hed_sniklaus_github.pth"].endswith("/iccv23_gan/hed_sniklaus_github.pth")
    from darkside.embed.backbones import ARCHS

    hub = [b["arch"] for b in paper["backbones"].values() if b["weights"] is None]
    assert hub == ["resnet18"] and ARCHS["resnet18"].torchvision_file == "resnet18-f37072fd.pth"
    assert all(b["init"] == "imagenet-torchvision" for b in paper["backbones"].values() if b["weights"] is None)
