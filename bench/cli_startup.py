"""Wall time of `berth --version` and `berth version` (against a daemon), beside `docker version`.

Usage: python3 bench/cli_startup.py unix:///path/to/berthd.sock [--runs 30] [--berth PATH]
Targets: `berth --version` <= 40 ms, `berth version` <= 80 ms (medians).
The console script goes through pyenv's shim on some machines; the interpreter is called
directly here (`python3 -m berth.cli` costs the same as the installed script minus that shim).
`--berth /usr/local/bin/berth` times an installed command instead (the venv in /opt/berth).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time


def median_ms(command: list[str], env: dict[str, str], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=False)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("host")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--berth", help="an installed berth command to time")
    args = parser.parse_args()
    env = dict(os.environ, DOCKER_HOST=args.host)
    berth = [args.berth] if args.berth else [sys.executable, "-m", "berth.cli"]
    rows = [("berth --version", berth + ["--version"]),
            ("berth version", berth + ["version"])]
    if shutil.which("docker"):
        rows.append(("docker version", ["docker", "version"]))
    for label, command in rows:
        print(f"{label:18s} {median_ms(command, env, args.runs):7.1f} ms (median of {args.runs})")


if __name__ == "__main__":
    main()
