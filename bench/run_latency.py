"""`docker run --rm --network none busybox true` through the real docker CLI: median of N.

Usage: python3 bench/run_latency.py unix:///path/to/berthd.sock [--runs 20] [--compare unix:///dockerd.sock]
Prints the median against berthd (and against another engine if --compare is given), and the
floor: `runc run` of a prepared busybox bundle. Issue 4's target: berthd <= 60 ms (<= 0.3x dockerd).
The engine must already have busybox:latest (tests/images_harness.py imports it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))


def median_ms(command: list[str], env: dict[str, str] | None, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = subprocess.run(command, env=env, capture_output=True)
        if result.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed: {result.stderr.decode()}")
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def runc_floor(runs: int) -> float:
    """`runc run` of a bundle made from the same busybox rootfs (no engine at all)."""
    import tarfile, io
    from images_harness import busybox_rootfs_tar
    bundle = tempfile.mkdtemp(prefix="berth-bench-")
    try:
        rootfs = os.path.join(bundle, "rootfs")
        os.mkdir(rootfs)
        with tarfile.open(fileobj=io.BytesIO(busybox_rootfs_tar())) as tar:
            tar.extractall(rootfs)
        subprocess.run(["runc", "spec", "--bundle", bundle], check=True)
        with open(os.path.join(bundle, "config.json")) as handle:
            spec = json.load(handle)
        spec["process"]["terminal"] = False
        spec["process"]["args"] = ["true"]
        with open(os.path.join(bundle, "config.json"), "w") as handle:
            json.dump(spec, handle)
        root = os.path.join(bundle, "state")
        return median_ms(["runc", "--root", root, "run", "--bundle", bundle, "bench-floor"], None, runs)
    finally:
        shutil.rmtree(bundle, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("host")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--compare", help="another engine's DOCKER_HOST, e.g. Debian's dockerd")
    args = parser.parse_args()
    command = ["docker", "run", "--rm", "--network", "none", "busybox", "true"]
    for label, host in (("berthd", args.host), ("other", args.compare)):
        if host:
            env = dict(os.environ, DOCKER_HOST=host)
            subprocess.run(command, env=env, capture_output=True)  # warm up
            print(f"{label:8s} {median_ms(command, env, args.runs):7.1f} ms  docker run --rm busybox true")
    print(f"{'runc':8s} {runc_floor(args.runs):7.1f} ms  runc run (floor)")


if __name__ == "__main__":
    main()
