# crrg-clip: the CRRG-CLIP paper's Tables 1 and 2, rebuilt from the raw downloads.
# Default config: the built-in synthetic demo. Real data: --configfile config/paper.yaml.
from snakemake.utils import min_version

min_version("9.0")


# the demo config, found beside this file even when --directory points elsewhere
configfile: f"{workflow.basedir}/config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/demo.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/generator.smk"
include: "workflow/rules/rrg.smk"
include: "workflow/rules/rclip.smk"
include: "workflow/rules/qc.smk"
include: "workflow/rules/backtranslate.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/explorer.smk"
include: "workflow/rules/baselines.smk"


rule all:
    default_target: True
    input:
        default_targets(),
