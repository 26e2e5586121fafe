"""``llgfem run`` entry points of the low-rank kernel surrogate (paper 001, §2.2).

Job kinds (``[job] kind``)::

    surrogate_generate  FEM LLG runs for sampled fields -> dataset.h5 (layout: surrogates.data)
    surrogate_train     dataset -> train split -> model.npz (ℓ-kPCA, pre-image (16), ℓ-kRR
                        integrator (14)); training MSE
    surrogate_predict   model + dataset -> predictions of the test split from their first nu
                        states: predictions.h5, MSE vs the constant-m0 baseline, timings and
                        the speed-up vs the solver, plots/prediction.png
    surrogate_kernel    the three in one run

``surrogate.source`` chooses the generator: ``"fem"`` (llgfem's FEM LLG solver, the default)
or ``"magnumnp"`` (µMAG standard problem 4 through magnum.np in the optional side environment,
:func:`llgfem.surrogates.sp4.generate_sp4_dataset`, settings in ``[sp4]``; rank 0 runs it and
the dataset is refused unless the SP4 field-1 reference check passes).

Tables: ``[dataset]`` (:class:`llgfem.surrogates.data.FEMDatasetSpec`), ``[sp4]``
(:class:`llgfem.surrogates.sp4.SP4DatasetSpec`), ``[kernel]``
(:class:`llgfem.surrogates.kernel.KernelSurrogateConfig`), ``[surrogate]``
(:class:`SurrogateJobConfig`), ``[domain]`` (the mesh of the FEM runs) and ``[time]``
(``T`` and ``n_t`` = the number ``s`` of time points).  Generation shares the fields out over
the MPI ranks (each solves on COMM_SELF); training and prediction are serial and repeated on
every rank (deterministic); rank 0 writes and logs one INFO line per stage and a final
summary line.  Outputs in ``<output.dir>/<job.name>/`` (plots under ``plots/``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from mpi4py import MPI

from llgfem.config import Config, ConfigError, write_resolved_config
from llgfem.io.progress import get_logger
from llgfem.io.results import write_json
from llgfem.surrogates.data import (
    FEMDatasetSpec,
    TrajectoryDataset,
    generate_fem_dataset,
    read_dataset,
    train_test_split,
    write_dataset,
)
from llgfem.surrogates.evaluate import (
    baseline_mse,
    plot_mean_magnetisation,
    predict_dataset,
    trajectory_mse,
)
from llgfem.surrogates.kernel import (
    KernelSurrogate,
    KernelSurrogateConfig,
    load_surrogate,
    save_surrogate,
)
from llgfem.surrogates.sp4 import SP4DatasetSpec, generate_sp4_dataset

__all__ = ["JOB_KINDS", "SurrogateJobConfig", "run_job"]

JOB_KINDS = ("surrogate_generate", "surrogate_train", "surrogate_predict", "surrogate_kernel")
SOURCES = ("fem", "magnumnp")


@dataclass(frozen=True)
class SurrogateJobConfig:
    """The ``[surrogate]`` table.

    Attributes:
        dataset: dataset file ("" = ``<run_dir>/dataset.h5``); read by train/predict.
        model: model file ("" = ``<run_dir>/model.npz``); written by train, read by predict.
        test_fraction: fraction of fields held out (seeded split, ``split_seed``).
        split_seed: seed of the train/test split.
        plot_fields: number of test fields in ``plots/prediction.png`` (0 = no plot).
        source: generator of ``surrogate_generate``/``surrogate_kernel``: ``"fem"`` or
            ``"magnumnp"`` (SP4, ``[sp4]`` table).
    """

    dataset: str = ""
    model: str = ""
    test_fraction: float = 0.2
    split_seed: int = 0
    plot_fields: int = 2
    source: str = "fem"

    def validate(self, where: str) -> None:
        if self.source not in SOURCES:
            raise ConfigError(f"{where}.source: {self.source!r} is not one of {SOURCES}")
        if not 0 < self.test_fraction < 1:
            raise ConfigError(f"{where}.test_fraction: must lie in (0, 1)")
        if self.plot_fields < 0:
            raise ConfigError(f"{where}.plot_fields: must be >= 0")

    def paths(self, run_dir: Path) -> tuple[Path, Path]:
        """(dataset, model) files."""
        return (Path(self.dataset) if self.dataset else run_dir / "dataset.h5",
                Path(self.model) if self.model else run_dir / "model.npz")


def _generate(cfg: Config, spec: FEMDatasetSpec, path: Path) -> tuple[TrajectoryDataset, dict]:
    t0 = time.perf_counter()
    data = generate_fem_dataset(spec, cfg.domain, T=cfg.time.T, n_t=cfg.time.n_t)
    seconds = time.perf_counter() - t0
    write_dataset(path, data)
    return data, _dataset_info(data, path, seconds)


def _generate_sp4(spec: SP4DatasetSpec, path: Path) -> tuple[TrajectoryDataset, dict]:
    """SP4 through magnum.np on rank 0 (errors broadcast), then every rank reads the file."""
    comm, error = MPI.COMM_WORLD, None
    t0 = time.perf_counter()
    n_run = spec.n_fields if not spec.max_fields else min(spec.max_fields, spec.n_fields)
    get_logger(comm=comm).info(
        "surrogate_generate: magnum.np runs the relaxation and up to %d SP4 fields (minutes "
        "each on one core); its progress goes to %s", n_run, path.with_name(path.name + ".log"))
    if comm.rank == 0:
        try:
            generate_sp4_dataset(spec, path)
        except Exception as e:  # re-raised on every rank below
            error = e
    error = comm.bcast(error, root=0)
    if error is not None:
        raise error
    data = read_dataset(path)
    info = _dataset_info(data, path, time.perf_counter() - t0)
    return data, {**info, "source": "magnumnp", "n_planned": spec.n_fields}


def _dataset_info(data: TrajectoryDataset, path: Path, seconds: float) -> dict:
    n, s, width = data.D.shape
    return {"dataset": str(path), "n": n, "s": s, "N": data.N, "width": width,
            "generate_seconds": seconds,
            "solver_seconds_per_trajectory": data.meta["solver_seconds_per_trajectory"]}


def _load(path: Path) -> TrajectoryDataset:
    if not path.exists():
        raise FileNotFoundError(f"surrogate.dataset: {path} does not exist (run "
                                "surrogate_generate first or set surrogate.dataset)")
    return read_dataset(path)


def _split(job: SurrogateJobConfig, data: TrajectoryDataset):
    train, test = train_test_split(len(data.D), job.test_fraction, job.split_seed)
    return data.subset(train), data.subset(test)


def _train(kernel: KernelSurrogateConfig, job: SurrogateJobConfig, data: TrajectoryDataset,
           path: Path) -> tuple[KernelSurrogate, dict]:
    train, _ = _split(job, data)
    t0 = time.perf_counter()
    model = KernelSurrogate(kernel).fit(train.tags, train.states)
    seconds = time.perf_counter() - t0
    if MPI.COMM_WORLD.rank == 0:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_surrogate(path, model)
    MPI.COMM_WORLD.Barrier()
    mse = trajectory_mse(predict_dataset(model, train), train.states, kernel.nu)
    return model, {"model": str(path), "n_train": len(train.D), "train_seconds": seconds,
                   "mse_train": mse, "latent_dim": int(model.kpca.components.shape[1])}


def _predict(cfg: Config, job: SurrogateJobConfig, model: KernelSurrogate,
             data: TrajectoryDataset) -> dict:
    _, test = _split(job, data)
    t0 = time.perf_counter()
    pred = predict_dataset(model, test)
    seconds = time.perf_counter() - t0
    nu, n = model.config.nu, len(test.D)
    out = TrajectoryDataset(test.D.copy(), test.times, test.coordinates, test.p, test.tag_names,
                            {**test.meta, "predicted_by": "KernelSurrogate", "nu": nu})
    out.D[:, :, out.p:] = pred
    write_dataset(cfg.run_dir / "predictions.h5", out)
    summary = {"n_test": n, "predict_seconds": seconds,
               "predict_seconds_per_trajectory": seconds / n,
               "mse_test": trajectory_mse(pred, test.states, nu),
               "mse_baseline_constant": baseline_mse(test.states, nu)}
    solver = test.meta.get("solver_seconds_per_trajectory")
    if solver:
        summary["speedup_vs_solver"] = solver / summary["predict_seconds_per_trajectory"]
    if cfg.output.plots and job.plot_fields and MPI.COMM_WORLD.rank == 0:
        png = cfg.run_dir / "plots" / "prediction.png"
        plot_mean_magnetisation(png, test, pred, range(min(job.plot_fields, n)),
                                time_unit=_time_axis(test))
    return summary


def _time_axis(data: TrajectoryDataset) -> tuple[str, float]:
    """The plots' time axis: ns for the magnum.np (SP4, SI seconds) datasets, dimensionless
    time for the FEM ones."""
    if "sp4_magnumnp" in str(data.meta.get("generator", "")):
        return "time t (ns)", 1e9
    return "time t (dimensionless)", 1.0


def run_job(cfg: Config) -> dict:
    """Run one surrogate job (dispatch on ``cfg.job.kind``); returns the summary.

    Raises:
        ConfigError: for an unknown kind or an invalid table (on every rank).
        FileNotFoundError: when train/predict find no dataset or model file.
    """
    kind = cfg.job.kind
    if kind not in JOB_KINDS:
        raise ConfigError(f"job.kind: {kind!r} is not a surrogate job {JOB_KINDS}")
    job = cfg.section("surrogate", SurrogateJobConfig)  # every table checked before any I/O
    spec = cfg.section("dataset", FEMDatasetSpec)
    sp4 = cfg.section("sp4", SP4DatasetSpec)
    kernel = cfg.section("kernel", KernelSurrogateConfig)
    data_path, model_path = job.paths(cfg.run_dir)
    if kind == "surrogate_kernel" and job.source == "fem" and cfg.time.n_t <= kernel.nu:
        raise ConfigError(f"time.n_t: {cfg.time.n_t} time points, the integrator needs more "
                          f"than kernel.nu = {kernel.nu}")
    if MPI.COMM_WORLD.rank == 0:
        write_resolved_config(cfg, cfg.run_dir, {"surrogate": job, "sp4": sp4})
    summary: dict = {"job": kind, "mpi_size": MPI.COMM_WORLD.size}
    log, t0 = get_logger(), time.perf_counter()
    log.info(f"{kind}: source {job.source}, dataset {data_path}, model {model_path}")
    if kind in ("surrogate_generate", "surrogate_kernel") and job.source == "magnumnp":
        data, info = _generate_sp4(sp4, data_path)
        summary.update(info)
    elif kind in ("surrogate_generate", "surrogate_kernel"):
        data, info = _generate(cfg, spec, data_path)
        summary.update(info)
    else:
        data = _load(data_path)
    log.info(f"surrogate: dataset of {len(data.D)} trajectories x {data.D.shape[1]} times, "
             f"N = {data.N} nodes")
    if kind != "surrogate_generate" and data.D.shape[1] <= kernel.nu:
        raise ConfigError(f"kernel.nu: the dataset has {data.D.shape[1]} time points, the "
                          f"integrator needs more than nu = {kernel.nu} (raise time.n_t)")
    if kind != "surrogate_generate" and len(data.D) < 2:
        raise ConfigError(f"dataset.n_fields: {len(data.D)} trajectory cannot be split into "
                          "train and test sets")
    if kind in ("surrogate_train", "surrogate_kernel"):
        model, info = _train(kernel, job, data, model_path)
        summary.update(info)
        log.info(f"surrogate: trained on {info['n_train']} trajectories in "
                 f"{info['train_seconds']:.2f} s, training MSE {info['mse_train']:.3e}")
    elif kind == "surrogate_predict":
        model = load_surrogate(model_path)
        log.info(f"surrogate: model read from {model_path}")
    if kind in ("surrogate_predict", "surrogate_kernel"):
        summary.update(_predict(cfg, job, model, data))
        log.info(f"surrogate: test MSE {summary['mse_test']:.3e} (constant-m0 baseline "
                 f"{summary['mse_baseline_constant']:.3e}) on {summary['n_test']} trajectories")
    write_json(cfg.run_dir / "summary.json", summary)
    log.info(f"{kind}: done, {time.perf_counter() - t0:.2f} s -> {cfg.run_dir}")
    return summary
