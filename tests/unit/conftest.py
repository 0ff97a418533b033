"""Fixtures shared by the client and CLI unit tests: an isolated docker config and a fake
Engine API daemon (``tests/unit/client/fakedaemon.py``) on a short unix socket path."""

import os
import shutil
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "client"))

from fakedaemon import FakeDaemon  # noqa: E402

CLIENT_ENV = (
    "DOCKER_HOST",
    "DOCKER_CONTEXT",
    "DOCKER_TLS",
    "DOCKER_TLS_VERIFY",
    "DOCKER_CERT_PATH",
    "DOCKER_API_VERSION",
    "DOCKER_DEBUG",
    "BERTH_SSH_REMOTE_COMMAND",
    "BERTH_SSH_CONFIG",
)


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch, tmp_path_factory):
    """No test sees the host's docker settings; each gets its own config dir (outside the
    test's own tmp_path, which other tests list)."""
    for name in CLIENT_ENV:
        monkeypatch.delenv(name, raising=False)
    config = tmp_path_factory.mktemp("docker-config")
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    return config


@pytest.fixture
def config_dir(isolated_env):
    return isolated_env


@pytest.fixture
def short_tmp():
    """A short temp dir (unix socket paths are limited to 107 bytes)."""
    path = tempfile.mkdtemp(prefix="bt-", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def fake(short_tmp):
    with FakeDaemon(unix_path=os.path.join(short_tmp, "d.sock")) as daemon:
        yield daemon
