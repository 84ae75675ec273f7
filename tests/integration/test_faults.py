"""Faults and bad input, as a user meets them: each case from issues 13 and 24 as a test.

Command-line cases run `python train.py ...` as real processes (several at once, to share the startup cost)
and assert on what the terminal shows: one sentence that names the fix, no traceback, exit status 1.
"""

import io
import os
import shutil
import subprocess
import sys
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import optuna
import pandas as pd
import pytest
import torch
from omegaconf import open_dict
from optuna.trial import TrialState

from litlab import ROOT_DIR
from litlab.data.text import read_sentences
from litlab.reports.sweep import format_importances, param_importances
from litlab.train import train
from litlab.utils.utils import get_metric_value
from tests.helpers.config import TEST_OVERRIDES, run_entry, train_config
from tests.helpers.sweep import run_sweep, trials_by_state

QUIET = [
    *TEST_OVERRIDES,
    "callbacks.model_summary=null",
    "+trainer.enable_model_summary=false",
    "+trainer.enable_progress_bar=false",
]


class Evil:
    """A pickle that runs code when loaded without `weights_only=True`: it creates a marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def write_evil_checkpoint(path: Path, marker: Path) -> Path:
    torch.save({"state_dict": {}, "payload": Evil(marker)}, path)
    return path


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """`python train.py <args>` in a fresh process without a terminal, its logs under `cwd`."""
    env = {name: value for name, value in os.environ.items() if name != "HYDRA_FULL_ERROR"}
    env.update(PYTHONPATH=str(ROOT_DIR / "src"), OMP_NUM_THREADS="1")
    return subprocess.run(
        [sys.executable, str(ROOT_DIR / "train.py"), *QUIET, f"paths.log_dir={cwd}", *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def cli(tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    """The cases that need a real terminal session, run at once in their own folders."""
    root = tmp_path_factory.mktemp("cli")
    evil = write_evil_checkpoint(root / "evil.ckpt", root / "pwned")
    cases = {
        "batch_size": ["data.batch_size=abc"],
        # the command, word for word
        "bypass": [
            "+callbacks.x._target_=lightning.pytorch.LightningModule.load_from_checkpoint",
            f"+callbacks.x.checkpoint_path={evil}",
            "+callbacks.x.weights_only=false",
            "trainer.fast_dev_run=true",
        ],
        "nan": ["model.optimizer.lr=1e6", "model/optimizer=sgd", "trainer.max_epochs=2"],
        "grid": ["-m", "data.batch_size=abc,def"],
    }
    for name in cases:
        (root / name).mkdir()
    with ThreadPoolExecutor(max_workers=len(cases)) as pool:
        futures = {name: pool.submit(run_cli, args, root / name) for name, args in cases.items()}
        results = {name: future.result() for name, future in futures.items()}
    results["root"] = root
    return results


def run_main(args: list[str], tmp_path: Path, monkeypatch, capsys, entry: str = "train.py") -> tuple[int, str, str]:
    """`python <entry> <args>` in this process (Hydra's own entry, argument parsing and error report included)."""
    quiet = {"train.py": QUIET, "export.py": ["extras.print_config=false"]}.get(
        entry, ["trainer.accelerator=cpu", "extras.print_config=false"]
    )
    monkeypatch.setattr(sys, "argv", [entry, *quiet, f"paths.log_dir={tmp_path}", *args])
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # no terminal
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    code = 0
    try:
        run_entry(entry)
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_sentence(code: int, out: str, err: str, *fragments: str, max_lines: int = 12) -> str:
    """Exit status 1, no traceback, a short output ending in one sentence that holds `fragments`."""
    output = out + err
    assert code == 1, output
    assert "Traceback" not in output, output
    sentence = err.strip().splitlines()[-1]
    for fragment in fragments:
        assert fragment in sentence, sentence
    assert "HYDRA_FULL_ERROR=1" in sentence and ".log;" in sentence  # where the full traceback is
    assert output.count(sentence.split(" [")[0]) == 1  # said once, not once per logger
    assert len(output.splitlines()) <= max_lines, output
    return sentence


def assert_cli_sentence(result: subprocess.CompletedProcess, *fragments: str, max_lines: int = 12) -> str:
    return assert_one_sentence(result.returncode, result.stdout, result.stderr, *fragments, max_lines=max_lines)


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["data.batch_size=abc"], ["data.batch_size must be a positive integer, got 'abc'", "data.batch_size=64"]),
        (["ckpt_path=nope.ckpt"], ["nope.ckpt' does not exist: pass ckpt_path="]),
        (
            ["ckpt_path=CORRUPT"],
            ["is corrupt or not a PyTorch checkpoint", "pass ckpt_path=<run dir>/checkpoints/<file>.ckpt"],
        ),
        (["tags=[]", "extras.enforce_tags=true"], ["no terminal to ask for them: set them with `tags=[...]`"]),
        (
            ["model.optimizer._target_=torch.optim.Adamx"],
            ["model.optimizer._target_=torch.optim.Adamx names no class that can be imported: fix the name"],
        ),
        (
            ["model.scheduler._target_=torch.optim.lr_scheduler.Cosinus"],
            ["model.scheduler._target_=torch.optim.lr_scheduler.Cosinus names no class that can be imported"],
        ),
        (["model.optimizer.lr=0"], ["The learning rate must be positive, got model.optimizer.lr=0."]),
        (["data.folds=5", "data.fold=5"], ["data.fold must be one of 0..4 with data.folds=5, got 5: set data.fold=0"]),
    ],
)
def test_bad_input_prints_one_sentence_naming_the_fix(tmp_path, monkeypatch, capsys, args, fragments):
    corrupt = tmp_path / "corrupt.ckpt"
    corrupt.write_bytes(b"PK\x03\x04 truncated")
    args = [a.replace("CORRUPT", str(corrupt)).replace("nope.ckpt", str(tmp_path / "nope.ckpt")) for a in args]
    code, out, err = run_main(args, tmp_path, monkeypatch, capsys)
    assert_one_sentence(code, out, err, *fragments)
    assert "Starting training" not in out  # refused before any data was read


def test_more_folds_than_a_class_holds_is_one_sentence(tmp_path, monkeypatch, capsys):
    # Found once the data is read (in setup), before the first step.
    code, out, err = run_main(["data.folds=500", "data.fold=0"], tmp_path, monkeypatch, capsys)
    assert_one_sentence(code, out, err, "data.folds=500 is more than the 130 training images of class 3", "at most 130")


@pytest.mark.parametrize("entry", ["eval.py", "predict.py", "export.py"])
def test_every_entry_point_answers_a_missing_checkpoint_with_one_sentence(tmp_path, monkeypatch, capsys, entry):
    missing = tmp_path / "gone.ckpt"
    args = [f"ckpt_path={missing}", *([f"inputs={tmp_path}"] if entry == "predict.py" else [])]
    code, out, err = run_main(args, tmp_path, monkeypatch, capsys, entry)
    assert_one_sentence(code, out, err, f"{missing}' does not exist: pass ckpt_path=")


def test_missing_gpu_says_how_to_pick_the_cpu(tmp_path, monkeypatch, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    code, out, err = run_main(["trainer.accelerator=gpu"], tmp_path, monkeypatch, capsys)
    assert_one_sentence(
        code, out, err, "trainer.accelerator=gpu asks for a GPU, but this machine has none", "trainer=cpu"
    )


def test_terminal_shows_one_sentence_and_the_log_file_the_traceback(cli):
    sentence = assert_cli_sentence(cli["batch_size"], "data.batch_size must be a positive integer, got 'abc'")
    log_file = Path(sentence.split("full traceback in ")[1].split(";")[0])
    assert "Traceback" in log_file.read_text() and "require_positive_ints" in log_file.read_text()


def test_hydra_full_error_prints_the_traceback(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    monkeypatch.setattr(sys, "argv", ["train.py", *QUIET, f"paths.log_dir={tmp_path}", "data.batch_size=abc"])
    with pytest.raises(ValueError, match="data.batch_size must be a positive integer") as raised:
        run_entry("train.py")
    assert any(frame.name == "require_positive_ints" for frame in traceback.extract_tb(raised.tb))


def test_config_cannot_load_a_pickle_through_the_whitelist(cli):
    assert_cli_sentence(cli["bypass"], "`callbacks.x._target_` names", "a loading function")
    assert not (cli["root"] / "pwned").exists()


def test_whitelist_refuses_the_bypass_family(tmp_path):
    from litlab.utils.errors import explain  # imported here so that the other tests run on code without it

    marker = tmp_path / "pwned"
    evil = write_evil_checkpoint(tmp_path / "evil.ckpt", marker)
    family = {
        "lightning.pytorch.LightningModule.load_from_checkpoint": [f"checkpoint_path={evil}", "weights_only=false"],
        "litlab.models.ImageClassifier.load_from_checkpoint": [f"checkpoint_path={evil}", "weights_only=false"],
        "torch.load": [f"f={evil}", "weights_only=false"],
        "lightning.fabric.utilities.cloud_io._load": [f"path_or_url={evil}", "weights_only=false"],
        "litlab.checkpoints.load.torch.load": [f"f={evil}", "weights_only=false"],
        "pickle.loads": [f"data={evil}"],
        "os.system": [f"_args_=['touch {marker}']"],
        "lightning.pytorch.callbacks.model_checkpoint.os.system": [f"_args_=['touch {marker}']"],
        "subprocess.run": [f"_args_=[[touch,{marker}]]"],
        "builtins.exec": [f"_args_=['open(\\'{marker}\\', \\'w\\')']"],
        "builtins.eval": [f"_args_=['open(\\'{marker}\\', \\'w\\')']"],
        "torch.optim.Adam.load_state_dict": ["state_dict={}"],
    }
    for target, arguments in family.items():
        overrides = [f"+callbacks.x._target_={target}", *(f"+callbacks.x.{a}" for a in arguments)]
        with pytest.raises(Exception, match=rf"`{target}`|{target.rsplit('.', 1)[-1]}") as refused:
            train(train_config([*overrides, "trainer.fast_dev_run=true"], tmp_path / target))
        assert "configs may not" in explain(refused.value), (target, explain(refused.value))
        assert not marker.exists(), target


def test_diverging_run_fails_with_the_step_and_what_to_lower(cli):
    result = cli["nan"]
    # Lightning's own start-up lines come first (about ten); the failure itself is one sentence.
    assert_cli_sentence(
        result,
        "DivergenceError: The training loss became NaN or infinite at step",
        "lower the learning rate (model.optimizer.lr=1000000.0)",
        max_lines=25,
    )
    assert "Best checkpoint" not in result.stdout + result.stderr


def test_unlogged_optimized_metric_warns_outside_a_sweep(tmp_path, monkeypatch, capsys):
    code, out, err = run_main(["optimized_metric=val/nope", "trainer.fast_dev_run=true"], tmp_path, monkeypatch, capsys)
    assert code == 0, out + err
    assert "The optimized_metric 'val/nope' was not logged by this run" in out


@pytest.mark.parametrize("off", ["~logger", "logger=null"])
def test_runs_without_a_logger_drop_the_logger_only_callbacks(tmp_path, monkeypatch, capsys, off):
    code, out, err = run_main([off, "trainer.fast_dev_run=true"], tmp_path, monkeypatch, capsys)
    assert code == 0, out + err
    assert "No logger configured: dropping the callbacks that need one (LearningRateMonitor)" in out
    assert not list(tmp_path.rglob("events.out.tfevents*"))


def test_logger_none_from_python_runs(tmp_path):
    # lightning-hydra-template's own tests set cfg.logger = None.
    cfg = train_config(["trainer.fast_dev_run=true"], tmp_path)
    with open_dict(cfg):
        cfg.logger = None
    metrics, objects = train(cfg)
    assert objects["trainer"].loggers == [] and "test/acc" in metrics


def test_get_metric_value_fails_only_in_a_sweep(tmp_path):
    train_config([], tmp_path)  # a single run's Hydra config
    assert get_metric_value({"val/acc": torch.tensor(0.5)}, "val/nope") is None


# --- checkpoints -------------------------------------------------------------------------------------------------


def test_resume_after_a_plateau_continues_from_the_last_epoch(tmp_path):
    # mode=min on val/acc: the "best" checkpoint is the first epoch, and the metric then only gets worse.
    run = ["callbacks.model_checkpoint.mode=min", "callbacks.early_stopping=null", "+trainer.limit_train_batches=5"]
    train(train_config([*run, "trainer.max_epochs=3", "logger=csv"], tmp_path / "first"))
    last = tmp_path / "first" / "checkpoints" / "last.ckpt"
    saved = torch.load(last, weights_only=True)
    assert (saved["epoch"], saved["global_step"]) == (2, 15)

    resumed = [*run, "trainer.max_epochs=4", "logger=csv", f"ckpt_path={last}"]
    _, objects = train(train_config(resumed, tmp_path / "resumed"))
    metrics = pd.read_csv(Path(objects["logger"][0].log_dir) / "metrics.csv")
    assert set(metrics.dropna(subset=["val/acc"])["epoch"].astype(int)) == {3}  # one more epoch, not three again


def test_resuming_a_one_cycle_run_with_more_epochs_is_refused_before_training(tmp_path):
    run = ["model/scheduler=onecycle", "callbacks.early_stopping=null", "+trainer.limit_train_batches=3"]
    train(train_config([*run, "trainer.max_epochs=1"], tmp_path / "first"))
    last = tmp_path / "first" / "checkpoints" / "last.ckpt"
    cfg = train_config([*run, "trainer.max_epochs=3", f"ckpt_path={last}"], tmp_path / "resumed")
    with pytest.raises(
        ValueError, match=r"one-cycle schedule was planned for 3 steps, but trainer.max_epochs=3 needs 9"
    ):
        train(cfg)


# --- sweeps ------------------------------------------------------------------------------------------------------


SWEEP = [
    "hparams_search=samplers_compare",
    "hydra/sweeper/sampler=random",
    "hydra.sweeper.timeout=null",
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=6",
    "callbacks.divergence.check_every_n_steps=2",
]


def test_a_diverging_trial_is_fail_in_a_sweep(tmp_path, monkeypatch):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    search = [
        *SWEEP,
        "hydra.sweeper.n_trials=1",
        "hydra.sweeper.max_failure_rate=1.0",
        f"hydra.sweeper.storage={storage}",
        "model.optimizer.lr=choice(1e6)",
        "model/optimizer=choice(sgd)",
    ]
    run_sweep(search, tmp_path, monkeypatch)
    (failed,) = trials_by_state(storage, "samplers_compare")["FAIL"]
    assert failed.user_attrs["fail_reason"].startswith("DivergenceError: The training loss became NaN or infinite")


def test_a_stored_study_refuses_another_direction(tmp_path, monkeypatch, capsys):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    optuna.create_study(study_name="samplers_compare", storage=storage, direction="maximize")
    search = [
        *SWEEP,
        "hydra.sweeper.n_trials=1",
        f"hydra.sweeper.storage={storage}",
        "hydra.sweeper.direction=minimize",
    ]
    with pytest.raises(SystemExit):
        run_sweep(search, tmp_path, monkeypatch)
    err = capsys.readouterr().err.strip()
    assert err.endswith(
        "The stored study 'samplers_compare' optimises maximize, but hydra.sweeper.direction asks for minimize: "
        "set hydra.sweeper.direction=maximize to continue it, or give a new hydra.sweeper.study_name for the new "
        "direction."
    )
    assert "Traceback" not in err
    assert optuna.load_study(study_name="samplers_compare", storage=storage).trials == []


def test_importance_label_names_the_evaluator_used():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: t.suggest_float("x", -1, 1) ** 2 + 0.01 * t.suggest_float("y", -1, 1), n_trials=30)
    importances = param_importances(study)
    assert list(importances) == ["x", "y"]
    assert importances == optuna.importance.get_param_importances(
        study, evaluator=optuna.importance.PedAnovaImportanceEvaluator()
    )
    assert format_importances(importances).startswith("Parameter importances (PED-ANOVA")
    assert all(t.state == TrialState.COMPLETE for t in study.trials)


# --- data -------------------------------------------------------------------------------------------------------


def test_corpus_refuses_binary_files_and_names_empty_ones(tmp_path, caplog):
    binary = tmp_path / "model.bin"
    binary.write_bytes(torch.randn(256).numpy().tobytes())
    with pytest.raises(ValueError, match=r"Corpus file '.*model.bin' is not UTF-8 text .*set data.corpus to a plain"):
        read_sentences(binary)

    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "a.txt").write_text("the cat sat on the mat\n")
    (folder / "b.txt").write_text("")
    with caplog.at_level("WARNING"):
        assert read_sentences(folder) == [["the", "cat", "sat", "on", "the", "mat"]]
    assert "b.txt' holds no words (it is empty or has no letters)" in caplog.text
    with pytest.raises(ValueError, match="holds no words: set data.corpus to a text file with some text"):
        read_sentences(folder / "b.txt")


@pytest.mark.parametrize("shape", [(), (1,)], ids=["cpu-read", "device-flag"])
def test_divergence_guard_names_the_first_bad_step_and_waits_for_its_check(shape):
    # A scalar CPU loss is read directly; any other loss goes through the flags an accelerator uses.
    from types import SimpleNamespace

    from litlab.callbacks import DivergenceGuard
    from litlab.callbacks.divergence import DivergenceError

    strategy = SimpleNamespace(reduce_boolean_decision=lambda decision, all=True: decision)
    trainer = SimpleNamespace(global_step=10, current_epoch=1, optimizers=[], strategy=strategy, sanity_checking=False)
    guard = DivergenceGuard(check_every_n_steps=4)
    guard.on_train_start(trainer, None)
    losses = [1.0, 0.5, float("nan"), 0.7]
    for step, value in enumerate(losses[:3]):
        guard.on_train_batch_end(trainer, None, {"loss": torch.full(shape, value)}, None, step)
    with pytest.raises(DivergenceError, match=r"at step 13 \(epoch 1\)"):
        guard.on_train_batch_end(trainer, None, {"loss": torch.full(shape, losses[3])}, None, 3)
    guard.on_train_start(trainer, None)
    for step in range(8):
        guard.on_train_batch_end(trainer, None, torch.full(shape, 0.1), None, step)
    guard.on_train_epoch_end(trainer, None)


def test_a_failed_job_of_a_grid_multirun_prints_its_sentence(cli):
    result = cli["grid"]
    sentence = assert_cli_sentence(result, "data.batch_size must be a positive integer, got 'abc'", max_lines=20)
    log_file = Path(sentence.split("full traceback in ")[1].split(";")[0])
    assert log_file.parent.name == "0" and "require_positive_ints" in log_file.read_text()  # the first job's log


def run_as_user(entry: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """`python <entry> <args>` with the configs' own defaults (the config tree included), its logs under `cwd`."""
    env = {name: value for name, value in os.environ.items() if name != "HYDRA_FULL_ERROR"}
    env.update(PYTHONPATH=str(ROOT_DIR / "src"), OMP_NUM_THREADS="1")
    return subprocess.run(
        [sys.executable, str(ROOT_DIR / entry), f"paths.log_dir={cwd}", *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_missing_path_is_one_sentence_before_any_config_tree(tmp_path, classifier_ckpt):
    cases = {
        "eval": ("eval.py", [f"ckpt_path={tmp_path / 'missing.ckpt'}"]),
        "predict": ("predict.py", [f"ckpt_path={classifier_ckpt}", f"inputs={tmp_path / 'missing.png'}"]),
        "train": ("train.py", ["++trainer.fast_dev_run=true", "test=false", "~logger", "trainer.accelerator=cpu"]),
    }
    for name in cases:
        (tmp_path / name).mkdir()
    with ThreadPoolExecutor(max_workers=len(cases)) as pool:
        futures = {
            name: pool.submit(run_as_user, entry, args, tmp_path / name) for name, (entry, args) in cases.items()
        }
        results = {name: future.result() for name, future in futures.items()}
    for name, fragment in (
        ("eval", f"Checkpoint ckpt_path='{tmp_path / 'missing.ckpt'}' does not exist: pass ckpt_path="),
        ("predict", f"Input '{tmp_path / 'missing.png'}' does not exist: pass inputs="),
    ):
        assert_cli_sentence(results[name], fragment, max_lines=3)
    trained = results["train"]
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "CONFIG" in trained.stdout and "model" in trained.stdout  # train keeps its tree on the terminal


def test_eval_says_that_ckpt_path_last_is_trainings(tmp_path, monkeypatch, capsys):
    last = tmp_path / "train" / "runs" / "2026-01-01_00-00-00" / "checkpoints" / "last.ckpt"
    last.parent.mkdir(parents=True)
    last.write_bytes(b"")
    code, out, err = run_main(["ckpt_path=last"], tmp_path, monkeypatch, capsys, "eval.py")
    assert_one_sentence(
        code,
        out,
        err,
        "ckpt_path=last continues a training run in train.py; eval.py needs a checkpoint file: pass ckpt_path=",
        f"the newest under {tmp_path} is {last}",
    )


def test_a_network_outside_the_whitelist_is_named_by_its_own_key(tmp_path, monkeypatch, capsys):
    code, out, err = run_main(["model.net._target_=builtins.eval"], tmp_path, monkeypatch, capsys)
    assert_one_sentence(
        code, out, err, "The config key `model.net._target_` names `builtins.eval`, which is not a network"
    )


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder nobody may write into: read-only by its mode and, for root (whom modes do not stop), immutable."""
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o555)
    locked = os.geteuid() == 0
    if locked and (shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(folder)]).returncode):
        pytest.skip("running as root where `chattr +i` is not allowed: no folder is read-only to this process")
    yield folder
    if locked:
        subprocess.run(["chattr", "-i", str(folder)], check=True)
    folder.chmod(0o755)


def test_a_run_folder_that_cannot_be_made_is_one_sentence(tmp_path, monkeypatch, capsys, read_only_folder):
    # checked before Hydra makes the folder (and would end in its traceback)
    code, out, err = run_main(
        [f"ckpt_path={tmp_path}/x.ckpt"], read_only_folder / "logs", monkeypatch, capsys, "export.py"
    )
    output = out + err
    assert code == 1 and "Traceback" not in output and len(output.splitlines()) == 1, output
    assert err.startswith(f"Cannot create the folder {read_only_folder}/logs/export/runs/")
    assert f"in {read_only_folder}): point paths.log_dir (or hydra.run.dir) at a folder you can write to." in err


def test_export_names_the_file_it_cannot_write(tmp_path, monkeypatch, capsys, read_only_folder, classifier_ckpt):
    args = [f"ckpt_path={classifier_ckpt}", f"name={read_only_folder}/model"]
    code, out, err = run_main(args, tmp_path, monkeypatch, capsys, "export.py")
    assert_one_sentence(code, out, err, f"ExportPathError: Cannot write {read_only_folder}/model.onnx (", "name=")
    assert not list(read_only_folder.iterdir())


def test_a_missing_data_folder_is_named_before_the_config_tree(tmp_path, monkeypatch, capsys):
    missing = tmp_path / "missing.txt"
    args = ["experiment=word2vec_corpus", f"data.corpus={missing}", "extras.print_config=true"]
    code, out, err = run_main(args, tmp_path, monkeypatch, capsys)
    assert_one_sentence(code, out, err, f"Corpus '{missing}' does not exist: set data.corpus to", max_lines=3)
    assert "CONFIG" not in out
