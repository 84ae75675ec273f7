"""Sweeps that lose workers and commands that share a study, at unit level: the watch of the command's process
(litlab.search.watch), seeds and repeated parameter sets (litlab.search.sampling), and the launcher hints (real
commands); the pool of worker jobs is tested in test_pool.py. The real sweeps, killed by real signals, are in
tests/integration/test_sweep_recovery.py."""

import os
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from hydra_plugins.litlab_optuna_sweeper import launchers
from litlab import CONFIG_DIR, ROOT_DIR
from litlab.reports.sweep import duration_seconds
from litlab.search import sampling, watch
from litlab.search.sampling import (
    FIXED_PARAMS,
    evaluated_sets,
    repeated_trial,
    space_size,
    unevaluated_set,
    worker_seed,
)
from litlab.search.storage import FAIL_REASON, LAST_HEARTBEAT, LOST_REASON
from litlab.search.watch import process_alive, this_process, watching

# --- seeds of their own (litlab.search.sampling) ---


def test_worker_seed_keeps_the_configured_one_for_the_first_worker_of_a_new_study_only():
    assert worker_seed(1234, 0, 0) == 1234
    seeds = {worker_seed(1234, before, index) for before in (0, 1, 7) for index in (0, 1, 2)}
    assert len(seeds) == 9  # every command (by what its study held) and worker draws its own sequence
    assert worker_seed(1234, 7, 2) == worker_seed(1234, 7, 2)  # reproducibly
    assert worker_seed(None, 7, 2) is None  # unseeded stays unseeded


# --- repeated parameter sets ---

SPACE = {"x": CategoricalDistribution([1, 2, 3]), "y": CategoricalDistribution(["a", "b"])}


def trial(number: int, state: TrialState, x: int, y: str = "a", **attrs) -> optuna.trial.FrozenTrial:
    """A trial of SPACE; `fixed=True` makes it one asked for on purpose (enqueued, or a retry)."""
    fixed = attrs.pop("fixed", False)
    made = create_trial(
        state=state,
        value=1.0 if state == TrialState.COMPLETE else None,
        params={"x": x, "y": y},
        distributions=SPACE,
        user_attrs=attrs,
        system_attrs={FIXED_PARAMS: {"x": x, "y": y}} if fixed else {},
    )
    made.number = number
    return made


@pytest.mark.parametrize(
    ("other", "repeat"),
    [
        (trial(0, TrialState.COMPLETE, 1), True),
        (trial(0, TrialState.PRUNED, 1), True),
        (trial(0, TrialState.FAIL, 1, **{FAIL_REASON: "NaN loss"}), True),  # it ran, and failed by itself
        (trial(0, TrialState.WAITING, 1, fixed=True), True),  # queued to run
        (trial(0, TrialState.RUNNING, 1), True),  # sampled alike a moment earlier: that one runs
        (trial(9, TrialState.RUNNING, 1), False),  # ... a moment later: this one runs, that one is the repeat
        (trial(9, TrialState.RUNNING, 1, fixed=True), True),  # a retry running those parameters
        (trial(0, TrialState.FAIL, 1, **{LOST_REASON: "lost: no heartbeat"}), False),  # never ran to its end
        (trial(0, TrialState.FAIL, 1, **{LOST_REASON: "skipped: trial 3 has the same parameters"}), False),
        (trial(0, TrialState.COMPLETE, 2), False),
        (trial(0, TrialState.COMPLETE, 1, "b"), False),
    ],
)
def test_a_sampled_trial_repeats_another_that_ran_runs_or_waits_with_its_parameters(other, repeat):
    mine = trial(5, TrialState.RUNNING, 1)
    assert repeated_trial(mine, [other, mine]) == (other.number if repeat else None)


def test_the_repeat_found_is_the_first_that_ran_past_trials_that_do_not_count():
    mine = trial(5, TrialState.RUNNING, 1)
    others = [trial(2, TrialState.COMPLETE, 2), trial(9, TrialState.RUNNING, 1), trial(3, TrialState.COMPLETE, 1)]
    assert repeated_trial(mine, [mine, *others]) == 3
    # a trial of a later number that finished (it was sampled alike, then ran to its end) is one too
    assert repeated_trial(mine, [mine, trial(9, TrialState.COMPLETE, 1)]) == 9


def test_a_trial_is_not_its_own_repeat_in_the_copy_the_study_hands_back():
    mine = trial(1000, TrialState.RUNNING, 1)
    copy = trial(int("1000"), TrialState.RUNNING, 1)  # the storage's copy: the same number, another int object
    assert copy.number == mine.number and copy.number is not mine.number
    assert repeated_trial(mine, [copy]) is None


def test_a_trial_asked_for_on_purpose_is_never_a_repeat():
    retry = trial(5, TrialState.RUNNING, 1, fixed=True)
    assert repeated_trial(retry, [trial(0, TrialState.COMPLETE, 1), retry]) is None


def test_a_discrete_space_is_counted_and_its_unevaluated_sets_found():
    assert space_size(SPACE) == 6
    assert space_size({"n": IntDistribution(8, 64, log=True), "d": FloatDistribution(0, 0.5, step=0.25)}) == 57 * 3
    assert space_size({**SPACE, "lr": FloatDistribution(1e-5, 1e-2, log=True)}) is None
    trials = [trial(n, TrialState.COMPLETE, x, y) for n, (x, y) in enumerate([(1, "a"), (1, "b"), (2, "a")])]
    trials += [trial(3, TrialState.RUNNING, 2, "b"), trial(4, TrialState.FAIL, 3, "a", **{LOST_REASON: "lost"})]
    assert evaluated_sets(trials, SPACE) == 4  # the lost trial's parameters did not run to the end
    free = {tuple(unevaluated_set(SPACE, trials, seed).values()) for seed in range(40)}
    assert free == {(3, "a"), (3, "b")}
    trials += [trial(5, TrialState.COMPLETE, 3, "a"), trial(6, TrialState.WAITING, 3, "b", fixed=True)]
    assert unevaluated_set(SPACE, trials, 0) is None
    assert unevaluated_set({"lr": FloatDistribution(0.1, 1.0)}, trials, 0) is None


def test_a_large_discrete_space_gets_a_free_set_without_listing_it(monkeypatch):
    def product(*grid):
        raise AssertionError("a space of 10^8 sets was listed")

    monkeypatch.setattr(sampling, "itertools", SimpleNamespace(product=product))
    space = {f"p{k}": IntDistribution(0, 99) for k in range(4)}  # 10^8 sets
    found = unevaluated_set(space, [], seed=1)
    assert found is not None and set(found) == set(space) and all(0 <= v <= 99 for v in found.values())


def test_stepped_int_and_float_spaces_are_counted_and_listed_to_their_last_value():
    ints, floats = IntDistribution(0, 10, step=2), FloatDistribution(0.0, 0.7, step=0.1)
    # an int: the worker's log says "Every one of the 6 parameter sets"
    assert repr(space_size({"n": ints})) == "6" and space_size({"d": floats}) == 8
    assert space_size({"d": FloatDistribution(0.0, 0.3, step=0.1)}) == 4  # 0.3 / 0.1 is 2.9999999999999996
    assert space_size({"d": FloatDistribution(0.2, 0.6, step=0.2)}) == 3
    evaluated = [
        create_trial(state=TrialState.COMPLETE, value=1.0, params={"n": v}, distributions={"n": ints})
        for v in range(0, 9, 2)
    ]
    assert {unevaluated_set({"n": ints}, evaluated, seed)["n"] for seed in range(20)} == {10}
    # the values Optuna itself suggests: a space is covered once each has run
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda trial: trial.suggest_float("d", 0.0, 0.7, step=0.1), n_trials=150)
    suggested = sorted({trial.params["d"] for trial in study.trials})
    assert len(suggested) == 8 and suggested[3] == 0.30000000000000004 and suggested[7] == 0.7
    assert unevaluated_set({"d": floats}, study.trials, 0) is None
    for missing in (suggested[3], suggested[7], suggested[0]):
        others = [trial for trial in study.trials if trial.params["d"] != missing]
        assert {unevaluated_set({"d": floats}, others, seed)["d"] for seed in range(20)} == {missing}
    # two values free: each is drawn as often as the other (the last is listed once, however it rounds)
    others = [trial for trial in study.trials if trial.params["d"] not in (suggested[3], suggested[7])]
    draws = [unevaluated_set({"d": floats}, others, seed)["d"] for seed in range(400)]
    assert set(draws) == {suggested[3], suggested[7]} and 170 < draws.count(suggested[7]) < 230
    # the same from a low above 0
    above = FloatDistribution(0.2, 0.6, step=0.2)
    first = create_trial(state=TrialState.COMPLETE, value=1.0, params={"d": 0.2}, distributions={"d": above})
    draws = [unevaluated_set({"d": above}, [first], seed)["d"] for seed in range(400)]
    assert set(draws) == {0.4, 0.6} and 170 < draws.count(0.6) < 230


def test_trials_of_another_space_are_not_counted_as_evaluating_its_sets():
    wider = {**SPACE, "z": CategoricalDistribution([0, 1])}  # an earlier sweep of the study searched z too
    older = create_trial(state=TrialState.COMPLETE, value=1.0, params={"x": 1, "y": "a", "z": 0}, distributions=wider)
    assert evaluated_sets([older], SPACE) == 0 and evaluated_sets([older], wider) == 1
    narrower = {"x": SPACE["x"]}  # ... or x alone
    oldest = create_trial(state=TrialState.COMPLETE, value=1.0, params={"x": 1}, distributions=narrower)
    assert evaluated_sets([oldest], SPACE) == 0 and evaluated_sets([oldest], narrower) == 1


def test_trials_of_a_wider_range_count_only_with_their_values_in_the_narrower_one():
    wide, narrow = {"depth": IntDistribution(1, 10)}, {"depth": IntDistribution(1, 5)}  # narrowed between commands
    earlier = [
        create_trial(state=TrialState.COMPLETE, value=1.0, params={"depth": d}, distributions=wide)
        for d in (4, 6, 7, 8, 9)
    ]
    assert evaluated_sets(earlier, narrow) == 1 and evaluated_sets(earlier, wide) == 5
    assert {unevaluated_set(narrow, earlier, seed)["depth"] for seed in range(40)} == {1, 2, 3, 5}


def completed(params: dict) -> SimpleNamespace:
    """What the free-set search reads of a complete trial (a FrozenTrial costs 100 times as much to make)."""
    return SimpleNamespace(state=TrialState.COMPLETE, params=params, system_attrs={}, user_attrs={})


@pytest.mark.parametrize("shape", [(400, 250), (3, 33_333)])  # 100,000 sets, the most that are listed; 99,999
def test_a_space_up_to_the_listing_size_finds_its_last_free_set_for_sure(shape):
    space = {"x": CategoricalDistribution(list(range(shape[0]))), "y": CategoricalDistribution(list(range(shape[1])))}
    evaluated = [completed({"x": k % shape[0], "y": k // shape[0]}) for k in range(1, shape[0] * shape[1])]
    # 1000 random draws would miss the one free set in a hundred thousand; the listing finds it every time
    assert all(unevaluated_set(space, evaluated, seed) == {"x": 0, "y": 0} for seed in range(3))


def test_a_space_past_the_listing_size_is_drawn_from(monkeypatch):
    def product(*grid):
        raise AssertionError("a space of 100,001 sets was listed")

    monkeypatch.setattr(sampling, "itertools", SimpleNamespace(product=product))
    space = {"x": CategoricalDistribution(list(range(11))), "y": CategoricalDistribution(list(range(9091)))}
    assert sampling.ENUMERATED == 100_000 and space_size(space) == 100_001
    found = unevaluated_set(space, [completed({"x": 0, "y": 0})], seed=0)
    assert found is not None and found != {"x": 0, "y": 0}


# --- the time a lost trial ran (trials.csv) ---


def test_a_lost_trials_duration_ends_at_its_last_heartbeat():
    start = datetime(2026, 1, 1, 12, 0, 0)
    lost = create_trial(state=TrialState.FAIL, params={}, distributions={}, user_attrs={})
    lost.datetime_start, lost.datetime_complete = start, start + timedelta(minutes=40)  # failed by a later command
    assert duration_seconds(lost) == 2400.0
    lost.user_attrs = {LAST_HEARTBEAT: (start + timedelta(seconds=95)).isoformat(timespec="seconds")}
    assert duration_seconds(lost) == 95.0
    lost.datetime_complete = None
    assert duration_seconds(lost) is None


# --- commands that end: their local workers end too (litlab.search.watch) ---


def test_a_process_is_alive_until_it_ends_and_a_zombie_is_not():
    assert process_alive(os.getpid())
    # The child takes every signal's default action, even under nohup: a signal sent to it would end it.
    code = "import signal, time; signal.signal(signal.SIGHUP, signal.SIG_DFL); print(flush=True); time.sleep(60)"
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        child.stdout.readline()
        assert process_alive(child.pid)
        time.sleep(0.2)
        assert child.poll() is None  # asked, not signalled
        child.kill()
        deadline = time.monotonic() + 30
        while process_alive(child.pid):  # dead, not yet reaped: a zombie
            assert time.monotonic() < deadline, "a killed child still looks alive"
            time.sleep(0.05)
        assert child.poll() is not None
    finally:
        child.kill()
        child.wait()
    assert not process_alive(child.pid)


def test_a_worker_hears_of_its_commands_death_and_of_nothing_else():
    command = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    died = threading.Event()
    try:
        with watching(f"{this_process().rsplit(':', 1)[0]}:{command.pid}", died.set, interval=0.05):
            time.sleep(0.3)
            assert not died.is_set()
            command.kill()
            assert died.wait(timeout=30)
    finally:
        command.kill()
        command.wait()
    heard = threading.Event()
    # a command on another machine (a SLURM login node), whatever its name, or none: nothing to watch
    host = this_process().rsplit(":", 1)[0]
    for other in (f"elsewhere:{command.pid}", f"{host}z:{command.pid}", f"a{host}:{command.pid}", None):
        with watching(other, heard.set, interval=0.01):
            time.sleep(0.1)
    assert not heard.is_set()
    assert not [t for t in threading.enumerate() if t.name == "litlab-sweep-watch"]


@pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="Linux: a process renamed through prctl, read in /proc"
)
def test_a_process_named_with_brackets_is_read_by_its_state_not_its_name():
    # /proc/<pid>/stat is "pid (name) state ...": a name may hold ") Z" itself
    named = "import ctypes, time; ctypes.CDLL(None).prctl(15, b'a) Z', 0, 0, 0); print(flush=True); time.sleep(60)"
    child = subprocess.Popen([sys.executable, "-c", named], stdout=subprocess.PIPE)
    try:
        child.stdout.readline()  # renamed
        assert Path(f"/proc/{child.pid}/comm").read_text().strip() == "a) Z"
        assert process_alive(child.pid)
    finally:
        child.kill()
        child.wait()


def test_another_users_process_and_a_machine_without_proc_count_as_alive(monkeypatch):
    def refused(pid, signal):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(watch.os, "kill", refused)
    assert process_alive(1)
    monkeypatch.undo()

    class NoProc(type(Path())):
        def read_text(self, *args, **kwargs):
            raise FileNotFoundError(2, "No such file or directory")

    monkeypatch.setattr(watch, "Path", NoProc)  # macOS: the signal's answer stands
    assert process_alive(os.getpid())

    class OddProc(type(Path())):
        def read_text(self, *args, **kwargs):
            return "no brackets here"

    monkeypatch.setattr(watch, "Path", OddProc)  # a stat line it cannot parse: the signal's answer stands
    assert process_alive(os.getpid())


def test_a_command_is_checked_every_second_by_default(monkeypatch):
    waits = []

    class Stop(threading.Event):
        def wait(self, timeout=None):
            waits.append(timeout)
            return True  # stopped at once: the block below has ended

    # the watch's own module reference only: Thread itself keeps the real Event
    monkeypatch.setattr(watch, "threading", SimpleNamespace(Event=Stop, Thread=threading.Thread))
    with watching(this_process(), lambda: None):
        pass
    assert waits == [1.0]


# --- launchers that cannot run: one sentence ---


def test_a_hydra_launcher_plugin_is_installed_from_its_own_release_line():
    assert launchers.install_command("hydra-ray-launcher") == "pip install 'hydra-ray-launcher>=1.4.0rc3,<1.5'"
    assert launchers.install_command("acme_launchers") == "pip install acme_launchers"
    assert launchers.missing_launcher("acme_launchers.slurm.Launcher") == (
        "The launcher acme_launchers.slurm.Launcher is not installed: `pip install acme_launchers`, or choose an "
        "installed one (hydra/launcher=basic, joblib, submitit_local or submitit_slurm)."
    )


def test_a_launcher_chosen_by_config_group_names_its_missing_plugin(monkeypatch):
    installed = {"hydra_plugins.hydra_joblib_launcher"}
    monkeypatch.setattr(launchers, "installed", lambda module: module in installed)
    message = launchers.missing_launcher_choice(["-m", "hydra/launcher=ray", "seed=1"], CONFIG_DIR)
    assert message == (
        "hydra/launcher=ray needs Hydra's hydra-ray-launcher plugin, which is not installed: "
        "`pip install 'hydra-ray-launcher>=1.4.0rc3,<1.5'`, or choose an installed launcher "
        "(hydra/launcher=basic, joblib, submitit_local or submitit_slurm)."
    )
    assert "hydra-rq-launcher" in launchers.missing_launcher_choice(["+hydra/launcher=rq"], CONFIG_DIR)
    # every choice on the line is looked at, past one that needs no hint
    assert "hydra-rq-launcher" in launchers.missing_launcher_choice(
        ["hydra/launcher=joblib", "+hydra/launcher=rq"], CONFIG_DIR
    )
    installed.add("hydra_plugins.hydra_ray_launcher")
    assert launchers.missing_launcher_choice(["hydra/launcher=ray"], CONFIG_DIR) is None  # Hydra finds its config
    # litlab's own presets, and names Hydra answers with its list of choices, pass
    assert launchers.missing_launcher_choice(["hydra/launcher=joblib", "hydra/launcher=nosuch"], CONFIG_DIR) is None


def command_error(*arguments: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT_DIR / "train.py"), *arguments],
        cwd=ROOT_DIR,
        env={**os.environ, "PYTHONPATH": str(ROOT_DIR / "src"), **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )


def one_sentence(stderr: str) -> str:
    """The error a command ended with: its last line, said once, no traceback (warnings of the environment, such
    as Hydra's about how litlab was installed, may come before it)."""
    last = stderr.strip().splitlines()[-1]
    assert "Traceback" not in stderr and stderr.count(last) == 1, stderr
    return last


def test_a_missing_launcher_plugin_on_the_command_line_is_one_sentence():
    if launchers.installed("hydra_plugins.hydra_ray_launcher"):
        pytest.skip("hydra-ray-launcher is installed here")
    result = command_error("-m", "hydra/launcher=ray")
    assert result.returncode == 1
    assert one_sentence(result.stderr) == launchers.missing_launcher_choice(["hydra/launcher=ray"], CONFIG_DIR)


def test_slurm_on_a_machine_without_slurm_is_one_sentence(tmp_path):
    python_only = tmp_path / "bin"
    python_only.mkdir()
    (python_only / "python").symlink_to(sys.executable)
    result = command_error(
        "-m",
        "hparams_search=samplers_compare",
        "hydra/launcher=submitit_slurm",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        env={"PATH": str(python_only)},  # no sbatch on it, whatever this machine has
    )
    assert result.returncode == 1
    assert one_sentence(result.stderr) == (
        "hydra/launcher=submitit_slurm submits the workers with SLURM's sbatch, which this machine does not have: "
        "run the command on a login node of your SLURM cluster, or choose hydra/launcher=submitit_local or joblib "
        "for workers on this machine."
    )
    assert not (tmp_path / "sweep").exists()
