"""litlab's Optuna sweeper: `n_jobs` asynchronous workers on one study, through any Hydra launcher.

The sweeper opens the study, then launches its workers once (litlab.search.worker); each asks the shared
storage for a trial, runs it as a Hydra job, tells the result and asks again, until the study holds
`n_trials` finished trials or `timeout` passes. No batch barrier: a pruned trial frees its worker at once,
and a worker whose job dies is one lost worker, replaced while the study needs it (litlab.search.pool).
It relies on hydra-optuna-sweeper's public config only; the search space is parsed here with Hydra's
override parser. Hydra imports this module at every start-up (`--help` included), so torch, Lightning
and most of litlab are imported inside the methods that run a sweep, not here.
"""

import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.errors import CompactHydraException
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from hydra_plugins.litlab_optuna_sweeper.launchers import installed, missing_launcher, slurm_missing

log = logging.getLogger(__name__)

BASIC_LAUNCHER = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"


class LitlabOptunaSweeper(Sweeper):
    """The sweeper of `hydra/sweeper=litlab_optuna` (settings: LitlabOptunaSweeperConf)."""

    def __init__(
        self,
        sampler: Any,
        direction: Any,
        storage: Any | None,
        study_name: str | None,
        n_trials: int | None,
        n_jobs: int,
        max_failure_rate: float,
        custom_search_space: str | None,
        params: DictConfig | None,
        pruner: Any = None,
        timeout: float | None = None,
        monitor: str | None = None,
        heartbeat_interval: int = 60,
        grace_period: int | None = None,
        retry_failed: int = 0,
        threads_per_worker: int | None = None,
        max_replacements: int | None = None,
        custom_search_space_kwargs: DictConfig | None = None,
        folds: int | None = None,
    ) -> None:
        checks = {
            "n_trials": (n_trials, n_trials is None or n_trials >= 1, "a positive number or null"),
            "n_jobs": (n_jobs, n_jobs >= 1, "a positive number"),
            "timeout": (timeout, timeout is None or timeout > 0, "a positive number of seconds or null"),
            "max_failure_rate": (max_failure_rate, 0 <= max_failure_rate <= 1, "between 0 and 1"),
            "heartbeat_interval": (heartbeat_interval, heartbeat_interval >= 1, "a positive number of seconds"),
            "grace_period": (
                grace_period,
                grace_period is None or grace_period > heartbeat_interval,
                "null or longer than heartbeat_interval",
            ),
            "retry_failed": (retry_failed, retry_failed >= 0, "0 or more"),
            "threads_per_worker": (
                threads_per_worker,
                threads_per_worker is None or threads_per_worker >= 1,
                "a positive number or null",
            ),
            "max_replacements": (max_replacements, max_replacements is None or max_replacements >= 0, "0 or more"),
            "folds": (folds, folds is None or (isinstance(folds, int) and folds >= 2), "null or 2 or more"),
        }
        for name, (value, ok, expected) in checks.items():
            if not ok:
                raise CompactHydraException(f"hydra.sweeper.{name} must be {expected}, got {value}.")
        self.direction = direction
        self.study_name = study_name
        self.n_trials = n_trials
        self.n_jobs = n_jobs
        self.max_failure_rate = max_failure_rate
        self.custom_search_space = custom_search_space
        self.custom_search_space_kwargs = (
            OmegaConf.to_container(custom_search_space_kwargs) if custom_search_space_kwargs else {}
        )
        self.params = params
        self.timeout = timeout
        self.monitor = monitor
        self.heartbeat_interval = heartbeat_interval
        self.grace_period = grace_period
        self.retry_failed = retry_failed
        self.threads_per_worker = threads_per_worker
        self.max_replacements = n_jobs if max_replacements is None else max_replacements
        self.folds = folds
        self.config: DictConfig | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        from litlab.search.errors import SweepError
        from litlab.search.worker import TrialWorker

        self.config = config
        self.hydra_context = hydra_context
        target = str(config.hydra.launcher.get("_target_"))
        if not installed(target.rsplit(".", 1)[0]):
            raise SweepError(missing_launcher(target)) from None
        if target.endswith(".SlurmLauncher") and (missing := slurm_missing()):
            raise SweepError(missing) from None
        self.worker = TrialWorker(task_function, hydra_context, config)
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=self.worker
        )

    def _directions(self) -> list[str]:
        directions = (
            self.direction
            if isinstance(self.direction, Sequence) and not isinstance(self.direction, str)
            else [self.direction]
        )
        return [getattr(d, "name", str(d)) for d in directions]

    def sweep(self, arguments: list[str]) -> None:
        from litlab.search.directions import check_directions
        from litlab.search.errors import SweepError
        from litlab.search.params import grid_choices, parse_search_space, quote
        from litlab.search.pool import WorkerPool, one_by_one, runs_here
        from litlab.search.storage import Liveness, build_storage, fail_stale_trials, open_study, storage_label
        from litlab.search.watch import this_process
        from litlab.search.worker import SweepPlan, TooManyFailures

        assert self.config is not None
        sweeper_cfg = self.config.hydra.sweeper
        params = [f"{name}={value}" for name, value in (self.params or {}).items()]
        space = parse_search_space(params + list(arguments))
        n_trials, grid = self.n_trials, None
        if sweeper_cfg.sampler.get("_target_") == "optuna.samplers.GridSampler":
            grid = grid_choices(space.distributions)
            n_trials = min(n_trials or math.inf, math.prod(len(v) for v in grid.values()))
            log.info(f"GridSampler: {n_trials} grid points to run.")

        sweep_dir = str(Path(str(self.config.hydra.sweep.dir)).resolve())
        spec = sweeper_cfg.storage
        spec = OmegaConf.to_container(spec, resolve=True) if OmegaConf.is_config(spec) else spec
        liveness = Liveness(self.heartbeat_interval, self.grace_period, self.retry_failed)
        directions = self._directions()
        storage = build_storage(spec, sweep_dir, liveness)
        study = open_study(storage, self.study_name, directions)
        check_directions(study, directions)
        before = study.get_trials(deepcopy=False)
        launcher = str(self.config.hydra.launcher.get("_target_"))
        if launcher == BASIC_LAUNCHER and self.n_jobs > 1:
            log.warning(
                f"hydra/launcher=basic runs its jobs one after another, so n_jobs={self.n_jobs} workers do not run "
                "at once: choose hydra/launcher=joblib or submitit_local for parallel trials."
            )
        log.info(
            f"Study '{study.study_name}' ({len(before)} trials so far) in {storage_label(spec)}; target {n_trials} "
            f"finished trials, {self.n_jobs} worker(s) through {launcher.rsplit('.', 1)[-1]}, sampler "
            f"{sweeper_cfg.sampler.get('_target_')}, pruner {(sweeper_cfg.get('pruner') or {}).get('_target_')}, "
            f"directions {directions}, timeout {self.timeout} s"
        )
        launch_one = one_by_one(self.launcher)
        self.worker.plan = SweepPlan(
            study_name=study.study_name,
            directions=directions,
            n_trials=n_trials,
            first_number=len(before),
            deadline=None if self.timeout is None else time.time() + self.timeout,
            distributions=space.distributions,
            fixed_overrides=space.fixed,
            sweep_dir=sweep_dir,
            monitor=self.monitor,
            max_failure_rate=self.max_failure_rate,
            liveness=liveness,
            n_workers=self.n_jobs,
            threads_per_worker=self.threads_per_worker,
            folds=self.folds,
            grid=grid,
            custom_search_space=self.custom_search_space,
            custom_search_space_kwargs=self.custom_search_space_kwargs,
            hydra_text=space.hydra_text,
            command=this_process() if runs_here(self.launcher) else None,
        )

        def worker_overrides(k: int) -> list[str]:
            # Workers' folders sit beside the trials' (named by trial number) without colliding with them.
            return [*space.fixed, f"hydra.sweep.dir={quote(sweep_dir)}", f"hydra.sweep.subdir=workers/{k}"]

        start = time.monotonic()
        pool = None
        try:
            if launch_one is None:
                outcome = self._launch_together([worker_overrides(k) for k in range(self.n_jobs)])
            else:
                pool = WorkerPool(
                    launch_one, worker_overrides, self.n_jobs, self.max_replacements, lambda: self._unfinished(study)
                )
                outcome = pool.run()
        except (KeyboardInterrupt, SystemExit):
            # Ctrl-C: the finished trials are stored already, the interrupted ones closed by their workers.
            if pool is not None:
                pool.interrupted(timeout=min(10.0, liveness.grace))
            self._report(study)
            raise
        errors = [self._worker_error(k, ret) for k, ret in sorted(outcome.returns.items())]
        errors = [e for e in errors if e is not None]
        fail_stale_trials(study, storage, liveness)  # a lost worker's trial, if no other worker failed it
        self._report(study, time.monotonic() - start)
        if errors:
            too_many = [e for e in errors if isinstance(e, TooManyFailures)]
            raise SweepError(f"The sweep stopped: {too_many[0] if too_many else errors[0]}") from None
        lost, launched = len(outcome.lost), outcome.launched
        if lost and self._unfinished(study):
            raise SweepError(
                f"The sweep stopped with its study unfinished: {lost} of {launched} workers were lost and "
                f"{launched - self.n_jobs} of hydra.sweeper.max_replacements={self.max_replacements} replacements "
                "were started; rerun the command to continue the study (a lost trial is retried as "
                "hydra.sweeper.retry_failed allows)."
            )
        replaced = launched - self.n_jobs
        log.info(
            f"{lost} of {launched} workers lost ({replaced} replacement{'s' if replaced != 1 else ''} started)."
            if lost
            else f"No worker lost ({launched} launched)."
        )

    def _launch_together(self, workers: list[list[str]]) -> Any:
        """All workers in one launch, as Hydra gives it: the basic launcher runs them in this process, one after
        another, and a launcher unknown to litlab.search.pool may not be called from several threads."""
        from litlab.search.errors import SweepError
        from litlab.search.pool import PoolOutcome, job_loss

        assert self.config is not None
        target = str(self.config.hydra.launcher.get("_target_"))
        try:
            returns = self.launcher.launch(workers, initial_job_idx=0)
        except Exception as err:
            if target == BASIC_LAUNCHER:
                raise  # the workers ran in this process: their error is the command's
            raise SweepError(
                f"The launcher {target} lost the sweep's workers ({job_loss(err)}): rerun the command to continue "
                "the study."
            ) from None
        return PoolOutcome(returns=dict(enumerate(returns)), launched=len(workers))

    def _unfinished(self, study: Any) -> bool:
        """Whether the study still wants trials: below its target, before the deadline."""
        from litlab.search.storage import counts

        plan = self.worker.plan
        if plan.deadline is not None and time.time() >= plan.deadline:
            return False
        if plan.n_trials is None:
            return True
        return sum(counts(t) for t in study.get_trials(deepcopy=False)) < plan.n_trials

    @staticmethod
    def _worker_error(index: int, ret: JobReturn) -> BaseException | None:
        if ret.status == JobStatus.COMPLETED:
            log.info(f"Worker {index} ran {ret.return_value}")
            return None
        try:
            _ = ret.return_value
        except Exception as err:
            log.error(f"Worker {index} stopped: {err}")
            return err
        return None

    def _report(self, study: Any, seconds: float | None = None) -> None:
        from litlab.reports.sweep import format_importances, write_reports

        assert self.config is not None
        sweep_dir = self.config.hydra.sweep.dir
        plan = self.worker.plan
        importances = write_reports(study, sweep_dir, plan.hydra_text if plan is not None else ())
        results = OmegaConf.load(f"{sweep_dir}/optimization_results.yaml")
        counts = dict(results.trials)
        took = f" in {seconds:.0f} s" if seconds is not None else ""
        log.info(
            f"Sweep done{took}: the study holds {counts['complete']} complete, {counts['pruned']} pruned and "
            f"{counts['fail']} failed trials."
        )
        if "best_value" in results:
            log.info(f"Best value {results.best_value} (trial {results.best_trial}) with {dict(results.best_params)}")
        log.info(format_importances(importances))
        log.info(f"Reports written to {sweep_dir}")
