"""Shared by the net_* benchmarks: a berthd of their own (or one given with --host)."""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
from typing import Iterator

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))


@contextlib.contextmanager
def engine(host: str | None, *args: str) -> Iterator[dict[str, str]]:
    """Environment for the docker CLI: the given engine, or a temporary berthd with its own
    bridge and iptables prefix (removed afterwards) and busybox:latest imported."""
    if host:
        yield dict(os.environ, DOCKER_HOST=host)
        return
    from daemon_harness import remove_root, start_daemon
    from images_harness import import_busybox

    tag = secrets.token_hex(3)
    saved = os.environ.get("BERTH_IPTABLES_PREFIX")
    os.environ["BERTH_IPTABLES_PREFIX"] = f"BB{tag.upper()}"
    try:
        daemon = start_daemon(args=["--bridge", f"bb-{tag}", *args])
    finally:
        if saved is None:
            os.environ.pop("BERTH_IPTABLES_PREFIX", None)
        else:
            os.environ["BERTH_IPTABLES_PREFIX"] = saved
    try:
        env = daemon.env()
        import_busybox(env)
        yield env
    finally:
        for cid in subprocess.run(["docker", "ps", "-aq"], env=daemon.env(), capture_output=True,
                                  text=True).stdout.split():
            subprocess.run(["docker", "rm", "-f", cid], env=daemon.env(), capture_output=True)
        daemon.stop()
        remove_root(daemon.root)


def docker(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(["docker", *args], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"docker {' '.join(args)}: {result.stderr}")
    return result.stdout.strip()
