"""Volumes and mounts on running containers, through the real docker CLI."""

import json
import os
import subprocess
import uuid

import pytest

pytestmark = pytest.mark.e2e


def docker_cli(daemon, *args, input=None):
    return subprocess.run(["docker", *args], env=daemon.env(), capture_output=True, text=True,
                          input=input, timeout=60)


@pytest.fixture
def cleanup(busybox):
    containers, volumes = [], []
    yield containers, volumes
    for name in containers:
        docker_cli(busybox, "rm", "-f", "-v", name)
    for name in volumes:
        docker_cli(busybox, "volume", "rm", "-f", name)


def test_named_volume_outlives_containers_and_blocks_rm(busybox, cleanup):
    containers, volumes = cleanup
    vol, holder = f"v-{uuid.uuid4().hex[:8]}", f"c-{uuid.uuid4().hex[:8]}"
    volumes.append(vol)
    containers.append(holder)
    assert docker_cli(busybox, "run", "--rm", "-v", f"{vol}:/data", "busybox", "sh", "-c",
                      "echo kept > /data/f").returncode == 0
    assert docker_cli(busybox, "run", "--rm", "-v", f"{vol}:/data:ro", "busybox", "cat",
                      "/data/f").stdout == "kept\n"
    ro = docker_cli(busybox, "run", "--rm", "-v", f"{vol}:/data:ro", "busybox", "sh", "-c",
                    "echo x > /data/g")
    assert ro.returncode != 0 and "Read-only file system" in ro.stderr
    docker_cli(busybox, "create", "--name", holder, "-v", f"{vol}:/data", "busybox")
    refused = docker_cli(busybox, "volume", "rm", vol)
    assert refused.returncode != 0 and "volume is in use" in refused.stderr
    listed = docker_cli(busybox, "ps", "-a", "--filter", f"volume={vol}", "--format", "{{.Names}}")
    assert listed.stdout.split() == [holder]
    mounts = json.loads(docker_cli(busybox, "inspect", holder).stdout)[0]["Mounts"]
    assert mounts[0]["Type"] == "volume" and mounts[0]["Name"] == vol
    assert mounts[0]["Destination"] == "/data" and mounts[0]["RW"] is True
    assert "Plan" not in mounts[0]


def test_anonymous_volume_removed_with_rm_v_and_copy_up(busybox, cleanup):
    containers, _ = cleanup
    name = f"c-{uuid.uuid4().hex[:8]}"
    containers.append(name)
    # /etc has content in the image: a new volume there is filled with it first (copy-up).
    docker_cli(busybox, "run", "--name", name, "-v", "/etc", "busybox", "cat", "/etc/passwd")
    mounts = json.loads(docker_cli(busybox, "inspect", name).stdout)[0]["Mounts"]
    source = mounts[0]["Source"]
    assert os.path.exists(os.path.join(source, "passwd"))
    assert docker_cli(busybox, "logs", name).stdout.startswith("root:x:0:0")
    assert docker_cli(busybox, "rm", "-v", name).returncode == 0
    assert not os.path.exists(source)


def test_bind_mounts_and_mount_errors(busybox, cleanup, tmp_path):
    (tmp_path / "in.txt").write_text("from host\n")
    result = docker_cli(busybox, "run", "--rm", "-v", f"{tmp_path}:/host", "busybox", "sh", "-c",
                        "cat /host/in.txt; echo back > /host/out.txt")
    assert result.stdout == "from host\n"
    assert (tmp_path / "out.txt").read_text() == "back\n"
    created = tmp_path / "made-by-v"
    assert docker_cli(busybox, "run", "--rm", "-v", f"{created}:/x", "busybox", "true").returncode == 0
    assert created.is_dir()  # -v creates a missing source, as Docker does
    missing = docker_cli(busybox, "run", "--rm", "--mount",
                         f"type=bind,src={tmp_path}/nope,dst=/x", "busybox", "true")
    assert "bind source path does not exist" in missing.stderr
    root = docker_cli(busybox, "run", "--rm", "-v", f"{tmp_path}:/", "busybox", "true")
    assert root.returncode != 0 and "destination can't be '/'" in root.stderr


def test_tmpfs_mount_and_volumes_from(busybox, cleanup):
    containers, _ = cleanup
    source = f"c-{uuid.uuid4().hex[:8]}"
    containers.append(source)
    result = docker_cli(busybox, "run", "--rm", "--mount", "type=tmpfs,dst=/t,tmpfs-size=1m",
                        "busybox", "sh", "-c", "grep ' /t ' /proc/mounts | cut -d' ' -f3")
    assert result.stdout == "tmpfs\n"
    docker_cli(busybox, "run", "--name", source, "-v", "/shared", "busybox", "sh", "-c",
               "echo hi > /shared/f")
    shared = docker_cli(busybox, "run", "--rm", "--volumes-from", f"{source}:ro", "busybox",
                        "cat", "/shared/f")
    assert shared.stdout == "hi\n"
