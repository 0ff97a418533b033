"""Fixtures for network tests.

Root tests create only test-named objects (bridges ``bt-<6 hex>``, iptables chains
``BT<6 hex>-...``, netns under a temp dir) and remove them in ``finally``. Traffic goes only to
127.0.0.1 and to addresses inside namespaces the test created. Tests that need global sysctls
(ip_forward) run inside a *sandbox* netns that stands in for the host, so the real host's
sysctls and rules are never touched.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from pathlib import Path

import pytest


@pytest.fixture
def uid() -> str:
    return secrets.token_hex(3)


@pytest.fixture
def nsdir():
    """A temp dir for netns handles; every handle left in it is deleted afterwards."""
    from berth.network import netns

    d = Path(tempfile.mkdtemp(prefix="berth-nettest-"))
    try:
        yield d
    finally:
        for entry in netns.list_dir(d):
            netns.delete(entry)
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def sandbox(nsdir):
    """A netns standing in for the host; run code there with ``netns.run_in(sandbox, fn)``."""
    from berth.network import netns

    path = netns.create(nsdir / "sandbox-host")
    yield path
    netns.delete(path)


@pytest.fixture
def test_bridge(uid):
    """A bridge name unique to this test, deleted afterwards (with whatever it holds)."""
    from berth.network import bridge

    name = f"bt-{uid}"
    try:
        yield name
    finally:
        bridge.delete_bridge(name)


@pytest.fixture
def firewall(uid):
    """A Firewall with its own chain prefix; every chain/rule of it is removed afterwards."""
    from berth.network.firewall import Firewall

    fw = Firewall(prefix=f"BT{uid.upper()}")
    try:
        yield fw
    finally:
        fw.cleanup_all()
