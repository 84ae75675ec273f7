"""A stored study keeps the directions it was created with; a sweep configured otherwise is refused."""

from collections.abc import Sequence

import optuna
from hydra.errors import CompactHydraException
from optuna.study import StudyDirection


class StudyDirectionError(CompactHydraException, ValueError):
    """The stored study optimises in other directions than `hydra.sweeper.direction` asks for."""


def _name(direction: str | StudyDirection) -> str:
    return (direction.name if isinstance(direction, StudyDirection) else str(direction)).lower()


def check_directions(study: optuna.Study, configured: Sequence[str | StudyDirection]) -> None:
    """Refuses to add trials to a study whose stored directions differ from the configured ones.

    Optuna's `create_study(load_if_exists=True)` loads the stored study and silently drops the
    directions it was given, so rerunning a sweep with `direction=minimize` would keep maximising.
    """
    stored = [_name(d) for d in study.directions]
    wanted = [_name(d) for d in configured]
    if stored != wanted:
        raise StudyDirectionError(
            f"The stored study '{study.study_name}' optimises {', '.join(stored)}, but hydra.sweeper.direction "
            f"asks for {', '.join(wanted)}: set hydra.sweeper.direction={stored[0] if len(stored) == 1 else stored} "
            "to continue it, or give a new hydra.sweeper.study_name for the new direction."
        )
