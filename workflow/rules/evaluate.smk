# Evaluation: one metric code for every system (ours, baselines, external reports) and
# every probe. Per system and seed a metrics JSON; per system a seed summary; paired
# comparisons with the reference systems. System and encoder names: crrg_clip.systems.


rule baseline_most_frequent:
    input:
        unpack(baseline_most_frequent_inputs),
        images="results/data/images.parquet",
    output:
        reports="results/rrg/{variant}/baselines/most_frequent/reports_test.parquet",
    log:
        "results/logs/baseline_most_frequent/{variant}.log",
    conda:
        ENV
    script:
        "../scripts/baseline_most_frequent.py"


rule evaluate_rrg:
    input:
        unpack(evaluate_rrg_inputs),
    output:
        metrics="results/metrics/rrg/{system}/seed{seed}.json",
    log:
        "results/logs/evaluate_rrg/{system}/seed{seed}.log",
    conda:
        ENV
    params:
        kind=system_kind,
        model_dirs=evaluate_rrg_model_dirs,
        upstream=data_upstream,
        tokenization=EVAL["tokenization"],
        cider_df=EVAL["cider_df"],
        chexbert_bert_dir=EVAL["chexbert"]["bert_dir"],
        bootstrap=EVAL["bootstrap"],
        command=command_of("metrics"),
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
    conda:
        ENV
    params:
        model_dirs=probe_required_dirs,
        optional_model_dirs=probe_optional_dirs,
        upstream=probe_upstream,
        bootstrap=EVAL["bootstrap"],
        command=command_of("metrics"),
    script:
        "../scripts/evaluate_probe.py"


rule summarize_rrg:
    input:
        unpack(summarize_rrg_inputs),
    output:
        summary="results/metrics/rrg/{system}/summary.json",
    log:
        "results/logs/summarize_rrg/{system}.log",
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
    conda:
        ENV
    script:
        "../scripts/evaluate_summarize.py"


rule compare_rrg:
    input:
        unpack(compare_rrg_inputs),
    output:
        comparison="results/metrics/rrg/{system}/vs_most_frequent.json",
    log:
        "results/logs/compare_rrg/{system}.log",
    conda:
        ENV
    params:
        reference=comparison_reference,
        reference_label="most_frequent",
        metrics=list(RRG_COMPARED_METRICS),
        command=command_of("comparison"),
    script:
        "../scripts/compare_systems.py"


rule compare_probe:
    input:
        unpack(compare_probe_inputs),
    output:
        comparison="results/metrics/probe/{encoder}/vs_random_init.json",
    log:
        "results/logs/compare_probe/{encoder}.log",
    conda:
        ENV
    params:
        reference="random_init",
        reference_label="random_init",
        metrics=["AUC"],
        command=command_of("comparison"),
    script:
        "../scripts/compare_systems.py"
