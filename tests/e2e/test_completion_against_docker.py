"""``berth __complete`` against a real berthd: the names it offers are the ones docker's
``__complete`` offers from the same daemon."""

from __future__ import annotations

import pytest

from test_cli_common import berth, docker, unique

pytestmark = pytest.mark.e2e


def candidates(result):
    assert result.code == 0, result
    *lines, directive = result.out.splitlines()
    return [line.split("\t")[0] for line in lines], directive


WORDS = [
    ("stop", ""), ("exec", ""), ("start", ""), ("rm", ""), ("rm", "-f", ""), ("logs", ""), ("unpause", ""),
    ("pause", ""), ("run", ""), ("rmi", ""), ("network", "rm", ""), ("volume", "rm", ""), ("--context", ""),
]


def test_names_match_docker(busybox, names):
    running, paused, created = names("run"), names("paused"), names("created")
    for name in (running, paused):
        assert berth(busybox, "run", "-d", "--name", name, "busybox", "sleep", "300").code == 0
    assert berth(busybox, "pause", paused).code == 0
    assert berth(busybox, "create", "--name", created, "busybox", "true").code == 0
    assert running in candidates(berth(busybox, "__complete", "stop", ""))[0]
    for words in WORDS:
        got = candidates(berth(busybox, "__complete", *words))
        want = candidates(docker(busybox, "__complete", *words))
        assert got == want, words
    assert berth(busybox, "unpause", paused).code == 0


def test_names_of_networks_and_volumes(busybox):
    network, volume = unique("net"), unique("vol")
    assert berth(busybox, "network", "create", network).code == 0
    assert berth(busybox, "volume", "create", volume).code == 0
    try:
        got, _ = candidates(berth(busybox, "__complete", "network", "inspect", network[:6]))
        assert network in got and "bridge" not in got
        got, _ = candidates(berth(busybox, "__complete", "volume", "rm", volume[:6]))
        assert volume in got
        got, _ = candidates(berth(busybox, "__complete", "run", "--network", ""))
        assert {"bridge", "host", "none", network} <= set(got)
    finally:
        berth(busybox, "network", "rm", network)
        berth(busybox, "volume", "rm", volume)
