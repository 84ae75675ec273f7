"""Run and sweep folders never collide: `${litlab.new_dir:PARENT}` (src/litlab/folders.py)."""

import copy
import pickle
import re

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

from litlab import CONFIG_DIR, folders

STAMP = r"\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}"
SLURM = ("SLURM_JOB_ID", "SLURM_JOBID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID")


@pytest.fixture
def no_slurm(monkeypatch):
    for name in SLURM:
        monkeypatch.delenv(name, raising=False)


def test_each_call_creates_a_folder_of_its_own(tmp_path, no_slurm):
    made = [folders.new_dir(str(tmp_path / "runs")) for _ in range(20)]
    assert len(set(made)) == 20
    for path in made:
        assert re.fullmatch(rf"{STAMP}_[0-9a-f]{{6}}", path.rsplit("/", 1)[1])
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == sorted(m.rsplit("/", 1)[1] for m in made)


def test_a_name_taken_by_another_command_gets_another_suffix(tmp_path, no_slurm, monkeypatch):
    suffixes = iter(["aaaaaa", "aaaaaa", "bbbbbb"])
    monkeypatch.setattr(folders, "_suffix", lambda: next(suffixes))
    first = folders.new_dir(str(tmp_path))
    (tmp_path / first.rsplit("/", 1)[1] / "last.ckpt").write_text("the first run's")
    second = folders.new_dir(str(tmp_path))
    assert first.endswith("_aaaaaa") and second.endswith("_bbbbbb")
    assert (tmp_path / first.rsplit("/", 1)[1] / "last.ckpt").read_text() == "the first run's"


@pytest.mark.parametrize(
    "environ, name",
    [
        ({"SLURM_JOB_ID": "4242"}, "slurm4242"),
        ({"SLURM_JOB_ID": "4243", "SLURM_ARRAY_JOB_ID": "4200", "SLURM_ARRAY_TASK_ID": "7"}, "slurm4200_7"),
        ({"SLURM_JOBID": "99"}, "slurm99"),
        # half an array task's ids (a job that set one of them itself): the job id, not "slurm4200_None"
        ({"SLURM_JOB_ID": "4244", "SLURM_ARRAY_JOB_ID": "4200"}, "slurm4244"),
        ({"SLURM_JOB_ID": "4245", "SLURM_ARRAY_TASK_ID": "7"}, "slurm4245"),
    ],
)
def test_slurm_jobs_and_array_tasks_are_named_by_their_ids(environ, name, tmp_path, no_slurm, monkeypatch):
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    first, second = folders.new_dir(str(tmp_path)), folders.new_dir(str(tmp_path))
    assert re.fullmatch(rf"{STAMP}_{name}", first.rsplit("/", 1)[1])
    # two commands of one job in the same second (`python train.py ... &` twice in an sbatch script)
    assert second != first and re.fullmatch(rf"{STAMP}_{name}(_[0-9a-f]{{6}})?", second.rsplit("/", 1)[1])


def test_no_free_name_is_named_in_one_sentence(tmp_path, no_slurm, monkeypatch):
    tries = []
    monkeypatch.setattr(folders, "_suffix", lambda: tries.append(1) or "cccccc")
    folders.new_dir(str(tmp_path))
    tries.clear()
    with pytest.raises(FileExistsError, match=r"after 100 tries: .*hydra\.run\.dir=\.\.\.") as raised:
        folders.new_dir(str(tmp_path))
    # the first name and 100 further suffixes: the message counts what was tried
    assert len(tries) == 1 + folders.MAX_TRIES == 101, raised.value


@pytest.mark.parametrize("key, kind", [("hydra.run.dir", "runs"), ("hydra.sweep.dir", "multiruns")])
def test_the_configs_name_runs_and_sweeps_with_it_once_per_config(key, kind, tmp_path, no_slurm):
    with initialize_config_dir(config_dir=str(CONFIG_DIR)):
        cfg = compose("train", overrides=[f"paths.log_dir={tmp_path}"], return_hydra_config=True)
        other = compose("train", overrides=[f"paths.log_dir={tmp_path}"], return_hydra_config=True)
    folder = OmegaConf.select(cfg, key)
    # read again (Hydra, Lightning's DDP launcher through HydraConfig, a sweep's jobs): the same folder
    HydraConfig().set_config(cfg)
    assert OmegaConf.select(cfg, key) == folder == OmegaConf.select(HydraConfig.get(), key.removeprefix("hydra."))
    assert OmegaConf.select(copy.deepcopy(cfg), key) == folder
    assert OmegaConf.select(pickle.loads(pickle.dumps(cfg)), key) == folder  # a joblib or submitit job's copy
    assert OmegaConf.select(other, key) != folder
    assert folder.startswith(f"{tmp_path}/train/{kind}/")
    assert sorted(p.name for p in (tmp_path / "train" / kind).iterdir()) == sorted(
        p.rsplit("/", 1)[1] for p in (folder, OmegaConf.select(other, key))
    )


def test_a_folder_that_cannot_be_made_is_named_not_made(tmp_path, no_slurm, monkeypatch):
    """The failure is left to whoever uses the name (Hydra's callback says it in one sentence), not the config."""

    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(folders.Path, "mkdir", refuse)
    named = folders.new_dir(str(tmp_path / "read_only" / "runs"))
    assert re.fullmatch(
        rf"{re.escape(str(tmp_path))}/read_only/runs/\d{{4}}-\d\d-\d\d_\d\d-\d\d-\d\d_[0-9a-f]{{6}}", named
    )
    assert not (tmp_path / "read_only").exists()
