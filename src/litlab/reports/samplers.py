"""Samplers compared on one search: best value so far against wall time and against epochs spent.

`scripts/compare_samplers.py` runs the search once per sampler, each in its own study of one storage, then
reads the studies back with these functions.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # comparisons run on machines without a display

import matplotlib.pyplot as plt  # noqa: E402
import optuna  # noqa: E402
import pandas as pd  # noqa: E402
from optuna.trial import TrialState  # noqa: E402


def epochs_spent(trials: list[optuna.trial.FrozenTrial]) -> int:
    """Training epochs the trials ran: each validation epoch reports one intermediate value, pruned trials too."""
    return sum(len(trial.intermediate_values) for trial in trials)


def finished_trials(storage: str, study_name: str) -> list[optuna.trial.FrozenTrial]:
    """The study's finished trials, or none while the sweep has not created the study yet."""
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        return []
    return [trial for trial in study.get_trials(deepcopy=False) if trial.state.is_finished()]


def progress(study: optuna.Study, counted: set[int] | None = None, epoch_budget: int | None = None) -> pd.DataFrame:
    """Per finished trial, in order of finishing: seconds since the study began, epochs spent, best so far.

    Only the trials in `counted` (None: all) count, and only as long as their epochs fit in `epoch_budget`.
    """
    trials = [
        t
        for t in study.get_trials(deepcopy=False)
        if t.state.is_finished() and t.datetime_complete and (counted is None or t.number in counted)
    ]
    if not trials:
        return pd.DataFrame(columns=["seconds", "epochs", "best", "state"])
    trials.sort(key=lambda t: t.datetime_complete)
    start = min(t.datetime_start for t in trials)
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    rows, best, epochs = [], None, 0
    for trial in trials:
        # every validation epoch reports one intermediate value, pruned trials included
        epochs += len(trial.intermediate_values)
        if epoch_budget is not None and epochs > epoch_budget:
            break
        if trial.state == TrialState.COMPLETE and trial.value is not None:
            better = best is None or (trial.value > best if maximize else trial.value < best)
            best = trial.value if better else best
        seconds = (trial.datetime_complete - start).total_seconds()
        rows.append({"seconds": seconds, "epochs": epochs, "best": best, "state": trial.state.name})
    return pd.DataFrame(rows)


def summarize(curves: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per sampler: best value, trial counts and epochs spent."""
    rows = []
    for name, curve in curves.items():
        states = curve["state"].value_counts() if len(curve) else pd.Series(dtype=int)
        rows.append(
            {
                "sampler": name,
                "best_value": curve["best"].dropna().iloc[-1] if curve["best"].notna().any() else None,
                "trials_finished": int(states.get("COMPLETE", 0)),
                "trials_pruned": int(states.get("PRUNED", 0)),
                "trials_failed": int(states.get("FAIL", 0)),
                "epochs_spent": int(curve["epochs"].iloc[-1]) if len(curve) else 0,
                "wall_s": round(float(curve["seconds"].iloc[-1])) if len(curve) else 0,
            }
        )
    return pd.DataFrame(rows)


def plot(curves: dict[str, pd.DataFrame], path: Path, metric: str, budget: str) -> None:
    """Best value so far against wall time (left) and against epochs spent (right), one line per sampler."""
    fig, (by_time, by_epochs) = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for name, curve in curves.items():
        curve = curve.dropna(subset=["best"])
        by_time.step(curve["seconds"], curve["best"], where="post", label=name, marker=".")
        by_epochs.step(curve["epochs"], curve["best"], where="post", label=name, marker=".")
    by_time.set_xlabel("wall time (s)")
    by_epochs.set_xlabel("epochs spent (all trials, pruned ones included)")
    by_time.set_ylabel(f"best {metric} so far")
    for ax in (by_time, by_epochs):
        ax.grid(alpha=0.3)
    by_epochs.legend()
    fig.suptitle(f"Samplers on an equal budget of {budget}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
