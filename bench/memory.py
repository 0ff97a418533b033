"""Memory: RSS/PSS of one shim, and of berthd with N running containers.

Usage: python3 bench/memory.py unix:///path/to/berthd.sock --daemon-pid PID --exec-root DIR [--containers 100]
Needs busybox:latest in the engine. Targets: shim RSS <= 8 MB.
Starts N `sleep` containers, reads /proc/<pid>/smaps_rollup of the daemon and of each shim,
then removes the containers it started.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess


def memory_kb(pid: int) -> tuple[int, int]:
    rss = pss = 0
    with open(f"/proc/{pid}/smaps_rollup") as handle:
        for line in handle:
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
    return rss, pss


def shim_pid(exec_root: str, container_id: str) -> int:
    with open(os.path.join(exec_root, "containers", container_id, "shim.pid")) as handle:
        return int(handle.read())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("host")
    parser.add_argument("--containers", type=int, default=10)
    parser.add_argument("--daemon-pid", type=int, required=True)
    parser.add_argument("--exec-root", default="/run/berth")
    args = parser.parse_args()
    env = dict(os.environ, DOCKER_HOST=args.host)
    ids = []
    try:
        for _ in range(args.containers):
            out = subprocess.run(["docker", "run", "-d", "--network", "none", "busybox", "sleep", "3600"],
                                 env=env, capture_output=True, text=True, check=True)
            ids.append(out.stdout.strip())
        shims = [memory_kb(shim_pid(args.exec_root, cid)) for cid in ids]
        rss, pss = memory_kb(args.daemon_pid)
        print(f"berthd with {len(ids)} containers: RSS {rss / 1024:.1f} MB, PSS {pss / 1024:.1f} MB")
        print(f"shim (median of {len(shims)}): RSS {statistics.median(r for r, _ in shims) / 1024:.1f} MB, "
              f"PSS {statistics.median(p for _, p in shims) / 1024:.1f} MB")
    finally:
        if ids:
            subprocess.run(["docker", "rm", "-f", *ids], env=env, capture_output=True)


if __name__ == "__main__":
    main()
