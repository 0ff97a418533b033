"""``berth volume ...`` and ``berth network ...`` against the docker CLI."""

from __future__ import annotations

import json

import pytest

from test_cli_common import berth, compare, docker, unique

pytestmark = pytest.mark.e2e


@pytest.fixture
def volumes(busybox):
    made: list[str] = []

    def make(prefix: str = "vol") -> str:
        made.append(unique(prefix))
        return made[-1]

    yield make
    if made:
        berth(busybox, "volume", "rm", "-f", *made)


def test_volume_lifecycle(busybox, volumes):
    name = volumes()
    assert berth(busybox, "volume", "create", "--label", "a=b", "-o", "type=tmpfs", "-o", "device=tmpfs", name).out == f"{name}\n"
    compare(busybox, "volume", "inspect", name)
    compare(busybox, "volume", "inspect", "--format", "json", name, "no-such-volume-xyz")
    compare(busybox, "volume", "inspect", "-f", "{{.Name}} {{.Driver}} {{.Labels}} {{.Options}}", name)
    compare(busybox, "inspect", "--type", "volume", name)
    compare(busybox, "inspect", name)
    for extra in ([], ["-q"], ["--format", "json"], ["--format", "table {{.Name}}\t{{.Labels}}\t{{.Label \"a\"}}"], ["--format", "{{.ID}}"]):
        compare(busybox, "volume", "ls", "--filter", f"name={name}", *extra)
    compare(busybox, "volume", "create", "--name", "x", "y")
    compare(busybox, "volume", "create", "--label", " =x")
    want = docker(busybox, "volume", "rm", "no-such-volume-xyz")
    removed = berth(busybox, "volume", "rm", name, "no-such-volume-xyz")
    assert (removed.code, removed.out, removed.err) == (1, f"{name}\n", want.err)


def test_volume_in_use_and_prune(busybox, volumes, names):
    used, loose = volumes(), volumes()
    label = unique("vlabel")
    for name in (used, loose):
        assert berth(busybox, "volume", "create", "--label", f"suite={label}", name).code == 0
    container = names()
    assert berth(busybox, "run", "-d", "--name", container, "-v", f"{used}:/data", "busybox", "sleep", "300").code == 0
    compare(busybox, "volume", "rm", used)
    cancelled = berth(busybox, "volume", "prune", input="n\n")
    assert cancelled.out == ("WARNING! This will remove anonymous local volumes not used by at least one container.\n"
                             "Are you sure you want to continue? [y/N] ")
    pruned = berth(busybox, "volume", "prune", "-a", "-f", "--filter", f"label=suite={label}")
    assert pruned.code == 0 and pruned.out.startswith(f"Deleted Volumes:\n{loose}\n"), pruned
    compare(busybox, "volume", "prune", "-a", "-f", "--filter", "all=1")
    names_left = berth(busybox, "volume", "ls", "-q", "--filter", f"label=suite={label}").out.split()
    assert names_left == [used]


def test_network_lifecycle(busybox, names):
    net = unique("net")
    created = berth(busybox, "network", "create", "--label", "a=b", "--subnet", "10.231.7.0/24", "--gateway", "10.231.7.1", net)
    try:
        assert created.code == 0 and len(created.out.strip()) == 64, created
        compare(busybox, "network", "inspect", net)
        compare(busybox, "network", "inspect", "-f", "{{.Name}} {{.Driver}} {{json .IPAM.Config}}", net)
        compare(busybox, "inspect", "--type", "network", net)
        for extra in ([], ["-q"], ["--no-trunc"], ["--format", "json"], ["--format", "{{.Name}} {{.Label \"a\"}} {{.Internal}}"]):
            compare(busybox, "network", "ls", "--filter", f"name={net}", *extra)
        compare(busybox, "network", "create", net)
        compare(busybox, "network", "create", "--subnet", "10.0.0.0/24", "--ip-range", "10.9.0.0/24", "x")
        compare(busybox, "network", "create", "--gateway", "10.0.0.1", "x")
        container = names()
        assert berth(busybox, "run", "-d", "--name", container, "busybox", "sleep", "300").code == 0
        connected = berth(busybox, "network", "connect", "--alias", "web", net, container)
        assert connected.code == 0, connected
        info = json.loads(berth(busybox, "inspect", container).out)[0]
        assert net in info["NetworkSettings"]["Networks"]
        compare(busybox, "network", "rm", net)
        assert berth(busybox, "network", "disconnect", net, container).code == 0
        compare(busybox, "network", "disconnect", net, "no-such-container-xyz")
    finally:
        berth(busybox, "network", "rm", net)
    compare(busybox, "network", "rm", net)
    compare(busybox, "network", "rm", "-f", net)


def test_network_prune(busybox):
    label = unique("nlabel")
    net = unique("net")
    assert berth(busybox, "network", "create", "--label", f"p={label}", net).code == 0
    cancelled = berth(busybox, "network", "prune", input="\n")
    assert cancelled.out == ("WARNING! This will remove all custom networks not used by at least one container.\n"
                             "Are you sure you want to continue? [y/N] ")
    pruned = berth(busybox, "network", "prune", "-f", "--filter", f"label=p={label}")
    assert (pruned.code, pruned.out) == (0, f"Deleted Networks:\n{net}\n\n"), pruned
    compare(busybox, "network", "prune", "-f", "--filter", f"label=p={label}")
