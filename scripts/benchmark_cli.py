"""How fast the command line answers: Hydra's config commands and a TAB completion, each as a whole process.

    python scripts/benchmark_cli.py [--runs 7] [--results-page cli]

Each command runs `--runs` times as `python <entry> <args>` from the repository root; printed per command are the
median wall time, the median CPU time (user + system: what the process itself costs, which a busy machine
does not inflate the way it inflates wall time) and the wall-time ratio to `python -c "import hydra"`, the floor of
any Hydra command. Target: every command under 0.5 s of wall time on an idle machine (printed, not asserted).
The load average is printed before and after, since other work on the machine slows every figure.
The table also goes to docs/results/cli.md (`--results-page`), stamped with the command, commit and machine.
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from litlab.reports.results_page import markdown_table, write_results_page

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 0.5
CONFIG_ARGS = [
    ["--help"],
    ["--hydra-help"],
    ["--cfg", "job"],
    ["--cfg", "hydra"],
    ["--cfg", "all"],
    ["--info"],
    ["-sc", "query=bash"],
]
# The config of an Optuna sweep (`hparams_search` selects litlab's sweeper; Hydra refuses `-m` with `--cfg`).
SWEEP_ARGS = ["hparams_search=mnist_cnn", "--cfg", "hydra"]


def time_command(command: list[str], env: dict[str, str], runs: int) -> tuple[float, float]:
    """The median wall and CPU seconds of `command` over `runs` runs (its output is discarded)."""
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7, help="runs of each command (the median counts)")
    parser.add_argument("--results-page", default="cli", help="the page of docs/results/ to write ('' for none)")
    args = parser.parse_args()

    entries = sorted(p.name for p in ROOT.glob("*.py"))
    commands = [(entry, command) for entry in entries for command in CONFIG_ARGS] + [("train.py", SWEEP_ARGS)]
    load_before = os.getloadavg()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in load_before)}")
    floor_wall, floor_cpu = time_command([sys.executable, "-c", "import hydra"], dict(os.environ), args.runs)
    floor = 'python -c "import hydra"'
    print(f"{floor:52s} wall {floor_wall:.3f} s   cpu {floor_cpu:.3f} s")
    rows = [[f"`{floor}` (the floor)", f"{floor_wall:.3f} s", f"{floor_cpu:.3f} s", "1.0"]]
    slowest, slowest_name = 0.0, ""
    for entry, command in commands:
        line = f"python {entry} experiment="
        env = {**os.environ, "COMP_LINE": line, "COMP_POINT": str(len(line))}
        wall, cpu = time_command([sys.executable, entry, *command], env, args.runs)
        name = f"python {entry} {' '.join(command)}"
        if wall > slowest:
            slowest, slowest_name = wall, name
        mark = "" if wall < TARGET_S else f"   over the {TARGET_S} s target"
        print(f"{name:52s} wall {wall:.3f} s   cpu {cpu:.3f} s   x{wall / floor_wall:.1f} import hydra{mark}")
        rows.append([f"`{name}`", f"{wall:.3f} s", f"{cpu:.3f} s", f"{wall / floor_wall:.1f}"])
    load_after = os.getloadavg()
    met = "met" if slowest < TARGET_S else "missed"
    print(f"load average after: {' '.join(f'{x:.2f}' for x in load_after)}")
    print(f"slowest={slowest:.3f}s target={TARGET_S}s {met}")
    if args.results_page:
        body = "\n\n".join(
            [
                f"Each command ran {args.runs} times as a whole process from the repository root; the table gives "
                "medians of the wall time and of the CPU time (user + system), and the wall time's ratio to "
                f'`python -c "import hydra"`, the floor of any Hydra command. The target is {TARGET_S} s of wall '
                "time for every command. `-sc query=bash` is one TAB completion of `experiment=`.",
                markdown_table(["command", "wall", "CPU", "ratio to the floor"], rows),
                f"- slowest: `{slowest_name}`, {slowest:.3f} s (target {TARGET_S} s: {met})\n"
                f"- load average (1, 5, 15 min) before: {', '.join(f'{x:.2f}' for x in load_before)}; "
                f"after: {', '.join(f'{x:.2f}' for x in load_after)}",
            ]
        )
        path = write_results_page(args.results_page, "Command-line response times", body)
        print(f"results page: {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
