# Descriptors (HDF5) and scores (JSON) per model and test dataset.


def clahe_flag(model):
    """CLAHE at test time when the model's recipe uses it (the `C` of the paper's recipe names)."""
    return "--clahe" if recipe(recipe_of(model)).clahe else ""


rule extract:
    # one job per model for all its test datasets: the network (and torch) is loaded once
    input:
        [f for d in TEST_DATASETS for f in prepared(d)],
        model="results/models/{model}/model.pt",
        whitening="results/models/{model}/whitening.npz",
    output:
        [f"results/descriptors/{{model}}/{d}.h5" for d in TEST_DATASETS],
    params:
        extract=P["extract"],
        clahe=lambda wc: clahe_flag(wc.model),
        datasets=lambda wc: " ".join(f"--dataset data/prepared/{d} --out results/descriptors/{wc.model}/{d}.h5"
                                     for d in TEST_DATASETS),
    log:
        "logs/extract/{model}.log",
    threads: 1
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=8 * 60,
    shell:
        "{DS} extract --model {input.model} --whitening {input.whitening} {params.datasets} {params.clahe}"
        " --log {log}"


rule score:
    input:
        prepared("{dataset}"),
        descriptors="results/descriptors/{model}/{dataset}.h5",
    output:
        metrics="results/metrics/{model}/{dataset}.json",
        pairs=directory("results/pairs/{model}/{dataset}"),
    params:
        evaluate=P["evaluate"],
    log:
        "logs/score/{model}/{dataset}.log",
    resources:
        mem_mb=8000,
        runtime=60,
    shell:
        "{DS} score --descriptors {input.descriptors} --dataset data/prepared/{wildcards.dataset}"
        " --out {output.metrics} --pairs-dir {output.pairs} --log {log}"
