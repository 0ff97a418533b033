"""What the bridge network adds to `docker run --rm busybox true` over `--network none`.

Runs are interleaved (bridge, none, bridge, ...) and the median of the paired differences is
reported with the two medians: on a shared, loaded machine the pairs cancel most of the noise.
Then the host plumbing one bridge start and stop performs (netns, veth pair into a bridge with
address and route, netns removal) is timed directly, without the CLI, runc or the daemon.

Usage: python3 bench/net_run_overhead.py [--host unix:///path/berthd.sock] [--runs 20]
Without --host a temporary berthd is started (own bridge and iptables prefix, busybox imported).
Issue 6's target: <= 15 ms (Debian's dockerd: ~100 ms). --compare another engine's DOCKER_HOST.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from net_common import engine  # noqa: E402

BRIDGE = ["docker", "run", "--rm", "busybox", "true"]
NONE = ["docker", "run", "--rm", "--network", "none", "busybox", "true"]


HUNG: list[str] = []


def timed(command: list[str], env: dict[str, str]) -> float | None:
    """ms of one run; None (counted in HUNG) if it failed or hung (a container-service race
    that has nothing to do with networking shows up now and then on a loaded machine)."""
    started = time.perf_counter()
    try:
        result = subprocess.run(command, env=env, capture_output=True, timeout=30)
    except subprocess.TimeoutExpired:
        HUNG.append(" ".join(command))
        return None
    if result.returncode != 0:
        HUNG.append(f"{' '.join(command)}: {result.stderr.decode().strip()}")
        return None
    return (time.perf_counter() - started) * 1000


def measure(env: dict[str, str], runs: int) -> tuple[float, float, float]:
    for command in (BRIDGE, NONE):  # warm up (first use makes the default bridge)
        timed(command, env)
    pairs = []
    while len(pairs) < runs and len(HUNG) < runs:
        b, n = timed(BRIDGE, env), timed(NONE, env)
        if b is not None and n is not None:
            pairs.append((b, n))
    bridge, none = [b for b, _ in pairs], [n for _, n in pairs]
    return statistics.median(bridge), statistics.median(none), statistics.median(b - n for b, n in pairs)


def plumbing(runs: int) -> float:
    """Median ms of what the network service does on the host per bridge start + stop."""
    import secrets
    import tempfile

    from berth.network import bridge, netns

    name = f"bb-{secrets.token_hex(3)}"
    directory = tempfile.mkdtemp(prefix="berth-bench-ns-")
    times = []
    bridge.ensure_bridge(name, "10.216.0.1/24")
    try:
        for i in range(runs):
            path = f"{directory}/ns{i}"
            started = time.perf_counter()
            netns.create(path)
            bridge.connect(name, path, address="10.216.0.2/24", gateway="10.216.0.1")
            netns.delete(path)
            times.append((time.perf_counter() - started) * 1000)
            time.sleep(0.02)  # let the kernel free the old pair before the address is reused
    finally:
        bridge.delete_bridge(name)
        os.rmdir(directory)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--compare", help="another engine's DOCKER_HOST, e.g. Debian's dockerd")
    args = parser.parse_args()
    targets = [("berthd", args.host)] + ([("other", args.compare)] if args.compare else [])
    for label, host in targets:
        with engine(host) as env:
            bridge, none, added = measure(env, args.runs)
        print(f"{label:8s} bridge {bridge:7.1f} ms   none {none:7.1f} ms   bridge adds {added:6.1f} ms"
              f"  (medians of {args.runs} interleaved pairs; the last: median of differences)")
    if HUNG:
        print(f"(left out: {len(HUNG)} failed or hung runs, e.g. {HUNG[0]})")
    print(f"plumbing {plumbing(50):7.2f} ms  netns + veth/bridge/address/route + netns removal, "
          "no CLI/runc/daemon (median of 50)")


if __name__ == "__main__":
    main()
