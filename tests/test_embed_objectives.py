"""The objectives of DaCo's learners (darkside.embed.objectives): each one's loss is its pure loss function of the
network's outputs, its state (MoCo's queue and key encoder, NPID's bank and normaliser) moves as DaCo's does, and a
run of each trains deterministically and resumes to the same history."""

import dataclasses
import json
import math

import pytest
import torch
import torch.nn.functional as F
from test_embed_daco import (  # noqa: F401  (pair_set: a fixture)
    BACKBONE,
    NORM,
    SETTINGS,
    pair_set,
    preempted_in_epoch_two,
)

from darkside.embed import daco
from darkside.embed.objectives import OBJECTIVES, Views, build_objective
from darkside.embed.objectives.moco import MocoSettings
from darkside.embed.objectives.npid import NpidSettings
from darkside.embed.objectives.simclr import SimclrSettings
from darkside.embed.objectives.simsiam import SimsiamSettings
from darkside.embed.self_supervised_losses import daco_loss, moco_loss, nt_xent, simsiam_loss


def _net(seed=0):
    return daco.build_daco_net(BACKBONE, 8, seed)


def _batch(seed=0, n=4, views=("o1", "o2", "g1", "g2")):
    g = torch.Generator().manual_seed(seed)
    return Views(index=torch.tensor([3, 0, 5, 1][:n]), **{v: torch.rand(n, 3, 16, 16, generator=g) for v in views})


def test_the_registry_holds_daco_and_its_four_learned_baselines_with_the_views_they_read():
    assert {n: c.views for n, c in OBJECTIVES.items()} == {
        "daco": ("o1", "o2", "g1", "g2"), "simclr": ("o1", "o2"), "moco": ("o1", "o2"), "npid": ("o1",),
        "simsiam": ("o1", "o2")}
    assert [n for n, c in OBJECTIVES.items() if c.reads_translations()] == ["daco"]


def test_simclr_daco_and_simsiam_are_their_losses_of_the_networks_outputs():
    net, b = _net().train(), _batch()
    torch.manual_seed(0)
    state = {k: v.clone() for k, v in net.state_dict().items()}  # batch norm's running stats move with each pass

    def fresh():
        net.load_state_dict(state)
        return net

    got = build_objective({"simclr": SimclrSettings(0.1)}, net, 8).loss(fresh(), b)
    assert torch.allclose(got, nt_xent(fresh()(b.o1)[1], net(b.o2)[1], 0.1))
    from darkside.embed.objectives.daco import DacoObjectiveSettings
    got = build_objective({"daco": DacoObjectiveSettings(0.8, 0.1, False)}, net, 8).loss(fresh(), b)
    p = [net(x)[1] for x in (b.o1, b.o2, b.g1, b.g2)]
    assert torch.allclose(got, daco_loss(*p, 0.8, 0.1))
    got = build_objective({"simsiam": SimsiamSettings()}, net, 8).loss(fresh(), b)
    (f1, p1), (f2, p2) = fresh()(b.o1), net(b.o2)
    assert torch.allclose(got, simsiam_loss(f1, f2, p1, p2))


def test_moco_queries_the_network_keys_the_momentum_encoder_and_enqueues_the_keys():
    net = _net().train()
    torch.manual_seed(1)
    moco = build_objective({"moco": MocoSettings(temperature=0.1, negatives=6, momentum=0.9)}, net, 8)
    key_before = {k: v.clone() for k, v in moco.key_encoder.state_dict().items()}
    assert all(torch.equal(key_before[k], v) for k, v in net.state_dict().items())  # a copy at first
    assert moco.queue.shape == (6, net.head[-1].out_features)
    assert torch.allclose(moco.queue.norm(dim=1), torch.ones(6))
    queue, b = moco.queue.clone(), _batch(2)
    loss = moco.loss(net, b)
    key = moco._keys.clone()
    assert not key.requires_grad and torch.allclose(key, moco.key_encoder(b.o2)[1], atol=1e-6)
    assert torch.allclose(loss, moco_loss(net(b.o1)[1], key, queue, 0.1), atol=1e-6)
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    loss.backward()
    assert all(p.grad is None for p in moco.key_encoder.parameters())  # the key encoder follows by momentum only
    opt.step()
    moco.after_step(net, b)
    assert torch.equal(moco.queue[:2], queue[4:]) and torch.equal(moco.queue[2:], key)  # oldest four rows out
    for name, p in moco.key_encoder.named_parameters():
        expect = 0.9 * key_before[name] + 0.1 * dict(net.named_parameters())[name].detach()
        assert torch.allclose(p, expect, atol=1e-6), name
    assert set(moco.state_dict()) >= {"queue", *(f"key_encoder.{k}" for k in net.state_dict())}


def test_npid_fixes_its_normaliser_on_the_first_batch_and_moves_the_batch_rows_of_its_bank():
    net = _net().train()
    torch.manual_seed(2)
    npid = build_objective({"npid": NpidSettings(temperature=0.1, negatives=5, momentum=0.5)}, net, 8)
    assert npid.bank.shape == (8, net.head[-1].out_features) and math.isnan(float(npid.normaliser))
    bank, b = npid.bank.clone(), _batch(3, views=("o1",))
    state = torch.get_rng_state()
    v = net(b.o1)[1].detach()
    samples = torch.randint(8, (4, 6))
    samples[:, 0] = b.index
    out = torch.exp((bank[samples] * v[:, None]).sum(-1) / 0.1)
    z = float(out.mean()) * 8
    p, noise = out / z, 5 / 8
    expect = -(torch.log(p[:, 0] / (p[:, 0] + noise)).sum() + torch.log(noise / (p[:, 1:] + noise)).sum()) / 4
    torch.set_rng_state(state)
    assert torch.allclose(npid.loss(net, b), expect, atol=1e-5)
    assert float(npid.normaliser) == pytest.approx(z)
    npid.after_step(net, b)
    rows = b.index
    assert torch.allclose(npid.bank[rows], F.normalize(0.5 * v.detach() + 0.5 * bank[rows], dim=1), atol=1e-6)
    others = [i for i in range(8) if i not in rows.tolist()]
    assert torch.equal(npid.bank[others], bank[others])
    npid.loss(net, _batch(4, views=("o1",)))
    assert float(npid.normaliser) == pytest.approx(z)  # fixed after the first batch


BASELINES = {"moco": ({"moco": MocoSettings(temperature=0.1, negatives=6, momentum=0.99)}, 4),
             "npid": ({"npid": NpidSettings(temperature=0.1, negatives=6, momentum=0.5)}, 4),
             "simsiam": ({"simsiam": SimsiamSettings()}, 4)}


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_each_baseline_trains_deterministically_without_translations_and_resumes(
        name, pair_set, tmp_path, monkeypatch):  # noqa: F811
    root, _ = pair_set
    objective, batch = BASELINES[name]
    s = dataclasses.replace(SETTINGS, objective=objective, batch_size=batch, translations="none")
    ref = daco.train_daco(root, None, BACKBONE, s, NORM, tmp_path / "ref", seed=3)
    again = daco.train_daco(root, None, BACKBONE, s, NORM, tmp_path / "again", seed=3)
    a, b = torch.load(ref, weights_only=True)["state_dict"], torch.load(again, weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    preempted_in_epoch_two(monkeypatch, lambda: daco.train_daco(root, None, BACKBONE, s, NORM, tmp_path / "run",
                                                                seed=3))
    daco.train_daco(root, None, BACKBONE, s, NORM, tmp_path / "run", seed=3)
    # epoch 3's loss depends on everything before it: the network, the optimiser and the objective's state
    losses = [[e["loss"] for e in json.loads((tmp_path / d / "training_log.json").read_text())["epochs"]]
              for d in ("ref", "run")]
    assert len(losses[0]) == 3 and losses[0] == losses[1]


def test_every_learner_and_variant_of_both_presets_reads_the_translations_its_objective_needs(repo_root):
    import yaml

    from darkside.config import daco_learner_entry
    from darkside.settings import parse

    params = yaml.safe_load((repo_root / "params.yaml").read_text())
    for preset, values in params["presets"].items():
        section = values["daco"]
        for name in [*section["learners"], *section["variants"]]:
            parse(daco.DacoSettings, daco_learner_entry(section, name), f"{preset}.{name}").check(name)


def test_netvlad_pooling_starts_from_kmeans_centres_of_the_trunk_and_trains_as_simclr(pair_set, tmp_path):  # noqa: F811
    """DaCo's NetVLAD row: SimCLR's objective on NetVLAD-pooled K x C features; before the first step the centres are
    k-means centres of unit trunk features (NetVLAD's initialisation), and a seeded run repeats."""
    root, _ = pair_set
    pool = daco.NetVladPooling(clusters=2, init_images=4, init_features=20, kmeans_iterations=5, assignment_ratio=100.0)
    s = dataclasses.replace(SETTINGS, objective={"simclr": SimclrSettings(0.1)}, pooling={"netvlad": pool},
                            translations="none", iterations=4)
    net = daco.build_daco_net(BACKBONE, 8, 3, s.pooling)
    channels = net.head[-1].out_features
    assert net.head[0].in_features == 2 * channels
    x = torch.rand(2, 3, 16, 16)
    assert net.features(x).shape == (2, 2 * channels)
    before = net.pool.centres.detach().clone()
    alpha = daco.init_netvlad(net, [torch.rand(3, 16, 16) for _ in range(4)], pool, seed=0, device="cpu")
    assert alpha > 0 and not torch.equal(net.pool.centres, before)
    assert torch.allclose(net.pool.assign.weight.flatten(1), 2 * alpha * net.pool.centres, atol=1e-6)
    a = daco.train_daco(root, None, BACKBONE, s, NORM, tmp_path / "a", seed=3)
    b = daco.train_daco(root, None, BACKBONE, s, NORM, tmp_path / "b", seed=3)
    sa, sb = torch.load(a, weights_only=True)["state_dict"], torch.load(b, weights_only=True)["state_dict"]
    assert "pool.centres" in sa and all(torch.equal(sa[k], sb[k]) for k in sa)
    reloaded, settings, _ = daco.load_daco_model(a)
    assert settings.pooling == {"netvlad": pool}
    assert daco.descriptors(reloaded, sorted((root / "images" / "val" / "day").glob("*.png")), s, NORM).shape == (
        3, 2 * channels)
