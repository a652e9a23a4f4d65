# Visual localization by paradigms 2a (local SfM from the top-k retrieved mapping images) and 2b (a global map
# of all mapping images): local features and the map once per localization dataset, then one job per model that
# Table 3 lists, reading that model's retrieval pairs. Paradigm 1 (the pose of the top-1 image) is the score job's.

LOCALIZATION_DATASETS = list(ROLES["localization"])


def _localized_recipes():
    # the recipes of every table whose layout has a paradigm read from a localize job's metrics
    return {row["recipe"] for t in paper_tables().values() if any("metrics" in p for p in t.get("paradigms", []))
            for b in t["blocks"].values() for row in b.get("rows", []) + b.get("extra_rows", []) if "recipe" in row}


LOCALIZED_MODELS = [m for m in MODELS if recipe_of(m) in _localized_recipes()]
PARADIGM_METRICS = ["local-sfm", "global-map"]  # darkside.localize.run.PARADIGMS
LOCALIZATION_METRICS = expand("results/metrics/{model}/{dataset}.{paradigm}.json", model=LOCALIZED_MODELS,
                              dataset=LOCALIZATION_DATASETS, paradigm=PARADIGM_METRICS)


rule local_features:
    input:
        prepared("{dataset}"),
    output:
        "results/localization/{dataset}/features.h5",
    params:
        settings=settings("local-features"),
    log:
        "logs/local_features/{dataset}.log",
    benchmark:
        "logs/benchmarks/local_features/{dataset}.tsv"
    resources:
        mem_mb=grow(8000, 0.5),
        runtime=grow(4 * 60),
    shell:
        "{DS} --settings {params.settings:q} local-features --dataset data/prepared/{wildcards.dataset}"
        " --out {output} --log {log}"


rule global_map:
    input:
        prepared("{dataset}"),
        features="results/localization/{dataset}/features.h5",
    output:
        "results/localization/{dataset}/map.h5",
    params:
        settings=settings("global-map"),
    log:
        "logs/global_map/{dataset}.log",
    benchmark:
        "logs/benchmarks/global_map/{dataset}.tsv"
    resources:
        mem_mb=grow(16000, 0.5),
        runtime=grow(12 * 60),
    shell:
        "{DS} --settings {params.settings:q} global-map --dataset data/prepared/{wildcards.dataset}"
        " --features {input.features} --out {output} --log {log}"


rule localize:
    # one job per model for all localization datasets (the process start costs more than a small dataset); the
    # model enters through its pairs files alone (kapture's pipeline from a pairs file)
    input:
        [f for d in LOCALIZATION_DATASETS for f in prepared(d)],
        features=[f"results/localization/{d}/features.h5" for d in LOCALIZATION_DATASETS],
        maps=[f"results/localization/{d}/map.h5" for d in LOCALIZATION_DATASETS],
        pairs=[f"results/pairs/{{model}}/{d}" for d in LOCALIZATION_DATASETS],
    output:
        metrics=[f"results/metrics/{{model}}/{d}.{p}.json" for d in LOCALIZATION_DATASETS for p in PARADIGM_METRICS],
        poses=[f"results/localization/{d}/{{model}}/poses-{p}.txt" for d in LOCALIZATION_DATASETS
               for p in PARADIGM_METRICS],
    params:
        settings=settings("localize"),
        datasets=lambda wc: " ".join(
            f"--dataset data/prepared/{d} --features results/localization/{d}/features.h5"
            f" --map results/localization/{d}/map.h5 --pairs results/pairs/{wc.model}/{d}/pairs-top{P['evaluate']['pairs_topk']}.csv"
            f" --poses-dir results/localization/{d}/{wc.model}" for d in LOCALIZATION_DATASETS),
    log:
        "logs/localize/{model}.log",
    benchmark:
        "logs/benchmarks/localize/{model}.tsv"
    resources:
        mem_mb=grow(8000, 0.5),
        runtime=grow(4 * 60),
    shell:
        "{DS} --settings {params.settings:q} localize {params.datasets} --out-dir results/metrics/{wildcards.model}"
        " --log {log}"
