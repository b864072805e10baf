"""The engine's acceptance figures in one run: each bench script in turn, its figures collected.

    .venv/bin/python bench/acceptance.py [--n-locks 200] [--n-rest 2000] [--n-queue 2000] [--quick]

Runs ``bench/locks.py`` (200 noop executions: no target, all modifying one asset, all
reading it; then the same with a 0 s ``sleep`` step, the step-by-step path of steps with
effects, printed beside the goals but not judged: the goals name noop),
``bench/rest_submit.py`` (8 clients, one web process) and
``bench/queue_throughput.py`` (ours against django-q2 in the same run), one after another
on the same database, and prints their figures with the goals beside them:

- hot asset (200 modify on one asset) / no target: goal >= 0.5
- 200 read steps on one asset / no target: goal >= 0.9
- REST submissions/s per web process: goal >= 100 (with the web process's CPU per
  submission: one core over it is the process's ceiling on a machine without other load)
- ours / django-q2: goal >= 2.0 against one django-q2 task per execution, and the raw no-op
  ratio beside it; 2,000 executions, as in the runs this goal was set from (docs/engine.md
  "Measured": ``queue_throughput.py --n 2000``, 2.3-3.8 at the start of the round)

Each script prints its own baseline in the same run; this one only collects. ``--quick``
passes ``--quick`` to each (short forms). Exits non-zero when a script fails (never because
a goal is missed: speed is reported, not asserted).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
NUMBER = r"([0-9]+(?:\.[0-9]+)?)"


def run(script: str, *args: str) -> str:
    result = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True)
    sys.stdout.write(result.stdout)
    if result.returncode != 0:
        sys.stderr.write(result.stderr[-3000:])
        raise SystemExit(f"acceptance: {script} exited {result.returncode}")
    return result.stdout


def figure(pattern: str, text: str) -> float | None:
    found = re.search(pattern, text)
    return float(found.group(1)) if found else None


def verdict(value: float | None, goal: float) -> str:
    if value is None:
        return "not printed"
    return "met" if value >= goal else "NOT met"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-locks", type=int, default=200)
    parser.add_argument("--n-rest", type=int, default=2000)
    parser.add_argument("--n-queue", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="each script's short form")
    args = parser.parse_args()
    quick = ["--quick"] if args.quick else []

    locks = run("locks.py", *(quick or ["--n", str(args.n_locks)]))
    stepwise = run("locks.py", "--step", "sleep", *(quick or ["--n", str(args.n_locks)]))
    rest = run("rest_submit.py", *(quick or ["--n", str(args.n_rest)]))
    queue = run("queue_throughput.py", *(quick or ["--n", str(args.n_queue)]))

    hot = figure(rf"hot asset \(modify\): .* ratio to no target {NUMBER}", locks)
    read = figure(rf"read asset \(read\): .* ratio to no target {NUMBER}", locks)
    hot_sleep = figure(rf"hot asset \(modify\): .* ratio to no target {NUMBER}", stepwise)
    read_sleep = figure(rf"read asset \(read\): .* ratio to no target {NUMBER}", stepwise)
    rate = figure(rf"process\(es\): {NUMBER} submissions/s", rest)
    cpu = figure(rf"CPU per request: submission {NUMBER} ms", rest)
    ceiling = figure(rf"one free core serves {NUMBER} submissions/s", rest)
    naive = figure(rf"one django-q2 task per execution: .* ratio ours / baseline {NUMBER}", queue)
    raw = figure(rf"ratio ours / django-q2 raw no-op: {NUMBER}", queue)
    print()
    print("acceptance figures (one run):")
    print(f"  hot asset (modify) / no target: {hot} (goal >= 0.5: {verdict(hot, 0.5)})")
    print(f"  read asset (read) / no target: {read} (goal >= 0.9: {verdict(read, 0.9)})")
    print(f"  the same with a 0 s sleep step (step by step, not judged): hot {hot_sleep}, read {read_sleep}")
    print(
        f"  REST submissions/s per web process: {rate} (goal >= 100: {verdict(rate, 100)}); "
        f"CPU per submission {cpu} ms, one free core's ceiling {ceiling}/s"
    )
    print(
        f"  ours / django-q2 (one task per execution): {naive} (goal >= 2.0: {verdict(naive, 2.0)}); "
        f"ours / django-q2 raw no-op: {raw}"
    )


if __name__ == "__main__":
    main()
