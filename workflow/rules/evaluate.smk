# Evaluation: one metric code for every system (ours, baselines, external reports) and
# every probe. Per system and seed a metrics JSON; per system a seed summary.
# System names (the {system} wildcard of results/metrics/rrg/):
#   <variant>                 a trained RRG variant, one file per training seed
#   <variant>-most_frequent   the most frequent training FINDINGS for every test image
#   external-<name>           evaluation.external_systems[name], scored by our code
# Untrained systems are evaluated once, under the first configured seed.


rule baseline_most_frequent:
    input:
        images="results/data/images.parquet",
        split=lambda wc: f"results/splits/{variant_subsample(wc.variant)}.parquet",
        test_split=f"results/splits/{test_subsample()}.parquet",
    output:
        reports="results/rrg/{variant}/baselines/most_frequent/reports_test.parquet",
    log:
        "results/logs/baseline_most_frequent/{variant}.log",
    wildcard_constraints:
        variant=_alternatives(RRG_VARIANTS),
    conda:
        ENV
    script:
        "../scripts/baseline_most_frequent.py"


rule evaluate_rrg:
    input:
        unpack(rrg_eval_inputs),
    output:
        metrics="results/metrics/rrg/{system}/seed{seed}.json",
    log:
        "results/logs/evaluate_rrg/{system}/seed{seed}.log",
    wildcard_constraints:
        system=_alternatives(rrg_systems()),
    conda:
        ENV
    params:
        kind=lambda wc: system_kind(wc.system),
        model_dirs=rrg_eval_model_dirs,
        upstream=lambda wc: data_upstream(),
        tokenization=EVAL["tokenization"],
        cider_df=EVAL["cider_df"],
        chexbert_bert_dir=EVAL["chexbert"]["bert_dir"],
        bootstrap=EVAL["bootstrap"],
        command=lambda wc, output: regenerate(output.metrics),
    script:
        "../scripts/evaluate_rrg.py"


rule evaluate_probe:
    input:
        predictions="results/rclip/probe/{encoder}/seed{seed}/predictions_test.parquet",
        rsna="results/data/rsna.parquet",
    output:
        metrics="results/metrics/probe/{encoder}/seed{seed}.json",
    log:
        "results/logs/evaluate_probe/{encoder}/seed{seed}.log",
    wildcard_constraints:
        encoder=_alternatives(probe_encoders()),
    conda:
        ENV
    params:
        model_dirs=lambda wc: probe_model_dirs(wc)[0],
        optional_model_dirs=lambda wc: probe_model_dirs(wc)[1],
        upstream=probe_upstream,
        bootstrap=EVAL["bootstrap"],
        command=lambda wc, output: regenerate(output.metrics),
    script:
        "../scripts/evaluate_probe.py"


rule summarize_rrg:
    input:
        metrics=lambda wc: [
            f"results/metrics/rrg/{wc.system}/seed{s}.json"
            for s in system_seeds(wc.system)
        ],
    output:
        summary="results/metrics/rrg/{system}/summary.json",
    log:
        "results/logs/summarize_rrg/{system}.log",
    wildcard_constraints:
        system=_alternatives(rrg_systems()),
    conda:
        ENV
    script:
        "../scripts/evaluate_summarize.py"


rule summarize_probe:
    input:
        metrics=expand("results/metrics/probe/{{encoder}}/seed{seed}.json", seed=SEEDS),
    output:
        summary="results/metrics/probe/{encoder}/summary.json",
    log:
        "results/logs/summarize_probe/{encoder}.log",
    wildcard_constraints:
        encoder=_alternatives(probe_encoders()),
    conda:
        ENV
    script:
        "../scripts/evaluate_summarize.py"


rule compare_rrg:
    input:
        unpack(rrg_comparison_inputs),
    output:
        comparison="results/metrics/rrg/{system}/vs_most_frequent.json",
    log:
        "results/logs/compare_rrg/{system}.log",
    wildcard_constraints:
        system=_alternatives(compared_rrg_systems()),
    conda:
        ENV
    params:
        reference=lambda wc: rrg_comparison_reference(wc.system),
        reference_label="most_frequent",
        metrics=RRG_COMPARED_METRICS,
        command=lambda wc, output: regenerate(output.comparison),
    script:
        "../scripts/compare_systems.py"


rule compare_probe:
    input:
        metrics=expand("results/metrics/probe/{{encoder}}/seed{seed}.json", seed=SEEDS),
        reference=expand(
            "results/metrics/probe/random_init/seed{seed}.json", seed=SEEDS
        ),
    output:
        comparison="results/metrics/probe/{encoder}/vs_random_init.json",
    log:
        "results/logs/compare_probe/{encoder}.log",
    wildcard_constraints:
        encoder=_alternatives([e for e in probe_encoders() if e != "random_init"]),
    conda:
        ENV
    params:
        reference="random_init",
        reference_label="random_init",
        metrics=["AUC"],
        command=lambda wc, output: regenerate(output.comparison),
    script:
        "../scripts/compare_systems.py"
