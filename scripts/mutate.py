"""Mutation testing of one module: `python scripts/mutate.py src/litlab/data/base.py` (or `make mutate MODULE=...`).

cosmic-ray plants one small bug at a time in the module (a comparison flipped, a constant changed, an operator
swapped, ...), runs the tests that `mutation/config.toml` maps to the module, and records whether they failed
(the mutant is killed) or passed (it survived). The score is killed / (total - equivalent); the survivors are
printed with their file, line and change. Mutants that cannot change behaviour are listed, each with its reason,
in `mutation/equivalent.toml`; operators that only produce noise are excluded in `mutation/config.toml`.

cosmic-ray edits the module in place (so Lightning's `save_hyperparameters`, which inspects the caller's frame,
still sees the real `__init__`) and puts it back after each mutant; this script puts it back too if it is
interrupted. Each mutant's tests run in a process forked from a server that has imported torch, Lightning and
the other heavy libraries once, so a mutant costs its tests, not five seconds of imports. The session database
is kept in logs/mutation/ for `cr-report` and `cr-html`. The module's score replaces its row of
docs/results/mutation.md, stamped with the commit, date and machine it was measured on.
"""

import argparse
import difflib
import hashlib
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "mutation" / "config.toml"
EQUIVALENT = ROOT / "mutation" / "equivalent.toml"
# Imported once by the server before it forks a test run; never litlab itself, which must be read after mutation.
PRELOAD = ("pytest", "torch", "torchvision", "torchmetrics", "lightning", "hydra", "omegaconf", "optuna", "sklearn")


def _load_toml(path: Path) -> dict:
    if sys.version_info >= (3, 11):
        import tomllib

        return tomllib.loads(path.read_text())
    import toml  # cosmic-ray's own dependency

    return toml.loads(path.read_text())


def serve(sock_path: str) -> None:
    """Forks one pytest run per request, with the heavy libraries already imported."""
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)
    import matplotlib

    matplotlib.use("Agg")
    # Mutants follow each other within a second, and a bytecode cache is validated by the source's size and mtime
    # in whole seconds: a cached mutant could pass for the next one, so none is written.
    sys.dont_write_bytecode = True
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(sock_path)
    server.listen(1)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        conn, _ = server.accept()
        message, fds, _, _ = socket.recv_fds(conn, 1 << 16, 2)
        request = json.loads(message)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            server.close()
            conn.close()
            os.dup2(fds[0], 1)
            os.dup2(fds[1], 2)
            # An infinite loop planted by a mutant ends here; the default SIGALRM action kills the run.
            signal.alarm(int(request["timeout"]))
            import pytest

            code = pytest.main(request["args"])
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(int(code))
        for fd in fds:
            os.close(fd)
        _, status = os.waitpid(pid, 0)
        conn.sendall(str(os.waitstatus_to_exitcode(status)).encode())
        conn.close()


def client(sock_path: str, timeout: float, args: list[str]) -> int:
    """Runs pytest with `args` in the server; cosmic-ray's test command."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(sock_path)
        # cosmic-ray keeps only the test command's stdout: the run's errors go there too.
        socket.send_fds(conn, [json.dumps({"args": args, "timeout": timeout}).encode()], [1, 1])
        code = int(conn.recv(32).decode())
    return code if 0 <= code < 256 else 1


def _start_server(sock_path: Path) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), str(ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(sock_path)], cwd=ROOT, env=env)
    deadline = time.monotonic() + 300
    while not sock_path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            sys.exit("the test server did not start: run the module's tests by hand to see why.")
        time.sleep(0.2)
    return proc


def _line(code: str, number: int) -> str:
    lines = code.splitlines()
    return lines[number - 1].strip() if 0 < number <= len(lines) else ""


def _added_lines(source: str, mutated: str) -> str:
    """The lines a mutant puts in, stripped and joined by " / " ("" for a mutant that only takes lines out)."""
    diff = difflib.unified_diff(source.splitlines(), mutated.splitlines(), n=0, lineterm="")
    return " / ".join(line[1:].strip() for line in diff if line.startswith("+") and not line.startswith("+++"))


def _classify(db, items: list, module: Path, excluded: dict[str, str], equivalents: list[dict]) -> list:
    """Marks the mutants of excluded operators and the listed equivalent mutants as skipped, with the reason.

    Returns the other items: those to test.
    """
    import re

    import cosmic_ray.plugins
    from cosmic_ray.mutating import mutate_code
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    source = module.read_text()
    patterns = [(re.compile(pattern), reason) for pattern, reason in excluded.items()]
    wanted = {(e["line"], e["mutant"]): e["reason"] for e in equivalents if Path(e["module"]) == module}
    todo = []
    for item in items:
        (mutation,) = item.mutations
        note = next((f"excluded: {r}" for p, r in patterns if p.fullmatch(mutation.operator_name)), None)
        original = _line(source, mutation.start_pos[0])
        if note is None and any(line == original for line, _ in wanted):
            operator = cosmic_ray.plugins.get_operator(mutation.operator_name)(**(mutation.operator_args or {}))
            mutated = mutate_code(source, operator, mutation.occurrence) or source
            reason = wanted.get((original, _added_lines(source, mutated)))
            note = reason and f"equivalent: {reason}"
        if note:
            db.set_result(item.job_id, WorkResult(worker_outcome=WorkerOutcome.SKIPPED, output=note))
        else:
            todo.append(item)
    return todo


def _diff_lines(diff: str) -> list[str]:
    return [line for line in diff.splitlines() if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def report(db) -> tuple[float, dict[str, int]]:
    """Prints the counts, the score and the surviving mutants; returns the score and the counts."""
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome

    counts = {"killed": 0, "survived": 0, "equivalent": 0, "excluded": 0, "no mutation": 0}
    survivors = []
    for item, result in db.completed_work_items:
        (mutation,) = item.mutations
        if result.worker_outcome == WorkerOutcome.SKIPPED:
            counts["equivalent" if (result.output or "").startswith("equivalent") else "excluded"] += 1
        elif result.worker_outcome == WorkerOutcome.NO_TEST:
            counts["no mutation"] += 1
        elif result.test_outcome == TestOutcome.SURVIVED:
            counts["survived"] += 1
            survivors.append((mutation, result))
        else:
            counts["killed"] += 1
    total = counts["killed"] + counts["survived"] + counts["equivalent"]
    score = counts["killed"] / (total - counts["equivalent"]) if total > counts["equivalent"] else 1.0
    for mutation, result in sorted(survivors, key=lambda s: s[0].start_pos):
        print(f"SURVIVED {mutation.module_path}:{mutation.start_pos[0]}  {mutation.operator_name}")
        for line in _diff_lines(result.diff or ""):
            print(f"    {line}")
    print(
        f"mutants: {total} (killed {counts['killed']}, survived {counts['survived']}, "
        f"equivalent {counts['equivalent']}); excluded operators: {counts['excluded']}"
    )
    print(f"score: {counts['killed']} / ({total} - {counts['equivalent']}) = {score:.1%}")
    return score, {**counts, "total": total}


RESULTS_PAGE = "mutation"
RESULTS_HEADER = ["module", "mutants", "killed", "survived", "equivalent", "score", "wall", "commit", "date", "machine"]
RESULTS_INTRO = (
    "One row per module, each measured by `python scripts/mutate.py <module>` (`make mutate MODULE=<module>`) and, "
    "after tests were added for its survivors, `--retest-survivors` (its wall time added after a +). Mutants are "
    "those of the operators kept by `mutation/config.toml`, tested by the module's tests listed there; equivalent "
    "mutants are listed with their reasons in `mutation/equivalent.toml`; the score is killed / (mutants - "
    "equivalent). Each row carries the commit, date and machine it was measured on; measuring a module again "
    "replaces its row."
)


def record_score(key: str, score: float, counts: dict[str, int], seconds: float, retest: bool) -> Path:
    """The module's row of docs/results/mutation.md, replaced; a retest adds its wall time to the run's."""
    # imported here: the test server forks mutants' runs and must not hold any litlab module read before them
    from litlab.reports.results_page import git_commit, machine_description, page_path, read_table, upsert_row

    wall = f"{seconds / 60:.1f} min"
    page = page_path(RESULTS_PAGE)
    if retest and page.is_file():
        header, rows = read_table(page)
        previous = next((dict(zip(header, row, strict=False)) for row in rows if row[0] == f"`{key}`"), None)
        if previous and previous.get("wall", "-") != "-":
            wall = f"{previous['wall']} + {wall}"
    date = time.strftime("%Y-%m-%d", time.gmtime())
    row = [f"`{key}`", counts["total"], counts["killed"], counts["survived"], counts["equivalent"], f"{score:.1%}",
           wall, git_commit(), date, machine_description()]  # fmt: skip
    return upsert_row(RESULTS_PAGE, "Mutation scores", RESULTS_INTRO, RESULTS_HEADER, row)


def run(module: Path, tests: list[str] | None, timeout: float, retest_survivors: bool = False) -> float:
    import cosmic_ray.commands
    from cosmic_ray.distribution.local import LocalDistributor
    from cosmic_ray.testing import run_tests
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome

    config = _load_toml(CONFIG)
    key = module.as_posix()
    if tests is None:
        if key not in config["modules"]:
            sys.exit(f"{key} has no tests mapped to it: add it to {CONFIG.relative_to(ROOT)} (or pass --tests).")
        tests = config["modules"][key]["tests"]
    equivalents = _load_toml(EQUIVALENT).get("equivalent", []) if EQUIVALENT.exists() else []
    excluded = config.get("exclude-operators", {})
    pytest_args = ["-x", "-q", "-p", "no:cacheprovider", "-m", "not slow", *tests]

    session_dir = ROOT / "logs" / "mutation"
    session_dir.mkdir(parents=True, exist_ok=True)
    session = session_dir / f"{module.with_suffix('').as_posix().replace('/', '.')}.sqlite"
    original = (ROOT / module).read_bytes()
    # The session's mutants are positions in the module as it was: a changed module needs a new session.
    fingerprint, digest = session.with_suffix(".sha256"), hashlib.sha256(original).hexdigest()
    if retest_survivors:
        if not session.exists() or not fingerprint.exists() or fingerprint.read_text() != digest:
            sys.exit(f"{key} has no session to resume or changed since it: run without --retest-survivors.")
    else:
        session.unlink(missing_ok=True)
    sock_path = Path(f"/tmp/litlab-mutate-{os.getpid()}.sock")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    server = _start_server(sock_path)
    client_args = [sys.executable, __file__, "--client", str(sock_path), "--timeout", str(timeout), "--"]
    test_command = shlex.join(client_args + pytest_args)
    try:
        os.chdir(ROOT)
        started = time.monotonic()
        outcome, output = run_tests(test_command, timeout + 5)
        if outcome != TestOutcome.SURVIVED:
            print(output)
            sys.exit(f"the tests mapped to {key} fail on the unmutated code: fix them first.")
        print(f"baseline: the tests pass in {time.monotonic() - started:.1f} s")
        with use_db(str(session), WorkDB.Mode.open if retest_survivors else WorkDB.Mode.create) as db:
            if retest_survivors:
                items = [
                    item for item, result in db.completed_work_items if result.test_outcome == TestOutcome.SURVIVED
                ]
            else:
                cosmic_ray.commands.init([module], db, {})
                fingerprint.write_text(digest)
                items = db.pending_work_items
            todo = _classify(db, items, module, excluded, equivalents)
            done = []

            def on_done(job_id: str, result) -> None:
                db.set_result(job_id, result)
                done.append(job_id)
                outcome = result.test_outcome.value if result.test_outcome else result.worker_outcome.value
                print(f"[{len(done)}/{len(todo)}] {outcome}", flush=True)

            print(f"{len(todo)} mutants to test ({len(items) - len(todo)} excluded or equivalent)", flush=True)
            # cosmic-ray's timeout is the client's; the forked run has its own alarm, a little earlier.
            LocalDistributor()(todo, test_command, timeout + 5, {}, on_task_complete=on_done)
            score, counts = report(db)
        seconds = time.monotonic() - started
        print(f"session: {session.relative_to(ROOT)} ({seconds:.0f} s)")
    finally:
        if (ROOT / module).read_bytes() != original:
            (ROOT / module).write_bytes(original)
            print(f"restored {key}", file=sys.stderr)
        server.terminate()
        server.wait(timeout=30)
        sock_path.unlink(missing_ok=True)
    # written once the module is back as it was, so that the commit's mark reflects the real tree
    page = record_score(key, score, counts, seconds, retest_survivors)
    print(f"results page: {page.relative_to(ROOT)}")
    return score


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--serve"]:
        return serve(argv[1])
    if argv[:1] == ["--client"]:
        split = argv.index("--")
        sys.exit(client(argv[1], float(argv[3]), argv[split + 1 :]))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("module", type=Path, help="the module to mutate, e.g. src/litlab/data/base.py")
    parser.add_argument("--tests", nargs="+", help="the tests to run (default: the module's in mutation/config.toml)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds a mutant's tests may take")
    parser.add_argument(
        "--retest-survivors",
        action="store_true",
        help="test again only the last session's survivors (after tests were added or equivalents listed)",
    )
    args = parser.parse_args(argv)
    path = args.module.resolve()
    if not path.is_file() or not path.is_relative_to(ROOT):
        parser.error(f"{args.module} is not a file of this repository ({ROOT}).")
    module = path.relative_to(ROOT)
    run(module, args.tests, args.timeout, args.retest_survivors)


if __name__ == "__main__":
    main()
