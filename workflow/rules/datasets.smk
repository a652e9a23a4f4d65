# Real datasets (paper preset): download (internet, runs on the login/head node) and import into the
# manifest schema; each is declared by its importer module (darkside.data.registry.DATASETS), and only
# those match these rules (the synthetic benchmark has its own rule in synthetic.smk). Registration-only /
# unpublished data (foggy-cityscapes, synthia-seqs, sfm120k-nd) are placed by hand as the README says;
# their "download" only checks that they are there.

REAL_DATASETS = "|".join(sorted(DATASETS))


def raw_sentinels(wildcards):
    """The download sentinels a prepare job needs: its own and those of the datasets its importer reads."""
    names = [wildcards.dataset, *DATASETS[wildcards.dataset].requires]
    return [f"data/raw/{name}/.downloaded" for name in names]


rule download_dataset:
    input:
        # `darkside download` refuses a dataset before those its importer also reads (sfm120k-whiten's pickle
        # names sfm120k's images): without this, Snakemake may schedule the two downloads in either order
        lambda wc: [f"data/raw/{name}/.downloaded" for name in DATASETS[wc.dataset].requires],
    output:
        "data/raw/{dataset}/.downloaded",
    wildcard_constraints:
        dataset=REAL_DATASETS,
    localrule: True
    params:
        settings=settings("download"),
    log:
        "logs/download/{dataset}.log",
    benchmark:
        "logs/benchmarks/download_dataset/{dataset}.tsv"
    threads: 1
    retries: 1
    # a local rule runs beside Snakemake on the login node for as long as the transfer takes and no longer:
    # it only fetches and hashes (once, while writing); extraction and import are prepare_dataset's, a cluster job
    resources:
        mem_mb=2000,
    shell:
        "{DS} --settings {params.settings:q} download --dataset {wildcards.dataset} --log {log}"


rule prepare_dataset:
    input:
        raw_sentinels,
    output:
        manifest="data/prepared/{dataset}/manifest.csv",
        meta="data/prepared/{dataset}/dataset.json",
        groundtruth="data/prepared/{dataset}/groundtruth.json",
    wildcard_constraints:
        dataset=REAL_DATASETS,
    log:
        "logs/prepare/{dataset}.log",
    benchmark:
        "logs/benchmarks/prepare_dataset/{dataset}.tsv"
    threads: 1
    resources:
        mem_mb=grow(8000, 0.5),
        runtime=grow(4 * 60),
    shell:
        "{DS} prepare --dataset {wildcards.dataset} --log {log}"
