"""The real docker CLI and docker-py against berthd: ping, version, info, events."""

import json
import signal
import subprocess
import threading
import time

import docker
import pytest

pytestmark = pytest.mark.e2e


def run_docker(daemon, *args, check=True, **env):
    result = subprocess.run(["docker", *args], env=daemon.env(**env), capture_output=True,
                            text=True, timeout=60)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed: {result.stderr}")
    return result


def test_docker_version_negotiates_147(berthd):
    out = run_docker(berthd, "version", "--format", "{{json .}}").stdout
    data = json.loads(out)
    assert data["Client"]["ApiVersion"] == "1.47"
    assert data["Server"]["ApiVersion"] == "1.47"
    assert data["Server"]["MinAPIVersion"] == "1.24"
    assert data["Server"]["Os"] == "linux"
    assert data["Server"]["KernelVersion"]
    assert any(c["Name"] == "Engine" for c in data["Server"]["Components"])


def test_docker_info_reports_real_paths(berthd):
    info = json.loads(run_docker(berthd, "info", "--format", "{{json .}}").stdout)
    assert info["DockerRootDir"] == berthd.data_root
    assert info["NCPU"] >= 1 and info["MemTotal"] > 0
    assert info["OperatingSystem"]
    assert info["CgroupVersion"] in ("1", "2")
    assert info["Swarm"]["LocalNodeState"] == "inactive"


def test_docker_py_ping_version_info(berthd):
    client = docker.DockerClient(base_url=berthd.host, version="auto")
    try:
        assert client.ping() is True
        assert client.version()["ApiVersion"] == "1.47"
        assert client.info()["ID"]
    finally:
        client.close()


def test_events_stream_live_and_filtered(fresh_berthd):
    daemon = fresh_berthd()
    client = docker.APIClient(base_url=daemon.host, version="1.47")
    received = []

    def listen():
        for event in client.events(decode=True, filters={"type": ["daemon"]}):
            received.append(event)
            return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    time.sleep(0.5)
    daemon.process.send_signal(signal.SIGHUP)  # a reload publishes a `daemon reload` event
    listener.join(10)
    assert received and received[0]["Type"] == "daemon" and received[0]["Action"] == "reload"
    assert received[0]["timeNano"] // 1_000_000_000 == received[0]["time"]
    # The same event is in the history, and `docker system events --since/--until` prints it.
    out = run_docker(daemon, "system", "events", "--since", "0",
                     "--until", str(int(time.time()) + 1), "--format", "{{.Type}} {{.Action}}").stdout
    assert "daemon reload" in out
    empty = run_docker(daemon, "system", "events", "--since", "0", "--until",
                       str(int(time.time()) + 1), "--filter", "type=container").stdout
    assert empty.strip() == ""
    client.close()


def test_events_bad_filter_is_400(berthd):
    result = run_docker(berthd, "events", "--since", "0", "--until", "1",
                        "--filter", "type=bogus", check=False)
    assert result.returncode != 0
    assert "Invalid event type filter 'bogus'" in result.stderr


def test_swarm_routes_answer_as_plain_node(berthd):
    result = run_docker(berthd, "node", "ls", check=False)
    assert result.returncode != 0
    assert "This node is not a swarm manager" in result.stderr


def run_berth(daemon, *args, **env):
    import sys
    return subprocess.run([sys.executable, "-m", "berth.cli", *args], env=daemon.env(**env),
                          capture_output=True, text=True, timeout=60)


def test_berth_version_info_events_against_berthd(fresh_berthd):
    daemon = fresh_berthd()
    version = run_berth(daemon, "version", "--format", "{{.Server.APIVersion}} {{.Client.APIVersion}}")
    assert version.returncode == 0, version.stderr
    assert version.stdout.split() == ["1.47", "1.47"]
    info = run_berth(daemon, "info", "--format", "{{.DockerRootDir}}")
    assert info.stdout.strip() == daemon.data_root
    daemon.process.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    events = run_berth(daemon, "system", "events", "--since", "0", "--until", str(int(time.time()) + 1),
                       "--filter", "type=daemon", "--format", "{{.Type}}:{{.Action}}")
    assert "daemon:reload" in events.stdout.split()


def test_berth_cannot_connect_message(tmp_path):
    import sys
    env = dict(__import__("os").environ, DOCKER_HOST=f"unix://{tmp_path}/none.sock",
               DOCKER_CONFIG=str(tmp_path))
    result = subprocess.run([sys.executable, "-m", "berth.cli", "version"], env=env,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert f"Cannot connect to the Docker daemon at unix://{tmp_path}/none.sock" in result.stderr


def test_docker_debug_wire_trace(fresh_berthd):
    daemon = fresh_berthd()
    result = run_berth(daemon, "version", DOCKER_DEBUG="1")
    assert "GET /_ping" in result.stderr or "HEAD /_ping" in result.stderr
    assert "Api-Version: 1.47" in result.stderr
