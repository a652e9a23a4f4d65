# Descriptors (HDF5) and scores (JSON) per model and test dataset.


def clahe_flag(model):
    """CLAHE at test time when the model's recipe uses it (the `C` of the paper's recipe names)."""
    return "--clahe" if recipe(recipe_of(model)).clahe else ""


rule extract:
    input:
        prepared("{dataset}"),
        model="results/models/{model}/model.pt",
        whitening="results/models/{model}/whitening.npz",
    output:
        "results/descriptors/{model}/{dataset}.h5",
    params:
        extract=P["extract"],
        clahe=lambda wc: clahe_flag(wc.model),
    log:
        "logs/extract/{model}/{dataset}.log",
    threads: 2
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=240,
    shell:
        "{DS} extract --model {input.model} --whitening {input.whitening} --dataset data/prepared/{wildcards.dataset}"
        " --out {output} {params.clahe} --log {log}"


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
