"""A subclass of hydra-optuna-sweeper that lets the running job see its trial.

The parsing of `hydra.sweeper.params` into Optuna distributions, the samplers and the grid handling are
hydra-optuna-sweeper's own; this class replaces only the loop that asks, launches and tells, adding what
that loop lacks: a pruner whose decisions the jobs act on, a time budget, an uncapped number of trials,
NaN and crashes recorded as FAIL, and reports written beside the sweep.
"""

import functools
import math
import random
import time
from collections.abc import Mapping, Sequence
from typing import Any

import optuna
from hydra.core.utils import JobReturn, JobStatus
from hydra.utils import instantiate
from hydra_plugins.hydra_optuna_sweeper._impl import OptunaSweeperImpl, create_params_from_overrides
from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper
from omegaconf import DictConfig, OmegaConf
from optuna.trial import TrialState
from sqlalchemy.exc import SQLAlchemyError

from litlab.reports.sweep import format_importances, write_reports
from litlab.search.directions import check_directions
from litlab.search.trial import TRIAL_KEY, LiveTrial, live_trials
from litlab.utils.pylogger import RankedLogger

log = RankedLogger(__name__)

PLUGIN_WHITELIST = ("optuna.pruners.*", "optuna.storages.*")


def build_storage(storage: Any) -> Any:
    """A storage URL passes as it is; a `_target_` mapping (e.g. Optuna's JournalStorage) is instantiated."""
    if isinstance(storage, Mapping) and "_target_" in storage:
        return instantiate(storage, _execution_whitelist_=PLUGIN_WHITELIST)
    return storage


def open_study(attempts: int = 5, **kwargs: Any) -> optuna.Study:
    """Creates the study, or loads it when it exists, and survives another process creating it at once.

    Two sweeps started together on a new SQLite file both set up its tables; the loser of that race gets
    a database error, and its retry finds the tables (and the study) in place.
    """
    for _ in range(attempts - 1):
        try:
            return optuna.create_study(load_if_exists=True, **kwargs)
        except SQLAlchemyError as err:
            log.info(f"The study storage is being set up by another process ({type(err).__name__}): retrying.")
            time.sleep(0.5 + random.random())
    return optuna.create_study(load_if_exists=True, **kwargs)


def parse_search_space(arguments: list[str]) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """hydra-optuna-sweeper's parsing of the search space, with an invalid range named.

    Optuna's own error (for example "`low <= high` must hold") does not say which parameter is at fault.
    """
    for argument in arguments:
        try:
            create_params_from_overrides([argument])
        except ValueError as err:
            raise ValueError(
                f"The sweep parameter `{argument}` is invalid ({err}): fix its range in hydra.sweeper.params "
                "or on the command line."
            ) from None
    return create_params_from_overrides(arguments)


def format_override(name: str, value: Any) -> str:
    """An override that Hydra parses back to `value` (lists included)."""
    if isinstance(value, (list, tuple)):
        return f"{name}=[{','.join(str(v) for v in value)}]"
    return f"{name}={value}"


def trial_outcome(ret: JobReturn, live: LiveTrial, n_directions: int) -> tuple[TrialState, list[float] | None, str]:
    """What a finished job means for its trial: the state, the values to tell and the reason of a failure."""
    if live.pruned_at_epoch is not None:
        return TrialState.PRUNED, None, f"pruned after epoch {live.pruned_at_epoch}"
    if ret.status != JobStatus.COMPLETED:
        try:
            _ = ret.return_value  # raises the job's exception
        except optuna.TrialPruned as pruned:
            return TrialState.PRUNED, None, str(pruned)
        except Exception as err:
            return TrialState.FAIL, None, f"{type(err).__name__}: {err}"
    value = ret.return_value
    try:
        values = [float(v) for v in value] if n_directions > 1 else [float(value)]
    except (TypeError, ValueError):
        return TrialState.FAIL, None, f"the run returned {value!r}, not a number (is optimized_metric set?)"
    if len(values) != n_directions:
        return TrialState.FAIL, None, f"the run returned {len(values)} values for {n_directions} objectives"
    if not all(math.isfinite(v) for v in values):
        return TrialState.FAIL, None, f"the run returned {values}: the objective is not finite (diverged?)"
    return TrialState.COMPLETE, values, ""


class LitlabOptunaSweeperImpl(OptunaSweeperImpl):
    def __init__(
        self,
        *args: Any,
        pruner: Any = None,
        timeout: float | None = None,
        monitor: str | None = None,
        custom_search_space_kwargs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        # Optuna prunes with a median rule unless told otherwise: no pruner configured means none.
        self.pruner = instantiate(pruner, _execution_whitelist_=PLUGIN_WHITELIST) if pruner else None
        self.timeout = timeout
        self.monitor = monitor
        if self.custom_search_space_extender and custom_search_space_kwargs:
            self.custom_search_space_extender = functools.partial(
                self.custom_search_space_extender, **custom_search_space_kwargs
            )

    def _configure_trials(
        self,
        trials: list[optuna.Trial],
        search_space_distributions: dict[str, Any],
        fixed_params: dict[str, Any],
        fixed_overrides: list[str],
    ) -> Sequence[Sequence[str]]:
        """As hydra-optuna-sweeper, but a custom search space may return overrides, and the trial number is passed.

        When the custom search space returns a mapping, its entries are the overrides (so that per-layer
        choices can become one list) and the parameters it suggested stay in the trial only.
        """
        extender, custom_overrides = self.custom_search_space_extender, {}
        if extender:

            def record_overrides(config: DictConfig, trial: optuna.Trial) -> None:
                custom_overrides[trial.number] = extender(config, trial)

            self.custom_search_space_extender = record_overrides
        try:
            overrides = super()._configure_trials(trials, search_space_distributions, fixed_params, fixed_overrides)
        finally:
            self.custom_search_space_extender = extender
        configured = []
        for trial, trial_overrides in zip(trials, overrides, strict=True):
            extra = custom_overrides.get(trial.number)
            if isinstance(extra, Mapping):
                custom_names = trial.params.keys() - search_space_distributions.keys()
                trial_overrides = [o for o in trial_overrides if o.split("=", 1)[0] not in custom_names]
                trial_overrides += [format_override(name, value) for name, value in extra.items()]
            configured.append((*trial_overrides, f"++{TRIAL_KEY}={trial.number}"))
        return configured

    def _launch(self, trials: list[optuna.Trial], overrides: Sequence[Sequence[str]]) -> list[JobReturn]:
        # Jobs are numbered (and their folders named) by trial number, so that processes sharing a study
        # and reruns of a sweep never write into one folder.
        numbers = [trial.number for trial in trials]
        if numbers == list(range(numbers[0], numbers[0] + len(numbers))):
            return list(self.launcher.launch(overrides, initial_job_idx=numbers[0]))
        return [self.launcher.launch([o], initial_job_idx=n)[0] for o, n in zip(overrides, numbers, strict=True)]

    def sweep(self, arguments: list[str]) -> None:
        assert self.config is not None and self.launcher is not None
        self._process_searchspace_config()
        distributions, fixed_params, fixed_overrides = parse_search_space(
            self._parse_sweeper_params_config() + list(arguments)
        )
        for name in fixed_params:
            distributions.pop(name, None)
        n_trials = self.n_trials
        if isinstance(self.sampler, functools.partial) and self.sampler.func is optuna.samplers.GridSampler:
            grid = {name: self._to_grid_sampler_choices(d) for name, d in distributions.items()}
            self.sampler = self.sampler(grid)
            n_trials = min(n_trials or math.inf, math.prod(len(v) for v in grid.values()))
            log.info(f"GridSampler: {n_trials} grid points to run.")

        directions = self._get_directions()
        study = open_study(
            study_name=self.study_name,
            storage=self.storage,
            sampler=self.sampler,
            pruner=self.pruner or optuna.pruners.NopPruner(),
            directions=directions,
        )
        check_directions(study, directions)
        previous = len(study.get_trials(deepcopy=False))
        log.info(
            f"Study '{study.study_name}' ({previous} trials so far), sampler {type(self.sampler).__name__}, "
            f"pruner {type(study.pruner).__name__}, directions {directions}, "
            f"n_trials {n_trials}, timeout {self.timeout} s, storage {self.storage or 'in memory'}"
        )

        start = time.monotonic()
        launched, failed, last_failure, states = 0, 0, "", {state: 0 for state in TrialState}
        while n_trials is None or launched < n_trials:
            if self.timeout is not None and time.monotonic() - start >= self.timeout:
                log.info(f"Time budget of {self.timeout} s spent: no new trial is launched.")
                break
            batch = self.n_jobs if n_trials is None else min(self.n_jobs, n_trials - launched)
            trials = [study.ask() for _ in range(batch)]
            overrides = self._configure_trials(trials, distributions, fixed_params, fixed_overrides)
            with live_trials(trials, self.monitor) as live:
                try:
                    returns = self._launch(trials, overrides)
                except (KeyboardInterrupt, SystemExit):
                    # Ctrl-C (Lightning turns it into SystemExit): the finished trials are stored already;
                    # close the interrupted ones and report.
                    for trial in trials:
                        trial.set_user_attr("fail_reason", "interrupted (Ctrl-C)")
                        self._tell(study, trial, TrialState.FAIL, None)
                    self._report(study)
                    raise
            launched += len(returns)
            for trial, ret in zip(trials, returns, strict=True):
                state, values, reason = trial_outcome(ret, live[trial.number], len(directions))
                if state == TrialState.FAIL:
                    trial.set_user_attr("fail_reason", reason)
                    failed, last_failure = failed + 1, reason
                    log.warning(f"Trial {trial.number} failed: {reason}")
                elif state == TrialState.PRUNED:
                    log.info(f"Trial {trial.number} pruned: {reason}")
                self._tell(study, trial, state, values)
                states[state] += 1
            # The rate is judged against the planned trials when there is a plan, so that one early
            # failure does not end a sweep that may fail a few of its trials.
            if failed > self.max_failure_rate * max(launched, n_trials or 0):
                log.error(
                    f"{failed} of {launched} trials failed, more than max_failure_rate={self.max_failure_rate}: "
                    "stopping the sweep (raise hydra.sweeper.max_failure_rate to tolerate failures)."
                )
                self._report(study)
                raise RuntimeError(f"Too many trials failed ({failed} of {launched}); the last: {last_failure}")

        log.info(
            f"Sweep done in {time.monotonic() - start:.0f} s: {states[TrialState.COMPLETE]} trials complete, "
            f"{states[TrialState.PRUNED]} pruned, {states[TrialState.FAIL]} failed in this process."
        )
        self._report(study)

    @staticmethod
    def _tell(study: optuna.Study, trial: optuna.Trial, state: TrialState, values: list[float] | None) -> None:
        try:
            study.tell(trial, values=values, state=state)
        except RuntimeError as err:
            # A GridSampler stops the study after its last grid point, which Optuna refuses outside optimize().
            if "Study.stop" not in str(err):
                raise

    def _report(self, study: optuna.Study) -> None:
        importances = write_reports(study, self.config.hydra.sweep.dir)
        results = OmegaConf.load(f"{self.config.hydra.sweep.dir}/optimization_results.yaml")
        if "best_value" in results:
            log.info(f"Best value {results.best_value} (trial {results.best_trial}) with {dict(results.best_params)}")
        log.info(format_importances(importances))
        log.info(f"Reports written to {self.config.hydra.sweep.dir}")


class LitlabOptunaSweeper(OptunaSweeper):
    """hydra-optuna-sweeper's OptunaSweeper with litlab's loop (see LitlabOptunaSweeperImpl)."""

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
        custom_search_space_kwargs: DictConfig | None = None,
    ) -> None:
        if n_trials is not None and n_trials < 1:
            raise ValueError(f"hydra.sweeper.n_trials must be a positive number or null, got {n_trials}.")
        if timeout is not None and timeout <= 0:
            raise ValueError(f"hydra.sweeper.timeout must be a positive number of seconds or null, got {timeout}.")
        # The parent builds the sampler; its implementation is then replaced by litlab's.
        super().__init__(
            sampler, direction, None, study_name, n_trials, n_jobs, max_failure_rate, custom_search_space, params
        )
        self.sweeper = LitlabOptunaSweeperImpl(
            self.sweeper.sampler,
            direction,
            build_storage(storage),
            study_name,
            n_trials,
            n_jobs,
            max_failure_rate,
            custom_search_space,
            params,
            pruner=pruner,
            timeout=timeout,
            monitor=monitor,
            custom_search_space_kwargs=OmegaConf.to_container(custom_search_space_kwargs)
            if custom_search_space_kwargs
            else None,
        )
