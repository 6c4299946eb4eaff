# Back-translation (FILES.md "R-CLIP"; PROTOCOL.md "Data: back-translation"): every CLIP
# training text goes en -> it -> en through a Marian pair; degenerate outputs fall back to
# the original text with the reason recorded. The demo's Marian pair is built here when
# backtranslation.en_it_model / it_en_model are "demo"; otherwise the configured local
# folders or hub ids are passed as params. Raw translations are cached (not a declared
# output) under results/cache/backtranslation/, shared by the two text sources and reruns.


rule build_demo_marian:
    input:
        images="results/data/images.parquet",
        manifest=demo_data_manifest(),
    output:
        en_it=directory("results/pretrained/marian_en_it"),
        it_en=directory("results/pretrained/marian_it_en"),
    log:
        "results/logs/pretrained/build_demo_marian.log",
    conda:
        ENV
    threads: 2
    params:
        vocab_size=config["demo_models"]["vocab_size"],
        sizes=config["demo_models"]["marian"],
        train_steps=config["demo_models"]["marian_train_steps"],
        train_batch_size=config["demo_models"]["marian_train_batch_size"],
        max_length=BT["max_length"],
        unit=BT["unit"],
        seed=config["synthetic"]["seed"],
    script:
        "../scripts/build_demo_marian.py"


rule back_translate:
    input:
        unpack(back_translate_inputs),
        texts="results/rclip/texts_{text}.parquet",
    output:
        backtranslations="results/rclip/backtranslations_{text}.parquet",
        qc="results/qc/backtranslation_{text}.tsv",
        run_info="results/rclip/backtranslations_{text}.run.json",
    log:
        "results/logs/rclip/back_translate_{text}.log",
    conda:
        ENV
    threads: 2
    resources:
        gpu=1,
    params:
        settings=settings_of("backtranslation"),
        cache="results/cache/backtranslation/cache.sqlite",
    script:
        "../scripts/back_translate.py"
