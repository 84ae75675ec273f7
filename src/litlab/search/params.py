"""The search space of `hydra.sweeper.params`, parsed with Hydra's own override parser into Optuna distributions.

model.optimizer.lr: tag(log, interval(1e-5, 1e-2))   ->  FloatDistribution(1e-5, 1e-2, log=True)
trainer.max_epochs: range(2, 10, 2)                   ->  IntDistribution(2, 8, step=2)
model/optimizer: choice(adam, sgd)                    ->  CategoricalDistribution(["adam", "sgd"]), a preset
model.net.channels: choice([8,16], [16,32])           ->  CategoricalDistribution(["[8,16]", "[16,32]"]), as text
data.batch_size: 64                                   ->  a fixed override, not searched
"""

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import (
    ChoiceSweep,
    IntervalSweep,
    Override,
    Quote,
    QuotedString,
    RangeSweep,
    Transformer,
)
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from litlab.search.errors import SweepError


@dataclass
class SearchSpace:
    """What Optuna searches, and the overrides every trial gets as they are."""

    distributions: dict[str, BaseDistribution] = field(default_factory=dict)
    fixed: list[str] = field(default_factory=list)
    # Parameters whose choices are override text: Optuna's choices are scalars, so a choice over lists or dicts
    # keeps each value as the text Hydra parses back into it, which a trial writes unquoted.
    hydra_text: set[str] = field(default_factory=set)


def _structured(override: Override) -> bool:
    """Whether a choice holds a list or a dict."""
    return isinstance(override.value(), ChoiceSweep) and any(
        isinstance(v, (list, dict)) for v in override.sweep_iterator()
    )


def _choices(override: Override) -> CategoricalDistribution:
    values = list(override.sweep_iterator())
    if _structured(override):
        # Hydra's own text for what it parsed (the quoted strings inside a list included); a string beside them quoted
        values = [Transformer.str(v) if isinstance(v, (list, dict)) else quote(v) for v in values]
    return CategoricalDistribution(values)


def _range(override: Override, sweep: RangeSweep) -> BaseDistribution:
    if sweep.shuffle or sweep.transformers:
        return _choices(override)
    values = list(sweep.range())
    if not values:
        raise ValueError("the range holds no value")
    if len(values) == 1 or not isinstance(sweep.step, (int, float, Decimal)):
        return CategoricalDistribution(values)
    if all(isinstance(v, int) for v in values):
        return IntDistribution(min(values), max(values), step=abs(values[1] - values[0]))
    # Hydra's stop is exclusive, Optuna's high inclusive: the last value Hydra yields is the high end.
    low, high = float(min(values)), float(max(values))
    step = float(abs(Decimal(str(values[1])) - Decimal(str(values[0]))))
    return FloatDistribution(low, high, step=step)


def _interval(sweep: IntervalSweep) -> BaseDistribution:
    log = "log" in sweep.tags
    if isinstance(sweep.start, int) and isinstance(sweep.end, int):
        return IntDistribution(sweep.start, sweep.end, log=log)
    return FloatDistribution(float(sweep.start), float(sweep.end), log=log)


def distribution(override: Override) -> BaseDistribution:
    """The Optuna distribution of one sweep override (`choice`, `range` or `interval`, optionally tagged log)."""
    value = override.value()
    if isinstance(value, ChoiceSweep):
        return _choices(override)
    if isinstance(value, RangeSweep):
        return _range(override, value)
    if isinstance(value, IntervalSweep):
        return _interval(value)
    raise ValueError(f"{type(value).__name__} sweeps are not supported: use choice, range or interval")


def parse_search_space(arguments: list[str]) -> SearchSpace:
    """Parses `key=value` arguments; a sweep becomes a distribution, anything else a fixed override.

    A later argument for a key replaces an earlier one, so the command line wins over `hydra.sweeper.params`.
    An invalid argument is named in the error, which Optuna's own message (e.g. "`low <= high` must hold") is not.
    """
    space = SearchSpace()
    fixed: dict[str, str] = {}
    parser = OverridesParser.create()
    for argument in arguments:
        override = parser.parse_override(argument)
        key = override.get_key_element()
        space.distributions.pop(key, None)
        space.hydra_text.discard(key)
        fixed.pop(key, None)
        if not override.is_sweep_override():
            fixed[key] = argument
            continue
        try:
            space.distributions[key] = distribution(override)
            if _structured(override):
                space.hydra_text.add(key)
        except ValueError as err:
            raise SweepError(
                f"The sweep parameter `{argument}` is invalid ({err}): fix its range in hydra.sweeper.params "
                "or on the command line."
            ) from None
    space.fixed = list(fixed.values())
    return space


def grid_choices(distributions: dict[str, BaseDistribution]) -> dict[str, list[Any]]:
    """Every value of each distribution, for Optuna's GridSampler (which needs discrete ones)."""
    grid = {}
    for name, dist in distributions.items():
        if isinstance(dist, CategoricalDistribution):
            grid[name] = list(dist.choices)
        elif isinstance(dist, IntDistribution) and not dist.log:
            grid[name] = list(range(dist.low, dist.high + 1, dist.step))
        elif isinstance(dist, FloatDistribution) and dist.step is not None:
            count = round((dist.high - dist.low) / dist.step) + 1
            grid[name] = [float(Decimal(str(dist.low)) + i * Decimal(str(dist.step))) for i in range(count)]
        else:
            raise SweepError(
                f"The grid sampler needs discrete values, but `{name}` is continuous: give it as choice(...) "
                "or range(...), or pick another sampler."
            )
    return grid


def quote(value: Any) -> str:
    """`value` written so that Hydra's override parser reads it back unchanged (lists and dicts included)."""
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(quote(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{quote(v)}" for k, v in value.items()) + "}"
    if value is None:
        return "null"
    if isinstance(value, (bool, int, float)):
        return str(value).lower() if isinstance(value, bool) else repr(value)
    # Hydra reads a backslash literally unless it precedes a quote: only those are escaped.
    return QuotedString(text=str(value), quote=Quote.single).with_quotes()


def format_override(name: str, value: Any) -> str:
    """The override that sets `name` to `value` for one trial."""
    return f"{name}={quote(value)}"
