import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from daemon_harness import remove_root, start_daemon  # noqa: E402
from images_harness import import_busybox  # noqa: E402


def pytest_collection_modifyitems(config, items):
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root to run berthd")
    for item in items:
        if "e2e" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def berthd():
    """One daemon shared by the tests that only read or clean up after themselves."""
    daemon = start_daemon()
    yield daemon
    code = daemon.stop()
    log = daemon.log()
    remove_root(daemon.root)
    assert code == 0, f"berthd exited with {code}:\n{log}"


@pytest.fixture
def fresh_berthd():
    """A factory for daemons a test may configure, signal or break."""
    started = []

    def start(**kwargs):
        daemon = start_daemon(**kwargs)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.stop()
        remove_root(daemon.root)


@pytest.fixture(scope="session")
def busybox(berthd):
    """The shared daemon with `busybox:latest` imported (a rootfs from busybox-static)."""
    import_busybox(berthd.env())
    return berthd
