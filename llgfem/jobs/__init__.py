"""Job runners dispatched by ``llgfem run CONFIG.toml`` on ``[job] kind``.

Each runner is ``run(cfg: llgfem.config.Config) -> dict`` (the summary written to
``<run_dir>/summary.json``).  Runners are imported lazily so that ``llgfem --help`` is fast.
"""

JOBS: dict[str, str] = {
    "heat": "llgfem.jobs.heat:run",
    "llg_forward": "llgfem.jobs.llg_forward:run",
    "all_at_once": "llgfem.jobs.all_at_once:run",
    "calibrate": "llgfem.jobs.calibrate:run",
    "brown_neel_fom": "llgfem.brownneel.jobs:run_job",
    "brown_neel_pod": "llgfem.brownneel.jobs:run_job",
    "brown_neel_rom": "llgfem.brownneel.jobs:run_job",
    "brown_neel_identify": "llgfem.brownneel.jobs:run_job",
    "surrogate_generate": "llgfem.surrogates.jobs:run_job",
    "surrogate_train": "llgfem.surrogates.jobs:run_job",
    "surrogate_predict": "llgfem.surrogates.jobs:run_job",
    "surrogate_kernel": "llgfem.surrogates.jobs:run_job",
    "system_matrix": "llgfem.jobs.system_matrix:run",
}
