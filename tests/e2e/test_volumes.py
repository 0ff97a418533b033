"""Volumes through the real docker CLI and docker-py against berthd."""

import json
import os
import re
import subprocess
import time
import uuid

import docker
import pytest

pytestmark = pytest.mark.e2e


def run_docker(daemon, *args, check=True):
    result = subprocess.run(["docker", *args], env=daemon.env(), capture_output=True,
                            text=True, timeout=60)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed: {result.stderr}")
    return result


def unique(prefix="vol"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def cleanup(berthd):
    names = []
    yield names
    for name in names:
        run_docker(berthd, "volume", "rm", "-f", name, check=False)


def test_cli_create_inspect_ls_rm(berthd, cleanup):
    name = unique()
    cleanup.append(name)
    out = run_docker(berthd, "volume", "create", "--label", "tier=db", "--label", "flag",
                     "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=8m", name).stdout
    assert out.strip() == name
    info = json.loads(run_docker(berthd, "volume", "inspect", name).stdout)[0]
    mountpoint = os.path.join(berthd.data_root, "volumes", name, "_data")
    assert info["Mountpoint"] == mountpoint and os.path.isdir(mountpoint)
    assert info["Driver"] == "local" and info["Scope"] == "local"
    assert info["Labels"] == {"tier": "db", "flag": ""}
    assert info["Options"] == {"type": "tmpfs", "device": "tmpfs", "o": "size=8m"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)", info["CreatedAt"])
    fmt = run_docker(berthd, "volume", "inspect", "--format", "{{.Name}} {{.Scope}}", name).stdout
    assert fmt.strip() == f"{name} local"

    listed = run_docker(berthd, "volume", "ls", "--format", "{{.Driver}} {{.Name}}").stdout
    assert f"local {name}" in listed.splitlines()
    assert name in run_docker(berthd, "volume", "ls", "-q").stdout.split()
    for flt in (f"name={name}", "label=tier=db", "label=flag", "driver=local", "dangling=true"):
        out = run_docker(berthd, "volume", "ls", "-q", "--filter", flt).stdout.split()
        assert name in out, flt
    assert name not in run_docker(berthd, "volume", "ls", "-q", "--filter", "label=tier=web",
                                  ).stdout.split()
    assert name not in run_docker(berthd, "volume", "ls", "-q", "--filter",
                                  "dangling=false").stdout.split()

    assert run_docker(berthd, "volume", "rm", name).stdout.strip() == name
    assert not os.path.exists(os.path.dirname(mountpoint))
    assert name not in run_docker(berthd, "volume", "ls", "-q").stdout.split()


def test_cli_errors(berthd):
    result = run_docker(berthd, "volume", "create", "x/y", check=False)
    assert result.returncode != 0
    assert ('create x/y: "x/y" includes invalid characters for a local volume name, only '
            '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed') in result.stderr
    result = run_docker(berthd, "volume", "create", "-o", "foo=bar", unique(), check=False)
    assert result.returncode != 0 and 'invalid option: "foo"' in result.stderr
    result = run_docker(berthd, "volume", "create", "-d", "flocker", unique(), check=False)
    assert result.returncode != 0 and 'plugin "flocker" not found' in result.stderr
    ghost = unique("ghost")
    result = run_docker(berthd, "volume", "rm", ghost, check=False)
    assert result.returncode != 0 and f"get {ghost}: no such volume" in result.stderr
    assert run_docker(berthd, "volume", "rm", "-f", ghost).returncode == 0
    result = run_docker(berthd, "volume", "inspect", ghost, check=False)
    assert result.returncode != 0 and "no such volume" in result.stderr.lower()
    result = run_docker(berthd, "volume", "ls", "--filter", "color=red", check=False)
    assert result.returncode != 0 and "invalid filter 'color'" in result.stderr


def test_cli_prune_anonymous_by_default_and_all(fresh_berthd):
    daemon = fresh_berthd()
    anon = run_docker(daemon, "volume", "create").stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", anon)
    named, kept = unique("named"), unique("kept")
    run_docker(daemon, "volume", "create", named)
    run_docker(daemon, "volume", "create", "--label", "keep=1", kept)
    with open(os.path.join(daemon.data_root, "volumes", anon, "_data", "blob"), "wb") as f:
        f.write(b"x" * 2000)

    out = run_docker(daemon, "volume", "prune", "-f").stdout
    assert anon in out and named not in out and "Total reclaimed space: 2kB" in out
    out = run_docker(daemon, "volume", "prune", "-af", "--filter", "label!=keep").stdout
    assert named in out and kept not in out
    assert run_docker(daemon, "volume", "ls", "-q").stdout.split() == [kept]
    run_docker(daemon, "volume", "rm", kept)

    events = run_docker(daemon, "system", "events", "--since", "0", "--until",
                        str(int(time.time()) + 1), "--filter", "type=volume",
                        "--format", "{{.Action}} {{.Actor.ID}}").stdout.splitlines()
    assert f"create {anon}" in events and f"destroy {named}" in events
    assert "prune " in [line[:6] for line in events]


def test_docker_py_volumes(berthd):
    client = docker.DockerClient(base_url=berthd.host, version="auto")
    name = unique("py")
    try:
        volume = client.volumes.create(name=name, driver="local", labels={"app": "py"},
                                       driver_opts={"type": "none", "device": "/srv",
                                                    "o": "bind"})
        assert volume.name == name and volume.attrs["Options"]["o"] == "bind"
        got = client.volumes.get(name)
        assert got.attrs["Labels"] == {"app": "py"} and got.attrs["Mountpoint"].endswith("/_data")
        assert [v.name for v in client.volumes.list(filters={"label": "app=py"})] == [name]
        assert client.api.volumes(filters={"name": name})["Warnings"] is None
        with pytest.raises(docker.errors.NotFound):
            client.volumes.get(unique("none"))
        with pytest.raises(docker.errors.APIError) as info:
            client.volumes.create(name="a")
        assert info.value.status_code == 400 and "too short" in str(info.value)
        got.remove()
        with pytest.raises(docker.errors.NotFound):
            client.volumes.get(name)
        # docker-py drops remove_volume's force parameter; send it as the CLI does.
        url = client.api._url("/volumes/{0}", name)
        assert client.api._delete(url, params={"force": "1"}).status_code == 204
        assert client.api._delete(url).status_code == 404
    finally:
        client.api._delete(client.api._url("/volumes/{0}", name), params={"force": "1"})
        client.close()


def test_docker_py_prune_and_old_api_prunes_all(fresh_berthd):
    daemon = fresh_berthd()
    client = docker.DockerClient(base_url=daemon.host, version="1.47")
    old = docker.APIClient(base_url=daemon.host, version="1.41")
    try:
        named = client.volumes.create(name=unique("named")).name
        anon = client.volumes.create().name
        report = client.volumes.prune()
        assert report == {"VolumesDeleted": [anon], "SpaceReclaimed": 0}
        report = old.prune_volumes()  # API < 1.42: every unused volume
        assert report["VolumesDeleted"] == [named]
        assert client.volumes.list() == []
    finally:
        client.close()
        old.close()


def test_cluster_volume_routes_answer_as_non_swarm_node(berthd):
    client = docker.APIClient(base_url=berthd.host, version="1.47")
    try:
        name = unique("cv")
        response = client._put(client._url("/volumes/{0}", name), params={"version": 1},
                               json={})
        assert response.status_code == 503
        assert response.json()["message"] == (
            "volume update only valid for cluster volumes, but swarm is unavailable")
        response = client._post_json(client._url("/volumes/create"),
                                     data={"Name": name, "ClusterVolumeSpec": {}})
        assert response.status_code == 503
        assert "This node is not a swarm manager" in response.json()["message"]
        assert name not in [v["Name"] for v in client.volumes()["Volumes"] or []]
    finally:
        client.close()


def test_volume_and_data_survive_restart(fresh_berthd):
    first = fresh_berthd()
    name = unique("persist")
    run_docker(first, "volume", "create", "--label", "k=v", name)
    mountpoint = json.loads(run_docker(first, "volume", "inspect", name).stdout)[0]["Mountpoint"]
    with open(os.path.join(mountpoint, "data.txt"), "w") as f:
        f.write("still here")
    created = json.loads(run_docker(first, "volume", "inspect", name).stdout)[0]["CreatedAt"]
    assert first.stop() == 0
    second = fresh_berthd(root=first.root)
    info = json.loads(run_docker(second, "volume", "inspect", name).stdout)[0]
    assert info["Labels"] == {"k": "v"} and info["CreatedAt"] == created
    with open(os.path.join(info["Mountpoint"], "data.txt")) as f:
        assert f.read() == "still here"
    run_docker(second, "volume", "rm", name)
