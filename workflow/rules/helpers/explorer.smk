# Input functions for workflow/rules/explorer.smk: every (system, seed) of Table 1's
# systems, with the files the explorer page shows (helpers/evaluate.smk names them).
from types import SimpleNamespace


def explorer_runs():
    """[{system, seed, reports, predictions, metrics}] in Table 1's system order."""
    runs = []
    for system in rrg_systems():
        for seed in system_seeds(system):
            files = rrg_eval_inputs(SimpleNamespace(system=system, seed=seed))
            runs.append(
                {
                    "system": system,
                    "seed": seed,
                    "reports": files["reports"],
                    "predictions": (
                        f"results/rrg/{system}/seed{seed}/predictions_test.parquet"
                        if system_kind(system) == "rrg"
                        else None
                    ),
                    "metrics": f"results/metrics/rrg/{system}/seed{seed}.json",
                }
            )
    return runs


def explorer_files(kind):
    return [run[kind] for run in explorer_runs() if run[kind]]
