# Input functions and constants for workflow/rules/rrg.smk (kept apart from the
# rules so each rule file reads as a list of signatures).
RRG = config["rrg"]


def rrg_subsample(wildcards):
    return RRG["variants"][wildcards.variant]["subsample"]


def rrg_model_params():
    return {
        "backbone": RRG["backbone"],
        "image_size": RRG["image_size"],
        "anchor_sizes": RRG["anchor_sizes"],
        "anchor_ratios": RRG["anchor_ratios"],
        "roi_output_size": RRG["roi_output_size"],
        "detection_min_score": RRG["detection_min_score"],
        "detection_rule": RRG["detection_rule"],
        "rpn_pre_nms_top_n": RRG["rpn_pre_nms_top_n"],
        "rpn_post_nms_top_n": RRG["rpn_post_nms_top_n"],
        "box_batch_size_per_image": RRG["box_batch_size_per_image"],
        "normalize_mean": RRG["normalize"]["mean"],
        "normalize_std": RRG["normalize"]["std"],
    }
