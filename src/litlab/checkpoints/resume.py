"""`ckpt_path=last`: continue the newest run of the same task and experiment, in that run's own folder.

A run is found by its Hydra folder (`.hydra/hydra.yaml` records which experiment it composed) and continued
from the newest of its `last.ckpt` and Lightning's SLURM requeue checkpoints (`hpc_ckpt_N.ckpt`, written to
the trainer's `default_root_dir` when SLURM signals the job). The resumed run writes its checkpoints, results
and TensorBoard events into the old folder, so its curves continue in the same TensorBoard run; Hydra's
folder of the new invocation keeps only that invocation's config and log.
"""

from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from litlab.checkpoints.load import CheckpointFile
from litlab.utils.pylogger import RankedLogger

log = RankedLogger(__name__)

LAST = "last"
CHECKPOINT_PATTERNS = ("last.ckpt", "hpc_ckpt_*.ckpt")


def _experiment_of(hydra_yaml: Path) -> str | None:
    return OmegaConf.select(OmegaConf.load(hydra_yaml), "hydra.runtime.choices.experiment")


def find_last_checkpoint(log_dir: str | Path, task_name: str, experiment: str | None) -> Path | None:
    """The newest `last.ckpt` or `hpc_ckpt_N.ckpt` of a run of `task_name` that composed `experiment`.

    Runs and the jobs of multiruns alike live under `log_dir/task_name/`; None when there is none.
    """
    task_dir = Path(log_dir) / task_name
    if not task_dir.is_dir():
        return None
    candidates = []
    for hydra_yaml in task_dir.rglob(".hydra/hydra.yaml"):
        run_dir = hydra_yaml.parent.parent
        if _experiment_of(hydra_yaml) != experiment:
            continue
        for pattern in CHECKPOINT_PATTERNS:
            candidates += [path for path in run_dir.rglob(pattern) if path.is_file()]
    return max(candidates, key=lambda path: path.stat().st_mtime, default=None)


def run_dir_of(ckpt_path: Path) -> Path:
    """The Hydra run folder that holds a checkpoint: its nearest parent with a `.hydra` folder."""
    for parent in ckpt_path.parents:
        if (parent / ".hydra").is_dir():
            return parent
    return ckpt_path.parent


def _logged_step(ckpt_path: Path) -> int:
    """The step the run had logged up to when the checkpoint was written (Lightning logs per batch, not per
    optimizer step, so GANs with two optimizers log half their global step)."""
    # a corrupt or foreign file gets its one sentence here; Lightning reads the tensors when it resumes
    checkpoint = CheckpointFile.open(ckpt_path, mmap=True).content
    epoch_loop = checkpoint.get("loops", {}).get("fit_loop", {}).get("epoch_loop.state_dict", {})
    return int(epoch_loop.get("_batches_that_stepped", checkpoint.get("global_step", 0)))


def _continue_tensorboard(cfg: DictConfig, purge_step: int) -> None:
    """Points every TensorBoard logger at the newest version folder it already wrote in the resumed run.

    `purge_step` makes TensorBoard drop what the interrupted run logged after its checkpoint, so the
    replayed steps are not drawn twice.
    """
    for logger_cfg in (cfg.get("logger") or {}).values():
        if not str(logger_cfg.get("_target_", "")).endswith("TensorBoardLogger") or logger_cfg.get("version"):
            continue
        root = Path(logger_cfg.save_dir) / (logger_cfg.get("name") or "")
        versions = [int(p.name.split("_", 1)[1]) for p in root.glob("version_*") if p.name.split("_", 1)[1].isdigit()]
        if not versions:
            continue
        with open_dict(logger_cfg):
            logger_cfg.version = max(versions)
            logger_cfg.purge_step = purge_step


def resolve_last_checkpoint(cfg: DictConfig) -> bool:
    """Turns `ckpt_path=last` into the newest last checkpoint of this task and experiment, in place.

    The run's outputs (`paths.output_dir`: checkpoints, loggers, results) move to the resumed run's folder.
    Without such a checkpoint the run starts from scratch, as Lightning's own `ckpt_path="last"` does, so one
    command (an sbatch script that SLURM requeues, say) serves both the first start and every restart.
    Returns whether it found one (and so has already checked that it reads).
    """
    if cfg.get("ckpt_path") != LAST:
        return False
    experiment = HydraConfig.get().runtime.choices.get("experiment") if HydraConfig.initialized() else None
    ckpt_path = find_last_checkpoint(cfg.paths.log_dir, cfg.task_name, experiment)
    with open_dict(cfg):
        if ckpt_path is None:
            log.warning(
                f"ckpt_path=last: no last.ckpt of task '{cfg.task_name}' and experiment '{experiment}' under "
                f"{cfg.paths.log_dir}: starting a new run."
            )
            cfg.ckpt_path = None
            return False
        run_dir = run_dir_of(ckpt_path)
        log.info(f"ckpt_path=last: resuming {ckpt_path}; the run continues in {run_dir}")
        cfg.ckpt_path = str(ckpt_path)
        cfg.paths.output_dir = str(run_dir)
    _continue_tensorboard(cfg, _logged_step(ckpt_path))
    return True
