"""Issue 5's benchmarks, with N running containers (default 100), through the real docker CLI:

- ``docker ps`` and ``docker ps -a`` (median of --runs);
- ``docker stats --no-stream`` of every running container (median of --stats-runs; dockerd's
  answer needs two samples one second apart, so about 1 s is the floor for any engine);
- daemon restart under live-restore (berthd only): SIGTERM to exit, start to listening, and
  start to ``docker ps`` listing all N containers running with the same PIDs.

Usage: python3 bench/lifecycle_bench.py [--containers 100] [--runs 10] [--stats-runs 3]
                                        [--compare unix:///path/dockerd.sock]
A temporary berthd is started (its own root, removed afterwards); ``--compare`` measures the
ps/stats part against another engine that already has busybox:latest (the containers it
creates there are removed at the end).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "e2e"))


def env_for(host: str, config_dir: str) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"):
        env.pop(name, None)
    env.update(DOCKER_HOST=host, DOCKER_CONFIG=config_dir)
    return env


def docker(env: dict[str, str], *args: str, check: bool = True) -> str:
    result = subprocess.run(["docker", *args], env=env, capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        raise SystemExit(f"docker {' '.join(args)} failed: {result.stderr}")
    return result.stdout


def timed_ms(env: dict[str, str], runs: int, *args: str) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        docker(env, *args)
        times.append((time.perf_counter() - started) * 1000)
    return times


def start_containers(env: dict[str, str], count: int, prefix: str) -> list[str]:
    def one(i: int) -> str:
        return docker(env, "run", "-d", "--network", "none", "--name", f"{prefix}{i}",
                      "busybox", "sleep", "1000000").strip()
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(count)))


def measure(label: str, env: dict[str, str], count: int, runs: int, stats_runs: int,
            prefix: str) -> None:
    started = time.perf_counter()
    start_containers(env, count, prefix)
    print(f"[{label}] started {count} containers in {time.perf_counter() - started:.1f} s")
    docker(env, "ps")  # warm
    ps = timed_ms(env, runs, "ps")
    ps_all = timed_ms(env, runs, "ps", "-a")
    stats = timed_ms(env, stats_runs, "stats", "--no-stream")
    rows = docker(env, "stats", "--no-stream", "--format", "{{.Name}}").split()
    assert len([r for r in rows if r.startswith(prefix)]) == count, rows
    print(f"[{label}] docker ps               median {statistics.median(ps):7.1f} ms  "
          f"(min {min(ps):.1f}, {runs} runs)")
    print(f"[{label}] docker ps -a            median {statistics.median(ps_all):7.1f} ms")
    print(f"[{label}] docker stats --no-stream median {statistics.median(stats):7.1f} ms  "
          f"(min {min(stats):.1f}, {stats_runs} runs)")


def restart_under_live_restore(daemon, env: dict[str, str], count: int, runs: int) -> None:
    from daemon_harness import start_daemon
    before = {c["Id"]: c["State"]["Pid"] for c in
              json.loads(docker(env, "inspect", *docker(env, "ps", "-q").split()))}
    assert len(before) == count
    for run in range(runs):
        started = time.perf_counter()
        daemon.process.send_signal(signal.SIGTERM)
        daemon.process.wait(120)
        stopped = time.perf_counter()
        daemon = start_daemon(root=daemon.root, args=["--live-restore"])
        listening = time.perf_counter()
        ids = docker(env, "ps", "-q", "--no-trunc").split()
        listed = time.perf_counter()
        after = {c["Id"]: c["State"]["Pid"] for c in json.loads(docker(env, "inspect", *ids))}
        assert after == before, "containers or PIDs changed across the restart"
        print(f"[berthd] live-restore restart {run + 1}: exit {1000 * (stopped - started):6.0f} ms, "
              f"start->listening {1000 * (listening - stopped):6.0f} ms, "
              f"start->ps of {count} {1000 * (listed - stopped):6.0f} ms")
    return daemon


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--containers", type=int, default=100)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--stats-runs", type=int, default=3)
    parser.add_argument("--restarts", type=int, default=3)
    parser.add_argument("--compare", help="another engine's DOCKER_HOST (e.g. dockerd)")
    args = parser.parse_args()

    from daemon_harness import start_daemon
    from images_harness import import_busybox
    from lifecycle_support import force_cleanup

    root = tempfile.mkdtemp(prefix="berth-bench-lc-")
    config_dir = os.path.join(root, "client-config")
    daemon = start_daemon(root=root, args=["--live-restore"])
    env = env_for(daemon.host, config_dir)
    try:
        import_busybox(env)
        measure("berthd", env, args.containers, args.runs, args.stats_runs, "bench")
        daemon = restart_under_live_restore(daemon, env, args.containers, args.restarts)
        ids = docker(env, "ps", "-aq").split()
        started = time.perf_counter()
        docker(env, "rm", "-f", *ids)
        print(f"[berthd] docker rm -f of {len(ids)}: {time.perf_counter() - started:.1f} s")
    finally:
        if daemon.process.poll() is None:
            daemon.process.send_signal(signal.SIGTERM)
            try:
                daemon.process.wait(120)
            except subprocess.TimeoutExpired:
                daemon.process.kill()
        force_cleanup(root)

    if args.compare:
        other = env_for(args.compare, tempfile.mkdtemp(prefix="bench-cfg-"))
        try:
            measure("compare", other, args.containers, args.runs, args.stats_runs, "lcbench")
        finally:
            ids = docker(other, "ps", "-aq", "--filter", "name=lcbench", check=False).split()
            if ids:
                docker(other, "rm", "-f", *ids, check=False)


if __name__ == "__main__":
    main()
