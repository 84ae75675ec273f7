"""No value from the environment in what a run prints or saves: it shows as its `${oc.env:NAME}`.

A secret (an API token, a password in a database or tracking URL) reaches a run through `${oc.env:NAME}`, so
that Hydra's saved config keeps only the name. Everything litlab resolves for people or files to read (the
printed config tree and config_tree.log, the loggers' hyperparameters, the run record, checkpoints) goes
through here:

- `environment_masked`: while it is open, `${oc.env:NAME}` resolves to the text `${oc.env:NAME}` when NAME is
  set, so a value built from it (`postgresql://me:${oc.env:PW}@host/db`) shows where the secret goes without it;
  an unset variable gives its default, which came from the config, not from the environment;
- `hide`: for values that were resolved already (a model's constructor arguments in a checkpoint), every
  occurrence of a value the config read from the environment becomes its `${oc.env:NAME}`.

The variables named in `extras.public_env` (PROJECT_ROOT, the repository root, by default) are paths, not
secrets, and show as they are.
"""

import contextlib
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.resolvers import oc

ENV_RESOLVER = "oc.env"
# A value this short is hidden only where it is a whole value: as a part of longer text it would hide every
# word that happens to contain it.
MIN_PART_LENGTH = 6


def mask(name: str) -> str:
    """What a value from the environment variable `name` shows as."""
    return f"${{oc.env:{name}}}"


def public_names(cfg: DictConfig) -> frozenset[str]:
    """The environment variables that `extras.public_env` lets runs show (paths, not secrets)."""
    names = OmegaConf.select(cfg, "extras.public_env", default=None)
    return frozenset(str(name) for name in names or ())


@contextlib.contextmanager
def environment_masked(public: Iterable[str] = ()) -> Iterator[dict[str, str]]:
    """Within it, `${oc.env:NAME}` of a set variable resolves to the text `${oc.env:NAME}` (but for `public`).

    Yields the variables read so, name to value, filled as the config is resolved.
    """
    public = frozenset(public)
    read: dict[str, str] = {}

    def masked_env(key: str, *default: Any) -> Any:
        if key in os.environ and key not in public:
            read[key] = os.environ[key]
            return mask(key)
        return oc.env(key, *default)

    OmegaConf.register_resolver(ENV_RESOLVER, masked_env, replace=True, annotation_validation="off")
    try:
        yield read
    finally:
        OmegaConf.register_resolver(ENV_RESOLVER, oc.env, replace=True, annotation_validation="off")


def masked_container(cfg: DictConfig) -> tuple[dict[str, Any], dict[str, str]]:
    """`cfg` resolved into plain containers with values from the environment masked, and those values by name."""
    with environment_masked(public_names(cfg)) as read:
        container = OmegaConf.to_container(cfg, resolve=True)
    return container, read


def environment_values(cfg: DictConfig) -> dict[str, str]:
    """The values `cfg` reads from the environment (but for `extras.public_env`), by variable name."""
    return masked_container(cfg)[1]


def hide(value: Any, secrets: Mapping[str, str]) -> Any:
    """`value` with every secret in its strings (in mappings, lists and tuples too) replaced by its mask."""
    if not secrets:
        return value
    if isinstance(value, str):
        for name, secret in sorted(secrets.items(), key=lambda item: -len(item[1])):
            if not secret:
                continue
            if value == secret:
                return mask(name)
            if len(secret) >= MIN_PART_LENGTH:
                value = value.replace(secret, mask(name))
        return value
    if isinstance(value, Mapping):
        return {key: hide(item, secrets) for key, item in value.items()}
    if isinstance(value, list):
        return [hide(item, secrets) for item in value]
    if isinstance(value, tuple):
        return tuple(hide(item, secrets) for item in value)
    return value
