# Real datasets (paper preset): download (internet, runs on the login/head node) and import into the
# manifest schema. The synthetic benchmark (synth-*) has its own rule in synthetic.smk, hence the
# wildcard constraints below. Registration-only / unpublished data (foggy-cityscapes, synthia-seqs,
# sfm120k-nd) are placed by hand as the README says; their "download" only checks that they are there.

# datasets whose raw files another dataset's importer also reads (mirrors registry.DatasetEntry.requires)
RAW_REQUIRES = {
    "sfm120k-whiten": ["sfm120k"],
    "sfm120k-daynight": ["sfm120k"],
    "sfm120k-nd": ["sfm120k"],
}


def raw_sentinels(wildcards):
    """The download sentinels a prepare job needs: its own and those of the datasets it reads."""
    names = [wildcards.dataset] + RAW_REQUIRES.get(wildcards.dataset, [])
    return [f"data/raw/{name}/.downloaded" for name in names]


rule download_dataset:
    output:
        "data/raw/{dataset}/.downloaded",
    wildcard_constraints:
        dataset="(?!synth-)[a-z0-9][a-z0-9-]*",
    localrule: True
    log:
        "logs/download/{dataset}.log",
    threads: 1
    retries: 1
    resources:
        mem_mb=2000,
        runtime=24 * 60,
    shell:
        "{DS} download --dataset {wildcards.dataset} --log {log}"


rule prepare_dataset:
    input:
        raw_sentinels,
    output:
        manifest="data/prepared/{dataset}/manifest.csv",
        meta="data/prepared/{dataset}/dataset.json",
        groundtruth="data/prepared/{dataset}/groundtruth.json",
    wildcard_constraints:
        dataset="(?!synth-)[a-z0-9][a-z0-9-]*",
    log:
        "logs/prepare/{dataset}.log",
    threads: 1
    resources:
        mem_mb=8000,
        runtime=4 * 60,
    shell:
        "{DS} prepare --dataset {wildcards.dataset} --log {log}"
