"""`docker build` of a 6-step Dockerfile through the real docker CLI (classic protocol).

Usage: python3 bench/build.py unix:///path/berthd.sock [--runs 10] [--compare unix:///dockerd.sock]

The context (made once in a temp dir): 1,000 small files (100-2,000 bytes) and a Dockerfile

    FROM busybox
    COPY files /app/files
    RUN cat /app/files/f0000 > /app/first && wc -c /app/files/f0999
    ENV APP=bench
    WORKDIR /app
    COPY last.txt /app/last.txt

Three timings, end to end from the CLI (`DOCKER_BUILDKIT=0 docker build -q`), median of
``--runs`` each: **cold** (``--no-cache``), **cached** (the same build again: every step
from the cache) and **one file changed** (``last.txt`` rewritten before each run: the last
step alone runs). With ``--compare`` the engines take turns run by run (order alternating),
so a slower phase of this VM weighs on both alike; the ratios berthd/other are printed.
Issue 23's targets: cold <= 0.6x, cached <= 0.5x dockerd. The engines must have
busybox:latest (tests/images_harness.py imports it); the images the bench builds are
removed at the end.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time

DOCKERFILE = """FROM busybox
COPY files /app/files
RUN cat /app/files/f0000 > /app/first && wc -c /app/files/f0999
ENV APP=bench
WORKDIR /app
COPY last.txt /app/last.txt
"""
TAG = "berth-bench-build"


def make_context(root: str, count: int = 1000) -> None:
    files = os.path.join(root, "files")
    os.makedirs(files)
    rng = random.Random(23)
    for n in range(count):
        with open(os.path.join(files, f"f{n:04d}"), "wb") as handle:
            handle.write(rng.randbytes(rng.randint(100, 2000)))
    with open(os.path.join(root, "last.txt"), "w") as handle:
        handle.write("0\n")
    with open(os.path.join(root, "Dockerfile"), "w") as handle:
        handle.write(DOCKERFILE)


def env_for(host: str) -> dict[str, str]:
    env = dict(os.environ, DOCKER_HOST=host, DOCKER_BUILDKIT="0")
    for name in ("DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"):
        env.pop(name, None)
    return env


def build_seconds(env: dict[str, str], context: str, *extra: str) -> float:
    command = ["docker", "build", "-q", "-t", TAG, *extra, context]
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {result.stderr.decode()}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("host")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--compare", help="another engine's DOCKER_HOST (e.g. Debian's dockerd)")
    options = parser.parse_args()
    hosts = [options.host] + ([options.compare] if options.compare else [])
    envs = [env_for(host) for host in hosts]
    root = tempfile.mkdtemp(prefix="berth-bench-build-")
    try:
        make_context(root)
        times: dict[str, list[list[float]]] = {kind: [[] for _ in hosts] for kind in
                                               ("cold", "cached", "changed")}
        for env in envs:  # warm up: busybox's layers in the page cache, the CLI loaded
            build_seconds(env, root, "--no-cache")
        counter = 0
        for round_ in range(options.runs):
            order = list(range(len(hosts)))
            if round_ % 2:
                order.reverse()
            for i in order:
                times["cold"][i].append(build_seconds(envs[i], root, "--no-cache"))
            for i in order:
                times["cached"][i].append(build_seconds(envs[i], root))
            for i in order:
                counter += 1
                with open(os.path.join(root, "last.txt"), "w") as handle:
                    handle.write(f"{counter}\n")
                times["changed"][i].append(build_seconds(envs[i], root))
        print(f"{options.runs} runs each, median seconds (docker CLI, classic builder):")
        for kind, label in (("cold", "cold (--no-cache)"), ("cached", "fully cached"),
                            ("changed", "one file changed")):
            medians = [statistics.median(t) for t in times[kind]]
            line = f"  {label:20s} berthd {medians[0]:.3f} s"
            if len(medians) > 1:
                line += f"   other {medians[1]:.3f} s   ratio {medians[0] / medians[1]:.2f}x"
            print(line)
    finally:
        for env in envs:
            subprocess.run(["docker", "rmi", "-f", TAG], env=env, capture_output=True)
            subprocess.run(["docker", "image", "prune", "-f"], env=env, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
