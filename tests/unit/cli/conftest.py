import io
import os
import shutil
import sys
import tempfile

import pytest

# The fake Engine API server lives with the client tests.
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "client"))

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
def config_dir(monkeypatch, tmp_path):
    for name in CLIENT_ENV:
        monkeypatch.delenv(name, raising=False)
    d = tmp_path / "docker-config"
    d.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(d))
    return d


class Result:
    def __init__(self, code: int, out: str, err: str):
        self.code, self.out, self.err = code, out, err

    def __repr__(self) -> str:
        return f"Result(code={self.code}, out={self.out!r}, err={self.err!r})"


@pytest.fixture
def berth():
    """Run the CLI in-process: berth("context", "ls") -> Result(code, out, err)."""
    from berth.cli.app import run

    def call(*args: str) -> Result:
        out, err = io.StringIO(), io.StringIO()
        code = run(list(args), out=out, err=err)
        return Result(code, out.getvalue(), err.getvalue())

    return call


@pytest.fixture
def short_tmp():
    path = tempfile.mkdtemp(prefix="bt-", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def fake(short_tmp):
    with FakeDaemon(unix_path=os.path.join(short_tmp, "d.sock")) as daemon:
        yield daemon
