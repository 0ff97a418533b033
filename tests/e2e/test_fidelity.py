"""Where clients rely on dockerd's exact behaviour: namespaces shared between containers,
the IPC mode inspect shows, the event stream's JSON, and docker-compose 1.29's recreate."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time

import pytest

from test_cli_common import berth  # the berth CLI against a daemon
from lifecycle_support import docker_cli, ok, unique

pytestmark = pytest.mark.e2e


def test_pid_and_ipc_namespaces_are_joined(busybox):
    donor, plain = unique("donor"), unique("plain")
    ok(busybox, "run", "-d", "--name", donor, "--ipc", "shareable", "busybox", "sh", "-c",
       "echo shared > /dev/shm/f; sleep 300")
    ok(busybox, "run", "-d", "--name", plain, "busybox", "sleep", "300")
    try:
        time.sleep(0.3)
        ps = ok(busybox, "run", "--rm", "--pid", f"container:{donor}", "busybox", "ps", "-o", "args")
        assert "sleep 300" in ps  # the donor's processes are in sight: one PID namespace
        joined = ok(busybox, "run", "--rm", "--ipc", f"container:{donor}", "busybox", "sh", "-c",
                    "cat /dev/shm/f; readlink /proc/self/ns/ipc")
        own = ok(busybox, "exec", donor, "readlink", "/proc/self/ns/ipc")
        assert joined.splitlines() == ["shared", own.strip()]
        refused = docker_cli(busybox, "run", "--rm", "--ipc", f"container:{plain}", "busybox", "true")
        assert refused.returncode == 125
        assert (f"container {plain}: non-shareable IPC (hint: use IpcMode:shareable for the "
                "donor container)") in refused.stderr
        assert ok(busybox, "inspect", "-f", "{{.HostConfig.IpcMode}}", plain) == "private\n"
        ok(busybox, "stop", "-t", "1", plain)
        stopped = docker_cli(busybox, "run", "--rm", "--pid", f"container:{plain}", "busybox", "true")
        assert stopped.returncode == 125 and f"container {plain} is not running" in stopped.stderr
    finally:
        ok(busybox, "rm", "-f", donor, plain)


def test_event_json_prints_the_legacy_fields_first(busybox):
    since = time.time()
    ok(busybox, "run", "--rm", "busybox", "true")
    until = time.time() + 1
    args = ["events", "--since", f"{since:.3f}", "--until", f"{until:.3f}", "--format",
            "{{json .}}"]
    ours = berth(busybox, *args).out.splitlines()
    theirs = ok(busybox, *args).splitlines()
    assert ours == theirs
    assert list(json.loads(ours[0]))[:3] == ["status", "id", "from"]


COMPOSE = """version: "3.8"
services:
  web:
    image: busybox
    command: ["sh", "-c", "test -f /data/kept || echo {marker} > /data/kept; sleep 300"]
    environment:
      STAGE: "{stage}"
    volumes:
      - /data
"""


def test_compose_v1_recreates_a_changed_service(busybox):
    """docker-compose 1.29 negotiates API 1.47 and reads ContainerConfig on recreate."""
    project = unique("cmp").replace("-", "")
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "docker-compose.yml")
        env = busybox.env()

        def compose(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run(["docker-compose", "-p", project, "-f", path, *args], env=env,
                                  capture_output=True, text=True, timeout=120)

        try:
            for stage in ("one", "two"):
                with open(path, "w") as handle:
                    handle.write(COMPOSE.format(marker=project, stage=stage))
                done = compose("up", "-d")
                assert done.returncode == 0, done.stderr
            name = f"{project}_web_1"
            assert ok(busybox, "inspect", "-f", "{{range .Config.Env}}{{println .}}{{end}}",
                      name).count("STAGE=two") == 1
            # the anonymous volume came along: the first run's file is still there
            assert ok(busybox, "exec", name, "cat", "/data/kept").strip() == project
        finally:
            compose("down", "-v")
