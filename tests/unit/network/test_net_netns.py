"""Network namespaces bound at paths (root)."""

import asyncio
import os

import pytest

from berth.network import netns, sysctl
from nethelpers import needs_root

pytestmark = needs_root


def test_create_run_in_delete(nsdir):
    path = netns.create(nsdir / "c1")
    assert netns.is_netns(path) and not netns.is_netns(nsdir)
    inside = netns.run_in(path, os.readlink, "/proc/thread-self/ns/net")
    assert inside != os.readlink("/proc/thread-self/ns/net")
    assert inside == f"net:[{os.stat(path).st_ino}]"
    # loopback is up and only loopback exists
    from berth.network import bridge

    assert bridge.interfaces_in(path) == {"lo": ["127.0.0.1/8"]}
    assert netns.list_dir(nsdir) == [path]
    netns.delete(path)
    assert not path.exists() and netns.list_dir(nsdir) == []
    netns.delete(path)  # idempotent


def test_create_refuses_an_existing_path_and_leaves_it(nsdir):
    path = netns.create(nsdir / "c1")
    with pytest.raises(FileExistsError):
        netns.create(path)
    assert netns.is_netns(path)
    plain = nsdir / "stale-file"
    plain.write_text("")
    assert not netns.is_netns(plain)
    assert set(netns.list_dir(nsdir)) == {path, plain}  # both found for cleanup
    netns.delete(plain)
    assert not plain.exists()


def test_run_in_propagates_exceptions_and_sysctls_are_per_netns(nsdir):
    path = netns.create(nsdir / "c1")
    with pytest.raises(ZeroDivisionError):
        netns.run_in(path, lambda: 1 / 0)
    host_before = sysctl.read("net.ipv4.ip_forward")
    netns.run_in(path, sysctl.write, "net.ipv4.ip_forward", 1 if host_before == "0" else 0)
    assert netns.run_in(path, sysctl.read, "net.ipv4.ip_forward") != host_before
    assert sysctl.read("net.ipv4.ip_forward") == host_before


def test_run_in_async(nsdir):
    path = netns.create(nsdir / "c1")

    async def main():
        return await netns.run_in_async(path, os.readlink, "/proc/thread-self/ns/net")

    assert asyncio.run(main()) == f"net:[{os.stat(path).st_ino}]"


def test_prepare_dir_makes_a_shared_mount_and_release_undoes_it(nsdir):
    d = nsdir / "shared"
    netns.prepare_dir(d)
    try:
        netns.prepare_dir(d)  # idempotent: no second bind mount
        with open("/proc/self/mountinfo") as f:
            mine = [line for line in f if line.split()[4] == str(d)]
        assert len(mine) == 1 and "shared:" in mine[0]
        netns.create(d / "c1")
    finally:
        netns.release_dir(d)
    with open("/proc/self/mountinfo") as f:
        assert not any(line.split()[4].startswith(str(d)) for line in f)
    assert netns.list_dir(d) == []
