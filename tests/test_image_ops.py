"""DaCo's view operations give torchvision's results exactly (they are restated so that a DaCo job does not import
torchvision), and a DaCo job's modules leave torchvision unimported."""

import subprocess
import sys

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torchvision.transforms._functional_tensor import _rgb2hsv

from darkside import image_ops


@pytest.fixture
def images():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 17, 23, generator=g)
    x[0, :, :4, :4] = 0.5          # grey pixels: zero chroma, hue 0
    x[1, 0], x[1, 1] = x[1, 2], x[1, 2]  # a grey image
    x[2, 1] = x[2, 0]               # max shared by red and green
    x[3, :, 0, 0] = torch.tensor([0.0, 0.0, 0.0])
    return x


def test_grey_and_normalise_are_torchvisions(images):
    assert torch.equal(image_ops.grey(images), TF.rgb_to_grayscale(images))
    assert torch.equal(image_ops.grey(images, channels=3), TF.rgb_to_grayscale(images, num_output_channels=3))
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    assert torch.equal(image_ops.normalise(images[0], mean, std), TF.normalize(images[0], list(mean), list(std)))


def test_hsv_is_torchvisions(images):
    assert torch.equal(image_ops.rgb_to_hsv(images), _rgb2hsv(images))


@pytest.mark.parametrize("short", [8, 17, 30])
def test_resizes_are_torchvisions(images, short):
    img = images[0]
    assert torch.equal(image_ops.resize_short_side(img, short), TF.resize(img, short, antialias=True))
    tall = img.transpose(1, 2).contiguous()
    assert torch.equal(image_ops.resize_short_side(tall, short), TF.resize(tall, short, antialias=True))
    assert torch.equal(image_ops.resized_crop(img, 2, 3, 11, 9, (short, short)),
                       TF.resized_crop(img, 2, 3, 11, 9, [short, short], antialias=True))


def test_image_tensor_reads_the_file(tmp_path):
    rgb = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    got = image_ops.image_tensor(tmp_path / "a.png")
    assert got.shape == (3, 5, 7) and got.dtype == torch.float32
    assert torch.equal(got, TF.pil_to_tensor(Image.open(tmp_path / "a.png")).float() / 255.0)


def test_a_daco_job_does_not_import_torchvision():
    code = ("import sys, darkside.embed.daco, darkside.extract.daco_descriptors; "
            "sys.exit('torchvision' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
