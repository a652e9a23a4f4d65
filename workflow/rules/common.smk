# Shared definitions: the validated config, the active preset, each job's settings, and the lists the
# rules expand over. Nothing here imports torch: the DAG resolves in a second.

import os
import re
import sys

from darkside.cli import job_settings
from darkside.config import daco_learner_entry, local_feature_networks, multi_domain_families, validate
from darkside.data.registry import DATASETS
from darkside.data.synthetic import DATASETS as SYNTHETIC_DATASETS
from darkside.errors import ConfigError
from darkside.extract.handcrafted import ENCODINGS  # numpy, OpenCV and h5py, no torch
from darkside.orchestration import grow
from darkside.recipes import is_ensemble, part_recipes, recipe_or_ensemble
from darkside.tables.paper import paper_tables

try:  # one line naming the key path, not Snakemake's dump of the schema
    validate(config)
except ConfigError as exc:
    sys.exit(f"darkside: error: {exc}")

PRESET = config["preset"]
P = config["presets"][PRESET]
ROLES = P["data"]["roles"]
DS = "darkside"


def settings(verb, **options):
    """The settings job `verb` reads (preset plus any --configfile/--config overlay), as the JSON the job is
    handed with --settings. As a rule's `params`, exactly what Snakemake tracks for the job."""
    return job_settings(verb, config, PRESET, options).to_json()


BACKBONES = list(P["backbones"])
FAMILIES = list(P["gan"]["families"])
# families that train on every lighting domain (GanBundle.multi_domain, as the schema records it)
MULTI_DOMAIN_FAMILIES = [f for f in FAMILIES if f in multi_domain_families(config)]
# generators their authors published (gan.published): imported where the file is placed, their recipes
# trained only then (their table cells say where to place the file otherwise)
PUBLISHED = P["gan"]["published"]
ABSENT_PUBLISHED = [n for n, e in PUBLISHED.items() if not os.path.isfile(e["file"])]
# further trained runs of a family with some settings replaced (gan.variants: MDUIT's Table 1 ablations), trained
# by train_gan like the families into results/gans/<name>; their recipes exist like a family's
VARIANTS = P["gan"]["variants"]
GAN_RUNS = FAMILIES + list(VARIANTS)
TRANSLATORS = FAMILIES + list(PUBLISHED) + list(VARIANTS)


def gan_family(run):
    """The family a train_gan run trains: a variant's (its typed `family`), or the family itself."""
    return VARIANTS[run]["family"] if run in VARIANTS else run


def gan_entry(run):
    """The settings of a train_gan run as params.yaml gives them: its family's entry, a variant's overrides applied."""
    return {**P["gan"]["families"][gan_family(run)], **(VARIANTS[run]["overrides"] if run in VARIANTS else {})}


def _runs(recipe_name):
    # an ensemble (`a+b`) runs where all its parts do
    return all(r.generator not in ABSENT_PUBLISHED and r.content_of not in ABSENT_PUBLISHED
               for r in part_recipes(recipe_or_ensemble(recipe_name, families=TRANSLATORS)))


def fine_tuned(recipe_name):
    """Whether a recipe's model (an ensemble: a part's) is fine-tuned, hence has a model per fine-tuning seed."""
    return any(r.finetune for r in part_recipes(recipe_or_ensemble(recipe_name, families=TRANSLATORS)))


# fine-tuning seeds: the first seed's model is `<backbone>-<recipe>`, each further seed's
# `<backbone>-<recipe>.seed<N>`; the tables average a row's per-query values over the seeds
SEEDS = list(P["seeds"])
# the models this preset trains and evaluates (not fine-tuned: off-the-shelf, a content embedding; no seeds)
MODELS = [f"{b}-{r}" for b, recipes in P["recipes"].items() for r in recipes if _runs(r)] + [
    f"{b}-{r}.seed{s}" for b, recipes in P["recipes"].items() for r in recipes if fine_tuned(r) and _runs(r)
    for s in SEEDS[1:]]


def recipe(name):
    """The typed recipe (CLAHE, diverse anchors, generator, N/D) behind a recipe name; for an ensemble's name
    (`hedngan-cd+cyclegan-cd`) the typed ensemble of its part recipes (no generator, weights or training)."""
    return recipe_or_ensemble(name, families=TRANSLATORS)


# recipes whose model is a generator's content embedding (typed `content_of`): built by rule content_model, and
# with off-the-shelf the models that rule finetune does not make
CONTENT_RECIPES = sorted({r for rs in P["recipes"].values() for r in rs
                          if not is_ensemble(r) and recipe(r).content_of is not None})
NOT_FINE_TUNED = "|".join(re.escape(r) for r in ["offtheshelf", *CONTENT_RECIPES])


RETRIEVAL_DATASETS = [ROLES["tokyo"], ROLES["roxford"], ROLES["rparis"]]
TEST_DATASETS = RETRIEVAL_DATASETS + list(ROLES["localization"])


def prepared(dataset):
    """The files that make a prepared dataset (its images are side products of the same job)."""
    return [f"data/prepared/{dataset}/{name}" for name in ("manifest.csv", "dataset.json", "groundtruth.json")]


def backbone_of(model):
    # backbone names have no dash (schema), recipe names may have several
    return model.split("-", 1)[0]


def recipe_of(model):
    return base_recipe(model.split("-", 1)[1])


def base_recipe(name):
    """`clahe-cd.seed1` -> `clahe-cd`."""
    return name.split(".seed", 1)[0]


def weights_model(model):
    """The model whose weights and whitening `model` uses: itself, or for a test-time translation recipe
    (`vgg16-gem-n2d-cyclegan`) the model of its `weights_of` recipe with the same seed (`vgg16-gem`)."""
    name = model.split("-", 1)[1]
    r = recipe(base_recipe(name))
    if r.weights_of is None:
        return model
    return f"{backbone_of(model)}-{r.weights_of}{name[len(base_recipe(name)):]}"


def ensemble_parts(model):
    """The part models an ensemble model combines, with its seed: `vgg16-a+b.seed1` -> `vgg16-a.seed1`,
    `vgg16-b.seed1` (a part that is not fine-tuned, off-the-shelf, has no seeds)."""
    name = model.split("-", 1)[1]
    seed = name[len(base_recipe(name)):]
    return [f"{backbone_of(model)}-{r.name}{seed if r.finetune else ''}" for r in recipe(base_recipe(name)).parts]


def seed_of(name):
    """The fine-tuning seed of a model or recipe name (no suffix: the first seed)."""
    _, _, seed = name.partition(".seed")
    return int(seed) if seed else SEEDS[0]


# a model of one network, and an ensemble's (`<backbone>-<recipe>+<recipe>`: its parts' descriptors combined)
NETWORK_MODEL = "[a-z0-9]+-[a-z0-9-]+(\\.seed[0-9]+)?"
# networks with local descriptors (HOW, as the schema records it): their models are extracted with --local,
# get an ASMK codebook and are scored by ASMK
LOCAL_NETWORKS = local_feature_networks(config)


def has_local(model):
    return getattr(recipe(recipe_of(model)), "network", None) in LOCAL_NETWORKS
ENSEMBLE_MODEL = "[a-z0-9]+-[a-z0-9-]+(\\+[a-z0-9][a-z0-9-]*)+(\\.seed[0-9]+)?"


wildcard_constraints:
    model=f"({NETWORK_MODEL}|{ENSEMBLE_MODEL})",
    backbone="[a-z0-9]+",
    dataset="[a-z0-9][a-z0-9-]*",


TABLE_NAMES = list(paper_tables())
TABLES = expand("results/tables/{table}.{ext}", table=TABLE_NAMES, ext=["csv", "md", "tex"])
METRICS = expand("results/metrics/{model}/{dataset}.json", model=MODELS, dataset=TEST_DATASETS)
# the contact sheet shows the benchmark's own renderings (with their ground-truth edges)
FIGURES = ["results/figures/synthetic-contact-sheet.png"] if ROLES["tokyo"] in SYNTHETIC_DATASETS else []
FIGURES += ["results/figures/retrieval_night.png"]  # night queries' top 5 of three models (rule figure_retrieval)
DAY_NIGHT = [f"results/metrics/day_night/{ROLES['train']}.json"]
CHANCE = [f"results/metrics/chance/{d}.json" for d in TEST_DATASETS]
