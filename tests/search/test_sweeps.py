"""Optuna sweeps through Hydra's multirun: search spaces, pruning, time budget, failures, reports, storage."""

import logging
import math
import signal
import time
from types import SimpleNamespace

import optuna
import pandas as pd
import pytest
import torch
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus
from hydra.errors import CompactHydraException
from hydra_plugins.hydra_optuna_sweeper.config import Direction
from omegaconf import OmegaConf
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.study import StudyDirection
from optuna.trial import TrialState

from hydra_plugins.litlab_optuna_sweeper import sweeper as sweeper_module
from hydra_plugins.litlab_optuna_sweeper.config import LitlabOptunaSweeperConf
from hydra_plugins.litlab_optuna_sweeper.launchers import installed, launcher_package
from hydra_plugins.litlab_optuna_sweeper.sweeper import BASIC_LAUNCHER, LitlabOptunaSweeper
from litlab.callbacks.optuna_trial import OptunaTrialCallback
from litlab.search.conditional import cnn_layers
from litlab.search.directions import StudyDirectionError, check_directions
from litlab.search.errors import SweepError
from litlab.search.params import format_override, grid_choices, parse_search_space, quote
from litlab.search.pool import WorkerPool
from litlab.search.storage import Liveness, build_storage, open_study
from litlab.search.worker import Pruned, SweepPlan, TooManyFailures, tell, trial_outcome
from tests.helpers.config import TEST_OVERRIDES
from tests.helpers.sweep import FAST_TRIAL, run_sweep, start_sweep, trials_by_state, wait_for


def test_cnn_space_searches_widths_of_existing_layers_only():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen_conv, seen_dense = set(), set()
    for _ in range(30):
        trial = study.ask()
        overrides = cnn_layers(None, trial, max_conv_layers=4, max_dense_layers=3, max_filters=64, max_units=64)
        conv, dense = overrides["model.net.conv_channels"], overrides["model.net.dense_units"]
        assert len(conv) == trial.params["conv_layers"] and 1 <= len(conv) <= 4
        assert len(dense) == trial.params["dense_layers"] and 1 <= len(dense) <= 3
        assert all(8 <= w <= 64 for w in conv + dense)
        # a width is a parameter exactly when its layer exists
        assert {k for k in trial.params if k.startswith("conv") and k != "conv_layers"} == {
            f"conv{i}_filters" for i in range(1, len(conv) + 1)
        }
        seen_conv.add(len(conv))
        seen_dense.add(len(dense))
        study.tell(trial, 0.0)
    assert seen_conv == {1, 2, 3, 4} and seen_dense == {1, 2, 3}


def test_cnn_space_default_ranges_and_log_scale():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.enqueue_trial({"conv_layers": 4, "dense_layers": 3})
    trial = study.ask()
    overrides = cnn_layers(None, trial)
    assert (len(overrides["model.net.conv_channels"]), len(overrides["model.net.dense_units"])) == (4, 3)
    widths = optuna.distributions.IntDistribution(8, 64, log=True)
    assert trial.distributions == {
        "conv_layers": optuna.distributions.IntDistribution(1, 4),
        "dense_layers": optuna.distributions.IntDistribution(1, 3),
        **{f"conv{i}_filters": widths for i in range(1, 5)},
        **{f"dense{i}_units": widths for i in range(1, 4)},
    }
    narrow = study.ask()
    cnn_layers(
        None, narrow, max_conv_layers=2, max_dense_layers=1, min_filters=4, max_filters=16, min_units=2, max_units=5
    )
    assert narrow.distributions["conv_layers"] == optuna.distributions.IntDistribution(1, 2)
    assert narrow.distributions["dense_layers"] == optuna.distributions.IntDistribution(1, 1)
    assert narrow.distributions["conv1_filters"] == optuna.distributions.IntDistribution(4, 16, log=True)
    assert narrow.distributions["dense1_units"] == optuna.distributions.IntDistribution(2, 5, log=True)


def space_of(argument: str):
    """The distribution of one sweep argument, as the sweeper parses it."""
    return parse_search_space([argument]).distributions["x"]


@pytest.mark.parametrize(
    "argument, expected",
    [
        ("x=choice(adam, sgd)", CategoricalDistribution(["adam", "sgd"])),
        ("x=choice(1, 2.5, true)", CategoricalDistribution([1, 2.5, True])),
        ("x=range(2, 10, 2)", IntDistribution(2, 8, step=2)),
        ("x=range(1, 4)", IntDistribution(1, 3)),
        ("x=range(10, 2, -2)", IntDistribution(4, 10, step=2)),
        ("x=range(0.1, 0.4, 0.1)", FloatDistribution(0.1, 0.3, step=0.1)),
        ("x=range(0, 2, 0.5)", FloatDistribution(0.0, 1.5, step=0.5)),
        ("x=range(1.0, 0.0, -0.25)", FloatDistribution(0.25, 1.0, step=0.25)),
        ("x=range(1, 2)", CategoricalDistribution([1])),
        ("x=float(range(1, 4))", CategoricalDistribution([1.0, 2.0, 3.0])),
        ("x=tag(note, range(1, 4))", IntDistribution(1, 3)),
        ("x=interval(1, 10)", FloatDistribution(1.0, 10.0)),
        ("x=tag(log, interval(0.00001, 0.01))", FloatDistribution(1e-5, 1e-2, log=True)),
        ("x=int(interval(1, 10))", IntDistribution(1, 10)),
        ("x=tag(log, int(interval(8, 64)))", IntDistribution(8, 64, log=True)),
    ],
)
def test_space_sweeps_become_the_optuna_distributions_they_describe(argument, expected):
    assert space_of(argument) == expected


def test_space_shuffled_range_keeps_its_values_as_choices():
    parsed = space_of("x=shuffle(range(1, 5))")
    assert isinstance(parsed, CategoricalDistribution) and sorted(parsed.choices) == [1, 2, 3, 4]


def test_space_later_arguments_replace_earlier_ones_fixed_or_swept():
    space = parse_search_space(
        [
            "a=choice(1, 2)",
            "b=1",
            "c=3",
            "a=5",  # a fixed value replaces a sweep of the same key
            "b=range(1, 3)",  # and a sweep a fixed value
            "c=4",
            "d=interval(0, 1)",
        ]
    )
    assert space.distributions == {"b": IntDistribution(1, 2), "d": FloatDistribution(0.0, 1.0)}
    assert space.fixed == ["a=5", "c=4"]


@pytest.mark.parametrize(
    "argument, why",
    [
        ("x=range(3, 3)", "the range holds no value"),
        ("x=interval(2, 1)", "`low <= high` must hold"),
        ("x=tag(log, interval(0, 1))", "`low > 0` must hold for `log=True`"),
        ("x=glob(*)", "Glob sweeps are not supported: use choice, range or interval"),
    ],
)
def test_space_bad_sweep_is_named_in_one_sentence(argument, why):
    with pytest.raises(SweepError) as raised:
        parse_search_space(["y=1", argument])
    message = str(raised.value)
    assert message.startswith(f"The sweep parameter `{argument}` is invalid ({why}")
    assert message.endswith("): fix its range in hydra.sweeper.params or on the command line.")
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_space_choices_over_lists_and_dicts_are_kept_as_override_text():
    space = parse_search_space(
        ["a=choice([8,16], [16,32])", "b=choice({depth: 2}, {widths: [4, 'x y']})", "c=choice('[8,16]', plain)"]
    )
    # Optuna stores scalar choices only: the text each trial writes unquoted for Hydra to parse back
    assert space.distributions["a"] == CategoricalDistribution(["[8,16]", "[16,32]"])
    assert space.distributions["b"] == CategoricalDistribution(["{depth:2}", "{widths:[4,'x y']}"])
    assert space.distributions["c"] == CategoricalDistribution(["[8,16]", "plain"])
    assert space.hydra_text == {"a", "b"}  # a string that looks like a list stays a string
    parser = OverridesParser.create()
    assert [parser.parse_override(f"b={v}").value() for v in space.distributions["b"].choices] == [
        {"depth": 2},
        {"widths": [4, "x y"]},
    ]
    mixed = parse_search_space(["d=choice([1], \"it's\", '[2]', 3)"]).distributions["d"]
    assert [parser.parse_override(f"d={v}").value() for v in mixed.choices] == [[1], "it's", "[2]", 3]
    assert grid_choices(space.distributions)["a"] == ["[8,16]", "[16,32]"]


def test_space_a_later_argument_replacing_a_choice_over_lists_makes_it_plain_again():
    assert parse_search_space(["a=choice([1], [2])", "a=5"]).hydra_text == set()
    assert parse_search_space(["a=choice([1], [2])", "a=choice(x, y)"]).hydra_text == set()
    assert parse_search_space(["a=choice(x, y)", "a=shuffle(choice([1], [2]))"]).hydra_text == {"a"}


def test_space_grid_lists_every_value_of_discrete_distributions():
    grid = grid_choices(
        {
            "name": CategoricalDistribution(["adam", "sgd"]),
            "epochs": IntDistribution(1, 3),
            "width": IntDistribution(8, 32, step=8),
            "dropout": FloatDistribution(0.1, 0.3, step=0.1),
            "momentum": FloatDistribution(0.5, 0.5, step=0.25),
        }
    )
    assert grid == {
        "name": ["adam", "sgd"],
        "epochs": [1, 2, 3],
        "width": [8, 16, 24, 32],
        "dropout": [0.1, 0.2, 0.3],
        "momentum": [0.5],
    }


@pytest.mark.parametrize("continuous", [FloatDistribution(0.0, 1.0), IntDistribution(8, 64, log=True)])
def test_space_grid_refuses_a_continuous_distribution(continuous):
    with pytest.raises(SweepError) as raised:
        grid_choices({"name": CategoricalDistribution(["adam"]), "x": continuous})
    assert str(raised.value) == (
        "The grid sampler needs discrete values, but `x` is continuous: give it as choice(...) or range(...), "
        "or pick another sampler."
    )


@pytest.mark.parametrize(
    "value",
    [
        "adam",
        "a b",
        "it's",
        "a\\b",
        "ends\\",
        "q,r",
        "${x}",
        "null",
        "1e-3",
        "",
        7,
        -2,
        0.1,
        -1.5e-7,
        True,
        False,
        None,
        [8, "a", [2.5, None]],
        {"a": 1, "b": [True, "x y"]},
    ],
)
def test_space_trial_values_reach_hydra_unchanged(value):
    override = format_override("model.x", value)
    assert override.startswith("model.x=")
    parsed = OverridesParser.create().parse_override(override)
    assert parsed.get_key_element() == "model.x" and parsed.value() == value
    assert type(parsed.value()) is type(value)


def test_space_quote_writes_hydra_syntax():
    assert quote((1, 2)) == "[1,2]"
    assert quote({"a": "b"}) == "{a:'b'}"
    assert [quote(v) for v in (True, False, None, 3, 0.5)] == ["true", "false", "null", "3", "0.5"]
    assert format_override("model/optimizer", "adam") == "model/optimizer='adam'"


def test_directions_agreeing_with_the_stored_study_pass():
    study = optuna.create_study(study_name="s", directions=["maximize", "minimize"])
    check_directions(study, ["maximize", "minimize"])
    check_directions(study, ["MAXIMIZE", StudyDirection.MINIMIZE])


@pytest.mark.parametrize(
    "stored, configured, shown",
    [
        (
            ["maximize"],
            ["minimize"],
            "optimises maximize, but hydra.sweeper.direction asks for minimize: set hydra.sweeper.direction=maximize",
        ),
        (
            ["minimize"],
            [StudyDirection.MAXIMIZE],
            "optimises minimize, but hydra.sweeper.direction asks for maximize: set hydra.sweeper.direction=minimize",
        ),
        (
            ["minimize", "maximize"],
            ["maximize", "minimize"],
            "optimises minimize, maximize, but "
            "hydra.sweeper.direction asks for maximize, minimize: set hydra.sweeper.direction=['minimize', 'maximize']",
        ),
        (
            ["maximize"],
            ["maximize", "maximize"],
            "optimises maximize, but hydra.sweeper.direction asks for "
            "maximize, maximize: set hydra.sweeper.direction=maximize",
        ),
    ],
)
def test_directions_unlike_the_stored_study_are_refused(stored, configured, shown):
    study = optuna.create_study(study_name="kept", directions=stored)
    with pytest.raises(StudyDirectionError) as raised:
        check_directions(study, configured)
    assert str(raised.value) == (
        f"The stored study 'kept' {shown} to continue it, or give a new hydra.sweeper.study_name for the new direction."
    )


class ValidationEnd:
    """The trainer and module a callback's `on_validation_end` sees after validating `epoch` with `metrics`."""

    def __init__(self, epoch: int, metrics: dict[str, float]) -> None:
        self.trainer = SimpleNamespace(
            sanity_checking=False, callback_metrics={k: torch.tensor(v) for k, v in metrics.items()}
        )
        self.module = SimpleNamespace(current_epoch=epoch)

    def send(self, callback) -> None:
        callback.on_validation_end(self.trainer, self.module)


def study_with_trial(storage) -> tuple[optuna.Study, optuna.Trial]:
    """A study whose second trial runs: another study's trials come first, so trial ids are not trial numbers."""
    other = optuna.create_study(study_name="other", storage=storage)
    for _ in range(2):
        other.tell(other.ask(), 1.0)
    study = optuna.create_study(study_name="trials", storage=storage, direction="maximize")
    study.tell(study.ask(), 0.5)
    trial = study.ask({"lr": FloatDistribution(1e-4, 1e-1, log=True), "name": CategoricalDistribution(["adam"])})
    return study, trial


def test_trial_callback_reports_its_metric_to_its_trial_and_prunes(caplog):
    caplog.set_level(logging.INFO, logger="litlab.callbacks.optuna_trial")
    url = optuna.storages.InMemoryStorage()
    study, trial = study_with_trial(url)
    threshold = optuna.pruners.ThresholdPruner(lower=0.5)
    callback = OptunaTrialCallback("trials", trial.number, "val/acc", storage=url, pruner=threshold)
    ValidationEnd(0, {"val/acc": 0.75, "val/loss": 0.1}).send(callback)  # above the threshold: goes on
    with pytest.raises(optuna.TrialPruned, match="pruned at epoch 1"):
        ValidationEnd(1, {"val/acc": 0.25, "val/loss": 3.0}).send(callback)
    assert "Optuna pruned this trial: Trial was pruned at epoch 1." in caplog.text
    assert study.trials[trial.number].intermediate_values == {0: 0.75, 1: 0.25}
    assert study.trials[0].intermediate_values == {}

    # without a pruner the trial reports and never stops, however low its metric
    unpruned = OptunaTrialCallback("trials", trial.number, "val/loss", storage=url)
    ValidationEnd(2, {"val/acc": 0.0, "val/loss": -1e9}).send(unpruned)
    assert study.trials[trial.number].intermediate_values[2] == -1e9


def test_trial_callback_shows_the_trial_and_its_metrics_in_hparams():
    url = optuna.storages.InMemoryStorage()
    _, trial = study_with_trial(url)
    callback = OptunaTrialCallback("trials", trial.number, "val/acc", storage=url)
    assert callback.trial.number == trial.number
    hparams, metrics = callback.comparable_hparams()
    assert hparams == {"optuna/trial": trial.number, "optuna/lr": trial.params["lr"], "optuna/name": "adam"}
    assert metrics == ("val/acc", "val/loss")
    own = OptunaTrialCallback("trials", trial.number, "val/f1", storage=url, hparam_metrics=("val/loss",))
    assert own.comparable_hparams()[1] == ("val/f1", "val/loss")


@pytest.mark.parametrize("kind", ["journal in the sweep folder", "journal named by the config and environment"])
def test_trial_callback_finds_the_sweeps_storage_itself(kind, tmp_path, monkeypatch):
    from hydra.core.hydra_config import HydraConfig

    sweep_dir = tmp_path / "sweep"
    spec = None
    if kind == "journal named by the config and environment":
        monkeypatch.setenv("LITLAB_TEST_JOURNAL", "env.journal")
        spec = {
            "_target_": "optuna.storages.JournalStorage",
            "log_storage": {
                "_target_": "optuna.storages.journal.JournalFileBackend",
                "file_path": "${paths.log_dir}/${oc.env:LITLAB_TEST_JOURNAL}",
            },
        }
    storage = build_storage(None, sweep_dir)
    if spec is not None:
        storage = optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(tmp_path / "env.journal"))
        )
    _, trial = study_with_trial(storage)
    # as in a trial's job: the hydra node of a config that has the rest (paths) beside it
    job_cfg = OmegaConf.create(
        {"paths": {"log_dir": str(tmp_path)}, "hydra": {"sweeper": {"storage": spec}, "sweep": {"dir": str(sweep_dir)}}}
    )
    monkeypatch.setattr(HydraConfig, "get", staticmethod(lambda: job_cfg.hydra))
    callback = OptunaTrialCallback("trials", trial.number, "val/acc")
    ValidationEnd(0, {"val/acc": 0.5}).send(callback)
    reread = optuna.load_study(study_name="trials", storage=storage)
    assert reread.trials[trial.number].intermediate_values == {0: 0.5}


def test_trial_callback_without_a_metric_names_the_setting(tmp_path):
    with pytest.raises(ValueError) as raised:
        OptunaTrialCallback("trials", 0, "", storage=f"sqlite:///{tmp_path / 'study.db'}")
    assert str(raised.value) == (
        "An Optuna trial needs a metric to report: set optimized_metric (or hydra.sweeper.monitor)."
    )


SWEEPER_SETTINGS = {
    "sampler": None,
    "direction": "maximize",
    "storage": None,
    "study_name": "unit",
    "n_trials": 4,
    "n_jobs": 1,
    "max_failure_rate": 0.0,
    "custom_search_space": None,
    "params": None,
}


def sweeper_with(**settings) -> LitlabOptunaSweeper:
    return LitlabOptunaSweeper(**{**SWEEPER_SETTINGS, **settings})


@pytest.mark.parametrize(
    "setting, value, expected",
    [
        ("n_trials", 0, "a positive number or null"),
        ("n_jobs", 0, "a positive number"),
        ("timeout", 0, "a positive number of seconds or null"),
        ("timeout", -5, "a positive number of seconds or null"),
        ("max_failure_rate", -0.1, "between 0 and 1"),
        ("max_failure_rate", 1.5, "between 0 and 1"),
        ("heartbeat_interval", 0, "a positive number of seconds"),
        ("grace_period", 60, "null or longer than heartbeat_interval"),  # the default interval: 60 s
        ("grace_period", 30, "null or longer than heartbeat_interval"),
        ("retry_failed", -1, "0 or more"),
        ("threads_per_worker", 0, "a positive number or null"),
        ("max_replacements", -1, "0 or more"),
    ],
)
def test_sweeper_refuses_a_setting_out_of_range(setting, value, expected):
    with pytest.raises(CompactHydraException) as raised:
        sweeper_with(**{setting: value})
    assert str(raised.value) == f"hydra.sweeper.{setting} must be {expected}, got {value}."


def test_sweeper_defaults_are_the_documented_ones():
    # Hydra passes every setting from LitlabOptunaSweeperConf; built in Python, the sweeper gets the same defaults
    documented = LitlabOptunaSweeperConf()
    sweeper = sweeper_with()
    for name in ("timeout", "monitor", "heartbeat_interval", "grace_period", "retry_failed", "threads_per_worker"):
        assert getattr(sweeper, name) == getattr(documented, name), name
    assert (documented.max_replacements, sweeper.max_replacements) == (None, sweeper.n_jobs)  # null: n_jobs
    # the values docs/search.md and the settings' docstring give
    assert (documented.n_trials, documented.n_jobs, documented.heartbeat_interval) == (20, 1, 60)
    assert (documented.timeout, documented.grace_period, documented.folds, documented.pruner) == (None,) * 4
    assert documented.retry_failed == 0 and documented.custom_search_space_kwargs is None


@pytest.mark.parametrize(
    "settings",
    [
        {"n_trials": 1, "n_jobs": 1, "timeout": 0.5, "max_failure_rate": 0.0, "heartbeat_interval": 1},
        {"grace_period": 2, "heartbeat_interval": 1, "retry_failed": 0, "threads_per_worker": 1},
        {"n_trials": None, "timeout": None, "max_failure_rate": 1.0, "grace_period": None, "threads_per_worker": None},
        {"folds": 2, "max_replacements": 0},
        {"folds": 5, "max_replacements": 3},
    ],
)
def test_sweeper_accepts_settings_at_their_limits(settings):
    sweeper = sweeper_with(**settings)
    assert {name: getattr(sweeper, name) for name in settings} == settings


def test_sweeper_names_the_pip_package_of_a_launcher():
    assert launcher_package("hydra_plugins.hydra_rq_launcher.rq_launcher.RQLauncher") == "hydra-rq-launcher"
    assert launcher_package("my_launchers.slurm.Launcher") == "my_launchers"
    assert launcher_package("acme_launchers.slurm.Launcher") == "acme_launchers"
    assert launcher_package("hydra_plugins") == "hydra_plugins"
    assert launcher_package("hydra_plugins.hydra_x_launcher") == "hydra-x-launcher"
    assert installed("json") and installed("hydra_plugins.litlab_optuna_sweeper.sweeper")
    assert not installed("hydra_plugins.hydra_no_such_launcher.launcher")
    assert not installed("no_such_package_litlab")


@pytest.mark.parametrize(
    "direction, expected",
    [
        ("maximize", ["maximize"]),
        (Direction.minimize, ["minimize"]),
        (["maximize", "minimize"], ["maximize", "minimize"]),
        (OmegaConf.create(["minimize", Direction.maximize]), ["minimize", "maximize"]),
    ],
)
def test_sweeper_reads_one_or_several_directions(direction, expected):
    assert sweeper_with(direction=direction)._directions() == expected


def set_up_sweeper(launcher: str) -> LitlabOptunaSweeper:
    from hydra.types import HydraContext

    sweeper = sweeper_with()
    config = OmegaConf.create({"hydra": {"launcher": {"_target_": launcher}}})
    sweeper.setup(hydra_context=HydraContext(config_loader=None, callbacks=None), task_function=len, config=config)
    return sweeper


def test_sweeper_setup_launches_its_trial_worker():
    sweeper = set_up_sweeper(BASIC_LAUNCHER)
    assert sweeper.launcher.task_function is sweeper.worker
    assert sweeper.worker.task_function is len and sweeper.worker.config is sweeper.config


@pytest.mark.parametrize(
    "target, package",
    [
        ("hydra_plugins.hydra_rq_launcher.rq_launcher.RQLauncher", "hydra-rq-launcher"),
        # an installed plugin package without that launcher module counts as not installed as well
        ("hydra_plugins.hydra_joblib_launcher.no_launcher.NoLauncher", "hydra-joblib-launcher"),
    ],
)
def test_sweeper_setup_names_the_package_of_a_missing_launcher(target, package):
    with pytest.raises(SweepError) as raised:
        set_up_sweeper(target)
    assert str(raised.value) == (
        f"The launcher {target} is not installed: `pip install '{package}>=1.4.0rc3,<1.5'`, or choose an "
        "installed one (hydra/launcher=basic, joblib, submitit_local or submitit_slurm)."
    )
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    # an installed package without that class is no missing package: Hydra's own error stands
    with pytest.raises(RuntimeError, match="Unknown plugin class : 'json.NoLauncher'"):
        set_up_sweeper("json.NoLauncher")


class ScriptedLauncher:
    """Stands in for Hydra's launcher: its worker jobs run the sweep plan's trials on the shared study, each
    scored by `objective(params)` instead of a training run, and return `returns` (or raise `raises`)."""

    def __init__(self, sweeper, objective=lambda params: 0.0, returns=None, raises=None) -> None:
        self.sweeper, self.objective, self.returns, self.raises = sweeper, objective, returns, raises
        self.launched: list[list[str]] = []

    def launch(self, job_overrides, initial_job_idx):
        assert initial_job_idx == 0
        self.launched = [list(overrides) for overrides in job_overrides]
        plan = self.sweeper.worker.plan
        sampler = optuna.samplers.GridSampler(plan.grid) if plan.grid else optuna.samplers.RandomSampler(seed=0)
        study = optuna.load_study(study_name=plan.study_name, storage=self.sweeper.storage(), sampler=sampler)
        for _ in range(plan.n_trials - plan.first_number):
            trial = study.ask(plan.distributions)
            values = self.objective(trial.params)
            tell(study, trial, TrialState.COMPLETE, list(values) if isinstance(values, tuple) else [values])
        if self.raises is not None:
            raise self.raises
        return self.returns or [job_return(JobStatus.COMPLETED, {"COMPLETE": 1}) for _ in job_overrides]


def scripted_sweeper(
    tmp_path, monkeypatch, sampler="optuna.samplers.RandomSampler", launcher=BASIC_LAUNCHER, **settings
):
    """A sweeper set up as Hydra would in `tmp_path` (its study in a journal in `sweep/`), with a ScriptedLauncher;
    its reports are written without plots and importances, which take seconds."""
    monkeypatch.setattr("litlab.reports.sweep.PLOTS", {})
    monkeypatch.setattr("litlab.reports.sweep.param_importances", lambda study: {})
    monkeypatch.chdir(tmp_path)
    sweeper = sweeper_with(**settings)
    sweeper.storage = lambda: build_storage(None, tmp_path / "sweep")
    sweeper.config = OmegaConf.create(
        {
            "hydra": {
                "sweeper": {"sampler": {"_target_": sampler}, "storage": None, "pruner": None},
                "sweep": {"dir": "sweep"},
                # a string of its own, as Hydra reads it from a config file
                "launcher": {"_target_": ".".join(launcher.split("."))},
            }
        }
    )
    sweeper.worker = SimpleNamespace(plan=None)
    sweeper.launcher = ScriptedLauncher(sweeper)
    return sweeper


@pytest.mark.parametrize("direction, best", [("maximize", 3), ("minimize", 1)])
def test_sweeper_optimises_in_the_configured_direction(direction, best, tmp_path, monkeypatch):
    sweeper = scripted_sweeper(
        tmp_path, monkeypatch, "optuna.samplers.GridSampler", direction=direction, params={"x": "choice(1, 2, 3)"}
    )
    sweeper.launcher.objective = lambda params: 10.0 * params["x"]
    sweeper.sweep([])
    results = yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())
    assert results["best_params"] == {"x": best} and results["best_value"] == 10.0 * best
    study = optuna.load_study(study_name="unit", storage=sweeper.storage())
    assert study.directions == [StudyDirection[direction.upper()]]


def test_sweeper_reports_the_best_value_of_a_choice_over_lists_as_a_list(tmp_path, monkeypatch):
    params = {"model.net.channels": "choice([4], [8, 16], {a: 1})", "x": "choice(1, 2)"}
    sweeper = scripted_sweeper(
        tmp_path, monkeypatch, "optuna.samplers.GridSampler", direction="maximize", params=params
    )
    # trials get the override text of a list: "[8,16]"
    sweeper.launcher.objective = lambda params: len(yaml.safe_load(params["model.net.channels"])) * 10 + params["x"]
    sweeper.sweep([])
    results = yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())
    assert results["best_params"] == {"model.net.channels": [8, 16], "x": 2} and results["best_value"] == 22


def test_sweeper_gives_its_workers_the_plan(tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger=sweeper_module.__name__)
    sweeper = scripted_sweeper(
        tmp_path,
        monkeypatch,
        direction=["maximize", "minimize"],
        n_trials=5,
        n_jobs=2,
        timeout=30.0,
        monitor="val/loss",
        max_failure_rate=0.25,
        heartbeat_interval=5,
        grace_period=12,
        retry_failed=2,
        threads_per_worker=3,
        custom_search_space="litlab.search.conditional.cnn_layers",
        custom_search_space_kwargs=OmegaConf.create({"max_filters": 8}),
        params=OmegaConf.create({"model.optimizer.lr": "interval(0.001, 0.1)", "data.batch_size": 32}),
    )
    sweeper.launcher.objective = lambda params: (params["model.optimizer.lr"], 1.0)
    previous = optuna.create_study(study_name="unit", storage=sweeper.storage(), directions=["maximize", "minimize"])
    previous.tell(previous.ask(), [0.0, 0.0])
    clock = iter([100.0, 142.4])
    monkeypatch.setattr(sweeper_module, "time", SimpleNamespace(time=lambda: 1000.0, monotonic=lambda: next(clock)))
    sweeper.sweep(["data.batch_size=64", "trainer.max_epochs=range(1, 3)"])

    plan = sweeper.worker.plan
    sweep_dir = str(tmp_path / "sweep")
    assert plan == SweepPlan(
        study_name="unit",
        directions=["maximize", "minimize"],
        n_trials=5,
        first_number=1,
        deadline=1030.0,
        distributions={
            "model.optimizer.lr": FloatDistribution(0.001, 0.1),
            "trainer.max_epochs": IntDistribution(1, 2),
        },
        fixed_overrides=["data.batch_size=64"],
        sweep_dir=sweep_dir,
        monitor="val/loss",
        max_failure_rate=0.25,
        liveness=Liveness(5, 12, 2),
        n_workers=2,
        threads_per_worker=3,
        grid=None,
        custom_search_space="litlab.search.conditional.cnn_layers",
        custom_search_space_kwargs={"max_filters": 8},
    )
    assert sweeper.launcher.launched == [
        ["data.batch_size=64", f"hydra.sweep.dir='{sweep_dir}'", f"hydra.sweep.subdir=workers/{k}"] for k in range(2)
    ]
    results = yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())
    assert results["trials"] == {"complete": 5, "pruned": 0, "fail": 0}
    assert (
        "Study 'unit' (1 trials so far) in a journal file (optuna.journal) in the sweep folder; target 5 finished "
        "trials, 2 worker(s) through BasicLauncher, sampler optuna.samplers.RandomSampler, pruner None, directions "
        "['maximize', 'minimize'], timeout 30.0 s"
    ) in caplog.text
    assert "Worker 0 ran {'COMPLETE': 1}" in caplog.text and "Worker 1 ran {'COMPLETE': 1}" in caplog.text


@pytest.mark.parametrize("sampler", ["optuna.samplers.CmaEsSampler", "optuna.samplers.TPESampler"])
def test_sweeper_makes_a_grid_for_the_grid_sampler_only(sampler, tmp_path, monkeypatch):
    sweeper = scripted_sweeper(tmp_path, monkeypatch, sampler, n_trials=3, params={"x": "interval(0, 1)"})
    sweeper.sweep([])
    assert sweeper.worker.plan.grid is None and sweeper.worker.plan.n_trials == 3


def test_sweeper_storage_mapping_may_interpolate_the_config(tmp_path, monkeypatch):
    sweeper = scripted_sweeper(tmp_path, monkeypatch, params={"x": "choice(1, 2)"}, n_trials=2)
    journal = {
        "_target_": "optuna.storages.JournalStorage",
        "log_storage": {
            "_target_": "optuna.storages.journal.JournalFileBackend",
            "file_path": "${paths.log_dir}/study.journal",
        },
    }
    sweeper.config = OmegaConf.merge(
        sweeper.config, {"paths": {"log_dir": str(tmp_path)}, "hydra": {"sweeper": {"storage": journal}}}
    )
    backend = optuna.storages.journal.JournalFileBackend
    sweeper.storage = lambda: optuna.storages.JournalStorage(backend(str(tmp_path / "study.journal")))
    sweeper.sweep([])
    assert len(optuna.load_study(study_name="unit", storage=sweeper.storage()).trials) == 2


def test_sweeper_runs_an_uncapped_sweep_with_no_deadline_until_stopped(tmp_path, monkeypatch):
    sweeper = scripted_sweeper(tmp_path, monkeypatch, n_trials=None, params={"x": "choice(1, 2)"})
    sweeper.launcher.launch = lambda overrides, initial_job_idx: []
    sweeper.sweep([])
    assert sweeper.worker.plan.n_trials is None and sweeper.worker.plan.deadline is None
    assert sweeper.worker.plan.custom_search_space_kwargs == {}


@pytest.mark.parametrize("n_trials, runs", [(10, 6), (4, 4), (None, 6)])
def test_sweeper_grid_runs_each_point_once_at_most(n_trials, runs, tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger=sweeper_module.__name__)
    sweeper = scripted_sweeper(
        tmp_path, monkeypatch, "optuna.samplers.GridSampler", n_trials=n_trials, params={"x": "choice(a, b, c)"}
    )
    sweeper.sweep(["y=range(1, 3)"])
    assert sweeper.worker.plan.n_trials == runs
    assert sweeper.worker.plan.grid == {"x": ["a", "b", "c"], "y": [1, 2]}
    assert f"GridSampler: {runs} grid points to run." in caplog.text


@pytest.mark.parametrize(
    "launcher, n_jobs, warned",
    [
        (BASIC_LAUNCHER, 2, True),
        (BASIC_LAUNCHER, 1, False),
        ("hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher", 2, False),
        ("acme_launchers.ray.RayLauncher", 2, False),
    ],
)
def test_sweeper_warns_that_the_basic_launcher_runs_workers_in_turn(
    launcher, n_jobs, warned, tmp_path, monkeypatch, caplog
):
    sweeper = scripted_sweeper(tmp_path, monkeypatch, launcher=launcher, n_jobs=n_jobs, params={"x": "choice(1)"})
    sweeper.sweep([])
    warning = f"hydra/launcher=basic runs its jobs one after another, so n_jobs={n_jobs} workers do not run at once"
    assert (warning in caplog.text) is warned


def test_sweeper_reports_the_study_when_done(tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger=sweeper_module.__name__)
    sweeper = scripted_sweeper(tmp_path, monkeypatch, params={"x": "choice(1, 2)"}, n_trials=3)
    sweeper.launcher.objective = lambda params: params["x"] / 4
    clock = iter([10.0, 52.0])
    monkeypatch.setattr(sweeper_module, "time", SimpleNamespace(time=lambda: 0.0, monotonic=lambda: next(clock)))
    sweeper.sweep([])
    assert "Sweep done in 42 s: the study holds 3 complete, 0 pruned and 0 failed trials." in caplog.text
    results = yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())
    assert f"Best value 0.5 (trial {results['best_trial']}) with {{'x': 2}}" in caplog.text
    assert "Reports written to sweep" in caplog.text


@pytest.mark.parametrize(
    "errors, shown",
    [
        ([RuntimeError("disk full"), TooManyFailures("3 of 4 trials failed")], "3 of 4 trials failed"),
        ([None, RuntimeError("disk full")], "disk full"),
        ([RuntimeError("disk full"), RuntimeError("out of memory")], "disk full"),
        ([TooManyFailures("2 of 2 trials failed"), TooManyFailures("3 of 3 trials failed")], "2 of 2 trials failed"),
    ],
)
def test_sweeper_stops_with_the_error_of_a_failed_worker(errors, shown, tmp_path, monkeypatch, caplog):
    sweeper = scripted_sweeper(tmp_path, monkeypatch, params={"x": "choice(1, 2)"}, n_jobs=2)
    sweeper.launcher.returns = [
        job_return(JobStatus.COMPLETED, {"COMPLETE": 2}) if err is None else job_return(JobStatus.FAILED, err)
        for err in errors
    ]
    with pytest.raises(SweepError) as raised:
        sweeper.sweep([])
    assert str(raised.value) == f"The sweep stopped: {shown}"
    assert "Worker 1 stopped: " in caplog.text
    # the finished trials are reported all the same
    assert yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())["trials"]["complete"] == 4


def test_sweeper_interrupted_still_writes_its_reports(tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger=sweeper_module.__name__)
    sweeper = scripted_sweeper(tmp_path, monkeypatch, params={"x": "choice(1, 2)"}, n_trials=2)
    sweeper.launcher.raises = KeyboardInterrupt()
    with pytest.raises(KeyboardInterrupt):
        sweeper.sweep([])
    assert "Sweep done: the study holds 2 complete" in caplog.text
    assert yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())["trials"]["complete"] == 2


@pytest.mark.parametrize(("settings", "given"), [({}, 10.0), ({"heartbeat_interval": 1, "grace_period": 4}, 4)])
def test_sweeper_gives_interrupted_workers_their_grace_period_up_to_ten_seconds(settings, given, tmp_path, monkeypatch):
    def interrupted_run(pool):
        raise KeyboardInterrupt

    waited = []
    sweeper = pooled_sweeper(tmp_path, monkeypatch, Workers(None), **settings)
    monkeypatch.setattr(WorkerPool, "run", interrupted_run)
    monkeypatch.setattr(WorkerPool, "interrupted", lambda pool, timeout: waited.append(timeout))
    with pytest.raises(KeyboardInterrupt):
        sweeper.sweep([])
    assert waited == [given]


class Workers:
    """Worker jobs launched one by one (as litlab.search.pool launches joblib's and submitit's): each job number
    in `dies` dies at once; any other runs `trials` trials of the plan on the shared study and returns."""

    def __init__(self, sweeper, dies=(), trials=1) -> None:
        self.sweeper, self.dies, self.trials, self.launched = sweeper, set(dies), trials, []

    def __call__(self, overrides, index):
        self.launched.append(index)
        if index in self.dies:
            raise RuntimeError(f"worker process {index} was killed\n(more lines)")
        plan = self.sweeper.worker.plan
        study = optuna.load_study(study_name=plan.study_name, storage=self.sweeper.storage())
        for _ in range(self.trials):
            trial = study.ask(plan.distributions)
            tell(study, trial, TrialState.COMPLETE, [1.0])
        return job_return(JobStatus.COMPLETED, {"COMPLETE": self.trials})


def pooled_sweeper(tmp_path, monkeypatch, workers, **settings):
    sweeper = scripted_sweeper(tmp_path, monkeypatch, params={"x": "interval(0, 1)"}, **settings)
    workers.sweeper = sweeper
    monkeypatch.setattr("litlab.search.pool.one_by_one", lambda launcher: workers)
    return sweeper


def test_sweeper_replaces_a_lost_worker_and_says_so_last(tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    workers = Workers(None, dies={0}, trials=2)
    sweeper = pooled_sweeper(tmp_path, monkeypatch, workers, n_jobs=2, n_trials=4)
    sweeper.sweep([])
    # worker 0 died at once; worker 1 went on, and worker 2 took worker 0's place
    assert sorted(workers.launched) == [0, 1, 2]
    assert "Worker 0 was lost: RuntimeError: worker process 0 was killed" in caplog.messages
    assert "Worker 2 replaces it (1 of 2)." in caplog.messages
    results = yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())
    assert results["trials"]["complete"] == 4
    assert caplog.messages[-1] == "1 of 3 workers lost (1 replacement started)."


def test_sweeper_replaces_every_lost_worker_it_may_and_counts_them(tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    workers = Workers(None, dies={0, 1}, trials=2)
    sweeper = pooled_sweeper(tmp_path, monkeypatch, workers, n_jobs=2, n_trials=4)
    sweeper.sweep([])
    assert sorted(workers.launched) == [0, 1, 2, 3]
    assert caplog.messages[-1] == "2 of 4 workers lost (2 replacements started)."


class FailingLauncher:
    """A launcher whose batch of workers failed as a whole."""

    def launch(self, job_overrides, initial_job_idx):
        raise RuntimeError("the batch failed\n(its long explanation)")


@pytest.mark.parametrize(
    "target",
    [
        "hydra._internal.core_plugins.basic_launcher.BasicLauncher",  # as the config gives it: an equal string
        "hydra_plugins.acme_launcher.AcmeLauncher",
        "acme.Launcher",
        "hydra.Launcher",
    ],
)
def test_sweeper_says_which_launcher_lost_its_workers_except_its_own_process(target):
    sweeper = SimpleNamespace(config=OmegaConf.create({"hydra": {"launcher": {"_target_": target}}}))
    sweeper.launcher = FailingLauncher()
    if target == BASIC_LAUNCHER:  # the workers ran in this process: their error is the command's
        with pytest.raises(RuntimeError, match="the batch failed"):
            LitlabOptunaSweeper._launch_together(sweeper, [["x=1"]])
        return
    with pytest.raises(SweepError) as raised:
        LitlabOptunaSweeper._launch_together(sweeper, [["x=1"]])
    assert str(raised.value) == (
        f"The launcher {target} lost the sweep's workers (RuntimeError: the batch failed): rerun the command to "
        "continue the study."
    )


def test_sweeper_whose_workers_are_all_lost_stops_with_its_report(tmp_path, monkeypatch, caplog):
    workers = Workers(None, dies={0, 1, 2, 3})
    sweeper = pooled_sweeper(tmp_path, monkeypatch, workers, n_jobs=2, n_trials=4, max_replacements=1)
    with pytest.raises(SweepError) as raised:
        sweeper.sweep([])
    assert str(raised.value) == (
        "The sweep stopped with its study unfinished: 3 of 3 workers were lost and 1 of "
        "hydra.sweeper.max_replacements=1 replacements were started; rerun the command to continue the study (a "
        "lost trial is retried as hydra.sweeper.retry_failed allows)."
    )
    # the one replacement took the place of whichever worker was lost first, on its slot
    assert sorted(workers.launched) in ([0, 1, 2], [0, 1, 3])
    assert (tmp_path / "sweep" / "optimization_results.yaml").is_file()


def test_sweeper_counts_the_replacements_of_a_single_worker_that_were_all_lost(tmp_path, monkeypatch):
    workers = Workers(None, dies={0, 1, 2})
    sweeper = pooled_sweeper(tmp_path, monkeypatch, workers, n_jobs=1, n_trials=4, max_replacements=2)
    with pytest.raises(SweepError, match="3 of 3 workers were lost and 2 of hydra.sweeper.max_replacements=2 "):
        sweeper.sweep([])
    assert workers.launched == [0, 1, 2]


def test_sweeper_replaces_no_worker_once_its_study_is_done(tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    workers = Workers(None, dies={1}, trials=3)
    sweeper = pooled_sweeper(tmp_path, monkeypatch, workers, n_jobs=2, n_trials=3)
    original = workers.__call__

    def worker_0_first(overrides, index):
        if index == 1:
            while not (tmp_path / "sweep" / "done").exists():  # dies once worker 0 has made up the study
                time.sleep(0.01)
        ret = original(overrides, index)
        (tmp_path / "sweep" / "done").touch()
        return ret

    monkeypatch.setattr("litlab.search.pool.one_by_one", lambda launcher: worker_0_first)
    sweeper.sweep([])
    assert sorted(workers.launched) == [0, 1]
    assert caplog.messages[-1] == "1 of 2 workers lost (0 replacements started)."


@pytest.mark.parametrize(
    ("n_trials", "deadline", "finished", "wanted"),
    [
        (3, None, 2, True),
        (3, None, 3, False),  # the target is reached: a lost worker is not replaced
        (3, None, 4, False),  # ... and passed, by workers that finished together
        (None, None, 9, True),  # no target: until stopped
        (None, +3600, 9, True),
        (None, -1, 0, False),  # the time budget is spent
    ],
)
def test_sweeper_wants_more_work_below_its_target_and_before_its_deadline(n_trials, deadline, finished, wanted):
    study = optuna.create_study()
    for _ in range(finished):
        study.tell(study.ask(), 0.5)
    study.ask()  # a running trial counts toward nothing yet
    plan = SimpleNamespace(n_trials=n_trials, deadline=None if deadline is None else time.time() + deadline)
    assert LitlabOptunaSweeper._unfinished(SimpleNamespace(worker=SimpleNamespace(plan=plan)), study) is wanted


def test_sweeper_refuses_a_stored_study_of_another_direction(tmp_path, monkeypatch):
    sweeper = scripted_sweeper(tmp_path, monkeypatch, direction="minimize", params={"x": "choice(1, 2)"})
    optuna.create_study(study_name="unit", storage=sweeper.storage(), direction="maximize")
    with pytest.raises(StudyDirectionError, match="optimises maximize, but hydra.sweeper.direction asks for minimize"):
        sweeper.sweep([])
    assert sweeper.worker.plan is None


def job_return(status: JobStatus, value) -> JobReturn:
    ret = JobReturn(overrides=["a=1"], status=status)
    ret.return_value = value
    return ret


def test_trial_outcome_tells_complete_pruned_and_failed_apart():
    assert trial_outcome(job_return(JobStatus.COMPLETED, 0.9), 1) == (TrialState.COMPLETE, [0.9], "")
    state, values, reason = trial_outcome(job_return(JobStatus.COMPLETED, math.nan), 1)
    assert state == TrialState.FAIL and values is None and "not finite" in reason
    state, _, reason = trial_outcome(job_return(JobStatus.FAILED, ValueError("bad layer")), 1)
    assert state == TrialState.FAIL and reason == "ValueError: bad layer"
    state, _, _ = trial_outcome(job_return(JobStatus.COMPLETED, None), 1)
    assert state == TrialState.FAIL
    assert trial_outcome(job_return(JobStatus.COMPLETED, Pruned("at epoch 1")), 1) == (
        TrialState.PRUNED,
        None,
        "at epoch 1",
    )
    assert trial_outcome(job_return(JobStatus.COMPLETED, [0.9, 3.0]), 2)[1] == [0.9, 3.0]
    assert "1 values for 2 objectives" in trial_outcome(job_return(JobStatus.COMPLETED, [0.9]), 2)[2]


def event_accumulator(run_dir):
    """The TensorBoard events of a run (imported here: tensorboard is slow to import, and most tests need none)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(next(run_dir.rglob("events.out.tfevents.*")).parent))
    events.Reload()
    return events


def hparams_of_run(run_dir) -> dict:
    """The hyperparameters a TensorBoard run shows in its HParams tab."""
    from tensorboard.plugins.hparams import plugin_data_pb2

    content = event_accumulator(run_dir).SummaryMetadata("_hparams_/session_start_info").plugin_data.content
    info = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    return {name: getattr(value, value.WhichOneof("kind")) for name, value in info.hparams.items()}


def hparams_columns(run_dir) -> tuple[list[str], list[str]]:
    """The columns of the HParams tab over a run, in TensorBoard's own order: hyperparameters, then metrics."""
    from tensorboard.plugins.hparams import backend_context, plugin_data_pb2

    content = event_accumulator(run_dir).SummaryMetadata("_hparams_/experiment").plugin_data.content
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content).experiment
    backend_context._sort_and_reduce_to_hparams_limit(experiment)
    return [info.name for info in experiment.hparam_infos], [info.name.tag for info in experiment.metric_infos]


def logged_scalar(run_dir, tag: str) -> float:
    """The last value of the scalar `tag` in a run's TensorBoard events."""
    return event_accumulator(run_dir).Scalars(tag)[-1].value


# A learning rate of 1e-6 leaves the seeded network as it starts; 3e-3 lowers its loss and raises its accuracy
# within a few batches: which trial wins depends on the metric and the direction only.
DIRECTION_SEARCH = [
    "hparams_search=samplers_compare",
    "hydra/sweeper/sampler=grid",
    "model.optimizer.lr=choice(0.000001,0.003)",
    "model/optimizer=adam",
    "model.net.dropout=0.0",
    "hydra.sweeper.timeout=null",
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=5",
]


@pytest.mark.parametrize(
    "direction, metric, winner",
    [
        ("maximize", "val/loss", 0.000001),
        ("minimize", "val/loss", 0.003),
        # the same direction on another metric: the other trial wins (slow: the two above show the metric
        # reaching the trials' values already)
        pytest.param("maximize", "val/acc", 0.003, marks=pytest.mark.slow),
    ],
)
def test_sweep_optimises_the_configured_metric_in_the_configured_direction(
    direction, metric, winner, tmp_path, monkeypatch
):
    run_sweep(
        [*DIRECTION_SEARCH, f"hydra.sweeper.direction={direction}", f"optimized_metric={metric}"], tmp_path, monkeypatch
    )
    trials = pd.read_csv(tmp_path / "trials.csv").set_index("number")
    # each trial's value is the metric its own run logged
    for number, trial in trials.iterrows():
        assert trial.value == pytest.approx(logged_scalar(tmp_path / str(number) / "tensorboard", metric))
    results = yaml.safe_load((tmp_path / "optimization_results.yaml").read_text())
    assert results["best_params"]["model.optimizer.lr"] == pytest.approx(winner)
    pick = trials.value.idxmax() if direction == "maximize" else trials.value.idxmin()
    assert results["best_trial"] == pick and trials.value.nunique() == 2


def test_sweep_prunes_fails_crashes_goes_on_and_reports(tmp_path, monkeypatch):
    # Grid over 2 learning rates x 2 activations: the bogus activation crashes, the tiny learning rate is
    # pruned by the threshold after its first epoch, the good one completes.
    run_sweep(
        [
            "hparams_search=samplers_compare",
            "hydra/sweeper/sampler=grid",
            "model.optimizer.lr=choice(0.00001,0.003)",
            "model.net.activation=choice(relu,bogus)",
            "model.net.dropout=0.0",
            "hydra.sweeper.max_failure_rate=0.5",
            "hydra.sweeper.timeout=null",
            "hydra.sweeper.pruner={_target_:optuna.pruners.ThresholdPruner,lower:0.3}",
            "model/optimizer=adam",
            "trainer.max_epochs=2",
            "+trainer.limit_train_batches=10",
        ],
        tmp_path,
        monkeypatch,
    )
    trials = pd.read_csv(tmp_path / "trials.csv")
    assert len(trials) == 4
    by_state = trials.groupby("state")
    assert by_state.size().to_dict() == {"COMPLETE": 1, "FAIL": 2, "PRUNED": 1}
    failed = trials[trials.state == "FAIL"]
    assert (failed["params_model.net.activation"] == "bogus").all()
    assert failed.user_attrs_fail_reason.str.contains("Unknown activation 'bogus'").all()
    pruned = trials[trials.state == "PRUNED"].iloc[0]
    assert pruned["params_model.optimizer.lr"] == pytest.approx(1e-5)

    results = yaml.safe_load((tmp_path / "optimization_results.yaml").read_text())
    assert results["trials"] == {"complete": 1, "pruned": 1, "fail": 2}
    assert results["best_params"]["model.optimizer.lr"] == pytest.approx(0.003)
    # the best value is the complete trial's optimized_metric as its run logged it, past the pruning threshold
    complete = trials[trials.state == "COMPLETE"].iloc[0]
    assert results["best_trial"] == complete.number and results["best_value"] == complete.value
    logged = logged_scalar(tmp_path / str(complete.number) / "tensorboard", "val/acc_best")
    assert results["best_value"] == pytest.approx(logged) and logged >= 0.3
    for plot in ("optimization_history.png", "intermediate_values.png"):
        assert (tmp_path / plot).stat().st_size > 10_000

    best = results["best_trial"]
    hparams = hparams_of_run(tmp_path / str(best) / "tensorboard")
    assert hparams["optuna/trial"] == best
    assert hparams["optuna/model.optimizer.lr"] == pytest.approx(0.003)
    # the HParams tab leads with what the sweep searched and the metric it optimised, then the shared settings
    columns, metrics = hparams_columns(tmp_path / str(best) / "tensorboard")
    searched = ["optuna/model.net.activation", "optuna/model.optimizer.lr", "optuna/trial"]
    assert columns[:3] == searched and len(columns) > 20 and "data/batch_size" in columns[3:]
    assert metrics[0] == "val/acc_best"


def test_a_sweep_parameter_out_of_range_is_named(tmp_path, monkeypatch, capsys):
    bad = "model.optimizer.lr=tag(log, interval(0.1, 0.001))"
    # Hydra prints the error and exits with status 1, as on the command line.
    with pytest.raises(SystemExit):
        run_sweep(["hparams_search=samplers_compare", bad], tmp_path, monkeypatch)
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == (
        f"The sweep parameter `{bad}` is invalid (`low <= high` must hold, but got (low=0.1, high=0.001).): "
        "fix its range in hydra.sweeper.params or on the command line."
    )
    assert err.count("The sweep parameter") == 1 and "Traceback" not in err
    assert not (tmp_path / "0").exists()  # refused before any trial ran


def test_timeout_stops_an_uncapped_sweep(tmp_path, monkeypatch):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    run_sweep(
        [
            "hparams_search=samplers_compare",
            "hydra/sweeper/sampler=random",
            "hydra.sweeper.n_trials=null",
            "hydra.sweeper.timeout=2",
            f"hydra.sweeper.storage={storage}",
            "trainer.max_epochs=1",
            "+trainer.limit_train_batches=2",
        ],
        tmp_path,
        monkeypatch,
    )
    # With no cap on trials, only the budget can have ended the sweep: no trial started after it was spent
    # (the one running then may finish late).
    starts = [t.datetime_start for t in trials_by_state(storage, "samplers_compare")["COMPLETE"]]
    assert starts
    assert (max(starts) - min(starts)).total_seconds() <= 2.0


def best_at_epochs(trials: list[optuna.trial.FrozenTrial], epochs: int) -> float:
    """The best complete value found within the first `epochs` epochs of a sweep (trials in order)."""
    spent, best = 0, -math.inf
    for trial in sorted(trials, key=lambda t: t.number):
        spent += len(trial.intermediate_values)
        if spent > epochs:
            break
        if trial.state == TrialState.COMPLETE:
            best = max(best, trial.value)
    return best


@pytest.mark.slow
def test_pruning_spends_fewer_epochs_for_an_equal_or_better_best(tmp_path, monkeypatch):
    # The same seeded random search with and without a median pruner: both draw the same trials, the
    # pruned sweep stops the weak ones early and so reaches its best value with fewer epochs.
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    search = [
        "hparams_search=samplers_compare",
        "hydra/sweeper/sampler=random",
        "hydra.sweeper.sampler.seed=3",
        "hydra.sweeper.n_trials=8",
        "hydra.sweeper.timeout=null",
        f"hydra.sweeper.storage={storage}",
        "trainer.max_epochs=4",
        "+trainer.limit_train_batches=8",
    ]
    pruner = "hydra.sweeper.pruner={_target_:optuna.pruners.MedianPruner,n_startup_trials:2,n_warmup_steps:1}"
    run_sweep([*search, "hydra.sweeper.study_name=plain"], tmp_path / "plain", monkeypatch)
    run_sweep([*search, "hydra.sweeper.study_name=pruned", pruner], tmp_path / "pruned", monkeypatch)

    plain, pruned = (optuna.load_study(study_name=n, storage=storage).get_trials() for n in ("plain", "pruned"))
    assert [t.params for t in plain] == [t.params for t in pruned]
    assert any(t.state == TrialState.PRUNED for t in pruned)
    assert all(t.state == TrialState.COMPLETE for t in plain)
    epochs_pruned = sum(len(t.intermediate_values) for t in pruned)
    assert epochs_pruned < sum(len(t.intermediate_values) for t in plain) == 8 * 4
    assert best_at_epochs(pruned, epochs_pruned) >= best_at_epochs(plain, epochs_pruned)


SUBPROCESS_SEARCH = [
    "hparams_search=samplers_compare",
    "hydra/sweeper/sampler=random",
    "hydra.sweeper.timeout=null",
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=3",
]


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGINT], ids=["killed", "ctrl-c"])
def test_stopped_sweep_keeps_finished_trials_and_resumes(stop, tmp_path, monkeypatch):
    # n_trials is the study's target: rerunning the same command after a stop continues to it.
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    command = [
        *SUBPROCESS_SEARCH[:-1],
        "+trainer.limit_train_batches=20",
        "hydra.sweeper.study_name=resume",
        f"hydra.sweeper.storage={storage}",
        "hydra.sweeper.n_trials=5",
        "hydra.sweeper.heartbeat_interval=1",
        "hydra.sweeper.retry_failed=1",
    ]
    process = start_sweep(command, tmp_path / "first", tmp_path / "first.log")

    from sqlalchemy.exc import SQLAlchemyError

    def running_after_two() -> optuna.trial.FrozenTrial | None:
        try:
            trials = trials_by_state(storage, "resume")
        except (KeyError, SQLAlchemyError):  # the sweep has not set up its study yet
            return None
        return trials["RUNNING"][0] if len(trials.get("COMPLETE", [])) >= 2 and trials.get("RUNNING") else None

    try:
        wait_for(lambda: running_after_two() is not None, timeout=600, process=process)
        stopped_trial = running_after_two()
    finally:
        process.send_signal(stop)
        process.wait(timeout=120)
    stopped = trials_by_state(storage, "resume")
    before = {t.number: (t.params, t.value) for t in stopped["COMPLETE"]}
    if stop == signal.SIGINT:
        # Ctrl-C closes the interrupted trial and still writes the reports
        assert "RUNNING" not in stopped
        assert all(t.user_attrs["lost_reason"].startswith("interrupted") for t in stopped.get("FAIL", []))
        assert (tmp_path / "first" / "optimization_results.yaml").exists()

    run_sweep(command, tmp_path / "second", monkeypatch)
    after = trials_by_state(storage, "resume")
    assert "RUNNING" not in after
    # the rerun drew on where the first command left off: no parameter set ran twice (a retry runs its lost trial's)
    ran = [tuple(sorted(t.params.items())) for t in after["COMPLETE"]]
    assert len(set(ran)) == len(ran) == 5
    kept = {t.number: (t.params, t.value) for t in after["COMPLETE"] if t.number in before}
    assert kept == before
    assert len(after["COMPLETE"]) == 5 and min(t.number for t in after["COMPLETE"] if t.number not in before) > max(
        before
    )
    if stop == signal.SIGKILL:
        # the killed trial failed once its heartbeat stopped, and ran again with its parameters
        retried = [t for t in after["COMPLETE"] if t.system_attrs.get("failed_trial") == stopped_trial.number]
        assert [t.params for t in retried] == [stopped_trial.params]
    # the report of the resumed sweep covers the whole study
    results = yaml.safe_load((tmp_path / "second" / "optimization_results.yaml").read_text())
    assert results["trials"]["complete"] == 5


@pytest.mark.slow
def test_two_processes_share_one_study(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    args = [
        *SUBPROCESS_SEARCH,
        "hydra.sweeper.study_name=shared",
        f"hydra.sweeper.storage={storage}",
        "hydra.sweeper.n_trials=6",
    ]
    # one sweep folder for both: job folders are named by trial number, so they cannot collide
    processes = [
        start_sweep([*args, f"hydra.sweeper.sampler.seed={i}"], tmp_path / "sweep", log)
        for i, log in enumerate([tmp_path / "a.log", tmp_path / "b.log"])
    ]
    for process in processes:
        assert process.wait(timeout=900) == 0, (tmp_path / "a.log").read_text()[-3000:]
    trials = trials_by_state(storage, "shared")
    # the study's target of 6, none run twice, shared by both commands; a draw of the other command's parameters
    # (their seeds' sequences share some) is skipped, not run
    assert set(trials) <= {"COMPLETE", "FAIL"} and len(trials["COMPLETE"]) == 6
    never_run = ("skipped: ", "not run: the study reached n_trials meanwhile")
    assert all(t.user_attrs["lost_reason"].startswith(never_run) for t in trials.get("FAIL", []))
    assert len({tuple(sorted(t.params.items())) for t in trials["COMPLETE"]}) == 6
    assert len({t.user_attrs["worker"] for t in trials["COMPLETE"]}) == 2
    assert {p.name for p in (tmp_path / "sweep").iterdir() if p.is_dir()} >= {str(t.number) for t in trials["COMPLETE"]}


@pytest.mark.slow
def test_compare_samplers_writes_plot_and_table(tmp_path):
    from scripts.compare_samplers import SAMPLERS, main

    table = main(
        ["--budget", "2", "--out", str(tmp_path), "--", *FAST_TRIAL[len(TEST_OVERRIDES) :], *SUBPROCESS_SEARCH[3:]]
    )
    assert table.sampler.tolist() == list(SAMPLERS)
    # every sampler ran at least one trial within its budget; the table counts each one's study and shows the
    # best value it holds (with a time budget every trial counts)
    assert (table.trials_finished + table.trials_pruned >= 1).all()
    for row in table.itertuples():
        trials = trials_by_state(f"sqlite:///{tmp_path / 'studies.db'}", row.sampler)
        complete = [t.value for t in trials.get("COMPLETE", [])]
        assert (row.trials_finished, row.trials_pruned) == (len(complete), len(trials.get("PRUNED", [])))
        assert row.best_value == max(complete) if complete else pd.isna(row.best_value)
    assert (tmp_path / "samplers_compare.png").stat().st_size > 10_000
    assert pd.read_csv(tmp_path / "samplers_compare.csv").shape[0] == len(SAMPLERS)


def test_journal_storage_is_built_from_its_config(tmp_path):
    journal = tmp_path / "optuna.journal"
    storage = build_storage(
        OmegaConf.create(
            {
                "_target_": "optuna.storages.JournalStorage",
                "log_storage": {"_target_": "optuna.storages.journal.JournalFileBackend", "file_path": str(journal)},
            }
        ),
        tmp_path / "sweep",
    )
    assert isinstance(storage, optuna.storages.JournalStorage)
    study = open_study(storage, "journal", ["maximize"])
    study.tell(study.ask({"x": optuna.distributions.FloatDistribution(0, 1)}), 0.5)
    # a second process reading the file sees the trial
    reread = optuna.load_study(
        study_name="journal",
        storage=optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal))),
    )
    assert [t.value for t in reread.trials] == [0.5]
    # without a storage, the study lives in a journal file in the sweep folder
    assert isinstance(build_storage(None, tmp_path / "sweep"), optuna.storages.JournalStorage)
    assert (tmp_path / "sweep" / "optuna.journal").exists()


def test_the_shipped_mnist_search_runs_its_conditional_space(tmp_path, monkeypatch, mnist_root):
    # hparams_search=mnist_cnn as the README runs it: its custom space (litlab.search.conditional.cnn_layers) must
    # reach the trials through the sweeper's workers, past the execution whitelist.
    run_sweep(
        [
            "hparams_search=mnist_cnn",
            f"paths.data_dir={mnist_root}",
            "data.download=false",
            "hydra.sweeper.n_trials=2",
            "hydra.sweeper.timeout=null",
            "hydra.sweeper.pruner=null",
            "hydra.sweeper.custom_search_space_kwargs.max_filters=8",
            "hydra.sweeper.custom_search_space_kwargs.max_units=8",
            "trainer.max_epochs=1",
            "+trainer.limit_train_batches=2",
        ],
        tmp_path / "sweep",
        monkeypatch,
    )
    trials = pd.read_csv(tmp_path / "sweep" / "trials.csv")
    assert list(trials["state"]) == ["COMPLETE", "COMPLETE"]
    for _, trial in trials.iterrows():
        overrides = yaml.safe_load(
            (tmp_path / "sweep" / str(trial["number"]) / ".hydra" / "overrides.yaml").read_text()
        )
        conv = next(o for o in overrides if o.startswith("model.net.conv_channels="))
        assert len(yaml.safe_load(conv.split("=", 1)[1])) == trial["params_conv_layers"]


def test_a_sweep_chooses_among_optimizer_presets(tmp_path, monkeypatch):
    # samplers_compare searches `model/optimizer: choice(adam, rmsprop, sgd)`, a config group: each trial composes
    # the preset it drew, and the study records the preset's name.
    run_sweep(
        [
            "hparams_search=samplers_compare",
            "hydra/sweeper/sampler=grid",
            "model.optimizer.lr=0.003",
            "model.net.dropout=0.0",
            "hydra.sweeper.timeout=null",
            "trainer.max_epochs=1",
            "+trainer.limit_train_batches=3",
        ],
        tmp_path,
        monkeypatch,
    )
    trials = pd.read_csv(tmp_path / "trials.csv").set_index("number")
    assert sorted(trials["params_model/optimizer"]) == ["adam", "rmsprop", "sgd"] and set(trials.state) == {"COMPLETE"}
    classes = {"adam": "torch.optim.Adam", "rmsprop": "torch.optim.RMSprop", "sgd": "torch.optim.SGD"}
    for number, trial in trials.iterrows():
        optimizer = OmegaConf.load(tmp_path / str(number) / ".hydra" / "config.yaml").model.optimizer
        assert optimizer._target_ == classes[trial["params_model/optimizer"]] and optimizer.lr == 0.003
    results = yaml.safe_load((tmp_path / "optimization_results.yaml").read_text())
    assert results["best_params"]["model/optimizer"] in classes
