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


def progress(study: optuna.Study) -> pd.DataFrame:
    """Per finished trial, in order of finishing: seconds since the study began, epochs spent, best so far."""
    trials = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished() and t.datetime_complete]
    if not trials:
        return pd.DataFrame(columns=["seconds", "epochs", "best", "state"])
    trials.sort(key=lambda t: t.datetime_complete)
    start = min(t.datetime_start for t in trials)
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    rows, best, epochs = [], None, 0
    for trial in trials:
        # every validation epoch reports one intermediate value, pruned trials included
        epochs += len(trial.intermediate_values)
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
            }
        )
    return pd.DataFrame(rows)


def plot(curves: dict[str, pd.DataFrame], path: Path, metric: str) -> None:
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
    fig.suptitle("Samplers on an equal time budget")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
