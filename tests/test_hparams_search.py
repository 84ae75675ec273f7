"""Optuna sweeps through Hydra's multirun: search spaces, pruning, time budget, failures, reports, storage."""

import math
import signal

import optuna
import pandas as pd
import pytest
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.study import StudyDirection
from optuna.trial import TrialState
from sqlalchemy.exc import SQLAlchemyError
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from litlab.search.directions import StudyDirectionError, check_directions
from litlab.search.errors import SweepError
from litlab.search.space import format_override, grid_choices, parse_search_space, quote
from litlab.search.spaces import cnn_layers
from litlab.search.storage import build_storage, open_study
from litlab.search.worker import Pruned, trial_outcome
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
    assert format_override("model.optimizer.name", "adam") == "model.optimizer.name='adam'"


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


def hparams_of_run(run_dir) -> dict:
    """The hyperparameters a TensorBoard run shows in its HParams tab."""
    events = EventAccumulator(str(next(run_dir.rglob("events.out.tfevents.*")).parent))
    events.Reload()
    content = events.SummaryMetadata("_hparams_/session_start_info").plugin_data.content
    info = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    return {name: getattr(value, value.WhichOneof("kind")) for name, value in info.hparams.items()}


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
            "model.optimizer.name=adam",
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
    assert results["best_value"] > 0.3
    for plot in ("optimization_history.png", "intermediate_values.png"):
        assert (tmp_path / plot).stat().st_size > 10_000

    best = results["best_trial"]
    hparams = hparams_of_run(tmp_path / str(best) / "tensorboard")
    assert hparams["optuna/trial"] == best
    assert hparams["optuna/model.optimizer.lr"] == pytest.approx(0.003)


def test_a_sweep_parameter_out_of_range_is_named(tmp_path, monkeypatch, capsys):
    bad = "model.optimizer.lr=tag(log, interval(0.1, 0.001))"
    # Hydra prints the error and exits with status 1, as on the command line.
    with pytest.raises(SystemExit):
        run_sweep(["hparams_search=samplers_compare", bad], tmp_path, monkeypatch)
    assert f"The sweep parameter `{bad}` is invalid (`low <= high` must hold" in capsys.readouterr().err


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
    assert set(trials) == {"COMPLETE"}
    # the study's target of 6, none run twice, shared by both commands
    assert sorted(t.number for t in trials["COMPLETE"]) == list(range(6))
    assert len({t.user_attrs["worker"] for t in trials["COMPLETE"]}) == 2
    assert {p.name for p in (tmp_path / "sweep").iterdir() if p.is_dir()} >= {str(n) for n in range(6)}


@pytest.mark.slow
def test_compare_samplers_writes_plot_and_table(tmp_path):
    from scripts.compare_samplers import SAMPLERS, main

    table = main(
        ["--budget", "2", "--out", str(tmp_path), "--", *FAST_TRIAL[len(TEST_OVERRIDES) :], *SUBPROCESS_SEARCH[3:]]
    )
    assert table.sampler.tolist() == list(SAMPLERS)
    # every sampler ran at least one trial within its budget and found a model above chance (10 classes)
    assert (table.trials_finished + table.trials_pruned >= 1).all()
    assert (table.best_value.dropna() > 0.1).all()
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
    # hparams_search=mnist_cnn as the README runs it: its custom space (litlab.search.spaces.cnn_layers) must
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
