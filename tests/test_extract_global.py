"""Multi-scale extraction: batched == per-image reference, corrupt images, datasets to HDF5, whitening."""

import math

import numpy as np
import pytest
import torch
from PIL import Image

from darkside.config import BackboneSpec, ExtractSettings
from darkside.data.manifest import GroundTruth, ImageRecord, Query, write_dataset
from darkside.data.photometric import ClaheSettings, clahe, pil_to_float
from darkside.embed.network import build_embedding_net, load_model
from darkside.embed.whitening import apply_whitening, load_whitening
from darkside.errors import ImageError
from darkside.extract import global_descriptors as gd
from darkside.extract.hdf5 import read_descriptors

torch.set_num_threads(1)
SPEC = BackboneSpec("vgg16", 0.0625, None, "random", None, "vgg16")
SCALES = (1.0, 1 / math.sqrt(2), 0.5)
SIZES = [(80, 60), (60, 80), (70, 70)]  # >= 32 px at scale 1/2 after the 4 max-pools


def settings(batch_size=3, on_corrupt="error", image_size=64):
    return ExtractSettings(image_size, SCALES, batch_size, on_corrupt)


@pytest.fixture(scope="module")
def net():
    return build_embedding_net(SPEC, seed=0)


def _image(i, size):
    rng = np.random.default_rng(i)
    return Image.fromarray((rng.random((size[1], size[0], 3)) * 255).astype(np.uint8))


def _write_images(folder, n, sizes=SIZES):
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = folder / f"im{i:02d}.png"
        _image(i, sizes[i % len(sizes)]).save(p)
        paths.append(p)
    return paths


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_prepare_image_crop_resize_normalise():
    img = _image(0, (80, 40))
    t = gd.prepare_image(img, 32, ClaheSettings(False))
    assert t.shape == (3, 16, 32)
    # a 40x20 crop of an 80-px image shrinks by the full image's factor 32/80 -> 16x8
    crop = gd.prepare_image(img, 32, ClaheSettings(False), bbox=(10, 10, 50, 30))
    assert crop.shape == (3, 8, 16)
    small = img.crop((10, 10, 50, 30)).resize((16, 8), Image.Resampling.LANCZOS)
    expected = (torch.from_numpy(pil_to_float(small)).permute(2, 0, 1) - gd._MEAN) / gd._STD
    torch.testing.assert_close(crop, expected)
    with_clahe = gd.prepare_image(img, 32, ClaheSettings(True))
    rgb = clahe(pil_to_float(img.resize((32, 16), Image.Resampling.LANCZOS)))
    torch.testing.assert_close(with_clahe, gd.normalize(rgb))


def test_multiscale_is_gem_power_mean_of_unit_vectors(net):
    x = torch.rand(1, 3, 64, 48)
    with torch.no_grad():
        fs = [net.eval()(torch.nn.functional.interpolate(x, scale_factor=s, mode="bilinear",
                                                         align_corners=False) if s != 1 else x)
              for s in SCALES]
        v = (sum(f.pow(3) for f in fs) / 3).pow(1 / 3)
        torch.testing.assert_close(gd.multiscale_descriptor(net, x, SCALES), v / v.norm())
        torch.testing.assert_close(gd.multiscale_descriptor(net, x, (1.0,)), fs[0])


def test_scales_too_small_for_the_trunk_are_left_out(net):
    assert net.min_side == 16  # VGG16 keeps 4 un-padded max-pools
    interp = torch.nn.functional.interpolate
    with torch.no_grad():
        x = torch.rand(1, 3, 24, 30)  # 1/sqrt(2) -> 16 px (kept), 1/2 -> 12 px (left out)
        f1, f2 = net.eval()(x), net(interp(x, scale_factor=SCALES[1], mode="bilinear", align_corners=False))
        v = ((f1.pow(3) + f2.pow(3)) / 2).pow(1 / 3)
        torch.testing.assert_close(gd.multiscale_descriptor(net, x, SCALES), v / v.norm())
        tiny = torch.rand(1, 3, 8, 12)  # enlarged to 16 x 24 first, then only scale 1 fits
        ref = net(interp(tiny, size=(16, 24), mode="bilinear", align_corners=False))
        torch.testing.assert_close(gd.multiscale_descriptor(net, tiny, SCALES), ref / ref.norm())
    assert gd.extract_descriptors(net, [_image(0, (9, 7))], settings(), ClaheSettings(True),
                                  progress=False).shape == (1, net.dim)


@pytest.mark.parametrize(("batch_size", "workers", "sizes"), [
    (3, 0, SIZES),
    (2, 2, SIZES),
    (2, 0, [(60 + 4 * i, 50) for i in range(10)]),  # 10 sizes: partial buckets flushed early
])
def test_batched_equals_reference(tmp_path, net, batch_size, workers, sizes):
    paths = _write_images(tmp_path, 10, sizes)
    images = [*paths[:9], Image.open(paths[9]).convert("RGB")]  # paths and PIL images mix
    cl = ClaheSettings(True)
    ref = gd.extract_descriptors_reference(net, images, settings(batch_size), cl)
    out = gd.extract_descriptors(net, images, settings(batch_size), cl, progress=False, num_workers=workers)
    assert out.shape == (10, net.dim) and out.dtype == np.float32
    np.testing.assert_allclose(out, ref, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


def test_queries_with_boxes_batched_equals_reference(tmp_path, net):
    paths = _write_images(tmp_path, 4)
    boxes = [(0, 0, 60, 50), None, (5, 5, 55, 75), (1.4, 2.6, 60.2, 60.7)]
    ref = gd.extract_descriptors_reference(net, paths, settings(), ClaheSettings(False), bboxes=boxes)
    out = gd.extract_descriptors(net, paths, settings(), ClaheSettings(False), bboxes=boxes, progress=False)
    np.testing.assert_allclose(out, ref, atol=1e-5)
    full = gd.extract_descriptors(net, paths[:1], settings(), ClaheSettings(False), progress=False)
    assert not np.allclose(full[0], out[0], atol=1e-3)


def test_extraction_restores_module_modes(net):
    net.train()
    for m in net.modules():
        if isinstance(m, torch.nn.Conv2d):
            m.eval()  # a mode pattern train() alone could not restore
    gd.extract_descriptors(net, [_image(0, (64, 64))], settings(), ClaheSettings(False), progress=False)
    assert net.training and not any(m.training for m in net.modules() if isinstance(m, torch.nn.Conv2d))
    net.eval()


def test_corrupt_image_error_or_skip(tmp_path, net):
    paths = _write_images(tmp_path, 4)
    _truncate(paths[2])
    for fn in (gd.extract_descriptors, gd.extract_descriptors_reference):
        with pytest.raises(ImageError, match=r"im02\.png: corrupt or truncated image"):
            fn(net, paths, settings(), ClaheSettings(False), progress=False)
    skipped: list[int] = []
    out = gd.extract_descriptors(net, paths, settings(on_corrupt="skip"), ClaheSettings(False),
                                 progress=False, skipped=skipped)
    assert skipped == [2] and out.shape == (3, net.dim)
    ok = gd.extract_descriptors(net, [paths[i] for i in (0, 1, 3)], settings(), ClaheSettings(False),
                                progress=False)
    np.testing.assert_allclose(out, ok, atol=1e-6)


def _dataset(root, n=8, corrupt=None):
    paths = _write_images(root / "images", n)
    if corrupt is not None:
        _truncate(paths[corrupt])
    records = [ImageRecord(p.name, f"id{i}", "database" if i >= 2 else "query", "day", f"c{i // 2}", "p", 1, 1)
               for i, p in enumerate(paths)]
    gt = GroundTruth("revisited", queries=[
        Query("id0", easy=["id2"], hard=["id3"], junk=[], bbox=(2.0, 3.0, 70.0, 55.0)),
        Query("id1", easy=["id4"], hard=[], junk=["id5"], bbox=(0.0, 0.0, 60.0, 60.0)),
    ], database_split="database")
    return write_dataset(root / "ds", "tiny", records, gt, image_root="../images")


def test_extract_dataset_to_hdf5(tmp_path, net):
    model = gd.init_model(SPEC, tmp_path / "model.pt", seed=0)
    assert load_model(model).extra["kind"] == "off-the-shelf"
    ds = _dataset(tmp_path)
    out = gd.extract_dataset(model, ds, tmp_path / "out" / "d.h5", settings(), ClaheSettings(True),
                             device="cpu", preset_name="mini", progress=False)
    data = read_descriptors(out)
    assert data.image_ids == [f"id{i}" for i in range(8)]
    assert data.query_ids == ["id0", "id1"]
    paths = sorted((tmp_path / "images").glob("*.png"))
    ref = gd.extract_descriptors_reference(net, paths, settings(), ClaheSettings(True))
    np.testing.assert_allclose(data.descriptors, ref, atol=1e-5)
    qref = gd.extract_descriptors_reference(net, paths[:2], settings(), ClaheSettings(True),
                                            bboxes=[(2.0, 3.0, 70.0, 55.0), (0.0, 0.0, 60.0, 60.0)])
    np.testing.assert_allclose(data.query_descriptors, qref, atol=1e-5)
    a = data.attrs
    assert a["preset"] == "mini" and a["dataset"] == "tiny" and a["skipped_images"] == 0
    assert a["skipped_ids"] == [] and len(a["model_sha256"]) == 64
    assert a["settings"]["scales"] == list(SCALES) and a["settings"]["clahe"]["enabled"] is True
    assert a["settings"]["whitening"] is None


def test_extract_dataset_skips_and_counts(tmp_path):
    model = gd.init_model(SPEC, tmp_path / "model.pt", seed=0)
    ds = _dataset(tmp_path, corrupt=1)
    with pytest.raises(ImageError, match=r"im01\.png"):
        gd.extract_dataset(model, ds, tmp_path / "d.h5", settings(), ClaheSettings(False), progress=False)
    assert not (tmp_path / "d.h5").exists()
    out = gd.extract_dataset(model, ds, tmp_path / "d.h5", settings(), ClaheSettings(False),
                             on_corrupt="skip", progress=False)
    data = read_descriptors(out)
    assert "id1" not in data.image_ids and len(data.image_ids) == 7 and data.descriptors.shape[0] == 7
    assert data.query_ids == ["id0"]  # the query id1 is the corrupt image too
    assert data.attrs["skipped_images"] == 1 and data.attrs["skipped_ids"] == ["id1"]


def test_killed_extraction_leaves_no_file(tmp_path, monkeypatch):
    model = gd.init_model(SPEC, tmp_path / "model.pt", seed=0)
    ds = _dataset(tmp_path)
    calls = {"n": 0}
    real = gd.multiscale_descriptor

    def dying(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # as a SIGINT / preemption half-way
        return real(*args, **kwargs)

    monkeypatch.setattr(gd, "multiscale_descriptor", dying)
    with pytest.raises(KeyboardInterrupt):
        gd.extract_dataset(model, ds, tmp_path / "out" / "d.h5", settings(), ClaheSettings(False), progress=False)
    monkeypatch.setattr(gd, "multiscale_descriptor", real)
    assert not (tmp_path / "out" / "d.h5").exists()

    # killed while the HDF5 file is being written: the temporary file is removed too
    import darkside.extract.hdf5 as hdf5

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    import json
    import types

    # only the HDF5 writer's JSON attributes fail (the whole json module is shared)
    monkeypatch.setattr(hdf5, "json", types.SimpleNamespace(dumps=boom, loads=json.loads,
                                                             JSONDecodeError=json.JSONDecodeError))
    with pytest.raises(KeyboardInterrupt):
        gd.extract_dataset(model, ds, tmp_path / "out" / "d.h5", settings(), ClaheSettings(False), progress=False)
    assert list((tmp_path / "out").iterdir()) == []


def test_fit_whitening_and_whitened_extraction(tmp_path, net):
    model = gd.init_model(SPEC, tmp_path / "model.pt", seed=0)
    paths = _write_images(tmp_path / "wimages", 12)
    records = [ImageRecord(p.name, f"w{i}", "whiten", "day", f"c{i // 2}", "p", 1, 1) for i, p in enumerate(paths)]
    pairs = {"whiten": [(f"w{i}", f"w{i + 1}") for i in range(0, 12, 2)]}
    ds = write_dataset(tmp_path / "wds", "whiten", records, GroundTruth("training", pairs=pairs),
                       image_root="../wimages")
    lw = gd.fit_whitening(model, ds, tmp_path / "lw.npz", settings(image_size=72), ClaheSettings(False),
                          progress=False)
    w = load_whitening(lw)
    X = gd.extract_descriptors_reference(net, paths, settings(image_size=72), ClaheSettings(False))
    np.testing.assert_allclose(w.m, X[0::2].mean(axis=0), atol=1e-6)

    eval_ds = _dataset(tmp_path)
    out = gd.extract_dataset(model, eval_ds, tmp_path / "w.h5", settings(), ClaheSettings(False),
                             whitening_path=lw, whitening_dims=8, progress=False)
    data = read_descriptors(out)
    assert data.descriptors.shape == (8, 8) and data.query_descriptors.shape == (2, 8)
    raw = gd.extract_descriptors_reference(net, sorted((tmp_path / "images").glob("*.png")), settings(),
                                           ClaheSettings(False))
    np.testing.assert_allclose(data.descriptors, apply_whitening(raw, w, 8), atol=1e-4)
    assert data.attrs["settings"]["whitening_dims"] == 8 and len(data.attrs["settings"]["whitening_sha256"]) == 64


def test_bf16_precision_on_the_cpu_is_close_to_fp32_but_not_it(tmp_path, net):
    """``precision="bf16"`` autocasts on the CPU too (the extraction benchmark's fast path on CPUs with bf16
    kernels): descriptors close to fp32's, yet not fp32's (it did compute in bf16); an unknown precision is
    one line naming the choices."""
    images = _write_images(tmp_path, 4)
    s = settings()
    fp32 = gd.extract_descriptors(net, images, s, ClaheSettings(enabled=False), progress=False, precision="fp32")
    bf16 = gd.extract_descriptors(net, images, s, ClaheSettings(enabled=False), progress=False, precision="bf16")
    assert bf16.dtype == np.float32 and bf16.shape == fp32.shape
    assert 0 < np.abs(bf16 - fp32).max() < 5e-2
    assert np.allclose(np.linalg.norm(bf16, axis=1), 1.0, atol=1e-3)
    with pytest.raises(Exception, match=r"precision 'fp8' is not one of \['auto', 'fp32', 'bf16'\]"):
        gd.extract_descriptors(net, images, s, ClaheSettings(enabled=False), progress=False, precision="fp8")
