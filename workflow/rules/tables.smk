# The paper's tables, regenerated beside the paper's numbers, from the metric JSON files.

# the tables' main cells, numbers only: the one metrics file of dvc.yaml (darkside.tables.headline)
HEADLINE = "results/metrics/headline.json"


rule tables:
    input:
        METRICS,
        LOCALIZATION_METRICS,
        DACO_METRICS,
        CHANCE,
        expand("results/metrics/gans/{family}.json", family=FAMILIES),
    output:
        TABLES,
        headline=HEADLINE,
    params:
        settings=settings("tables"),
        trained=" ".join([f"--backbone {b}" for b in BACKBONES] + [f"--family {f}" for f in FAMILIES]),
    log:
        "logs/tables.log",
    benchmark:
        "logs/benchmarks/tables/tables.tsv"
    resources:
        mem_mb=grow(2000, 0.5),
        runtime=grow(10),
    shell:
        "{DS} --settings {params.settings:q} tables --metrics results/metrics --out results/tables {params.trained}"
        " --headline {output.headline} --log {log}"


from darkside.settings import parse as parse_settings  # not `parse`: the Snakefile shares Snakemake's namespace
from darkside.tables.qualitative import RetrievalFigureSettings, figure_models

# The qualitative retrieval figure: night queries of the Tokyo role, the top 5 of GeM, CLAHE C and a GAN CD
# model, read from the rankings their score jobs wrote (figures.retrieval names the backbone and the GAN recipe).
RETRIEVAL_FIGURE_MODELS = figure_models(parse_settings(RetrievalFigureSettings, P["figures"]["retrieval"],
                                                       f"presets.{PRESET}.figures.retrieval"))
for _m in RETRIEVAL_FIGURE_MODELS:  # a model the preset does not train would be trained for the figure alone
    if _m not in MODELS:
        sys.exit(f"darkside: error: presets.{PRESET}.figures.retrieval: model {_m} is not one the preset trains"
                 f" (recipes.{backbone_of(_m)})")


rule figure_retrieval:
    input:
        prepared(ROLES["tokyo"]),
        pairs=[f"results/pairs/{m}/{ROLES['tokyo']}" for m in RETRIEVAL_FIGURE_MODELS],
    output:
        report("results/figures/retrieval_night.png", category="Retrieval", subcategory="Figures",
               labels={"figure": "Night queries: top 5 of GeM, CLAHE C and a GAN CD model (green: correct)"}),
    params:
        settings=settings("figure-retrieval"),
    log:
        "logs/figures/retrieval_night.log",
    benchmark:
        "logs/benchmarks/figure_retrieval/retrieval_night.tsv"
    resources:
        mem_mb=grow(2000, 0.5),
        runtime=grow(10),
    shell:
        "{DS} --settings {params.settings:q} figure-retrieval --dataset data/prepared/{ROLES[tokyo]}"
        " --pairs-root results/pairs --out {output} --log {log}"
