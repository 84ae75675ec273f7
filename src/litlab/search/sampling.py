"""What keeps the workers of one study from evaluating the same parameters twice.

Each worker draws from a sampler of its own. Seeded alike, two samplers draw alike: the workers of one command, a
rerun of a command after a crash (its sampler starting over) and two commands started together would replay each
other's trials. So each worker's seed is derived from the configured seed, the number of trials the study held
when its command started and the worker's index: a new study with a fixed seed still reproduces its first trials,
and every other worker draws its own sequence. What chance or two truly simultaneous commands still repeat is
caught before it runs: a freshly sampled trial whose parameters another trial of the study holds is skipped.
In a discrete space, the next trial gets a parameter set nobody has evaluated instead (a sampler that has
converged keeps proposing the best one), until every set of the space is evaluated.
"""

import itertools
import math
import random
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

from litlab.search.storage import counts

# Where a trial asked for on purpose (enqueued, or the retry of a lost trial) keeps its parameters.
FIXED_PARAMS = "fixed_params"
# Discrete spaces up to this size are listed whole to find a set no trial evaluates.
ENUMERATED = 100_000


def worker_seed(seed: int | None, trials_before: int, index: int) -> int | None:
    """The sampler seed of worker `index` of a command that found `trials_before` trials in its study.

    The first worker of the first command keeps the configured seed itself, so that a new study reproduces its
    first trials; every other (command, worker) pair gets a seed of its own, spread by numpy's SeedSequence.
    """
    if seed is None:
        return None
    if trials_before == 0 and index == 0:
        return seed
    return int(np.random.SeedSequence([seed, trials_before, index]).generate_state(1)[0])


def _params(trial: FrozenTrial) -> Mapping[str, Any]:
    return trial.system_attrs.get(FIXED_PARAMS, trial.params)


def _evaluated(trial: FrozenTrial) -> bool:
    """Whether a trial's parameters are (being, or going to be) evaluated: not those of a lost trial."""
    return trial.state in (TrialState.RUNNING, TrialState.WAITING) or counts(trial)


def repeated_trial(trial: FrozenTrial, trials: Iterable[FrozenTrial]) -> int | None:
    """The number of another trial holding the parameters that `trial` was sampled with, if any.

    A trial asked for on purpose (enqueued, or a lost trial's retry) is never a repeat. Of two running trials
    sampled alike at the same moment, the later one is the repeat: the earlier one runs.
    """
    if FIXED_PARAMS in trial.system_attrs:
        return None
    for other in trials:
        if other.number == trial.number or not _evaluated(other) or _params(other) != trial.params:
            continue
        if other.state == TrialState.RUNNING and FIXED_PARAMS not in other.system_attrs and other.number > trial.number:
            continue
        return other.number
    return None


def space_size(distributions: Mapping[str, BaseDistribution]) -> int | None:
    """How many parameter sets a search space holds; None if it is continuous."""
    sizes = []
    for dist in distributions.values():
        if isinstance(dist, CategoricalDistribution):
            sizes.append(len(dist.choices))
        elif isinstance(dist, IntDistribution):
            sizes.append((dist.high - dist.low) // dist.step + 1)
        elif isinstance(dist, FloatDistribution) and dist.step is not None:
            sizes.append(round((dist.high - dist.low) / dist.step) + 1)
        else:
            return None
    return math.prod(sizes)


def _evaluated_sets(
    trials: Iterable[FrozenTrial], distributions: Mapping[str, BaseDistribution]
) -> set[tuple[str, ...]]:
    """The discrete space's sets that trials evaluate, by their values' reprs; not the sets of trials run on an
    earlier, wider space of the study (an int range narrowed between two commands)."""
    names = sorted(distributions)
    grid = {name: set(map(repr, _values(distributions[name]))) for name in names}
    seen = set()
    for trial in trials:
        params = _params(trial)
        if _evaluated(trial) and sorted(params) == names:
            point = tuple(repr(params[name]) for name in names)
            if all(value in grid[name] for name, value in zip(names, point, strict=True)):
                seen.add(point)
    return seen


def evaluated_sets(trials: Iterable[FrozenTrial], distributions: Mapping[str, BaseDistribution]) -> int:
    """How many distinct parameter sets of a discrete space the study's trials evaluate."""
    return len(_evaluated_sets(trials, distributions))


def _values(dist: BaseDistribution) -> list[Any]:
    if isinstance(dist, CategoricalDistribution):
        return list(dist.choices)
    if isinstance(dist, IntDistribution):
        return list(range(dist.low, dist.high + 1, dist.step))
    assert isinstance(dist, FloatDistribution) and dist.step is not None
    # Sets are told apart by their values' reprs: each value is the float Optuna suggests (optuna/_transform.py),
    # `i * step + low` clipped to `high` (3 * 0.1 is 0.30000000000000004, above a `high` of 0.3).
    return [min(i * dist.step + dist.low, dist.high) for i in range(round((dist.high - dist.low) / dist.step) + 1)]


def unevaluated_set(
    distributions: Mapping[str, BaseDistribution], trials: Iterable[FrozenTrial], seed: int
) -> dict[str, Any] | None:
    """A parameter set of a discrete space that no trial evaluates, picked at random (by `seed`); None if every
    one is, or the space is continuous."""
    size = space_size(distributions)
    if size is None:
        return None
    names = sorted(distributions)
    seen = _evaluated_sets(trials, distributions)
    grid = [_values(distributions[name]) for name in names]
    rng = random.Random(seed)
    if size <= ENUMERATED:
        free = [point for point in itertools.product(*grid) if tuple(map(repr, point)) not in seen]
        return dict(zip(names, rng.choice(free), strict=True)) if free else None
    for _ in range(1000):  # a large space is far from covered: a few random draws find a free set
        point = [rng.choice(values) for values in grid]
        if tuple(map(repr, point)) not in seen:
            return dict(zip(names, point, strict=True))
    return None
