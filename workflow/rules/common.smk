# Shared definitions: validated config, the active preset, and the lists the rules expand over.

from snakemake.utils import validate

from darkside.embed.recipes import recipe_by_name

validate(config, schema="../schemas/params.schema.yaml")

PRESET = config["preset"]
P = config["presets"][PRESET]
ROLES = P["data"]["roles"]
# every CLI call names the preset explicitly, so `--config preset=paper` reaches the jobs too
DS = f"darkside --preset {PRESET}"

BACKBONES = list(P["backbones"])
FAMILIES = list(P["gan"]["families"])
# fine-tuning seeds: the first seed's model is `<backbone>-<recipe>`, each further seed's
# `<backbone>-<recipe>.seed<N>`; the tables average a row's per-query values over the seeds
SEEDS = list(P["seeds"])
# the models this preset trains and evaluates (`offtheshelf` = no fine-tuning, so no seeds)
MODELS = [f"{b}-{r}" for b, recipes in P["recipes"].items() for r in recipes] + [
    f"{b}-{r}.seed{s}" for b, recipes in P["recipes"].items() for r in recipes if r != "offtheshelf"
    for s in SEEDS[1:]]


def recipe(name):
    """The typed recipe (CLAHE, diverse anchors, generator, N/D) behind a recipe name."""
    return recipe_by_name(name, families=FAMILIES)
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


def seed_of(name):
    """The fine-tuning seed of a model or recipe name (no suffix: the first seed)."""
    _, _, seed = name.partition(".seed")
    return int(seed) if seed else SEEDS[0]


wildcard_constraints:
    model="[a-z0-9]+-[a-z0-9-]+(\\.seed[0-9]+)?",
    backbone="[a-z0-9]+",
    dataset="[a-z0-9][a-z0-9-]*",


TABLE_NAMES = ["table1", "table3", "table4", "table5", "table6", "table7", "table8"]
TABLES = expand("results/tables/{table}.{ext}", table=TABLE_NAMES, ext=["csv", "md", "tex"])
METRICS = expand("results/metrics/{model}/{dataset}.json", model=MODELS, dataset=TEST_DATASETS)
FIGURES = ["results/figures/synthetic-contact-sheet.png"] if ROLES["tokyo"].startswith("synth-") else []
DAY_NIGHT = [f"results/metrics/day_night/{ROLES['train']}.json"]
GAN_TARGETS = (
    ["results/figures/translations.png", "results/figures/edges.png"]
    + [f"results/metrics/edges/{kind}.json" for kind, fam in (("hed", "hedngan"), ("rcf", "rcfngan")) if fam in FAMILIES]
    + [f"results/metrics/gans/{f}.json" for f in FAMILIES]
)
ALL_TARGETS = TABLES + FIGURES + DAY_NIGHT + GAN_TARGETS
