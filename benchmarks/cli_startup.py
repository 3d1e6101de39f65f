"""How long `ownlens-ml --help` (and a command's --help) takes, next to a bare Python start, interleaved.

Each round runs every case once, in turn, so the shared machine's load falls on all of them alike; the medians of
the rounds are reported. ``--compare SRC`` also times the same commands with another source tree first on the path
(e.g. an older checkout's ``src``), in the same rounds.

    python benchmarks/cli_startup.py --rounds 15 --out benchmarks/results/cli-startup.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

CASES = {"python -c pass": ["-c", "pass"], "ownlens-ml --help": ["-m", "ownlens.ml.cli", "--help"],
         "ownlens-ml train --help": ["-m", "ownlens.ml.cli", "train", "--help"]}


def _seconds(args: list[str], env: dict) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, *args], env=env, capture_output=True, check=True)
    return time.perf_counter() - started


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--compare", help="another source tree (its src folder) to time the same commands with")
    p.add_argument("--out")
    args = p.parse_args()
    envs = {"": dict(os.environ)}
    if args.compare:
        envs[" (compared)"] = {**os.environ, "PYTHONPATH": args.compare}
    times: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for suffix, env in envs.items():
            for name, case in CASES.items():
                if name.startswith("python") and suffix:
                    continue
                times.setdefault(name + suffix, []).append(_seconds(case, env))
    result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "rounds": args.rounds,
              "median_s": {k: round(statistics.median(v), 3) for k, v in times.items()},
              "min_s": {k: round(min(v), 3) for k, v in times.items()}}
    print(json.dumps(result, indent=2))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
