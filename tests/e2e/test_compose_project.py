"""A whole docker-compose 1.29 project (Debian's) against berthd: web + worker, the workers
waiting for web to be healthy (file format 2.4's ``depends_on: condition: service_healthy``),
a named volume, a bind mount, a dual-stack user network (``enable_ipv6``) with its DNS, ``--scale worker=3``, the workers
in web's PID namespace (``pid: "service:web"``); ``up -d``, a configuration change and
``up -d`` again (the recreated workers keep their anonymous volumes' data), ``exec``,
``logs``, ``down -v``. The daemon is test_networks' (unique bridge and chains)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess

import pytest

from test_networks import docker_cli, ok
from test_networks import net, netd, resolver  # noqa: F401 - the fixtures, one daemon for this module

__all__ = ["net", "netd", "resolver"]   # fixtures shared with test_networks

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not os.path.exists("/proc/net/if_inet6"), reason="no IPv6 in this kernel")]

COMPOSE = """version: "2.4"
services:
  web:
    image: busybox
    command: ["sh", "-c", "echo boot >> /data/boots; exec httpd -f -p 8080 -h /www"]
    volumes:
      - appdata:/data
      - ./site:/www:ro
    networks: [backend]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/index.html"]
      interval: 1s
      timeout: 2s
      retries: 30
  worker:
    image: busybox
    command: ["sh", "-c", "test -f /state/first || hostname > /state/first; echo worker $$STAGE up; while :; do wget -q -O - http://web:8080/index.html; sleep 2; done"]
    environment:
      STAGE: "{stage}"
    pid: "service:web"
    depends_on:
      web:
        condition: service_healthy
    volumes:
      - /state
    networks: [backend]
volumes:
  appdata: {{}}
networks:
  backend:
    enable_ipv6: true
"""


def test_a_compose_project_through_its_life(netd, tmp_path):
    project = f"cp{secrets.token_hex(4)}"
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.html").write_text(f"hello from {project}\n")
    path = tmp_path / "docker-compose.yml"

    def compose(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(["docker-compose", "-p", project, "-f", str(path), *args],
                              env=netd.env(), capture_output=True, text=True, timeout=180,
                              cwd=str(tmp_path))
        if check:
            assert done.returncode == 0, f"docker-compose {' '.join(args)}:\n{done.stderr}"
        return done

    def workers() -> dict[str, dict]:
        ids = ok(netd, "ps", "-q", "--filter", f"label=com.docker.compose.project={project}",
                 "--filter", "label=com.docker.compose.service=worker").split()
        infos = [json.loads(ok(netd, "inspect", cid))[0] for cid in ids]
        return {info["Config"]["Labels"]["com.docker.compose.container-number"]: info for info in infos}

    try:
        path.write_text(COMPOSE.format(stage="one"))
        compose("up", "-d", "--scale", "worker=3")
        network_id = ok(netd, "network", "inspect", "-f", "{{.Id}}", f"{project}_backend")
        netd.host_names.bridges.add(f"br-{network_id[:12]}")
        web = json.loads(ok(netd, "inspect", f"{project}_web_1"))[0]
        assert web["State"]["Health"]["Status"] == "healthy"   # the workers waited for it
        assert [m["Type"] for m in sorted(web["Mounts"], key=lambda m: m["Destination"])] == ["volume", "bind"]
        first = workers()
        assert sorted(first) == ["1", "2", "3"]
        for number, info in first.items():
            assert info["HostConfig"]["PidMode"] == f"container:{web['Id']}"
            assert list(info["NetworkSettings"]["Networks"]) == [f"{project}_backend"]
            # one PID namespace with web: its httpd is in sight
            ps = compose("exec", "-T", "--index", number, "worker", "ps", "-o", "args").stdout
            assert "httpd -f -p 8080" in ps
        backend = web["NetworkSettings"]["Networks"][f"{project}_backend"]
        resolved = compose("exec", "-T", "--index", "2", "worker", "nslookup", "web").stdout
        assert f"Address: {backend['IPAddress']}" in resolved
        web6 = backend["GlobalIPv6Address"]
        assert web6.startswith("fd")   # a unique local /64 chosen for the network
        resolved = compose("exec", "-T", "--index", "3", "worker", "nslookup", "-type=aaaa", "web").stdout
        assert f"Address: {web6}" in resolved
        page = compose("exec", "-T", "--index", "1", "worker", "wget", "-q", "-O", "-",
                       f"http://[{web6}]:8080/index.html").stdout
        assert page == f"hello from {project}\n"
        states = {n: compose("exec", "-T", "--index", n, "worker", "cat", "/state/first").stdout for n in first}
        assert all(states.values())
        logs = compose("logs", "--no-color", "worker").stdout
        assert "worker one up" in logs and f"hello from {project}" in logs

        # a change to the workers: recreated, each keeps its anonymous volume
        path.write_text(COMPOSE.format(stage="two"))
        compose("up", "-d", "--scale", "worker=3")
        second = workers()
        assert sorted(second) == ["1", "2", "3"]
        assert {i["Id"] for i in second.values()}.isdisjoint({i["Id"] for i in first.values()})
        assert json.loads(ok(netd, "inspect", f"{project}_web_1"))[0]["Id"] == web["Id"]   # untouched
        for number, info in second.items():
            assert "STAGE=two" in info["Config"]["Env"]
            assert compose("exec", "-T", "--index", number, "worker", "cat", "/state/first").stdout == \
                states[number]
        assert compose("exec", "-T", "web", "cat", "/data/boots").stdout == "boot\n"
        assert "worker two up" in compose("logs", "--no-color", "--tail", "50", "worker").stdout

        compose("down", "-v")
        assert ok(netd, "ps", "-aq", "--filter", f"label=com.docker.compose.project={project}") == ""
        assert docker_cli(netd, "network", "inspect", f"{project}_backend").returncode != 0
        assert docker_cli(netd, "volume", "inspect", f"{project}_appdata").returncode != 0
        assert os.path.exists(tmp_path / "site" / "index.html")   # the bind mount's source stays
    finally:
        compose("down", "-v", check=False)
