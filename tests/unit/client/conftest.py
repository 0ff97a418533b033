import os
import shutil
import ssl
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(__file__))

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
def isolated_env(monkeypatch, tmp_path):
    """No test sees the host's docker settings; each gets its own config dir."""
    for name in CLIENT_ENV:
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "docker-config"
    config.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    return config


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


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    """A CA, a server cert for 127.0.0.1/localhost, a client cert; as files."""
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("berth-client@example.com")
    d = tmp_path_factory.mktemp("certs")
    files = {
        "ca": d / "ca.pem",
        "cert": d / "cert.pem",
        "key": d / "key.pem",
    }
    ca.cert_pem.write_to_path(str(files["ca"]))
    client.cert_chain_pems[0].write_to_path(str(files["cert"]))
    client.private_key_pem.write_to_path(str(files["key"]))
    other_ca = trustme.CA()
    other = d / "other-ca.pem"
    other_ca.cert_pem.write_to_path(str(other))

    def server_context(require_client_cert: bool = False) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server.configure_cert(ctx)
        if require_client_cert:
            ca.configure_trust(ctx)
            ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx

    return {"dir": d, "server_context": server_context, "other_ca": str(other), **{k: str(v) for k, v in files.items()}}
