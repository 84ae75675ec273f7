"""A sweep worker: asks the study for a trial, runs it as a Hydra job, tells the result, and asks again.

litlab's sweeper (`hydra/sweeper=litlab_optuna`) launches `n_jobs` of these once, through whatever Hydra launcher
is configured (in-process, joblib processes, submitit on this machine or on SLURM). They share nothing but the
study's storage, so there is no batch barrier: a pruned or failed trial frees its worker at once, and workers
started by several commands or machines cooperate on one study until it holds `n_trials` finished trials.

Each trial is composed and run as Hydra's launchers run a job (`load_sweep_config` + `run_job`): the base
overrides, the trial's parameters and an `optuna_trial` callback entry that tells the job its study and trial
number; its folder is named by the trial number. An exception inside a trial fails that trial, not the worker.
A freshly sampled trial whose parameters another trial of the study holds is skipped, not run (see
litlab.search.sampling); a worker on its command's machine stops when the command dies (litlab.search.watch).
With `folds` (k-fold cross-validation), a trial is K such jobs, one per fold, in <trial>/fold_<i>, and its value
is their mean; only the first fold reports to the trial, so the pruner compares every trial on the same fold.
"""

import logging
import math
import os
import socket
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import optuna
from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus, configure_log, run_job
from hydra.types import HydraContext, TaskFunction
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from optuna.distributions import BaseDistribution
from optuna.trial import TrialState

from litlab.search.params import format_override, quote
from litlab.search.sampling import evaluated_sets, repeated_trial, space_size, unevaluated_set, worker_seed
from litlab.search.storage import (
    FAIL_REASON,
    LOST_REASON,
    Liveness,
    build_storage,
    counts,
    fail_stale_trials,
    heartbeat,
    mask_url,
)
from litlab.search.watch import watching

log = logging.getLogger(__name__)

SAMPLER_WHITELIST = ("hydra_plugins.hydra_optuna_sweeper.*", "optuna.samplers.*")
# Where `custom_search_space` functions may live: litlab's conditional spaces (configs name them by path).
SPACE_WHITELIST = ("litlab.search.conditional.*",)
# The callback entry through which a trial's job finds its trial (see litlab.callbacks.optuna_trial).
CALLBACK_KEY = "optuna_trial"
CALLBACK_TARGET = "litlab.callbacks.optuna_trial.OptunaTrialCallback"
# The trial attribute naming the process that ran it (host:pid), to tell where a lost trial was running.
WORKER_ATTR = "worker"
# Parameter sets of a continuous (or conditional) space sampled in a row that the study already held, after
# which a worker gives up sampling: the sampler has converged.
MAX_REPEATS = 20
# The trial attribute holding each fold's values under k-fold cross-validation (`folds`).
FOLD_VALUES_ATTR = "fold_values"


class TooManyFailures(RuntimeError):
    """More of this sweep's trials failed than hydra.sweeper.max_failure_rate allows."""


@dataclass
class SweepPlan:
    """What every worker of one sweep command needs; no secret is in it (the storage is read from the config)."""

    study_name: str
    directions: list[str]
    n_trials: int | None  # the study's target of finished trials; None: until the deadline
    first_number: int  # trials numbered below existed before this command (for the failure rate)
    deadline: float | None  # time.time() after which no trial starts
    distributions: dict[str, BaseDistribution]
    fixed_overrides: list[str]
    sweep_dir: str
    monitor: str | None
    max_failure_rate: float
    liveness: Liveness
    n_workers: int
    threads_per_worker: int | None = None
    grid: dict[str, list[Any]] | None = None
    custom_search_space: str | None = None
    custom_search_space_kwargs: dict[str, Any] = field(default_factory=dict)
    hydra_text: set[str] = field(default_factory=set)  # parameters whose values are override text (SearchSpace)
    command: str | None = None  # host:pid of the command, where its workers run on its machine: they watch it
    folds: int | None = None  # k-fold cross-validation: each trial runs every fold and scores their mean


@dataclass
class Progress:
    counted: int = 0  # finished trials that count toward n_trials (the whole study)
    running: int = 0
    sweep_counted: int = 0  # of those, this command's
    sweep_failed: int = 0
    last_failure: str = ""


@dataclass
class Pruned:
    """What a trial's task returns instead of raising when the study's pruner stopped it (no error for Hydra)."""

    reason: str


def prunable(task_function: TaskFunction) -> TaskFunction:
    def task(cfg: DictConfig) -> Any:
        try:
            return task_function(cfg)
        except optuna.TrialPruned as pruned:
            return Pruned(str(pruned))

    return task


def trial_outcome(ret: JobReturn, n_directions: int) -> tuple[TrialState, list[float] | None, str]:
    """What a finished job means for its trial: the state, the values to tell and the reason of a failure."""
    if ret.status != JobStatus.COMPLETED:
        try:
            _ = ret.return_value  # raises the job's exception
        except Exception as err:
            return TrialState.FAIL, None, f"{type(err).__name__}: {err}"
    value = ret.return_value
    if isinstance(value, Pruned):
        return TrialState.PRUNED, None, value.reason
    try:
        values = [float(v) for v in value] if n_directions > 1 else [float(value)]
    except (TypeError, ValueError):
        return TrialState.FAIL, None, f"the run returned {value!r}, not a number (is optimized_metric set?)"
    if len(values) != n_directions:
        return TrialState.FAIL, None, f"the run returned {len(values)} values for {n_directions} objectives"
    if not all(math.isfinite(v) for v in values):
        return TrialState.FAIL, None, f"the run returned {values}: the objective is not finite (diverged?)"
    return TrialState.COMPLETE, values, ""


def fold_outcome(
    outcomes: list[tuple[TrialState, list[float] | None, str]],
) -> tuple[TrialState, list[float] | None, str]:
    """A trial's outcome from its folds' (run in order, the last one alone unfinished): the mean of each
    objective over the folds, or the first fold that did not complete, named."""
    state, _, reason = outcomes[-1]
    if state != TrialState.COMPLETE:
        return state, None, f"fold {len(outcomes) - 1}: {reason}"
    values = [values for _, values, _ in outcomes]
    return TrialState.COMPLETE, [math.fsum(column) / len(values) for column in zip(*values, strict=True)], ""


def tell(study: optuna.Study, trial: optuna.Trial, state: TrialState, values: list[float] | None) -> None:
    try:
        study.tell(trial, values=values, state=state)
    except RuntimeError as err:
        # A GridSampler stops the study after its last grid point, which Optuna refuses outside optimize().
        if "Study.stop" not in str(err):
            raise


class TrialWorker:
    """The task function of a worker job; launchers pickle it to other processes and machines."""

    def __init__(self, task_function: TaskFunction, hydra_context: HydraContext, config: DictConfig) -> None:
        self.task_function = task_function
        self.hydra_context = hydra_context
        self.config = config
        self.plan: SweepPlan | None = None
        self._running: tuple[optuna.Study, optuna.Trial] | None = None  # the trial this worker runs now

    def __call__(self, cfg: DictConfig) -> dict[str, int]:
        assert self.plan is not None, "the sweeper sets the plan before launching its workers"
        plan = self.plan
        worker_hydra = HydraConfig.get()
        index = int(worker_hydra.job.num)
        device_overrides = self._place(index)
        storage = build_storage(self._storage_spec(), plan.sweep_dir, plan.liveness)
        study = optuna.load_study(study_name=plan.study_name, storage=storage, sampler=self._sampler(index))
        study_id = storage.get_study_id_from_name(plan.study_name)
        ran = {state.name: 0 for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
        poll = min(5.0, plan.liveness.heartbeat_interval)
        size = None if plan.custom_search_space else space_size(plan.distributions)
        sampler, free, repeats = study.sampler, None, 0
        self._running = None
        with watching(plan.command, self._orphaned, interval=min(1.0, plan.liveness.heartbeat_interval)):
            while True:
                fail_stale_trials(study, storage, plan.liveness)
                progress = self._progress(study)
                self._check_failures(progress)
                if plan.n_trials is not None and progress.counted >= plan.n_trials:
                    break
                exhausted = size is not None and self._exhausted(study, size)
                if exhausted and not progress.running:
                    log.info(f"Every one of the {size} parameter sets of the search space is evaluated.")
                    break
                if plan.deadline is not None and time.time() >= plan.deadline:
                    log.info("Time budget spent: this worker starts no new trial.")
                    break
                if exhausted or (plan.n_trials is not None and progress.counted + progress.running >= plan.n_trials):
                    # The last trials run elsewhere; wait, as one of them may yet be lost and need a replacement.
                    time.sleep(poll)
                    continue
                with warnings.catch_warnings():
                    # Optuna expects its heartbeat inside Study.optimize only; this loop records it itself.
                    warnings.filterwarnings("ignore", "Heartbeat of storage", UserWarning)
                    # Optuna marks PartialFixedSampler experimental; it only hands the sampler's draw a set.
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    if free is not None:
                        study.sampler = optuna.samplers.PartialFixedSampler(free, sampler)
                    trial = study.ask(plan.distributions)
                    study.sampler, free = sampler, None
                if self._surplus(study, trial.number):
                    trial.set_user_attr(LOST_REASON, "not run: the study reached n_trials meanwhile")
                    tell(study, trial, TrialState.FAIL, None)
                    continue
                trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
                state = self._run(study, storage, trial, trial_id, device_overrides, worker_hydra)
                if state is not None:
                    ran[state.name] += 1
                    repeats = 0
                    continue
                # Drawn alike by another sampler (two commands started together): this one draws on differently.
                sampler.reseed_rng()
                if size is not None:
                    # A discrete space: the next trial gets a set nobody evaluated (none left: the loop ends).
                    free = unevaluated_set(plan.distributions, study.get_trials(deepcopy=False), trial.number)
                    continue
                repeats += 1
                if repeats >= MAX_REPEATS:
                    log.warning(
                        f"The sampler proposed {repeats} parameter sets in a row that the study already holds "
                        "(has it converged?): this worker stops."
                    )
                    break
        return ran

    def _exhausted(self, study: optuna.Study, size: int) -> bool:
        """Whether every parameter set of a discrete space is evaluated or running, and no retry waits."""
        trials = study.get_trials(deepcopy=False)
        if any(t.state == TrialState.WAITING for t in trials):
            return False
        return evaluated_sets(trials, self.plan.distributions) >= size

    def _orphaned(self) -> None:
        """The command that started this worker died: its running trial is closed, and this process ends."""
        reason = f"stopped: the sweep command ({self.plan.command}) that started its worker died"
        running = self._running
        if running is not None:
            study, trial = running
            try:
                trial.set_user_attr(LOST_REASON, reason)
                tell(study, trial, TrialState.FAIL, None)
            except optuna.exceptions.UpdateFinishedTrialError:
                pass  # it finished meanwhile
        log.warning(f"This worker exits: the sweep command ({self.plan.command}) that started it died.")
        logging.shutdown()
        os._exit(1)

    def _storage_spec(self) -> Any:
        # Resolved here, in the worker's own process: an ${oc.env:...} URL never travels.
        spec = self.config.hydra.sweeper.storage
        return OmegaConf.to_container(spec, resolve=True) if OmegaConf.is_config(spec) else spec

    def _sampler(self, index: int) -> optuna.samplers.BaseSampler:
        """This worker's own sampler; a seeded one gets a seed of this command's and worker's own
        (litlab.search.sampling.worker_seed), so that no two workers draw alike."""
        sampler_cfg = OmegaConf.to_container(self.config.hydra.sweeper.sampler, resolve=True)
        assert isinstance(sampler_cfg, dict)
        if sampler_cfg.get("seed") is not None:
            sampler_cfg["seed"] = worker_seed(sampler_cfg["seed"], self.plan.first_number, index)
        sampler = instantiate(sampler_cfg, _execution_whitelist_=SAMPLER_WHITELIST)
        if self.plan.grid is not None:
            sampler = sampler(self.plan.grid)
        return sampler

    def _place(self, index: int) -> list[str]:
        """Gives this worker its share of the machine: a GPU of its own (round-robin) or some CPU threads.

        A replacement (job number `k + n_workers`) gets the GPU of the worker `k` it replaces.
        """
        import torch

        trainer = self.config.get("trainer") or {}
        if torch.cuda.is_available() and trainer.get("accelerator") in ("gpu", "cuda", "auto"):
            if str(trainer.get("devices")) in ("1", "auto") and self.plan.n_workers > 1:
                gpu = index % self.plan.n_workers % torch.cuda.device_count()
                log.info(f"Worker {index}: GPU {gpu} of {torch.cuda.device_count()}.")
                return [f"trainer.devices=[{gpu}]"]
            return []
        threads = self.plan.threads_per_worker
        if threads is None:
            env = os.environ.get("OMP_NUM_THREADS")
            cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
            threads = int(env) if env and env.isdigit() else max(1, cores // self.plan.n_workers)
        torch.set_num_threads(threads)
        log.info(f"Worker {index}: CPU, {threads} torch thread(s).")
        return []

    def _progress(self, study: optuna.Study) -> Progress:
        progress = Progress()
        for trial in study.get_trials(deepcopy=False):
            mine = trial.number >= self.plan.first_number
            if trial.state == TrialState.RUNNING:
                progress.running += 1
            elif counts(trial):
                progress.counted += 1
                progress.sweep_counted += mine
                if trial.state == TrialState.FAIL and mine:
                    progress.sweep_failed += 1
                    progress.last_failure = trial.user_attrs[FAIL_REASON]
        return progress

    def _check_failures(self, progress: Progress) -> None:
        plan = self.plan
        planned = (plan.n_trials - (progress.counted - progress.sweep_counted)) if plan.n_trials else 0
        # Judged against the planned trials when there is a plan, so that one early failure does not end a sweep
        # that may fail a few of its trials.
        if progress.sweep_failed > plan.max_failure_rate * max(progress.sweep_counted, planned):
            raise TooManyFailures(
                f"{progress.sweep_failed} of {progress.sweep_counted} trials failed, more than "
                f"max_failure_rate={plan.max_failure_rate} allows (raise hydra.sweeper.max_failure_rate to tolerate "
                f"failures); the last: {progress.last_failure}"
            )

    def _surplus(self, study: optuna.Study, number: int) -> bool:
        """Whether the trial just asked for came after others that already make up n_trials (workers raced)."""
        if self.plan.n_trials is None:
            return False
        ahead = sum(
            1
            for t in study.get_trials(deepcopy=False)
            if t.number < number and (t.state == TrialState.RUNNING or counts(t))
        )
        return ahead >= self.plan.n_trials

    def _overrides(self, trial: optuna.Trial, report: bool = True) -> list[str]:
        plan = self.plan
        overrides = list(plan.fixed_overrides)
        params = dict(trial.params)
        text = plan.hydra_text
        if plan.custom_search_space:
            extend = instantiate(
                {"_target_": plan.custom_search_space, "_partial_": True, **plan.custom_search_space_kwargs},
                _execution_whitelist_=SPACE_WHITELIST,
            )
            extra = extend(self.config, trial)
            if isinstance(extra, Mapping):
                # The function returned the overrides itself; the parameters it suggested stay in the trial only.
                params = {name: params[name] for name in plan.distributions}
                params.update(extra)
                text = text - extra.keys()
            else:
                params = dict(trial.params)
        overrides += [
            f"{name}={value}" if name in text else format_override(name, value) for name, value in params.items()
        ]
        callback = {
            "_target_": CALLBACK_TARGET,
            "study_name": plan.study_name,
            "trial_number": trial.number,
            "monitor": plan.monitor or self.config.get("optimized_metric"),
            "pruner": "${hydra:sweeper.pruner}",
        }
        if report:
            overrides.append(f"++callbacks.{CALLBACK_KEY}={quote(callback)}")
        overrides.append(f"hydra.sweep.dir={quote(plan.sweep_dir)}")
        return overrides

    def _run(
        self,
        study: optuna.Study,
        storage: optuna.storages.BaseStorage,
        trial: optuna.Trial,
        trial_id: int,
        device_overrides: list[str],
        worker_hydra: DictConfig,
    ) -> TrialState | None:
        """Runs one trial as a Hydra job in this process and tells the study how it ended; None: the trial was
        skipped, its parameters being another trial's."""
        retried = storage.get_trial(trial_id).system_attrs.get("failed_trial")
        trial.set_user_attr(WORKER_ATTR, f"{socket.gethostname()}:{os.getpid()}")
        self._running = (study, trial)
        with heartbeat(storage, trial_id, self.plan.liveness.heartbeat_interval):
            try:
                overrides = [*self._overrides(trial), *device_overrides]
                shown = " ".join(o for o in overrides if not o.startswith(("++callbacks.", "hydra.")))
                repeated = repeated_trial(storage.get_trial(trial_id), study.get_trials(deepcopy=False))
                if repeated is not None:
                    trial.set_user_attr(LOST_REASON, f"skipped: trial {repeated} has the same parameters")
                    tell(study, trial, TrialState.FAIL, None)
                    self._running = None
                    log.info(f"Trial {trial.number} skipped: trial {repeated} has the same parameters ({shown})")
                    return None
                log.info(f"Trial {trial.number}{f' (retry of {retried})' if retried is not None else ''}: {shown}")
                if self.plan.folds is None:
                    state, values, reason = self._job(trial, overrides)
                else:
                    # Folds after the first do not report: the pruner judges every trial on fold 0.
                    silent = [*self._overrides(trial, report=False), *device_overrides]
                    outcomes = []
                    for fold in range(self.plan.folds):
                        fold_overrides = [*(silent if fold else overrides), f"data.folds={self.plan.folds}"]
                        fold_overrides.append(f"data.fold={fold}")
                        outcomes.append(self._job(trial, fold_overrides, f"{trial.number}/fold_{fold}"))
                        if outcomes[-1][0] != TrialState.COMPLETE:
                            break
                    trial.set_user_attr(FOLD_VALUES_ATTR, [values for _, values, _ in outcomes if values])
                    state, values, reason = fold_outcome(outcomes)
            except (KeyboardInterrupt, SystemExit):
                trial.set_user_attr(LOST_REASON, "interrupted (Ctrl-C)")
                tell(study, trial, TrialState.FAIL, None)
                self._running = None
                raise
            except Exception as err:
                # The trial's config could not be composed (e.g. an override the space produced): its failure.
                state, values, reason = TrialState.FAIL, None, f"{type(err).__name__}: {err}"
            finally:
                configure_log(
                    worker_hydra.job_logging,
                    worker_hydra.verbose,
                    execution_whitelist=self.hydra_context.execution_whitelist,
                )
        if state == TrialState.FAIL:
            reason = mask_url(reason)  # an error may quote a database URL
            trial.set_user_attr(FAIL_REASON, reason)
            log.warning(f"Trial {trial.number} failed: {reason}")
        elif state == TrialState.PRUNED:
            log.info(f"Trial {trial.number} pruned: {reason}")
        else:
            log.info(f"Trial {trial.number} complete: {values}")
        tell(study, trial, state, values)
        self._running = None
        return state

    def _job(
        self, trial: optuna.Trial, overrides: list[str], subdir: str | None = None
    ) -> tuple[TrialState, list[float] | None, str]:
        """Runs one Hydra job of the trial, in the folder named by the trial number (or `subdir`)."""
        from litlab.callbacks.optuna_trial import pruned_by_ranks, spawn_ranks  # Lightning: in the trial's process

        config = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
        spawn_ranks(config)
        with open_dict(config):
            config.hydra.job.id = f"{config.hydra.job.name}_{trial.number}"
            config.hydra.job.num = trial.number
            if subdir is not None:
                config.hydra.sweep.subdir = subdir
        ret = run_job(
            hydra_context=self.hydra_context,
            task_function=prunable(self.task_function),
            config=config,
            job_dir_key="hydra.sweep.dir",
            job_subdir_key="hydra.sweep.subdir",
        )
        if (pruned := pruned_by_ranks(trial.storage, trial._trial_id)) is not None:
            return TrialState.PRUNED, None, pruned  # DDP ranks stop together without raising
        return trial_outcome(ret, len(self.plan.directions))
