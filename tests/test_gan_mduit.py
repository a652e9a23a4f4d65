"""MDUIT: paper parameter counts, one step, the hand-checked losses and ops, pairs and negatives over every
lighting domain, the CLI's domain list, resume and the translator."""

import math

import numpy as np
import pytest
import torch
from test_gan_settings import paper_entry

from darkside.cli import main
from darkside.data.manifest import GroundTruth, ImageRecord, write_dataset
from darkside.errors import ConfigError, DarksideError
from darkside.gan.crops import domain_pairs
from darkside.gan.families.mduit import (
    MduitSettings,
    VggRelu33,
    _DomainHistory,
    colour_jitter,
    consistency_loss,
    content_consistency,
    content_pairs,
    contrastive_nce,
    dynamic_conv,
    filter_consistency,
    gem,
    load_vgg_file,
    shift_hue,
)
from darkside.gan.family import (
    FAMILIES,
    DomainBatch,
    GanTraining,
    build,
    family_class,
    load_content_embedding,
    save_generator,
    setup_for,
    variant_name,
)
from darkside.gan.params import count_parameters
from darkside.gan.train import _ImageSource, iterate_domain_epoch, train_gan
from darkside.gan.translator import load_translator
from darkside.settings import parse

torch.set_num_threads(1)

PAPER = paper_entry("mduit")  # params.yaml's paper preset (pinned in test_gan_settings.py)


def setup(entry: dict, crop: int, **kw):
    common = GanTraining(crop=crop, scale_min=0.8, lr=2e-4, beta1=0.5, beta2=0.999, sample_images=2, cache_images=True)
    return setup_for("mduit", common, parse(MduitSettings, {**entry, **kw}, "gan.families.mduit"), {})


def tiny(**kw):
    # groups 4 of 8 content channels: two input channels per group, not only the paper's depthwise case
    entry = dict(PAPER, batch_size=2, pairs_per_epoch=4, epochs_constant=1, epochs_decay=2, ngf=2, n_blocks_content=1,
                 n_blocks_generator=1, filter_size=5, filter_groups=4, appearance_width=8, vgg_width=0.0625,
                 head_dim=8, ndf=4, n_layers_d=2, init_gain=0.02, nce_negatives=3)
    return setup(entry, 32, **kw)


def test_paper_parameter_counts():
    res = count_parameters(setup(PAPER, 256))
    blocks = {k: (b["role"], b["params"]) for k, b in res["blocks"].items()}
    assert blocks == {
        # c7s1-64 9,472 + downs 73,856 + 295,168 + 4 blocks x 2 x 590,080
        "content_encoder": ("generator", 5_099_136),
        # 256 -> 256 -> 256 (2 x 65,792) -> 256 x 5 x 5 filter + 256 bias (256 x 6,656 + 6,656)
        "appearance_encoder": ("generator", 1_842_176),
        # 4 blocks x 2 x (590,080 + 512 LN) + ups 295,296 + 73,920 + c7s1-3 9,411
        "generator": ("generator", 5_103_363),
        "discriminator_image": ("discriminator", 2_764_737),       # PatchGAN n3, instance (reference §4.1)
        "discriminator_appearance": ("discriminator", 2_767_809),  # + 3 x 64 x 16 for the 6-channel input
        # GeM p 1 + Linear(256, 256) 65,792 + Linear(256, 128) 32,896
        "head": ("head", 98_689),
        "vgg": ("frozen", 1_735_488),                               # VGG16 conv1_1 .. conv3_3
    }
    assert res["plain_total"] == res["paper_total"] == 19_411_398  # not in Table 8: the plain count
    assert res["paper_millions"] == 19.4
    assert "every network once" in res["rule"]


def test_settings_are_checked():
    with pytest.raises(ConfigError, match="filter_groups"):
        tiny(filter_groups=3)
    with pytest.raises(ConfigError, match="vgg_width"):
        tiny(vgg_weights="x.pth")


def test_one_train_step_changes_generator_and_same_seed_same_init():
    b = build(tiny(), "cpu", seed=0)
    weights = lambda m: {k: v.clone() for k, v in m.state_dict().items() if k != "bank"}  # noqa: E731
    before = weights(b.generator())
    vgg_before = [p.clone() for p in b.nets["vgg"].parameters()]
    g = torch.Generator().manual_seed(1)
    x = lambda: torch.rand(2, 3, 32, 32, generator=g) * 2 - 1  # noqa: E731
    for _ in range(2):  # the second step has a history batch and NCE negatives
        losses = b.train_step((x(), x()))
        assert all(np.isfinite(v) for v in losses.values()), losses
    assert losses["NCE"] > 0
    after = b.generator().state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert all(torch.equal(a, p) for a, p in zip(vgg_before, b.nets["vgg"].parameters(), strict=True))
    assert after["bank"].shape == (2, 16)  # the last batch's nights until prepare_translator
    fresh = weights(build(tiny(), "cpu", 0).generator())
    assert all(torch.equal(before[k], v) for k, v in fresh.items())


def test_dynamic_conv_by_hand():
    # k = 1, groups 2 (depthwise), two images with their own filters and biases
    x = torch.arange(18.0).reshape(1, 2, 3, 3).repeat(2, 1, 1, 1)
    w = torch.tensor([[2.0, 3.0], [-1.0, 0.5]]).reshape(2, 2, 1, 1, 1)
    bias = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    y = dynamic_conv(x, w, bias, 2)
    assert torch.equal(y[0, 0], 2 * x[0, 0] + 1) and torch.equal(y[0, 1], 3 * x[0, 1])
    assert torch.equal(y[1, 0], -x[1, 0]) and torch.equal(y[1, 1], 0.5 * x[1, 1] + 2)
    # k = 3 box mean over x[r, c] = 3r + c, reflect-padded: centre 36/9 = 4; corner (0, 0) sees rows and
    # columns {1, 0, 1}: sum 3 * 3 * 2 + 3 * 2 = 24, mean 24/9 = 2.6667
    x = torch.arange(9.0).reshape(1, 1, 3, 3)
    y = dynamic_conv(x, torch.full((1, 1, 1, 3, 3), 1 / 9), None, 1)
    assert y.shape == (1, 1, 3, 3)
    assert y[0, 0, 1, 1].item() == pytest.approx(4.0) and y[0, 0, 0, 0].item() == pytest.approx(24 / 9)
    # one group over two channels: out = sum of the two input channels
    x = torch.stack([torch.ones(2, 2), 2 * torch.ones(2, 2)])[None]
    assert torch.equal(dynamic_conv(x, torch.ones(1, 1, 2, 1, 1), None, 1), 3 * torch.ones(1, 1, 2, 2))


def test_content_consistency_by_hand():
    # image 0: d_pos = mean(1, 1) = 1, d_neg = mean(4, 0) = 2 -> max(0, 1 - 2 + 0.1) = 0
    # image 1: d_pos = mean(1, 0) = 0.5, d_neg = 0 -> 0.6; batch mean 0.3
    f_s = torch.zeros(2, 1, 1, 2)
    f_st = torch.tensor([[1.0, 1.0], [1.0, 0.0]]).reshape(2, 1, 1, 2)
    f_neg = torch.tensor([[2.0, 0.0], [0.0, 0.0]]).reshape(2, 1, 1, 2)
    assert content_consistency(f_s, f_st, f_neg, 0.1).item() == pytest.approx(0.3)


def test_filter_consistency_by_hand():
    # image 0: cos([1,0],[1,1]) = 0.70711, cos([1,0],[0,1]) = 0 -> 1 - 0.70711 = 0.29289
    # image 1: cos = -1 and 1 -> 1 + 1 + 1 = 3; batch mean 1.64645
    w_t = torch.tensor([[1.0, 0.0], [1.0, 0.0]]).reshape(2, 2, 1, 1, 1)
    w_st = torch.tensor([[1.0, 1.0], [-1.0, 0.0]]).reshape(2, 2, 1, 1, 1)
    w_neg = torch.tensor([[0.0, 1.0], [1.0, 0.0]]).reshape(2, 2, 1, 1, 1)
    assert filter_consistency(w_t, w_st, w_neg).item() == pytest.approx(1.646447, abs=1e-5)


def test_contrastive_nce_by_hand():
    # q.p = 1, q.n = 0 and -1, tau 0.5 -> logits 2, 0, -2: -log(e^2 / (e^2 + 1 + e^-2)) = log(1 + e^-2 + e^-4)
    # = log(1.153651) = 0.142932
    q = torch.tensor([[1.0, 0.0]])
    negatives = torch.tensor([[0.0, 1.0], [-1.0, 0.0]])
    assert contrastive_nce(q, q, negatives, 0.5).item() == pytest.approx(0.142932, abs=1e-6)
    assert math.log(1 + math.exp(-2) + math.exp(-4)) == pytest.approx(0.142932, abs=1e-6)
    assert contrastive_nce(q, q, None, 0.5).item() == 0.0


def test_gem_by_hand():
    # p 2: sqrt((4 + 16) / 2) = sqrt(10) = 3.16228; p 1 with a negative value clamped to 1e-6: (3 + 1e-6) / 2
    assert gem(torch.tensor([2.0, 4.0]).reshape(1, 1, 1, 2), torch.tensor([2.0])).item() == pytest.approx(3.162278)
    assert gem(torch.tensor([-5.0, 3.0]).reshape(1, 1, 1, 2), torch.tensor([1.0])).item() == pytest.approx(1.5)


def test_content_pairs_take_the_most_similar_image_of_another_domain():
    # domains 0 (images 0, 1), 1 (2, 3), 2 (4). Each image's nearest is in its own domain (cos 1), never taken:
    # images 0, 1 -> image 4 (cos 0.8 > 0 for 2, 3); images 2, 3 -> image 4 (cos 0.6 > 0 for 0, 1);
    # image 4 -> images 0 and 1 tie at cos 0.8 (> 0.6 for 2, 3): the lowest index, 0
    z = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [0.0, 3.0], [0.8, 0.6]])
    domains = np.array([0, 0, 1, 1, 2])
    pairs = content_pairs(z, domains, 40, np.random.default_rng(5), chunk=2)  # rows two at a time
    assert pairs.shape == (40, 2)
    assert np.array_equal(pairs[:, 0], np.random.default_rng(5).integers(0, 5, 40))
    assert np.array_equal(pairs[:, 1], np.array([4, 4, 4, 4, 0])[pairs[:, 0]])
    assert (domains[pairs[:, 0]] != domains[pairs[:, 1]]).all()   # never within one domain
    assert set(domains[pairs[:, 0]]) == {0, 1, 2}                 # sources from every domain
    with pytest.raises(DarksideError, match="two lighting domains"):
        content_pairs(z, np.zeros(5, int), 4, np.random.default_rng(0))


def test_random_domain_pairs_never_within_one_domain_and_cover_every_domain():
    domains = np.array([0, 0, 0, 1, 2, 2])
    pairs = domain_pairs(domains, 200, np.random.default_rng(1))
    assert pairs.shape == (200, 2) and (domains[pairs[:, 0]] != domains[pairs[:, 1]]).all()
    assert set(domains[pairs[:, 0]]) == set(domains[pairs[:, 1]]) == {0, 1, 2}
    assert set(pairs.ravel()) == set(range(6))


def test_choose_pairs_embeds_with_the_current_networks():
    b = build(tiny(), "cpu", seed=0)
    g = torch.Generator().manual_seed(2)
    images = [torch.rand(1, 3, 32, 32, generator=g) * 2 - 1 for _ in range(6)]
    domains = np.array([0, 0, 0, 1, 2, 2])
    pairs = b.choose_pairs(images, domains, 30, np.random.default_rng(0))
    assert pairs.shape == (30, 2) and (domains[pairs[:, 0]] != domains[pairs[:, 1]]).all()
    assert np.array_equal(pairs, b.choose_pairs(images, domains, 30, np.random.default_rng(0)))
    assert b.nets["content_encoder"].training  # the networks' mode is restored


def test_multi_domain_is_mduits_opt_in():
    family_class("mduit")  # registers every built-in family
    assert {n for n, cls in FAMILIES.items() if cls.multi_domain} == {"mduit"}


def test_epoch_batches_pair_different_domains_from_every_domain(gan_images):
    """The loop's batches: pairs of different domains, sources from day, sunset and night, each crop with its
    domain; the epoch RNG gives the same batches again."""
    s = tiny(pairs_per_epoch=24, batch_size=4)
    labelled = [(p, k) for k in ("day", "sunset", "night") for p in gan_images[k]]
    images, labels = _ImageSource([p for p, _ in labelled], True), [d for _, d in labelled]
    b = build(s, "cpu", 0)
    batches = list(iterate_domain_epoch(images, labels, s, 0, 0, b))
    assert len(batches) == 6 and all(isinstance(x, DomainBatch) for x in batches)
    assert all(x.source.shape == x.target.shape == (4, 3, 32, 32) for x in batches)
    src = [d for x in batches for d in x.source_domains]
    tgt = [d for x in batches for d in x.target_domains]
    assert all(a != t for a, t in zip(src, tgt, strict=True))
    assert set(src) == {"day", "sunset", "night"} and set(tgt) <= {"day", "sunset", "night"}
    again = list(iterate_domain_epoch(images, labels, s, 0, 0, b))
    assert all(torch.equal(x.source, y.source) and x.target_domains == y.target_domains
               for x, y in zip(batches, again, strict=True))


def _textured(domains, shift=0.0, side=32):
    """One fixed random texture per domain (plus ``shift``): an image tells its domain (and batch) apart."""
    index = {"day": 1, "sunset": 2, "night": 3}
    return torch.stack([torch.rand(3, side, side, generator=torch.Generator().manual_seed(index[d])) * 1.6 - 0.8
                        + shift for d in domains])


def test_positive_and_negative_images_respect_the_domains(monkeypatch):
    """I_t+ (D_a's real pair) is the history's image of the target's domain, I_s- (the content negative) the
    history's image of the source's domain, I_t- (the filter negative) the source, of another domain than the
    target: per-domain textures, shifted by 0.05 in the second batch, tell which image each is."""
    import darkside.gan.families.mduit as mduit

    b = build(tiny(), "cpu", seed=0)
    seen: dict[str, torch.Tensor] = {}
    d_a = b.nets["discriminator_appearance"]
    real_pairs = []
    monkeypatch.setattr(d_a, "forward", lambda x, f=d_a.forward: (real_pairs.append(x.detach().clone()), f(x))[1])
    content, filters = mduit.content_consistency, mduit.filter_consistency
    monkeypatch.setattr(mduit, "content_consistency", lambda f_s, f_st, f_neg, m: (
        seen.update(f_neg=f_neg.detach()), content(f_s, f_st, f_neg, m))[1])
    monkeypatch.setattr(mduit, "filter_consistency", lambda w_t, w_st, w_neg: (
        seen.update(w_neg=w_neg.detach()), filters(w_t, w_st, w_neg))[1])

    def filter_of(domains, shift):
        with torch.no_grad():
            return b.nets["appearance_encoder"](b.nets["vgg"].descriptor(_textured(domains, shift)))[0]

    def content_of(domains, shift):
        with torch.no_grad():
            return b.nets["content_encoder"](_textured(domains, shift))

    def nearer(x, y, other):  # x is y (up to float rounding), not ``other``, which differs from y
        return float((x - y).norm()) < 0.01 * float((other - y).norm())

    first = ("day", "night"), ("sunset", "day")               # the history: every domain seen once
    b.train_step(DomainBatch(_textured(first[0]), _textured(first[1]), *first))
    a, t = ("night", "sunset"), ("sunset", "day")             # pairs (night, sunset), (sunset, day)
    sources, targets = a + t, t + a                          # each pair both ways
    real_pairs.clear()
    with torch.no_grad():  # with the networks as the step starts
        content_s, content_t = content_of(sources, 0.0), content_of(targets, 0.0)
        filters_s, filters_t = filter_of(sources, 0.05), filter_of(targets, 0.05)
    b.train_step(DomainBatch(_textured(a, 0.05), _textured(t, 0.05), a, t))
    real = real_pairs[0]                                      # the D step's (I_t, I_t+) comes first
    assert torch.allclose(real[:, :3], _textured(targets, 0.05)) and torch.allclose(real[:, 3:], _textured(targets))
    assert nearer(seen["f_neg"], content_s, content_t)        # I_s-: the first batch's image of I_s's domain
    assert nearer(seen["w_neg"], filters_s, filters_t)        # I_t- = I_s (this batch's)
    assert all(s != d for s, d in zip(sources, targets, strict=True))


def test_the_history_keeps_the_last_image_of_each_domain():
    h = _DomainHistory()
    x = torch.arange(4.0).reshape(4, 1, 1, 1)
    assert torch.equal(h.recall(x, ("day", "day", "night", "sunset")), x)   # nothing yet: the images stand in
    h.store(x, ("day", "day", "night", "sunset"))
    y = torch.full((3, 1, 1, 1), 9.0)
    assert h.recall(y, ("sunset", "day", "dusk")).flatten().tolist() == [3.0, 1.0, 9.0]
    state = h.state_dict()
    h2 = _DomainHistory()
    h2.load_state_dict(state)
    assert torch.equal(h2.recall(y, ("night", "day", "sunset")), h.recall(y, ("night", "day", "sunset")))
    h2.load_state_dict({"size": 1, "images": [torch.zeros(2, 1, 1, 1)], "rng": state["rng"]})  # a two-domain one
    assert torch.equal(h2.recall(y, ("day", "night", "sunset")), y)


def _cli_lists(tmp_path):
    recs = [ImageRecord("a.png", "a", "train", "day", "a", "a", 40, 48),
            ImageRecord("b.png", "b", "train", "night", "b", "b", 40, 48)]
    write_dataset(tmp_path / "ds", "toy", recs, GroundTruth("training"))
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "day.txt").write_text("a.png\n")
    (lists / "night.txt").write_text("b.png\n")
    return lists


@pytest.mark.parametrize("content, message", [
    (None, "domains.tsv: lighting-domain list does not exist"),
    ("a.png\tday\n", "domains.tsv:1: not a lighting-domain list"),
    ("path\tdomain\na.png\tday\nb.png night\n", "domains.tsv:3: not `path<TAB>domain`"),
    ("path\tdomain\n", "domains.tsv: lighting-domain list has no images"),
])
def test_train_gan_cli_needs_the_domain_list(tmp_path, repo_root, capsys, content, message):
    lists = _cli_lists(tmp_path)
    if content is not None:
        (lists / "domains.tsv").write_text(content)
    argv = ["--params", str(repo_root / "params.yaml"), "train-gan", "--family", "mduit", "--dataset",
            str(tmp_path / "ds"), "--lists", str(lists), "--out-dir", str(tmp_path / "run")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and str(lists) in err, err
    assert not (tmp_path / "run").exists()


def test_train_gan_needs_two_domains(tmp_path, gan_images):
    with pytest.raises(DarksideError, match="at least two lighting domains"):
        train_gan(tiny(), gan_images["day"], gan_images["night"], tmp_path / "r", "cpu",
                  domains=[(p, "day") for p in gan_images["day"]])


def test_vgg_weights_file_loads_torchvision_keys(tmp_path):
    torch.manual_seed(0)
    src = VggRelu33(0.0625)
    torch.save({f"features.{k}": v for k, v in src.features.state_dict().items()}, tmp_path / "vgg.pth")
    dst = VggRelu33(0.0625)
    load_vgg_file(dst, tmp_path / "vgg.pth")
    assert all(torch.equal(a, b) for a, b in zip(src.parameters(), dst.parameters(), strict=True))


def test_resume_after_sigterm_matches_uninterrupted_and_translates(interrupted_and_resumed, gan_images):
    s = tiny()
    # every lighting domain (domains.tsv): day, sunset and night; the translator's bank from the night list
    domains = [(p, k) for k in ("day", "sunset", "night") for p in gan_images[k]]
    ref, res, _, checkpoint = interrupted_and_resumed(s, domains)
    assert res.read_bytes() == ref.read_bytes()  # the same bytes as the uninterrupted run
    history = checkpoint["bundle"]["pools"]["previous"]  # after epoch 1
    assert set(history["domains"]) <= {"day", "sunset", "night"} and len(history["domains"]) >= 2

    state = torch.load(res, weights_only=True)["state_dict"]
    assert state["bank"].shape == (3, 16)                 # the three training nights' pooled relu3_3
    assert not any(k.startswith("vgg") for k in state)    # the trunk is not needed to translate

    tr = load_translator("mduit", res, "cpu")
    y = tr.translate(torch.rand(1, 3, 30, 35))
    assert y.shape == (1, 3, 30, 35) and y.min() >= 0 and y.max() <= 1

    # deterministic: the same image twice, and beside another image in a batch, gives the same night
    g = torch.Generator().manual_seed(4)
    a, other = torch.rand(1, 3, 32, 36, generator=g), torch.rand(1, 3, 32, 36, generator=g)
    ya = tr.translate(a)
    assert torch.equal(ya, tr.translate(a))
    # (equal up to float rounding: a batch of two runs other conv kernels)
    assert torch.allclose(tr.translate(torch.cat([other, a]))[1:], ya, atol=1e-6)


# --- Table 1's ablations: w/o I2I (colour jitter as the translation), w/o L_NCE (L1 consistency) -------------

def test_the_defaults_are_the_full_method():
    entry = {k: v for k, v in PAPER.items() if k not in ("translation", "consistency") and not k.startswith("jitter")}
    s = parse(MduitSettings, entry, "gan.families.mduit")
    assert (s.translation, s.consistency) == ("generator", "nce")
    assert (s.jitter_brightness, s.jitter_contrast, s.jitter_saturation, s.jitter_hue) == (0.8, 0.8, 0.8, 0.2)
    with pytest.raises(ConfigError, match=r"gan\.families\.mduit\.translation: 'jitter' is not one of"):
        tiny(translation="jitter")


def test_colour_jitter_by_hand_given_a_seeded_rng():
    # pixels (0.2, 0.4, 0.6) and grey 0.4 in [0, 1]; the generator seeded 7 draws u = 0.53492, 0.19880, 0.65921
    # (hue's 0.65689 is drawn and unused: range 0): brightness b = 1 + 0.5 (2 u - 1) = 1.034923, contrast
    # c = 0.698803, saturation s = 1.159212. x b = (0.20698, 0.41397, 0.62095), (0.41397 x 3); luma (0.2989,
    # 0.587, 0.114): 0.375656 and 0.413928, mean 0.394792; c x + (1 - c) 0.394792 = (0.26355, 0.40819, 0.55283),
    # (0.40819 x 3); s x + (1 - s) luma (lumas 0.38141, 0.40815): (0.24479, 0.41246, 0.58013), (0.40820 x 3)
    x = torch.tensor([[0.2, 0.4], [0.4, 0.4], [0.6, 0.4]]).reshape(1, 3, 1, 2) * 2 - 1
    y = colour_jitter(x, torch.Generator().manual_seed(7), 0.5, 0.5, 0.5, 0.0)
    expected = torch.tensor([[-0.510425, -0.183601], [-0.175085, -0.183601], [0.160255, -0.183601]]).reshape(1, 3, 1, 2)
    assert torch.allclose(y, expected, atol=1e-5)
    # four numbers per image whatever the ranges: a zero range changes no other draw, and leaves the image
    g = torch.Generator().manual_seed(7)
    assert torch.equal(colour_jitter(x, g, 0.0, 0.0, 0.0, 0.0), x)
    assert torch.rand(1, generator=g).item() == torch.rand(5, generator=torch.Generator().manual_seed(7))[4].item()


def test_hue_shift_by_hand():
    # red turned by a third of a turn is green; (1, 0.5, 0) (hue 30 deg) by half a turn is hue 210 deg: (0, 0.5, 1)
    x = torch.tensor([[1.0, 1.0], [0.0, 0.5], [0.0, 0.0]]).reshape(1, 3, 1, 2)
    assert torch.allclose(shift_hue(x[:, :, :, :1], torch.tensor([1 / 3])).flatten(), torch.tensor([0.0, 1.0, 0.0]),
                          atol=1e-6)
    assert torch.allclose(shift_hue(x[:, :, :, 1:], torch.tensor([0.5])).flatten(), torch.tensor([0.0, 0.5, 1.0]),
                          atol=1e-6)
    grey = torch.full((1, 3, 2, 2), 0.3)
    assert torch.allclose(shift_hue(grey, torch.tensor([0.25])), grey)  # no hue to turn


def test_consistency_loss_by_hand():
    # L1 of the positives: mean(|0.6 - 1|, |0.8 - 0|) = 0.6, the negatives unused; NCE: as eq. 5 (0.142932)
    q, p = torch.tensor([[0.6, 0.8]]), torch.tensor([[1.0, 0.0]])
    negatives = torch.tensor([[0.0, 1.0], [-1.0, 0.0]])
    assert consistency_loss(q, p, negatives, "l1", 0.5).item() == pytest.approx(0.6)
    one = torch.tensor([[1.0, 0.0]])
    assert consistency_loss(one, one, negatives, "nce", 0.5).item() == pytest.approx(0.142932, abs=1e-6)


@pytest.mark.parametrize("consistency", ["nce", "l1"])
def test_without_i2i_a_step_trains_the_content_embedding_on_the_colour_jittered_source(consistency):
    """'w/o I2I' (and 'w/o I2I, L_NCE'): the step's loss is nce_weight x the contrastive term between H(E_c(I_s))
    and H(E_c(jitter(I_s))), the jitter drawn from the family's RNG, recomputed here with the networks and queue
    as the step starts; only E_c and H move."""
    b = build(tiny(translation="colour-jitter", consistency=consistency, nce_weight=2.0), "cpu", seed=0)
    untrained = {k: {n: t.clone() for n, t in b.nets[k].state_dict().items()}
                 for k in ("generator", "appearance_encoder", "discriminator_image", "discriminator_appearance")}
    content = {n: t.clone() for n, t in b.nets["content_encoder"].state_dict().items()}
    g = torch.Generator().manual_seed(3)
    x = lambda: torch.rand(2, 3, 32, 32, generator=g) * 2 - 1  # noqa: E731
    b.train_step((x(), x()))
    a, t = x(), x()
    src = torch.cat([a, t])
    rng = torch.Generator()
    rng.set_state(b.rng.get_state())
    s = b.settings
    queued = b.pools["negatives"].negatives()
    with torch.no_grad():
        z_s = b.nets["head"](b.nets["content_encoder"](src))
        jittered = colour_jitter(src, rng, s.jitter_brightness, s.jitter_contrast, s.jitter_saturation, s.jitter_hue)
        z_st = b.nets["head"](b.nets["content_encoder"](jittered))
    if consistency == "nce":
        # the first step's four source images, the last three kept, embedded by the networks of this step
        assert len(queued) == 1 and queued[0].shape == (3, 3, 32, 32)
        with torch.no_grad():
            negatives = b.nets["head"](b.nets["content_encoder"](queued[0]))
        expected = 2.0 * contrastive_nce(z_s, z_st, negatives, s.nce_temperature).item()
    else:
        assert queued == []                                    # the L1 term keeps no negatives
        expected = 2.0 * (z_s - z_st).abs().mean().item()
    losses = b.train_step((a, t))
    key = {"nce": "NCE", "l1": "L1_z"}[consistency]
    assert set(losses) == {"G", "G_adv", key} and losses["G_adv"] == 0.0
    assert losses[key] == pytest.approx(expected, rel=1e-5) and losses["G"] == losses[key] and expected > 0
    for k, before in untrained.items():  # the I2I module is not trained
        assert all(torch.equal(v, b.nets[k].state_dict()[n]) for n, v in before.items()), k
    assert any(not torch.equal(v, b.nets["content_encoder"].state_dict()[n]) for n, v in content.items())
    assert len(b.bank)  # the sample grids still have appearances to paint


def test_without_nce_the_full_step_takes_the_l1_consistency_and_keeps_no_negatives():
    b = build(tiny(consistency="l1"), "cpu", seed=0)
    g = torch.Generator().manual_seed(1)
    x = lambda: torch.rand(2, 3, 32, 32, generator=g) * 2 - 1  # noqa: E731
    for _ in range(2):
        losses = b.train_step((x(), x()))
    assert "NCE" not in losses and losses["L1_z"] > 0 and losses["rec_self"] > 0 and losses["D_i"] > 0
    assert b.pools["negatives"].negatives() == []


@pytest.mark.parametrize("head_init", ["default", "family"])
def test_at_the_papers_init_only_a_default_initialised_head_keeps_contents_apart(head_init):
    """N(0, 0.001) for H as for every other network leaves z one vector for every image (the NCE at
    log(1 + N_neg) exactly); H at PyTorch's default init, the setting's default, learns."""
    b = build(tiny(translation="colour-jitter", init_gain=0.001, head_init=head_init, nce_negatives=8), "cpu", seed=0)
    std = float(b.nets["head"].mlp[0].weight.detach().std())
    assert (std > 0.05) if head_init == "default" else (std == pytest.approx(0.001, rel=0.2))
    assert float(b.nets["content_encoder"].model[1].weight.detach().std()) == pytest.approx(0.001, rel=0.2)
    g = torch.Generator().manual_seed(1)
    for _ in range(10):
        losses = b.train_step((torch.rand(2, 3, 32, 32, generator=g) * 2 - 1,
                               torch.rand(2, 3, 32, 32, generator=g) * 2 - 1))
    with torch.no_grad():
        z = b.nets["head"](b.nets["content_encoder"](torch.rand(6, 3, 32, 32, generator=g) * 2 - 1))
    alike = float((z @ z.T)[~torch.eye(6, dtype=torch.bool)].min())
    if head_init == "family":
        assert alike > 0.9999 and losses["NCE"] == pytest.approx(math.log(9), abs=1e-3)
    else:
        assert alike < 0.999 and losses["NCE"] < math.log(9) - 0.05


def test_the_generator_file_carries_the_content_embedding_and_the_variant(tmp_path):
    b = build(tiny(translation="colour-jitter"), "cpu", seed=0)
    g = torch.Generator().manual_seed(1)
    b.train_step((torch.rand(2, 3, 32, 32, generator=g) * 2 - 1, torch.rand(2, 3, 32, 32, generator=g) * 2 - 1))
    b.prepare_translator([torch.rand(1, 3, 32, 32, generator=g) * 2 - 1])
    path = save_generator(b, tmp_path / "generator.pt", variant="mduit-no-i2i")
    embedding, setup = load_content_embedding(path)
    assert setup.settings.translation == "colour-jitter" and variant_name(path) == "mduit-no-i2i"
    assert (embedding.channels, embedding.dim) == (8, 8)
    x = torch.rand(2, 3, 40, 36, generator=g) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(embedding(x), b.nets["head"](b.nets["content_encoder"](x)))
    assert variant_name(save_generator(b, tmp_path / "plain.pt")) is None
    obj = torch.load(path, weights_only=True)
    del obj["content_state_dict"]
    torch.save(obj, tmp_path / "old.pt")
    with pytest.raises(DarksideError, match="carries no content embedding"):
        load_content_embedding(tmp_path / "old.pt")


def test_a_resumed_run_without_i2i_draws_the_same_jitter(interrupted_and_resumed, gan_images):
    # the jitter comes from the family's checkpointed RNG: a run stopped by SIGTERM and resumed ends in the same bytes
    domains = [(p, k) for k in ("day", "sunset", "night") for p in gan_images[k]]
    ref, res, _, _ = interrupted_and_resumed(tiny(translation="colour-jitter", consistency="l1"), domains)
    assert res.read_bytes() == ref.read_bytes()
    assert load_content_embedding(res)[1].settings.translation == "colour-jitter"


@pytest.mark.parametrize("family, variant, message", [
    ("cut", "mduit-no-i2i", "gan.variants.mduit-no-i2i.family: 'mduit', but train-gan --family cut"),
    ("mduit", "mduit-no-gan", "gan.variants.mduit-no-gan: no such variant (known: mduit-no-i2i, mduit-no-i2i-no-nce"),
])
def test_train_gan_cli_names_a_variant_that_is_not_the_familys(tmp_path, repo_root, capsys, family, variant, message):
    lists = _cli_lists(tmp_path)
    argv = ["--params", str(repo_root / "params.yaml"), "train-gan", "--family", family, "--variant", variant,
            "--dataset", str(tmp_path / "ds"), "--lists", str(lists), "--out-dir", str(tmp_path / "run")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "run").exists()
