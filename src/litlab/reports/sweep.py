"""What a sweep leaves in its folder: best result, a table of all trials, plots and parameter importances."""

import warnings
from collections.abc import Collection
from datetime import datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # sweeps run on machines without a display

import matplotlib.pyplot as plt  # noqa: E402
import optuna  # noqa: E402
from hydra.core.override_parser.overrides_parser import OverridesParser  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from optuna.trial import TrialState  # noqa: E402
from optuna.visualization import matplotlib as optuna_plots  # noqa: E402

from litlab.search.storage import LAST_HEARTBEAT  # noqa: E402
from litlab.utils.pylogger import RankedLogger  # noqa: E402

log = RankedLogger(__name__)

PLOTS = {
    "optimization_history.png": optuna_plots.plot_optimization_history,
    "param_importances.png": optuna_plots.plot_param_importances,
    "intermediate_values.png": optuna_plots.plot_intermediate_values,
}


# The evaluator is passed explicitly, so that the label printed with the figures is the method that made them
# (Optuna 5's default is PED-ANOVA, no longer fANOVA).
IMPORTANCE_EVALUATOR = optuna.importance.PedAnovaImportanceEvaluator
IMPORTANCE_LABEL = "PED-ANOVA: how much each parameter sets the best trials apart"


def param_importances(study: optuna.Study) -> dict[str, float]:
    """PED-ANOVA importances over the parameters every finished trial shares; empty while fewer than 2 finished."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 2 or len(study.directions) > 1:
        return {}
    try:
        return optuna.importance.get_param_importances(study, evaluator=IMPORTANCE_EVALUATOR())
    except (ValueError, RuntimeError) as err:
        # e.g. every trial got the same value: nothing to apportion.
        log.warning(f"Parameter importances could not be computed: {err}")
        return {}


def plain_params(params: dict[str, Any], hydra_text: Collection[str] = ()) -> dict[str, Any]:
    """A trial's parameters as values: those of `hydra_text` (a choice over lists or dicts, which Optuna keeps as
    the override text, see litlab.search.params) parsed back by Hydra's own parser."""
    parser = OverridesParser.create()
    return {
        name: parser.parse_override(f"{name}={value}").value() if name in hydra_text else value
        for name, value in params.items()
    }


def best_result(study: optuna.Study, hydra_text: Collection[str] = ()) -> dict[str, Any]:
    """The best trial (or the Pareto front) with the study's counts, as `optimization_results.yaml` holds it;
    `hydra_text`: the parameters whose values are override text."""
    counts = {state.name.lower(): 0 for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
    for trial in study.get_trials(deepcopy=False):
        if trial.state.name.lower() in counts:
            counts[trial.state.name.lower()] += 1
    result: dict[str, Any] = {"name": "optuna", "study_name": study.study_name, "trials": counts}
    if not counts["complete"]:
        return result
    if len(study.directions) == 1:
        best = study.best_trial
        result.update(best_trial=best.number, best_params=plain_params(best.params, hydra_text), best_value=best.value)
    else:
        result["solutions"] = [
            {"params": plain_params(t.params, hydra_text), "values": t.values} for t in study.best_trials
        ]
    return result


def duration_seconds(trial: optuna.trial.FrozenTrial) -> float | None:
    """How long a trial ran: until it finished, or for a trial lost with its worker, until the worker's last
    heartbeat (it was failed later, by whichever process noticed the silence)."""
    if trial.datetime_start is None or trial.datetime_complete is None:
        return None
    end = trial.datetime_complete
    if LAST_HEARTBEAT in trial.user_attrs:
        end = min(end, datetime.fromisoformat(trial.user_attrs[LAST_HEARTBEAT]))
    return max(0.0, (end - trial.datetime_start).total_seconds())


def write_reports(study: optuna.Study, out_dir: str | Path, hydra_text: Collection[str] = ()) -> dict[str, float]:
    """Writes optimization_results.yaml, trials.csv and the plots into `out_dir`; returns the importances.

    `hydra_text`: the parameters whose values are override text (choices over lists or dicts), written as values.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    importances = param_importances(study)
    result = best_result(study, hydra_text)
    if importances:
        result["param_importances"] = importances
        result["param_importances_evaluator"] = IMPORTANCE_EVALUATOR.__name__
    OmegaConf.save(OmegaConf.create(result), out_dir / "optimization_results.yaml")

    table = study.trials_dataframe(attrs=("number", "value", "state", "params", "duration", "user_attrs"))
    if "duration" in table:
        table.pop("duration")
        table["duration_s"] = [duration_seconds(trial) for trial in study.get_trials(deepcopy=False)]
    table.to_csv(out_dir / "trials.csv", index=False)

    if len(study.directions) == 1 and result["trials"]["complete"]:
        for name, plot in PLOTS.items():
            if name == "param_importances.png" and not importances:
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
                try:
                    axes = plot(study)
                except ValueError as err:
                    log.warning(f"{name} was not drawn: {err}")
                    continue
            figure = axes.figure if hasattr(axes, "figure") else axes.flat[0].figure
            figure.set_size_inches(9, 5.5)
            figure.tight_layout()
            figure.savefig(out_dir / name, dpi=100)
            plt.close(figure)
    return importances


def format_importances(importances: dict[str, float]) -> str:
    """The importances as an aligned list, most important first."""
    if not importances:
        return "Parameter importances: not enough finished trials to compute them."
    width = max(map(len, importances))
    lines = [f"  {name:<{width}}  {value:6.3f}  {'#' * round(40 * value)}" for name, value in importances.items()]
    return f"Parameter importances ({IMPORTANCE_LABEL}):\n" + "\n".join(lines)


def results_markdown(result: dict[str, Any]) -> str:
    """An `optimization_results.yaml` as Markdown: trial counts and best value, then the best parameters beside
    their importances (most important first)."""
    trials = result.get("trials", {})
    counts = [sum(trials.values()), *(trials.get(state, 0) for state in ("complete", "pruned", "fail"))]
    lines = [
        "| trials | complete | pruned | failed | best value | best trial |",
        "|---|---|---|---|---|---|",
        "| " + " | ".join(map(str, [*counts, result.get("best_value", "-"), result.get("best_trial", "-")])) + " |",
    ]
    params = dict(result.get("best_params") or {})
    importances = dict(result.get("param_importances") or {})
    if params or importances:
        names = [*importances, *sorted(name for name in params if name not in importances)]
        lines += ["", "| parameter | best trial's value | importance |", "|---|---|---|"]
        lines += [
            f"| {name} | {params.get(name, '-')} | {f'{importances[name]:.3f}' if name in importances else '-'} |"
            for name in names
        ]
    return "\n".join(lines) + "\n"
