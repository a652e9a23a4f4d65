# The Snakemake report: `snakemake --report results/report.html` after the suite. The figures, training curves
# and GAN sample grids are marked report() where their rules write them; these rules add the pages that show
# the tables, the synthetic benchmark's calibration and the run's settings as HTML. Categories follow the
# paper: retrieval, generators, localization, edges (DaCo when it lands); the synthetic benchmark, the
# findings and the settings have their own.

# table -> the part of the paper it reports on
TABLE_CATEGORY = {"table1": "Retrieval", "table5": "Retrieval", "table6": "Retrieval", "table3": "Localization",
                  "table4": "Edges", "table7": "Generators", "table8": "Generators", "findings": "Findings",
                  "instrument": "Benchmark", "mduit-table1": "Localization",
                  **{f"daco-table{i}": "Cross-domain retrieval" for i in range(1, 7)}}
if set(TABLE_NAMES) - set(TABLE_CATEGORY):
    sys.exit(f"darkside: error: workflow/rules/report.smk: TABLE_CATEGORY names no report category for "
             f"{sorted(set(TABLE_NAMES) - set(TABLE_CATEGORY))}")
TABLE_PAGES = [f"results/report/tables/{t}.html" for t in TABLE_NAMES]
# the calibration of the synthetic night model exists where the benchmark stands in for Tokyo (mini)
CALIBRATION_PAGES = ["results/report/synthetic-calibration.html"] if ROLES["tokyo"] in SYNTHETIC_DATASETS else []


rule report_tables:
    input:
        [f"results/tables/{t}.csv" for t in TABLE_NAMES],
    output:
        [report(page, category=TABLE_CATEGORY[t], subcategory="Tables", labels={"table": t})
         for t, page in zip(TABLE_NAMES, TABLE_PAGES)],
    log:
        "logs/report/tables.log",
    benchmark:
        "logs/benchmarks/report_tables/report_tables.tsv"
    resources:
        mem_mb=grow(1000, 0.5),
        runtime=grow(5),
    shell:
        "{DS} report-tables --tables results/tables --out results/report/tables --log {log}"


rule report_calibration:
    input:
        "results/metrics/synthetic-calibration.json",
    output:
        report("results/report/synthetic-calibration.html", category="Benchmark", subcategory="Calibration",
               labels={"page": "night-model calibration"}),
    log:
        "logs/report/calibration.log",
    benchmark:
        "logs/benchmarks/report_calibration/report_calibration.tsv"
    resources:
        mem_mb=grow(1000, 0.5),
        runtime=grow(5),
    shell:
        "{DS} report-json --json {input} --title 'Synthetic benchmark: calibration of the night model'"
        " --out {output} --log {log}"


rule report_settings:
    output:
        report("results/report/settings.html", category="Settings", labels={"preset": PRESET}),
    params:
        settings=settings("report-settings"),
    log:
        "logs/report/settings.log",
    benchmark:
        "logs/benchmarks/report_settings/report_settings.tsv"
    resources:
        mem_mb=grow(1000, 0.5),
        runtime=grow(5),
    shell:
        "{DS} --settings {params.settings:q} report-settings --out {output} --log {log}"


REPORT_PAGES = TABLE_PAGES + CALIBRATION_PAGES + ["results/report/settings.html"]
