"""One sentence per error on the terminal; the full traceback in the run's log file.

Hydra 1.4 prints a failed job's traceback (60 to 300 lines for an error raised inside Lightning) and
writes it to the job's log file. A user who mistyped a setting needs the message, the key at fault and
the fix, so a single run (`python train.py ...`) prints one sentence and exits 1, and so does a grid
multirun (`-m a=1,2`) whose job fails; `HYDRA_FULL_ERROR=1` restores Hydra's full report. Under litlab's
Optuna sweeper the exception goes on to the sweeper, which records the trial as failed. What fails before
a task starts (a run folder that cannot be made) gets its sentence from `OneSentenceErrors`, Hydra's callback.
"""

import contextlib
import logging
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from litlab.utils.pylogger import log_to_files
from litlab.whitelist import NetworkTargetError

log = logging.getLogger(__name__)

_FULL_KEY = re.compile(r"(?:^|\n)full_key: (\S+)")
_TARGET = re.compile(r"Error in call to target '([^']+)'")
_NO_ACCELERATOR = re.compile(
    r"(\w+?)Accelerator can not run on your system since the accelerator is not available"
    r"|No supported (\w+) backend found"
)


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def _accelerator_missing(err: BaseException) -> str | None:
    match = _NO_ACCELERATOR.search(_one_line(err))
    if not match:
        return None
    name = (match.group(1) or match.group(2)).lower().replace("cuda", "gpu")
    return (
        f"trainer.accelerator={name} asks for a {name.upper()}, but this machine has none: run on the CPU with "
        "trainer=cpu (or trainer.accelerator=cpu; trainer.accelerator=auto takes what is there)."
    )


_REFUSED_TARGET = re.compile(
    r"Target '([^']+)'(?: \(resolved from '([^']+)'\))? (?:is not in|cannot be authorized by) the Hydra execution"
)


def _config_key(err: BaseException) -> str | None:
    for text in (str(err), *getattr(err, "__notes__", ())):
        match = _FULL_KEY.search(text)
        if match:
            return match.group(1)
    return None


def _target_refused(err: BaseException) -> str | None:
    match = _REFUSED_TARGET.search(_one_line(err))
    if not match:
        return None
    target = match.group(2) or match.group(1)
    key = _config_key(err)
    where = f"The config key `{key}._target_`" if key else "A config"
    return (
        f"{where} names `{target}`, which configs may not run (they may build the Trainer, callbacks, loggers, "
        "profilers, strategies, plugins, optimizers, Optuna samplers, pruners and storages, and litlab's own "
        "classes; see src/litlab/whitelist.py): remove it, or add its package to TRUSTED_PACKAGES there."
    )


# Library errors whose own message does not say what to change, and the sentence that does.
TRANSLATIONS: tuple[Callable[[BaseException], str | None], ...] = (_accelerator_missing, _target_refused)


def explain(err: BaseException) -> str:
    """One line for an exception: its class and message, the config key it came from, and a fix if known."""
    refused = err.__cause__ if isinstance(err, InstantiationException) else err
    if isinstance(refused, NetworkTargetError):
        # a model refused a network setting of its own: the model's config key, then the model's argument
        key = _config_key(err)
        return refused.sentence(f"{key}.{refused.key}" if key else refused.key)
    if isinstance(err, InstantiationException) and err.__cause__ is not None:
        cause = explain(err.__cause__)
        target = _TARGET.search(str(err))
        where = _config_key(err) or (target.group(1) if target else None)
        return f"{cause} (building `{where}`)" if where and where not in cause else cause
    for translate in TRANSLATIONS:
        sentence = translate(err)
        if sentence:
            return sentence
    text = f"{type(err).__name__}: {_one_line(_FULL_KEY.sub('', str(err)))}"
    # Hydra names the config key of a failing `_target_` in a note on the exception (or in its message).
    key = _config_key(err)
    return f"{text} (building `{key}`)" if key and key not in text else text


def _log_files() -> list[str]:
    return [h.baseFilename for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)]


def _log_to_files(err: BaseException) -> None:
    # The console handler must not repeat what the sentence says; the file keeps the whole story.
    log_to_files(log, "Job failed", logging.ERROR, (type(err), err, err.__traceback__))


def _single_run() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.RUN


BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


def _grid_job() -> bool:
    """A job of Hydra's own sweeper (`-m a=1,2`), which ends the multirun with the first failed job's report.

    litlab's Optuna sweeper gets a trial's exception as it is: it records the trial as failed and goes on.
    """
    return HydraConfig.initialized() and HydraConfig.get().sweeper.get("_target_") == BASIC_SWEEPER


class JobFailedError(Exception):
    """A failed job of a grid multirun, as its one sentence; the job's log file holds the traceback.

    Hydra reports a multirun's failed job through `sys.excepthook`, which `OneSentenceErrors` makes print these
    as their sentence alone.
    """


def sentence(err: BaseException) -> str:
    """The line a user sees: what is wrong and how to fix it, then where the full traceback is."""
    files = _log_files()
    where = f"full traceback in {files[0]}; " if files else ""
    return f"{explain(err)} [{where}HYDRA_FULL_ERROR=1 prints it here]"


@contextlib.contextmanager
def report_errors() -> Iterator[None]:
    """Around a task's body: a failing single run prints one sentence and exits with status 1; a failing job of a
    grid multirun becomes a JobFailedError, which ends the multirun with that sentence.

    A context manager rather than a decorator, so that it adds no frame to a run's stack.
    """
    try:
        yield
    except Exception as err:
        if os.environ.get("HYDRA_FULL_ERROR") == "1" or not (_single_run() or _grid_job()):
            raise
        _log_to_files(err)
        if not _single_run():
            raise JobFailedError(sentence(err)) from None
        sys.stdout.flush()
        print(sentence(err), file=sys.stderr, flush=True)
        raise SystemExit(1) from None


def _sentence_for_failed_jobs(previous: Callable) -> Callable:
    def excepthook(kind: type[BaseException], err: BaseException, tb: TracebackType | None) -> None:
        if isinstance(err, JobFailedError):
            print(err, file=sys.stderr, flush=True)
        else:
            previous(kind, err, tb)

    excepthook.prints_job_sentences = True
    return excepthook


def _unwritable(folder: str) -> str | None:
    """Why `folder` cannot be made (the OS's reason), None when it can."""
    existing = Path(folder).expanduser().absolute()
    while not existing.exists():
        existing = existing.parent
    try:
        # made and removed at once: `folder` itself may hold a time that Hydra reads again a second later
        Path(tempfile.mkdtemp(dir=existing)).rmdir()
    except OSError as err:
        return f"{err.strerror or type(err).__name__} in {existing}"
    return None


class OneSentenceErrors(Callback):
    """Hydra's callback for what fails outside a task, in one sentence each (configs/hydra/default.yaml).

    A run or sweep folder that cannot be made ends the command before Hydra's traceback would; a failed job of a
    grid multirun is reported by its sentence (JobFailedError) instead of its traceback.
    """

    def _check(self, config: DictConfig, key: str) -> None:
        folder = OmegaConf.select(config, key)
        why = _unwritable(str(folder)) if folder else None
        if why:
            print(
                f"Cannot create the folder {folder} ({why}): point paths.log_dir (or {key}) at a folder you can "
                "write to.",
                file=sys.stderr,
                flush=True,
            )
            raise SystemExit(1)

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config, "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config, "hydra.sweep.dir")
        if os.environ.get("HYDRA_FULL_ERROR") != "1" and not getattr(sys.excepthook, "prints_job_sentences", False):
            sys.excepthook = _sentence_for_failed_jobs(sys.excepthook)
