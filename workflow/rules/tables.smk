# The paper's tables, regenerated beside the paper's numbers, from the metric JSON files.

# the tables' main cells, numbers only: the one metrics file of dvc.yaml (darkside.tables.headline)
HEADLINE = "results/metrics/headline.json"


rule tables:
    input:
        METRICS,
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
        mem_mb=2000,
        runtime=10,
    shell:
        "{DS} --settings {params.settings:q} tables --metrics results/metrics --out results/tables {params.trained}"
        " --headline {output.headline} --log {log}"
