"""The DAG resolves, the SLURM profile requests GPUs exactly on the GPU rules, and dvc.yaml is the
Snakemake DAG (no drift)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

GPU_RULES = {"whiten", "extract", "finetune", "train_gan", "pretrain_edges", "pretrain_backbone", "edge_quality",
             "codebook", "train_daco_translator", "train_daco"}


def _snakemake(repo_root: Path, *args: str) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    proc = subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=repo_root, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def _jobs(output: str) -> list[tuple[str, str]]:
    """(rule, resources line) per job of a dry run."""
    jobs = []
    for block in re.split(r"\n(?=\[|rule |localrule )", output):
        m = re.search(r"^(?:local)?rule (\w+):", block, re.M)
        if not m or m.group(1) == "all":
            continue
        res = re.search(r"resources: (.*)", block)
        jobs.append((m.group(1), res.group(1) if res else ""))
    return jobs


@pytest.mark.parametrize("preset", ["mini", "paper"])
def test_slurm_profile_dry_run_requests_gpus_on_gpu_rules(repo_root, preset):
    """`snakemake -n --profile slurm` resolves without SLURM (and, for the paper preset, without network)
    from downloads to tables, with GPU requests exactly on the GPU rules."""
    out = _snakemake(repo_root, "-n", "--forceall", "--profile", "slurm", "--config", f"preset={preset}")
    jobs = _jobs(out)
    assert jobs, out[-2000:]
    rules = {r for r, _ in jobs}
    assert {"extract", "whiten", "score", "tables", "filter_day_night"} <= rules
    # DaCo's tasks: a translator per task, every run of daco.runs trained (or extracted) and scored
    daco = {r: sum(1 for j, _ in jobs if j == r) for r in ("train_daco_translator", "train_daco",
                                                          "extract_handcrafted", "score_daco", "score_daco_matches")}
    # mini: 3 night + 3 fog + 2 rain learners, the three hand-crafted methods on the night task; paper: the five
    # contrastive learners and NetVLAD on each task, Table 4's ten lambdas, Table 5's extra terms and Table 6's
    # seven augmentation rows on the fog task, the hand-crafted methods on every task
    assert daco == {"train_daco_translator": 3, "train_daco": {"mini": 8, "paper": 36}[preset],
                    "extract_handcrafted": {"mini": 3, "paper": 9}[preset], "score_daco": 1,
                    "score_daco_matches": 1}, daco
    if preset == "paper":
        assert {"download_dataset", "prepare_dataset", "download_weights"} <= rules
        prepared = set(re.findall(r"data/prepared/([a-z0-9-]+)/manifest.csv", out))
        assert {"sfm120k", "sfm120k-whiten", "tokyo247", "roxford5k", "rparis6k", "aachen-v11",
                "robotcar-seasons"} <= prepared
    else:
        assert "prepare_synthetic" in rules
    for rule, resources in jobs:
        has_gpu = re.search(r"\bgpu=1\b", resources) is not None
        assert has_gpu == (rule in GPU_RULES), (rule, resources)


def test_cluster_resources_grow_with_the_attempt_and_failed_jobs_are_retried_and_requeued(repo_root):
    """A job that hit its time or memory limit comes back with more: every cluster rule's runtime and memory are
    ``grow``n by Snakemake's attempt; the profile retries and lets SLURM requeue preempted jobs."""
    import yaml

    from darkside.orchestration import grow

    assert [grow(600)(None, a) for a in (1, 2, 3)] == [600, 1200, 1800]
    assert [grow(8000, 0.5)(None, a) for a in (1, 2, 3)] == [8000, 12000, 16000]
    fixed = []
    for smk in sorted((repo_root / "workflow" / "rules").glob("*.smk")):
        for rule in re.split(r"\nrule ", smk.read_text())[1:]:
            name = rule.split(":", 1)[0]
            local = "localrule: True" in rule
            for key in ("runtime", "mem_mb"):
                for value in re.findall(rf"\n        {key}=([^\n]+),", rule):
                    if value.startswith("grow(") == local:
                        fixed.append((smk.name, name, key, value))
    assert not fixed, fixed  # a cluster rule's fixed limit, or a local rule's (which nothing enforces) grown
    profile = yaml.safe_load((repo_root / "slurm" / "config.yaml").read_text())
    assert profile["retries"] >= 2 and profile["slurm-requeue"] is True and profile["rerun-incomplete"] is True


def test_cluster_jobs_decode_images_on_the_cpus_they_get(repo_root):
    """On the cluster, extraction and whitening get the profile's set-threads (8) and use all but one to decode and
    prepare images ahead of the network; a laptop run's one-thread jobs decode inline. (A dry run through the SLURM
    executor renders commands with one thread: the job's own threads are set on its node, so the rule's command is
    checked with the profile's threads given to a local dry run.)"""
    from darkside.cli import _decoders

    profile = yaml.safe_load((repo_root / "slurm" / "config.yaml").read_text())["set-threads"]
    assert profile["extract"] == profile["whiten"] == 8
    out = _snakemake(repo_root, "-n", "--forceall", "-p", "--cores", "8", "--config", "preset=paper", "--set-threads",
                     "extract=8", "whiten=8")
    commands = [c for c in out.splitlines() if " extract --model " in c or " whiten --model " in c]
    assert commands and all("--threads 8 " in c for c in commands), commands[:1]
    assert (_decoders(1), _decoders(8)) == (0, 7)
    assert " --threads 1 " in _snakemake(repo_root, "-n", "--forceall", "--cores", "2", "-p")


def test_default_dry_run_resolves(repo_root):
    out = _snakemake(repo_root, "-n", "--forceall", "--cores", "2")
    assert "prepare_synthetic" in out and "tables" in out


def test_dvc_yaml_is_the_snakemake_dag(repo_root):
    """Regenerating dvc.yaml from the Snakefile gives the committed file byte for byte."""
    from darkside.orchestration import render_dvc_yaml, snakemake_jobs

    cwd = os.getcwd()
    try:
        os.chdir(repo_root)
        expected = render_dvc_yaml(snakemake_jobs(repo_root / "Snakefile", repo_root))
    finally:
        os.chdir(cwd)
    committed = (repo_root / "dvc.yaml").read_text()
    assert committed == expected, "dvc.yaml has drifted from the Snakefile: run `darkside dvc-yaml`"


def test_dvc_stages_mirror_rules(repo_root):
    stages = yaml.safe_load((repo_root / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        # DVC runs the command on params.yaml (which `dvc exp run -S` rewrites), not on handed-over settings
        assert stage["cmd"].startswith("darkside ") and "--settings" not in stage["cmd"], name
        assert "src/darkside" not in stage["deps"] and "src/darkside/cli.py" in stage["deps"], name
        for path in stage.get("metrics", []):
            # cached like every out: dvc push / pull carry it to another clone
            assert path.startswith("results/metrics/") and isinstance(path, str)
    # metrics never live inside a folder that another stage tracks as an output
    outs = {o if isinstance(o, str) else next(iter(o)) for s in stages.values() for o in s.get("outs", [])}
    metric_files = {m for s in stages.values() for m in s.get("metrics", [])}
    for mf in metric_files:
        assert not any(mf.startswith(o.rstrip("/") + "/") for o in outs), mf


HEADLINE = "results/metrics/headline.json"


def test_the_headline_cells_are_the_one_dvc_metrics_file(repo_root):
    """`dvc metrics show` lists the tables' headline cells only; every other metric JSON is still declared, as an
    out of the stage that writes it (cached, so that dvc push and pull carry it)."""
    from darkside.orchestration import dvc_stages

    jobs = [{"rule": "score", "wildcards": {"model": "vgg16-gem"}, "input": [], "settings": None, "preset": "mini",
             "output": [("results/metrics/vgg16-gem/synth-tokyo.json", False)], "cmd": "darkside score --out x"},
            {"rule": "tables", "wildcards": {}, "input": [], "settings": None, "preset": "mini",
             "output": [("results/tables/table1.csv", False), (HEADLINE, False)], "cmd": "darkside tables"}]
    stages = dvc_stages(jobs)["stages"]
    assert stages["tables"]["metrics"] == [HEADLINE]
    assert stages["tables"]["outs"] == ["results/tables/table1.csv"]
    assert "metrics" not in stages["score_vgg16-gem"]
    assert stages["score_vgg16-gem"]["outs"] == ["results/metrics/vgg16-gem/synth-tokyo.json"]

    committed = yaml.safe_load((repo_root / "dvc.yaml").read_text())["stages"]
    assert [m for s in committed.values() for m in s.get("metrics", [])] == [HEADLINE]
    outs = {o for s in committed.values() for o in s.get("outs", [])}
    assert all(isinstance(o, str) for o in outs)  # every out cached
    for declared in ("results/metrics/vgg16-gem/synth-tokyo.json", "results/metrics/gans/cyclegan.json",
                     "results/metrics/chance/synth-tokyo.json"):
        assert declared in outs, declared


def test_the_tables_rule_writes_the_headline_metrics(repo_root):
    from darkside.orchestration import snakemake_jobs

    cwd = os.getcwd()
    try:
        os.chdir(repo_root)
        (tables,) = [j for j in snakemake_jobs(repo_root / "Snakefile", repo_root) if j["rule"] == "tables"]
    finally:
        os.chdir(cwd)
    assert (HEADLINE, False) in tables["output"]
    assert f"--headline {HEADLINE} " in tables["cmd"]


def test_stages_track_exactly_what_their_job_reads(repo_root):
    """A stage's params are the leaves its job reads, and its code deps the subpackages its verb imports."""
    stages = yaml.safe_load((repo_root / "dvc.yaml").read_text())["stages"]
    tables, score, cyclegan = stages["tables"], stages["score_vgg16-gem"], stages["train_gan_cyclegan"]
    assert "presets.mini.evaluate.bootstrap_samples" in tables["params"]
    assert "presets.mini.evaluate.chunk_size" not in tables["params"]
    assert "presets.mini.evaluate.chunk_size" in score["params"]
    assert "presets.mini.evaluate.bootstrap_samples" not in score["params"]
    assert not any("hedngan" in p or "edges" in p for p in cyclegan["params"])
    assert not any(p.startswith("presets.mini.gan") for p in stages["pretrain_edges_hed"]["params"])
    assert stages["finetune_resnet101_gem"]["params"].count("presets.mini.finetune.margins.resnet101") == 1
    assert not any("margins.vgg16" in p for p in stages["finetune_resnet101_gem"]["params"])
    # code: the tables need no network code; training a generator needs no table or metric-learning code
    assert {"src/darkside/tables", "src/darkside/evaluate"} <= set(tables["deps"])
    assert not {"src/darkside/gan", "src/darkside/embed", "src/darkside/extract"} & set(tables["deps"])
    assert "src/darkside/gan" in cyclegan["deps"]
    assert not {"src/darkside/tables", "src/darkside/embed"} & set(cyclegan["deps"])


def test_a_dvc_command_reads_what_snakemake_hands_over(repo_root):
    """The settings a job reads from params.yaml (DVC, by hand) are the ones Snakemake passes with --settings."""
    import shlex

    from darkside.cli import _job, build_parser
    from darkside.orchestration import snakemake_jobs

    cwd = os.getcwd()
    try:
        os.chdir(repo_root)
        jobs = {j["rule"]: j for j in snakemake_jobs(repo_root / "Snakefile", repo_root)}
        for rule in ("tables", "train_gan", "finetune", "score", "pretrain_backbone"):
            handed = jobs[rule]["settings"]
            argv = shlex.split(jobs[rule]["cmd"])[1:]
            by_hand = build_parser().parse_args([a for i, a in enumerate(argv)
                                                 if a != "--settings" and argv[i - 1] != "--settings"])
            assert _job(by_hand).to_json() == handed, rule
    finally:
        os.chdir(cwd)


def test_every_stage_calls_an_existing_verb(repo_root):
    from darkside.cli import VERBS

    stages = yaml.safe_load((repo_root / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        words = stage["cmd"].split()
        verb = next(w for w in words[1:] if not w.startswith("-") and w not in ("mini", "paper"))
        assert verb in VERBS, (name, verb)


def test_further_seeds_are_further_fine_tuned_models(repo_root, tmp_path):
    """``seeds: [0, 1]`` adds a `<backbone>-<recipe>.seed1` model per fine-tuned recipe (trained with
    `--seed 1`, then whitened, extracted and scored like any model); off-the-shelf has no seeds."""
    params = yaml.safe_load((repo_root / "params.yaml").read_text())
    params["presets"]["mini"]["seeds"] = [0, 1]
    cfg = tmp_path / "params.yaml"
    cfg.write_text(yaml.safe_dump(params))
    out = _snakemake(repo_root, "-n", "--forceall", "--cores", "2", "-p", "--configfile", str(cfg))
    from darkside.recipes import Ensemble, part_recipes, recipe_or_ensemble

    gan = params["presets"]["mini"]["gan"]
    recipes = [recipe_or_ensemble(r, [*gan["families"], *gan["variants"]])
               for rs in params["presets"]["mini"]["recipes"].values() for r in rs]
    # a model that is not fine-tuned (off-the-shelf, a content embedding) has no seeds
    n_seeded = sum(any(p.finetune for p in part_recipes(r)) for r in recipes)
    assert n_seeded < len(recipes) - 1
    # test-time ones reuse a model, ensembles their parts'
    n_tuned = sum(r.finetune and r.weights_of is None for r in recipes)
    n_ensembles = sum(isinstance(r, Ensemble) for r in recipes)
    jobs = [r for r, _ in _jobs(out)]
    assert jobs.count("finetune") == 2 * n_tuned and jobs.count("score") == len(recipes) + n_seeded
    assert n_ensembles and jobs.count("ensemble") == 2 * n_ensembles
    # an ensemble's seed 1 combines its parts' seed-1 descriptors
    assert ("ensemble --part results/descriptors/vgg16-hedngan-cd.seed1/synth-tokyo.h5 --part results/descriptors/"
            "vgg16-cyclegan-cd.seed1/synth-tokyo.h5 --out results/descriptors/vgg16-hedngan-cd+cyclegan-cd.seed1/"
            "synth-tokyo.h5 ") in out
    assert "--recipe clahe-cd --seed 1 --init results/models/vgg16-offtheshelf/model.pt" in out
    assert "--out-dir results/models/vgg16-clahe-cd.seed1 " in out
    assert "--recipe clahe-cd --seed 0 " in out and "--out-dir results/models/vgg16-clahe-cd " in out
    assert "offtheshelf.seed1" not in out and "mduit-content.seed1" not in out
    assert "results/metrics/vgg16-hedngan-cd.seed1/synth-tokyo.json" in out
    # the test-time translation model of seed 1 extracts with GeM's seed-1 weights and CycleGAN's night->day
    assert ("extract --model results/models/vgg16-gem.seed1/model.pt --whitening results/models/vgg16-gem.seed1/"
            "whitening.npz --night-to-day results/gans/cyclegan/generator.pt --dataset data/prepared/synth-tokyo "
            "--out results/descriptors/vgg16-gem-n2d-cyclegan.seed1/synth-tokyo.h5") in out


def test_a_published_generator_is_imported_only_where_its_file_is_placed(repo_root, tmp_path):
    """A `gan.published` entry's recipes join the DAG (import, fine-tune with the imported file) only once the
    authors' file exists; without it they are left out and nothing fails."""
    params = yaml.safe_load((repo_root / "params.yaml").read_text())
    authors = tmp_path / "authors" / "bdd100k_net_G_A.pth"
    mini = params["presets"]["mini"]
    mini["gan"]["published"] = {"cyeda-bdd": {"family": "cyeda", "file": str(authors), "source": "the authors"}}
    mini["recipes"]["vgg16"] = [*mini["recipes"]["vgg16"], "cyeda-bdd-cd"]
    cfg = tmp_path / "params.yaml"
    cfg.write_text(yaml.safe_dump(params))
    out = _snakemake(repo_root, "-n", "--forceall", "--cores", "2", "-p", "--configfile", str(cfg))
    # (the settings page shows the recipe list as configured, so the name itself is in the dry run's output)
    assert "import_generator" not in {r for r, _ in _jobs(out)} and "vgg16-cyeda-bdd-cd" not in out
    authors.parent.mkdir()
    authors.write_bytes(b"placed")
    out = _snakemake(repo_root, "-n", "--forceall", "--cores", "2", "-p", "--configfile", str(cfg))
    assert [r for r, _ in _jobs(out)].count("import_generator") == 1
    assert f"import-generator --name cyeda-bdd --file {authors} --out results/gans/cyeda-bdd/generator.pt" in out
    assert "--recipe cyeda-bdd-cd" in out and "--generator results/gans/cyeda-bdd/generator.pt" in out


def test_only_multi_domain_families_train_on_the_domain_list(repo_root):
    """filter_day_night writes domains.tsv, and a train_gan job has it as an input exactly where its family
    trains on every lighting domain (GanBundle.multi_domain, which the DAG reads from the schema, torch-free)."""
    from darkside.config import load_params, multi_domain_families
    from darkside.gan.family import family_class

    params = load_params(repo_root / "params.yaml")
    gan = params["presets"][params["preset"]]["gan"]
    families = list(gan["families"])
    multi = {f for f in families if family_class(f).multi_domain}
    assert multi == {"mduit"} and set(multi_domain_families(params)) & set(families) == multi
    jobs = _dag_jobs(repo_root)
    filtered = [j for j in jobs if j["rule"] == "filter_day_night"]
    assert filtered and all(any(o.endswith("/domains.tsv") for o, _ in j["output"]) for j in filtered)
    trained = {j["wildcards"]["family"]: j["input"] for j in jobs if j["rule"] == "train_gan"}
    assert set(trained) == set(families) | set(gan["variants"])  # a variant is a run of its family
    for run, inputs in trained.items():
        family = gan["variants"][run]["family"] if run in gan["variants"] else run
        assert any(i.endswith("/domains.tsv") for i in inputs) == (family in multi), run
        assert any(i.endswith("/day.txt") for i in inputs) and any(i.endswith("/night.txt") for i in inputs)


def test_variants_train_like_their_family_and_their_content_embeddings_are_scored(repo_root):
    """gan.variants: one train_gan job each, `--family F --variant V` into results/gans/V, reading its entry and
    the family's; a `<run>-content` recipe's model is built from that run's generator file (rule content_model,
    no fine-tuning, no seeds), whitened, extracted and scored on every test dataset like any model; MDUIT's
    Table 1 reads them."""
    import json

    from darkside.config import load_params

    params = load_params(repo_root / "params.yaml")
    variants = params["presets"]["mini"]["gan"]["variants"]
    assert set(variants) == {"mduit-no-i2i", "mduit-no-nce", "mduit-no-i2i-no-nce"}
    jobs = _dag_jobs(repo_root)
    for name, entry in variants.items():
        job = next(j for j in jobs if j["rule"] == "train_gan" and j["wildcards"]["family"] == name)
        assert f"train-gan --family {entry['family']} --variant {name} " in job["cmd"]
        assert f"--out-dir results/gans/{name} " in job["cmd"]
        values = json.loads(job["settings"])["values"]["gan"]
        assert values["variants"] == {name: entry} and list(values["families"]) == [entry["family"]]
    plain = next(j for j in jobs if j["rule"] == "train_gan" and j["wildcards"]["family"] == "mduit")
    assert "--variant" not in plain["cmd"] and "variants" not in json.loads(plain["settings"])["values"]["gan"]
    built = {j["wildcards"]["recipe"]: j for j in jobs if j["rule"] == "content_model"}
    assert set(built) == {"mduit-content", *(f"{v}-content" for v in variants)}
    for recipe, job in built.items():
        run = recipe.removesuffix("-content")
        assert job["input"] == [f"results/gans/{run}/generator.pt"]
        assert job["output"] == [(f"results/models/vgg16-{recipe}/model.pt", False)]
        assert f"--recipe {recipe} --generator results/gans/{run}/generator.pt " in job["cmd"]
    tuned = {j["wildcards"]["recipe"] for j in jobs if j["rule"] == "finetune"}
    assert "netvlad" in tuned and not tuned & set(built) and "offtheshelf" not in tuned
    tests = params["presets"]["mini"]["data"]["roles"]
    scored = {j["wildcards"]["model"]: j for j in jobs if j["rule"] == "score"}
    for model in ("vgg16-netvlad", *(f"vgg16-{r}" for r in built)):
        outputs = {f for f, _ in scored[model]["output"]}
        assert f"results/metrics/{model}/{tests['localization'][1]}.json" in outputs
        assert f"results/metrics/{model}/{tests['tokyo']}.json" in outputs
    table = next(j for j in jobs if j["rule"] == "tables")
    assert "results/tables/mduit-table1.csv" in {f for f, _ in table["output"]}


def test_paper_nd_recipes_fine_tune_on_the_dataset_that_holds_the_nd_pairs(repo_root):
    """The paper preset's N/D recipes (day_night_pairs) read the train_day_night role (sfm120k-nd: sfm120k plus
    the pair list), the others the train role; before, every fine-tune read sfm120k, whose importer writes no
    N/D pairs, and each N/D recipe would have stopped with 'day_night_pairs: none in split train'."""
    from darkside.config import load_params
    from darkside.recipes import recipe_by_name

    paper = load_params(repo_root / "params.yaml")["presets"]["paper"]
    assert paper["data"]["roles"]["train_day_night"] == "sfm120k-nd"
    families = [*paper["gan"]["families"], *paper["gan"]["published"]]
    out = _snakemake(repo_root, "-n", "--forceall", "--cores", "2", "-p", "--config", "preset=paper")
    commands = re.findall(r"finetune --backbone (\w+) --recipe ([a-z0-9-]+) .*?--dataset data/prepared/([a-z0-9-]+)",
                          out)
    assert commands
    for backbone, name, dataset in commands:
        nd = recipe_by_name(name, families).day_night_pairs
        assert dataset == ("sfm120k-nd" if nd else "sfm120k"), (backbone, name, dataset)
    assert {d for *_, d in commands} == {"sfm120k", "sfm120k-nd"}


def _dag_jobs(repo_root):
    from darkside.orchestration import snakemake_jobs

    cwd = os.getcwd()
    try:
        os.chdir(repo_root)
        return snakemake_jobs(repo_root / "Snakefile", repo_root)
    finally:
        os.chdir(cwd)


def test_an_ensemble_is_scored_from_its_parts_descriptor_files(repo_root):
    """`<backbone>-<a>+<b>` (a recipe list's ensemble): one `ensemble` job per model combines the parts' descriptor
    files of every test dataset, no network touches it (no extract, whiten or fine-tune job of its name), and the
    score job scores its files like any model's, for the tables."""
    jobs = _dag_jobs(repo_root)
    model = "vgg16-hedngan-cd+cyclegan-cd"
    (ens,) = [j for j in jobs if j["rule"] == "ensemble" and j["wildcards"]["model"] == model]
    assert ens["wildcards"] == {"model": model} and ens["settings"] is None
    # the test datasets, in the order the rules list them
    datasets = [Path(o).stem for o, _ in next(j for j in jobs if j["rule"] == "extract")["output"]]
    assert sorted(ens["input"]) == sorted(f"results/descriptors/vgg16-{r}/{d}.h5" for r in ("hedngan-cd", "cyclegan-cd")
                                          for d in datasets)
    assert sorted(o for o, _ in ens["output"]) == sorted(f"results/descriptors/{model}/{d}.h5" for d in datasets)
    assert ens["cmd"].startswith(f"darkside ensemble --part results/descriptors/vgg16-hedngan-cd/{datasets[0]}.h5 "
                                 f"--part results/descriptors/vgg16-cyclegan-cd/{datasets[0]}.h5 "
                                 f"--out results/descriptors/{model}/{datasets[0]}.h5 --part ")
    assert not [j for j in jobs if j["rule"] != "ensemble" and "+" in "".join(j["wildcards"].values())
                and j["rule"] != "score"]
    (score,) = [j for j in jobs if j["rule"] == "score" and j["wildcards"]["model"] == model]
    assert {o for o, _ in ens["output"]} <= set(score["input"])
    (tables,) = [j for j in jobs if j["rule"] == "tables"]
    assert {o for o, _ in score["output"] if o.endswith(".json")} <= set(tables["input"])
    stages = yaml.safe_load((repo_root / "dvc.yaml").read_text())["stages"]
    assert stages[f"ensemble_{model}"]["cmd"] == ens["cmd"]


def test_every_table_figure_curve_and_sample_grid_is_in_the_report(repo_root):
    """`snakemake --report` shows what the DAG makes: every output marked report() is one of these, and each of
    these is marked: a page per table, every figure, every model's and generator's training curve, every
    generator's sample grids, the synthetic benchmark's calibration, the settings."""
    from darkside.tables.paper import paper_tables

    jobs = _dag_jobs(repo_root)
    reported = {f for j in jobs for f in j["report"]}
    outputs = {f for j in jobs for f, _ in j["output"]}
    tables = {Path(f).stem for f in outputs if f.startswith("results/tables/")}
    assert tables == set(paper_tables())
    pages = {f"results/report/tables/{t}.html" for t in tables}
    figures = {f for f in outputs if f.startswith("results/figures/")}
    assert len(figures) >= 3  # Figures 1 and 2, the contact sheet (and any figure added later)
    trained = [j for j in jobs if j["rule"] in ("finetune", "train_gan", "train_daco_translator", "train_daco")]
    curves = {f for j in trained for f, _ in j["output"] if f.endswith("/training_curve.png")}
    assert len(curves) == len(trained) > 10
    grids = {f for j in jobs if j["rule"] in ("train_gan", "train_daco_translator") for f, is_dir in j["output"]
             if is_dir and f.endswith("/samples")}
    assert grids == {f"results/gans/{j['wildcards']['family']}/samples" for j in jobs if j["rule"] == "train_gan"} | {
        f"results/daco/translators/{j['wildcards']['dataset']}/samples" for j in jobs
        if j["rule"] == "train_daco_translator"}
    expected = pages | figures | curves | grids | {"results/report/synthetic-calibration.html",
                                                    "results/report/settings.html"}
    assert reported == expected, (expected - reported, reported - expected)


def test_training_jobs_declare_every_file_they_keep_but_the_checkpoint(repo_root):
    """The files a training run writes (module constants, which the training tests check against the run folder)
    are the rule's outputs, except what must survive a preempted job (Snakemake deletes declared outputs)."""
    import darkside.embed.finetune as ft
    import darkside.gan.train as gt

    jobs = _dag_jobs(repo_root)
    written = {"train_gan": {gt.GENERATOR, gt.LOG, gt.LOSSES, gt.CURVE, gt.SAMPLES},
               "train_daco_translator": {gt.GENERATOR, gt.LOG, gt.LOSSES, gt.CURVE, gt.SAMPLES},
               "finetune": {ft.MODEL, ft.LOG, ft.CURVE, ft.CURVE_DATA},
               "train_daco": {"model.pt", "training_log.json", "training_curve.png"}}
    for job in jobs:
        if job["rule"] in written:
            run_dir = {str(Path(f).parent) for f, _ in job["output"] if f.startswith(
                ("results/gans/", "results/models/", "results/daco/translators/", "results/daco/models/"))}
            assert len(run_dir) == 1, job["output"]
            names = {Path(f).name for f, _ in job["output"] if str(Path(f).parent) in run_dir}
            assert names == written[job["rule"]], (job["rule"], job["wildcards"], names)
            assert not any("checkpoint" in f for f, _ in job["output"])


def test_dvc_plots_draw_every_training_curve(repo_root):
    """dvc.yaml's top-level plots draw each fine-tuning curve and each generator's losses (x: epoch) from files
    that stages write as outs; the fields are the ones the writers put there."""
    from darkside.orchestration import PLOT_FIELDS

    dvc = yaml.safe_load((repo_root / "dvc.yaml").read_text())
    declared = {o for s in dvc["stages"].values() for o in s.get("outs", [])}
    drawn = []
    for plot in dvc["plots"]:
        (_, spec), = plot.items()
        assert spec["x"] == "epoch"
        (path, fields), = spec["y"].items()
        assert path in declared and fields == PLOT_FIELDS[Path(path).name], (path, fields)
        drawn.append(path)
    jobs = _dag_jobs(repo_root)
    expected = [f for j in jobs if j["rule"] in ("finetune", "train_gan") for f, _ in j["output"]
                if f.endswith(("/training_curve.csv", "/losses.csv"))]
    assert sorted(drawn) == sorted(expected) and len(expected) > 10


def test_dvc_plots_show_draws_the_files_the_training_verbs_write(tmp_path):
    """`dvc plots show` on the generated plot definitions and files as the training code writes them: one row per
    epoch for every declared field (an epoch without validation gives an empty value, which Vega leaves out)."""
    import json
    import shutil

    import darkside.embed.finetune as ft
    import darkside.gan.train as gt
    from darkside.orchestration import dvc_plots

    dvc = shutil.which("dvc", path=str(Path(sys.executable).parent))
    if dvc is None:
        pytest.skip("dvc is not installed beside the interpreter")
    curve, losses = "results/models/vgg16-gem/training_curve.csv", "results/gans/cyclegan/losses.csv"
    ft.write_curve_data([{"epoch": 1, "loss": 0.5, "val_loss": None}, {"epoch": 2, "loss": 0.4, "val_loss": 0.45}],
                        tmp_path / curve)
    gt.write_losses([{"epoch": e, "lr_factor": 1.0, "images_per_s": 9.5, "wall_s": 3.0,
                      "losses": {"G": 2.0 / e, "G_adv": 0.7, "D_X": 0.25, "cycle": 1.3}} for e in (1, 2, 3)],
                    tmp_path / losses)
    plots = dvc_plots([{"output": [(curve, False), ("results/models/vgg16-gem/model.pt", False)]},
                       {"output": [(losses, False)]}])
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"plots": plots}))
    subprocess.run([dvc, "init", "--no-scm", "-q"], cwd=tmp_path, check=True)
    proc = subprocess.run([dvc, "plots", "show", "--json"], cwd=tmp_path, capture_output=True, text=True, check=True)
    shown = json.loads(proc.stdout)
    assert not shown.get("errors"), shown["errors"]
    drawn = {}
    for plot_id, renders in shown["data"].items():
        values = renders[0]["content"]["data"]["values"]
        drawn[plot_id] = sorted((v["field"], int(v["epoch"]), v["dvc_inferred_y_value"]) for v in values)
    assert drawn == {
        "fine-tuning vgg16-gem": [("loss", 1, "0.5"), ("loss", 2, "0.4"), ("val_loss", 1, ""), ("val_loss", 2, "0.45")],
        "generator training cyclegan": [("G", 1, "2"), ("G", 2, "1"), ("G", 3, "0.666667"),
                                        ("G_adv", 1, "0.7"), ("G_adv", 2, "0.7"), ("G_adv", 3, "0.7")]}


def test_no_dvc_command_has_a_double_space(repo_root):
    """A command with two spaces in a row is folded to one by the YAML of dvc.yaml, so after `dvc repro` the stage
    would read as changed (an empty option such as a recipe's missing --generator left one)."""
    dvc = yaml.safe_load((repo_root / "dvc.yaml").read_text())
    assert not [name for name, stage in dvc["stages"].items() if "  " in stage["cmd"]]


def test_dvc_shares_through_a_linked_group_cache_and_ignores_snakemakes_touch_marker(repo_root):
    """What a group needs to share runs: the cache links outputs (no second copy of a dataset), is group-writable,
    and the marker `snakemake --touch` leaves in folder outputs after a `dvc pull` is not data to DVC."""
    import configparser
    import shutil

    cfg = configparser.ConfigParser()
    cfg.read(repo_root / ".dvc" / "config")
    assert cfg["cache"]["type"].split(",")[:3] == ["reflink", "hardlink", "symlink"]
    assert cfg["cache"]["shared"] == "group"
    assert not (repo_root / ".dvc" / "config").read_text().count("remote")  # a site's paths stay local
    dvc = shutil.which("dvc", path=str(Path(sys.executable).parent)) or shutil.which("dvc")
    assert dvc is not None
    ignored = subprocess.run([dvc, "check-ignore", "results/gans/cyclegan/samples/.snakemake_timestamp"],
                             cwd=repo_root, capture_output=True, text=True)
    assert ignored.returncode == 0, ignored.stderr
    kept = subprocess.run([dvc, "check-ignore", "results/gans/cyclegan/samples/epoch_001.png"], cwd=repo_root,
                          capture_output=True, text=True)
    assert kept.returncode == 1, kept.stdout


def test_a_dataset_is_downloaded_after_those_its_importer_reads(repo_root):
    """`darkside download --dataset sfm120k-whiten` refuses to run before sfm120k's download; the paper preset's
    rehearsal met exactly that (Snakemake ran the whiten download first and it failed), since the rule did not
    say so."""
    from darkside.data.registry import DATASETS

    out = _snakemake(repo_root, "-n", "--forceall", "--cores", "2", "--config", "preset=paper")
    needs = {name: e.requires for name, e in DATASETS.items() if e.requires}
    assert "sfm120k-whiten" in needs
    blocks = re.split(r"\n(?=\[|rule |localrule )", out)
    seen = set()
    for block in blocks:
        m = re.search(r"^(?:local)?rule download_dataset:.*?wildcards: dataset=([\w-]+)", block, re.M | re.S)
        if m and m.group(1) in needs:
            inputs = re.search(r"input: (.*)", block)
            assert inputs, block
            assert set(inputs.group(1).split(", ")) == {f"data/raw/{d}/.downloaded" for d in needs[m.group(1)]}
            seen.add(m.group(1))
    assert "sfm120k-whiten" in seen


def test_edge_quality_is_scored_only_where_true_edge_maps_exist(repo_root):
    """Only the renderer writes true edge maps; the paper preset's Tokyo 24/7 has none, and its rehearsal's
    edge_quality jobs stopped with 'ground-truth edge map missing'. The mini suite scores both detectors."""
    paper = _snakemake(repo_root, "-n", "--forceall", "--cores", "2", "--config", "preset=paper")
    mini = _snakemake(repo_root, "-n", "--forceall", "--cores", "2")
    assert "rule edge_quality:" not in paper and "rule figure_edges:" in paper
    assert mini.count("rule edge_quality:") == 2
