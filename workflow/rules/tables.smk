# The paper's tables, regenerated beside the paper's numbers, from the metric JSON files.


rule tables:
    input:
        METRICS,
        expand("results/metrics/gans/{family}.json", family=FAMILIES),
    output:
        TABLES,
    params:
        evaluate=P["evaluate"],
        roles=ROLES,
        models=MODELS,
    log:
        "logs/tables.log",
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "{DS} tables --metrics results/metrics --out results/tables --log {log}"
