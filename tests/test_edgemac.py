"""EdgeMAC (Table 4): the edge filter, the network around a frozen detector, its model file, its detector's weights
(a teacher file or the student a HED^N GAN generator file carries), the paper preset's numbers and the DAG."""

from dataclasses import replace

import pytest
import torch

from darkside.config import BackboneSpec, load_params
from darkside.embed.finetune import parameter_groups
from darkside.embed.losses import contrastive_loss
from darkside.embed.network import build_embedding_net, load_model, save_model
from darkside.embed.networks import parse_network_settings, rebuild_around
from darkside.embed.networks.edgemac import EdgeFilter, EdgeStem, prepare
from darkside.embed.pooling import MAC
from darkside.errors import ConfigError, DarksideError
from darkside.gan.edges import build_detector
from darkside.recipes import FinetuneSettings, recipe_by_name
from darkside.settings import parse

torch.set_num_threads(1)
VGG = BackboneSpec("vgg16", 0.0625, None, "random", None, "vgg16")
TINY = {"detector": "hed", "width": 0.0625, "input": "caffe255", "image_size": None}


def _settings(**kw):
    return parse_network_settings("edgemac-hed", {**TINY, **kw}, "networks.edgemac-hed")


def _net(**kw):
    return rebuild_around(build_embedding_net(VGG), "edgemac-hed", _settings(**kw))


def test_the_edge_filter_gives_the_hand_computed_values():
    f = EdgeFilter()  # w 10, p 0.5, beta 500, tau 0.1
    e = torch.tensor([0.0, 0.1, 0.11, 0.2, 1.0])
    want = torch.tensor([
        10 * 1e-3 / (torch.e ** 50 + 1),  # e clamped to 1e-6 (sqrt 1e-3); exp's input 500 * 0.1 = 50, the clip
        10 * 0.1 ** 0.5 / 2,              # at tau the gate is 1/2: 1.58114
        3.294427115061763,                # 10 sqrt(0.11) / (1 + e^-5)
        10 * 0.2 ** 0.5,                  # far above tau the gate is open: 4.47214
        10.0])
    torch.testing.assert_close(f(e), want, rtol=1e-6, atol=0)
    # at tau 0.9 the exponent's input at e = 0 is 450: clipped at 50, the value stays positive and the gradient
    # finite (exp(450) is inf in float32: f would be 0 and its gradient NaN)
    high = EdgeFilter(tau=0.9)
    out = high(torch.zeros(3))
    torch.testing.assert_close(out, torch.full((3,), 10 * 1e-3 / (torch.e ** 50 + 1)), rtol=1e-6, atol=0)
    out.sum().backward()
    assert torch.isfinite(high.p.grad).all() and torch.isfinite(high.tau.grad).all()
    # tau is projected into [0.01, 0.9] before the forward (gandtr), p and tau are learned, w and beta are not
    g = EdgeFilter()
    with torch.no_grad():
        g.tau.fill_(0.95)
    g(e)
    assert float(g.tau) == pytest.approx(0.9)
    with torch.no_grad():
        g.tau.fill_(0.001)
    g(e)
    assert float(g.tau) == pytest.approx(0.01)
    assert {n for n, _ in EdgeFilter().named_parameters()} == {"p", "tau"}


def test_network_gives_unit_mac_descriptors_of_the_filtered_edges_of_a_frozen_detector():
    net = _net().eval()
    assert isinstance(net.stem, EdgeStem) and isinstance(net.pool, MAC) and net.multiscale_p == 1.0
    conv = next(m for m in net.backbone.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.in_channels == 1  # the single-channel trunk
    d = net(torch.rand(3, 3, 32, 40, generator=torch.Generator().manual_seed(1)))
    assert d.shape == (3, net.dim) and net.dim == 32  # 512 at the paper width
    torch.testing.assert_close(d.norm(dim=1), torch.ones(3))
    # the stem is the detector on the RGB image in [0, 1] (the network's input is ImageNet-normalised), filtered
    rgb = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        x = (rgb - mean) / std
        torch.testing.assert_close(net.stem.edges(x), net.stem.detector(rgb), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(net.stem(x), net.stem.filter(net.stem.edges(x)))
    assert not any(q.requires_grad for q in net.stem.detector.parameters())
    assert net.min_side == 16


def test_a_training_step_moves_the_filter_and_trunk_but_not_the_detector():
    net = _net()
    base = FinetuneSettings(margins={"vgg16": 0.7}, lr=1e-2, betas=(0.9, 0.999), weight_decay=5e-4,
                            gem_lr_multiplier=10.0, gem_weight_decay=0.0, lr_gamma=0.99, epochs=1,
                            anchors_per_epoch=1, anchor_pool=1, negative_pool=1, negatives=1, tuples_per_batch=1,
                            image_size=32, seed=0, val_every=1, band=(0.2, 0.8), clahe_clip_limit=1.0,
                            clahe_grid=8, mining_batch_size=1, cache_images=False)
    groups = parameter_groups(net, base)
    # the filter's p and tau at lr x10 with the optimiser's weight decay (gandtr); MAC has no parameter
    assert [(g["lr"], g["weight_decay"], len(g["params"])) for g in groups][1:] == [(0.1, 5e-4, 2)]
    assert {id(q) for q in groups[1]["params"]} == {id(net.stem.filter.p), id(net.stem.filter.tau)}
    assert not {id(q) for g in groups for q in g["params"]} & {id(q) for q in net.stem.detector.parameters()}
    before = {k: v.clone() for k, v in net.state_dict().items()}
    opt = torch.optim.Adam(groups, lr=base.lr)
    net.train()
    assert not net.stem.detector.training  # frozen also in train mode
    g = torch.Generator().manual_seed(1)
    d = net(torch.randn(3, 3, 32, 32, generator=g))
    contrastive_loss(d[0], d[1:], torch.tensor([1, 0]), 0.7).backward()
    opt.step()
    after = net.state_dict()
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert all(not k.startswith("stem.detector.") for k in moved)
    assert {"stem.filter.p", "stem.filter.tau"} <= moved and any(k.startswith("backbone.") for k in moved)


def test_the_model_file_holds_the_detector_and_rebuilds_the_same_network(tmp_path):
    net = _net().eval()
    with torch.no_grad():  # weights a fresh build would not have: load_model must take them from the file
        for q in net.stem.detector.parameters():
            q.add_(0.01)
        net.stem.filter.p.fill_(0.7)
    loaded = load_model(save_model(net, tmp_path / "m.pt"))
    assert loaded.network_name == "edgemac-hed" and isinstance(loaded.stem, EdgeStem)
    assert not any(q.requires_grad for q in loaded.stem.detector.parameters())
    x = torch.rand(2, 3, 32, 48, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), net(x))
        torch.testing.assert_close(loaded.stem.detector(x), net.stem.detector(x))


def test_prepare_loads_the_teacher_file_and_names_what_is_missing(tmp_path):
    teacher = build_detector("hed", 0.0625)
    torch.save(teacher.state_dict(), tmp_path / "teacher.pt")
    net = _net(weights=str(tmp_path / "teacher.pt"))
    prepare(net, None, [], torch.device("cpu"))
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        torch.testing.assert_close(net.stem.detector(x), teacher(x))
    assert not any(q.requires_grad for q in net.stem.detector.parameters())
    with pytest.raises(DarksideError, match=r"nope\.pt: detector weight file does not exist"):
        prepare(_net(weights=str(tmp_path / "nope.pt")), None, [], torch.device("cpu"))
    with pytest.raises(ConfigError, match=r"networks\.edgemac-hed\.weights"):
        prepare(_net(), None, [], torch.device("cpu"))


def test_the_student_a_hedngan_generator_file_carries_is_the_stem_of_hedn_mac(tmp_path):
    from darkside.gan.edges import DetectorSettings
    from darkside.gan.family import GanTraining, build, family_class, load_student, save_generator, setup_for

    entry = dict(batch_size=2, pairs_per_epoch=2, epochs_constant=1, epochs_decay=0, ngf=2, n_blocks=1, ndf=2,
                 n_layers_d=1, norm="batch", init="kaiming", init_gain=0.2, detector="hed", edge_weight=5.0,
                 student_lr=1e-2, student_beta1=0.9, student_beta2=0.999, student_weight_decay=0.0,
                 student_lr_multipliers=False)
    common = GanTraining(crop=16, scale_min=0.8, lr=2e-4, beta1=0.5, beta2=0.999, sample_images=1, cache_images=True)
    s = setup_for("hedngan", common, parse(family_class("hedngan").Settings, entry, "hedngan"),
                  {"hed": DetectorSettings(0.0625, "caffe255", None)})
    b = build(s, "cpu", seed=0)
    g = torch.Generator().manual_seed(0)
    b.train_step((torch.rand(2, 3, 16, 16, generator=g) * 2 - 1, torch.rand(2, 3, 16, 16, generator=g) * 2 - 1))
    path = save_generator(b, tmp_path / "generator.pt")
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        student = b.nets["detector_student"].eval()(x)
        assert not torch.allclose(student, b.nets["detector_teacher"](x))  # the student moved
        torch.testing.assert_close(load_student(path)(x), student)
        net = parse_network_settings("edgemac-hedn", {**TINY, "weights": str(path), "weights_kind": "student"},
                                     "networks.edgemac-hedn")
        hedn = rebuild_around(build_embedding_net(VGG), "edgemac-hedn", net)
        prepare(hedn, None, [], torch.device("cpu"))
        torch.testing.assert_close(hedn.stem.detector(x), student)
    wrong = replace(net, detector="rcf")
    with pytest.raises(DarksideError, match=r"its student is a HED, but networks\.edgemac-hedn\.detector is 'rcf'"):
        prepare(rebuild_around(build_embedding_net(VGG), "edgemac-hedn", wrong), None, [], torch.device("cpu"))
    for other in (replace(net, width=0.125), replace(net, input="gandtr01")):
        with pytest.raises(DarksideError, match="its student's geometry differs"):
            prepare(rebuild_around(build_embedding_net(VGG), "edgemac-hedn", other), None, [], torch.device("cpu"))
    # a family without a student (HEDGAN) writes none; its file says so in one line
    hedgan = {k: v for k, v in entry.items() if not k.startswith("student")}
    s2 = setup_for("hedgan", common, parse(family_class("hedgan").Settings, hedgan, "hedgan"),
                   {"hed": DetectorSettings(0.0625, "caffe255", None)})
    with pytest.raises(DarksideError, match="carries no student detector"):
        load_student(save_generator(build(s2, "cpu", seed=0), tmp_path / "hedgan.pt"))


def test_paper_preset_numbers_and_each_rows_detector(repo_root):
    presets = load_params(repo_root / "params.yaml")["presets"]
    rows = {"edgemac-hed": ("hed", "detector"), "edgemac-hedn": ("hed", "student"), "edgemac-rcfn": ("rcf", "student")}
    for preset in ("mini", "paper"):
        p = presets[preset]
        assert {"edgemac-hed", "edgemac-hedn", "edgemac-rcfn"} <= set(p["recipes"]["vgg16"])
        for name, (kind, weights_kind) in rows.items():
            s = parse_network_settings(name, p["networks"][name], f"{preset}.networks.{name}")
            r = recipe_by_name(name)
            assert r.network == name and not (r.clahe or r.diverse_anchors or r.generator or r.day_night_pairs)
            assert (s.detector, s.weights_kind) == (kind, weights_kind)
            # the detector is the one edges.detectors describes (a teacher file loads only into that geometry)
            detector = p["edges"]["detectors"][kind]
            assert (s.width, s.input) == (detector["width"], detector["input"])
            if weights_kind == "detector":
                assert s.weights == detector["weights"]
            else:
                assert s.weights == f"results/gans/{kind}ngan/generator.pt"
            assert s.margin == 0.7  # EdgeMAC's contrastive margin
            if preset == "paper":
                assert s.image_size == 362  # the Dark Side setting: edge maps of the training images at max side 362
                assert (s.filter_w, s.filter_p, s.filter_beta, s.filter_tau) == (10.0, 0.5, 500.0, 0.1)
                assert s.filter_lr_multiplier == 10.0
                # everything else is gandtr's fine-tuning schedule (finetune)
                assert (s.lr, s.weight_decay, s.lr_gamma, s.epochs) == (None, None, None, None)
    assert presets["paper"]["edges"]["detectors"]["hed"]["weights"] == "data/weights/hed_sniklaus_github.pth"


def test_the_finetune_job_is_handed_its_detector_file(repo_root, monkeypatch):
    from darkside.orchestration import snakemake_jobs

    monkeypatch.chdir(repo_root)
    jobs = {j["wildcards"].get("recipe"): j for j in snakemake_jobs(repo_root / "Snakefile", repo_root)
            if j["rule"] == "finetune" and j["wildcards"].get("backbone") == "vgg16"}
    want = {"edgemac-hed": "results/edges/hed/teacher.pt", "edgemac-hedn": "results/gans/hedngan/generator.pt",
            "edgemac-rcfn": "results/gans/rcfngan/generator.pt"}
    for recipe, weights in want.items():
        assert weights in jobs[recipe]["input"], recipe
        assert not any("/gans/" in i for i in jobs[recipe]["input"] if i != weights)  # no generator in the loop
    assert not any(w in jobs["gem"]["input"] for w in want.values())


def test_a_retrained_detector_file_is_part_of_what_a_checkpoint_must_match(tmp_path):
    from darkside.embed.finetune import _config

    torch.save(build_detector("hed", 0.0625).state_dict(), tmp_path / "teacher.pt")
    torch.save({}, tmp_path / "init.pt")
    recipe, s = recipe_by_name("edgemac-hed"), _settings(weights=str(tmp_path / "teacher.pt"))
    before = _config(recipe, None, 0, "vgg16", tmp_path / "init.pt", None, s)
    assert set(before["network_files_sha256"]) == {str(tmp_path / "teacher.pt")}
    torch.save(build_detector("hed", 0.0625).state_dict() | {"fusion.0.bias": torch.ones(1)}, tmp_path / "teacher.pt")
    assert _config(recipe, None, 0, "vgg16", tmp_path / "init.pt", None, s) != before
    assert "network_files_sha256" not in _config(recipe_by_name("gem"), None, 0, "vgg16", tmp_path / "init.pt",
                                                 None, parse_network_settings("gem", None, "networks.gem"))
