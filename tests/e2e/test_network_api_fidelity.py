"""Network API details clients depend on, end to end: a network whose name has a space (the
docker CLI percent-encodes it in the path), percent-encoded image and container references,
``CheckDuplicate: false`` before API 1.44 (docker-py), and IPAM ``Options`` null unless
given. The daemon is test_networks' (unique bridge and chains)."""

from __future__ import annotations

import http.client
import json
import socket

import docker
import pytest

from test_networks import docker_cli, fails, ok
from test_networks import net, netd, resolver  # noqa: F401 - the fixtures, one daemon for this module

__all__ = ["net", "netd", "resolver"]   # fixtures shared with test_networks

pytestmark = pytest.mark.e2e


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path: str):
        super().__init__("localhost", timeout=30)
        self.socket_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(self.socket_path)


def raw(daemon, method: str, path: str, body: dict | None = None) -> tuple[int, object]:
    """One request with ``path`` sent exactly as written (percent-escapes included)."""
    conn = UnixHTTP(daemon.socket_path)
    try:
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
        reply = conn.getresponse()
        text = reply.read()
        return reply.status, json.loads(text) if text.strip() else None
    finally:
        conn.close()


def test_a_network_name_with_a_space(netd, net):
    name = f"test {net.name('sp')}"
    net.networks.append(name)
    network_id = ok(netd, "network", "create", name)
    netd.host_names.bridges.add(f"br-{network_id[:12]}")
    assert json.loads(ok(netd, "network", "inspect", name))[0]["Id"] == network_id
    assert ok(netd, "network", "ls", "--filter", f"id={network_id}", "--format", "{{.Name}}") == name
    box = net.name("box")
    net.run("--network", name, "busybox", "sleep", "300", name=box)
    assert name in json.loads(ok(netd, "inspect", box))[0]["NetworkSettings"]["Networks"]
    ok(netd, "network", "disconnect", name, box)
    ok(netd, "network", "rm", name)
    assert docker_cli(netd, "network", "inspect", name).returncode == 1


def test_percent_encoded_references(netd, net):
    status, image = raw(netd, "GET", "/v1.47/images/busybox%3Alatest/json")
    assert status == 200 and "busybox:latest" in image["RepoTags"]
    status, image = raw(netd, "GET", "/v1.47/images/docker.io%2Flibrary%2Fbusybox/json")  # {name:path}
    assert status == 200 and "busybox:latest" in image["RepoTags"]
    box = net.name("enc")
    cid = net.run("busybox", "sleep", "300", name=box)
    encoded = box.replace("-", "%2D")
    status, info = raw(netd, "GET", f"/v1.47/containers/{encoded}/json")
    assert status == 200 and info["Id"] == cid
    status, error = raw(netd, "GET", "/v1.47/containers/no%20such/json")
    assert status == 404 and error["message"] == "No such container: no such"


def test_check_duplicate_before_api_1_44(netd, net):
    name = net.name("dup")
    old = docker.APIClient(base_url=netd.host, version="1.43", timeout=60)
    new = docker.APIClient(base_url=netd.host, version="1.44", timeout=60)
    made = []
    try:
        made.append(old.create_network(name)["Id"])
        with pytest.raises(docker.errors.APIError) as excinfo:   # asked for the check: refused
            old.create_network(name, check_duplicate=True)
        assert excinfo.value.status_code == 409
        assert f"network with name {name} already exists" in str(excinfo.value)
        made.append(old.create_network(name, check_duplicate=False)["Id"])   # dockerd < 25: a twin
        made.append(old.create_network(name)["Id"])                          # no field: false too
        assert len(set(made)) == 3
        with pytest.raises(docker.errors.APIError) as excinfo:   # from 1.44 names are unique
            new.create_network(name, check_duplicate=False)
        assert excinfo.value.status_code == 409
        listed = [n["Id"] for n in new.networks(names=[name]) if n["Name"] == name]
        assert sorted(listed) == sorted(made)
        for network_id in made:
            netd.host_names.bridges.add(f"br-{network_id[:12]}")
            assert new.inspect_network(network_id)["Name"] == name
        err = fails(netd, "network", "inspect", name)
        assert f"network {name} is ambiguous (3 matches found on name)" in err
    finally:
        for network_id in made:
            new.remove_network(network_id)
        old.close()
        new.close()


def test_ipam_options_are_null_unless_given(netd, net):
    client = docker.APIClient(base_url=netd.host, version="auto", timeout=60)
    names = [net.name("py"), net.name("opt")]
    try:
        plain = client.create_network(names[0])["Id"]
        given = client.create_network(names[1], ipam=docker.types.IPAMConfig(options={"x": "y"}))["Id"]
        for network_id in (plain, given):
            netd.host_names.bridges.add(f"br-{network_id[:12]}")
        assert client.inspect_network(plain)["IPAM"]["Options"] is None
        assert client.inspect_network(given)["IPAM"]["Options"] == {"x": "y"}
        assert client.inspect_network("none")["IPAM"]["Options"] is None
    finally:
        for name in names:
            try:
                client.remove_network(name)
            except docker.errors.NotFound:
                pass
        client.close()
