"""pyinit against tini, dumb-init and catatonit: start-up, idle footprint, idle wake-ups, signal
forwarding latency, zombie storms and teardown. Prints a Markdown table and writes it, the raw
numbers (JSON) and a PNG chart under the results directory.

    .venv/bin/python benchmarks/run.py            # the full run, about 2-3 minutes, as root
    .venv/bin/python benchmarks/run.py --tiny     # a few seconds: checks the machinery only

Every measurement interleaves the contenders (A B C A B C ..., or all at once for the idle
window), so drift from other load hits all of them alike. Every process runs inside a PID
namespace made with ``unshare --kill-child`` and is killed by PID in a ``finally``; every wait
has a timeout.

The modules beside this one, each with one job: contenders (who competes, in what order),
processes (process plumbing), startup, idle, signals, storms and teardown (the measurements),
report (the Markdown) and chart (the PNG).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path

from chart import chart
from contenders import FLOOR, PYTHON, contenders, versions
from crowd import bench_crowd
from idle import bench_idle
from processes import finish_all
from report import document
from signals import bench_signals
from startup import bench_startup
from storms import bench_storms
from teardown import bench_teardown

ROOT = Path(__file__).resolve().parent.parent


CROWD_ESCAPEES = 100


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=40, help="start-up runs per init (40)")
    parser.add_argument("--signals", type=int, default=2000, help="signals per init (2000)")
    parser.add_argument("--idle", type=float, default=10.0, help="idle window, s (10)")
    parser.add_argument("--storm", default="1000,10000", help="storm sizes (1000,10000)")
    parser.add_argument("--storm-runs", type=int, default=3, help="runs per storm size (3)")
    parser.add_argument("--teardown", default="10,100", help="escapee counts (10,100)")
    parser.add_argument("--teardown-runs", type=int, default=5, help="runs per count (5)")
    parser.add_argument("--crowd", default="0,5000",
                        help="unrelated processes in the namespace during teardown (0,5000)")
    parser.add_argument("--crowd-runs", type=int, default=3, help="runs per crowd size (3)")
    parser.add_argument("--skip", default="", help="comma list of: startup,idle,signals,"
                        "storms,teardown,crowd")
    parser.add_argument("--results", type=Path, default=ROOT / "results",
                        help="where to write benchmark.md/.json/.png (results/)")
    parser.add_argument("--tiny", action="store_true",
                        help="a seconds-long smoke configuration (tests use it)")
    args = parser.parse_args(argv)
    if args.tiny:
        args.runs, args.signals, args.idle = 3, 20, 0.5
        args.storm, args.storm_runs, args.teardown, args.teardown_runs = "50", 1, "3", 1
        args.crowd, args.crowd_runs = "0,20", 1
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Let the untimed warm-up runs write current .pyc files, as an installed package has them:
    # with this set (some shells and CI set it) pyinit's edited modules compile on every start.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    if os.geteuid() != 0:
        print("benchmarks/run.py needs root: it creates PID namespaces", file=sys.stderr)
        return 2
    found = contenders()
    inits = {name: prefix for name, prefix in found.items() if prefix}
    missing = [name for name, prefix in found.items() if not prefix]
    others = {n: p for n, p in inits.items() if n != "pyinit -m"}  # same process as `pyinit`
    skip = set(filter(None, args.skip.split(",")))
    config = {"runs": args.runs, "signals": args.signals, "idle": args.idle,
              "storm": args.storm, "storm_runs": args.storm_runs,
              "teardown": args.teardown, "teardown_runs": args.teardown_runs,
              "crowd": args.crowd, "crowd_runs": args.crowd_runs}
    results: dict = {"config": config, "missing": missing, "versions": versions(),
                     "commands": {n: " ".join(p) for n, p in inits.items()},
                     "python": PYTHON, "kernel": platform.release(), "cpus": os.cpu_count()}
    steps = [
        ("startup", lambda: bench_startup(inits, args.runs)),
        ("idle", lambda: bench_idle(others, args.idle)),
        ("signals", lambda: bench_signals(others, args.signals)),
        ("storms", lambda: bench_storms(
            others, [int(s) for s in args.storm.split(",")], args.storm_runs)),
        ("teardown", lambda: bench_teardown(
            others, [int(s) for s in args.teardown.split(",")], args.teardown_runs)),
        ("crowd", lambda: bench_crowd(
            others, [int(s) for s in args.crowd.split(",")], CROWD_ESCAPEES, args.crowd_runs)),
    ]
    failed: list[str] = []
    for name, step in steps:
        if name in skip:
            continue
        began = time.monotonic()
        print(f"... {name}", file=sys.stderr, flush=True)
        try:
            results[name] = step()
        except (OSError, RuntimeError, TimeoutError, EOFError, ValueError) as error:
            failed.append(name)  # the other rows are still worth having
            traceback.print_exc()
            print(f"    {name} FAILED: {error}", file=sys.stderr, flush=True)
        finally:
            finish_all()
        print(f"    {time.monotonic() - began:.1f} s", file=sys.stderr, flush=True)

    columns = [n for n in ("pyinit", "pyinit -m", "frozen", "tini", "dumb-init", "catatonit")
               if n in found] + [FLOOR]
    text = document(results, columns, failed)
    print(text, end="")
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "benchmark.md").write_text(text)
    (args.results / "benchmark.json").write_text(json.dumps(results, indent=1) + "\n")
    print(chart(results, columns, args.results / "benchmark.png"), file=sys.stderr)
    if failed:
        print(f"failed: {', '.join(failed)} (see above)", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
