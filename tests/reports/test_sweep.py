"""What a sweep leaves in its folder: optimization_results.yaml, trials.csv, plots, importances and their Markdown."""

import csv
import logging
from datetime import datetime, timedelta

import matplotlib.pyplot as plt
import optuna
import pytest
from omegaconf import OmegaConf
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import FrozenTrial, TrialState
from PIL import Image

from litlab.reports import sweep
from litlab.reports.sweep import (
    IMPORTANCE_LABEL,
    best_result,
    duration_seconds,
    format_importances,
    param_importances,
    results_markdown,
    write_reports,
)
from litlab.search.storage import LAST_HEARTBEAT

T0 = datetime(2024, 5, 1, 12, 0, 0)
DISTRIBUTIONS = {"lr": FloatDistribution(1e-5, 1.0, log=True), "opt": CategoricalDistribution(("adam", "sgd"))}


def frozen(
    state: TrialState,
    *,
    value: float | None = None,
    values: list[float] | None = None,
    lr: float = 0.01,
    opt: str = "adam",
    start: datetime = T0,
    seconds: float | None = 1.0,
    intermediate: dict[int, float] | None = None,
    user_attrs: dict[str, str] | None = None,
) -> FrozenTrial:
    """A trial as a sweep leaves it, finished `seconds` after `start` (None: still running)."""
    return FrozenTrial(
        number=0,  # add_trial numbers the trials itself
        trial_id=0,
        state=state,
        value=value,
        values=values,
        datetime_start=start,
        datetime_complete=None if seconds is None else start + timedelta(seconds=seconds),
        params={"lr": lr, "opt": opt},
        distributions=DISTRIBUTIONS,
        user_attrs=user_attrs or {},
        system_attrs={},
        intermediate_values=intermediate or {},
    )


def study_of(*trials: FrozenTrial, directions: tuple[str, ...] = ("minimize",)) -> optuna.Study:
    study = optuna.create_study(study_name="lr-sweep", directions=list(directions))
    for trial in trials:
        study.add_trial(trial)
    return study


def complete(n: int) -> list[FrozenTrial]:
    """`n` finished trials whose value follows the learning rate, so that the importances are defined."""
    return [
        frozen(TrialState.COMPLETE, value=0.5 + i, lr=10.0 ** -(i + 1), opt=("adam", "sgd")[i % 2]) for i in range(n)
    ]


def two_objectives() -> optuna.Study:
    """Three finished trials trading one objective for the other: no single best trial."""
    return study_of(
        *(frozen(TrialState.COMPLETE, values=[1.0 + i, 2.0 - i], lr=10.0 ** -(i + 1)) for i in range(3)),
        directions=("minimize", "maximize"),
    )


def blank_plot(study: optuna.Study) -> plt.Axes:
    """Stands in for an Optuna plot where only which files get drawn matters: an empty Axes, drawn in milliseconds."""
    return plt.subplots()[1]


def broken_plot(study: optuna.Study) -> plt.Axes:
    raise ValueError("no two parameters to draw a contour of")


# Written out rather than copied from sweep.PLOTS: the report must recognise the importance plot by its name.
BLANK_PLOTS = {
    "optimization_history.png": blank_plot,
    "param_importances.png": blank_plot,
    "intermediate_values.png": blank_plot,
    "timeline.png": blank_plot,  # a plot a user adds, named after the importance plot in sort order
}


def drawn(out_dir) -> list[str]:
    return sorted(path.name for path in out_dir.glob("*.png"))


@pytest.fixture
def sweep_warnings(caplog):
    """The warnings litlab.reports.sweep logs during the test, without the rank prefix RankedLogger adds."""
    caplog.set_level(logging.WARNING, logger=sweep.__name__)
    return lambda: [
        record.getMessage().removeprefix("[rank: 0] ")
        for record in caplog.records
        if record.name == sweep.__name__ and record.levelno == logging.WARNING
    ]


def test_write_reports_writes_the_results_the_table_and_the_plots(tmp_path, sweep_warnings):
    started = [T0 + timedelta(minutes=i) for i in range(6)]
    study = study_of(
        frozen(TrialState.COMPLETE, value=0.9, lr=1e-2, start=started[0], seconds=3.0, intermediate={0: 1.3, 1: 0.9}),
        frozen(
            TrialState.COMPLETE, value=0.4, lr=1e-3, opt="sgd", start=started[1], seconds=2.0, intermediate={0: 0.8}
        ),
        frozen(TrialState.PRUNED, lr=1e-1, start=started[2], seconds=1.5, intermediate={0: 2.0}),
        # Lost with its worker: failed a minute later by whichever process noticed, but it ran 4 s.
        frozen(
            TrialState.FAIL,
            lr=1e-4,
            opt="sgd",
            start=started[3],
            seconds=60.0,
            user_attrs={LAST_HEARTBEAT: (started[3] + timedelta(seconds=4)).isoformat(timespec="seconds")},
        ),
        frozen(TrialState.COMPLETE, value=0.6, lr=3e-3, start=started[4], seconds=2.5, intermediate={0: 0.9, 1: 0.6}),
        frozen(TrialState.RUNNING, lr=1e-2, opt="sgd", start=started[5], seconds=None),
    )
    out_dir = tmp_path / "multirun" / "sweep"  # its parents do not exist yet

    importances = write_reports(study, out_dir)

    assert set(importances) == {"lr", "opt"}
    assert sum(importances.values()) == pytest.approx(1.0)
    assert OmegaConf.to_container(OmegaConf.load(out_dir / "optimization_results.yaml")) == {
        "name": "optuna",
        "study_name": "lr-sweep",
        "trials": {"complete": 3, "pruned": 1, "fail": 1},  # the running trial is none of them
        "best_trial": 1,
        "best_params": {"lr": 1e-3, "opt": "sgd"},
        "best_value": 0.4,
        "param_importances": importances,
        "param_importances_evaluator": "PedAnovaImportanceEvaluator",
    }
    with open(out_dir / "trials.csv", newline="") as file:
        rows = list(csv.reader(file))
    # No unnamed index column before `number`; durations in seconds rather than pandas' timedelta text.
    assert rows[0] == ["number", "value", "state", "params_lr", "params_opt", "user_attrs_last_heartbeat", "duration_s"]
    assert [row[-1] for row in rows[1:]] == ["3.0", "2.0", "1.5", "4.0", "2.5", ""]
    assert drawn(out_dir) == ["intermediate_values.png", "optimization_history.png", "param_importances.png"]
    for name in drawn(out_dir):
        with Image.open(out_dir / name) as image:
            assert image.size == (900, 550), name  # 9 x 5.5 inches at 100 dpi
    assert sweep_warnings() == []


def test_write_reports_leaves_the_importance_plot_out_without_importances(tmp_path, monkeypatch, sweep_warnings):
    monkeypatch.setattr(sweep, "PLOTS", BLANK_PLOTS)
    study = study_of(*complete(1), frozen(TrialState.PRUNED))

    assert write_reports(study, tmp_path) == {}

    assert drawn(tmp_path) == ["intermediate_values.png", "optimization_history.png", "timeline.png"]
    results = OmegaConf.load(tmp_path / "optimization_results.yaml")
    assert "param_importances" not in results
    assert "param_importances_evaluator" not in results
    assert sweep_warnings() == []


def test_write_reports_skips_a_plot_that_cannot_be_drawn_and_draws_the_others(tmp_path, monkeypatch, sweep_warnings):
    # The failing plot comes first, so that the ones after it show the report went on.
    monkeypatch.setattr(sweep, "PLOTS", {"contour.png": broken_plot, **BLANK_PLOTS})

    write_reports(study_of(*complete(2)), tmp_path)

    assert drawn(tmp_path) == [
        "intermediate_values.png",
        "optimization_history.png",
        "param_importances.png",
        "timeline.png",
    ]
    assert sweep_warnings() == ["contour.png was not drawn: no two parameters to draw a contour of"]


@pytest.mark.parametrize(
    "study",
    [
        pytest.param(
            two_objectives,
            id="two objectives",
        ),
        pytest.param(lambda: study_of(frozen(TrialState.PRUNED), frozen(TrialState.FAIL)), id="no complete trial"),
    ],
)
def test_write_reports_draws_nothing_without_a_single_best_trial(study, tmp_path, monkeypatch, sweep_warnings):
    monkeypatch.setattr(sweep, "PLOTS", BLANK_PLOTS)

    write_reports(study(), tmp_path)

    assert sorted(path.name for path in tmp_path.iterdir()) == ["optimization_results.yaml", "trials.csv"]
    assert sweep_warnings() == []


@pytest.mark.parametrize(("n_complete", "expected"), [(0, set()), (1, set()), (2, {"lr", "opt"})])
def test_param_importances_need_two_complete_trials(n_complete, expected, sweep_warnings):
    study = study_of(*complete(n_complete), frozen(TrialState.PRUNED), frozen(TrialState.FAIL))

    assert set(param_importances(study)) == expected
    assert sweep_warnings() == []  # too few trials is no error


def test_param_importances_are_left_out_for_several_objectives(sweep_warnings):
    assert param_importances(two_objectives()) == {}
    assert sweep_warnings() == []


@pytest.mark.parametrize("error", [ValueError, RuntimeError])
def test_param_importances_that_cannot_be_computed_are_a_warning(error, monkeypatch, sweep_warnings):
    def fail(study, evaluator):
        raise error("every trial scored the same")

    monkeypatch.setattr(optuna.importance, "get_param_importances", fail)

    assert param_importances(study_of(*complete(3))) == {}
    assert sweep_warnings() == ["Parameter importances could not be computed: every trial scored the same"]


def test_best_result_without_a_complete_trial_has_only_the_counts():
    study = study_of(frozen(TrialState.PRUNED), frozen(TrialState.FAIL), frozen(TrialState.FAIL))

    assert best_result(study) == {
        "name": "optuna",
        "study_name": "lr-sweep",
        "trials": {"complete": 0, "pruned": 1, "fail": 2},
    }


@pytest.mark.parametrize(
    ("start", "seconds", "heartbeat", "expected"),
    [
        pytest.param(T0, 90.0, None, 90.0, id="finished"),
        pytest.param(T0, 90.0, T0 + timedelta(seconds=30), 30.0, id="lost after its last heartbeat"),
        # The heartbeat is kept in whole seconds: a trial lost within the second it started seems to end before it.
        pytest.param(T0 + timedelta(seconds=0.6), 90.0, T0, 0.0, id="heartbeat before the start"),
        pytest.param(T0, None, None, None, id="running"),
    ],
)
def test_duration_seconds(start, seconds, heartbeat, expected):
    user_attrs = {} if heartbeat is None else {LAST_HEARTBEAT: heartbeat.isoformat(timespec="seconds")}
    state = TrialState.RUNNING if seconds is None else TrialState.FAIL
    trial = frozen(state, start=start, seconds=seconds, user_attrs=user_attrs)

    assert duration_seconds(trial) == expected


def test_format_importances_aligns_names_and_draws_bars():
    assert format_importances({"learning_rate": 0.75, "opt": 0.25}) == (
        f"Parameter importances ({IMPORTANCE_LABEL}):\n"
        f"  learning_rate   0.750  {'#' * 30}\n"
        f"  opt             0.250  {'#' * 10}"
    )
    assert format_importances({}) == "Parameter importances: not enough finished trials to compute them."


COUNTS_HEADER = "| trials | complete | pruned | failed | best value | best trial |\n|---|---|---|---|---|---|\n"
PARAMS_HEADER = "\n| parameter | best trial's value | importance |\n|---|---|---|\n"


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        pytest.param(
            {
                "trials": {"complete": 3, "pruned": 1, "fail": 1},
                "best_trial": 1,
                "best_value": 0.4,
                "best_params": {"opt": "sgd", "lr": 0.001, "batch_size": 64, "augment": True},
                "param_importances": {"opt": 0.7, "lr": 0.3},
            },
            COUNTS_HEADER
            + "| 5 | 3 | 1 | 1 | 0.4 | 1 |\n"
            + PARAMS_HEADER
            + "| opt | sgd | 0.700 |\n| lr | 0.001 | 0.300 |\n"  # the most important first
            + "| augment | True | - |\n| batch_size | 64 | - |\n",  # then the others, alphabetically
            id="params and importances",
        ),
        pytest.param(
            {
                "trials": {"complete": 1, "pruned": 0, "fail": 0},
                "best_trial": 0,
                "best_value": 0.5,
                "best_params": {"opt": "adam", "lr": 0.01},
            },
            COUNTS_HEADER + "| 1 | 1 | 0 | 0 | 0.5 | 0 |\n" + PARAMS_HEADER + "| lr | 0.01 | - |\n| opt | adam | - |\n",
            id="params only",
        ),
        pytest.param(
            # States missing from the file count 0, and the total is what it counts.
            {"name": "optuna", "trials": {"pruned": 2, "fail": 1}},
            COUNTS_HEADER + "| 3 | 0 | 2 | 1 | - | - |\n",
            id="no complete trial",
        ),
    ],
)
def test_results_markdown(result, expected):
    assert results_markdown(result) == expected
