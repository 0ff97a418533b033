"""ssh:// endpoints against a real local sshd (Debian's openssh-server) on 127.0.0.1.

The test starts its own sshd (own host key, own authorized key, config in a temp dir) on a
free port; the "remote" side runs ``berth system dial-stdio`` against a fake daemon socket.
Skipped when sshd or ssh are not installed.
"""

import getpass
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest
from fakedaemon import EVENTS, FakeDaemon

from berth.client import errors
from berth.client.api import APIClient

SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else None)
SSH = shutil.which("ssh")
KEYGEN = shutil.which("ssh-keygen")

pytestmark = pytest.mark.skipif(not (SSHD and SSH and KEYGEN), reason="openssh server/client not installed")

BERTH_BIN = os.path.dirname(os.path.realpath(sys.executable))


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    if os.geteuid() == 0 and not os.path.isdir("/run/sshd"):
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation dir
    d = tmp_path_factory.mktemp("sshd")
    subprocess.run([KEYGEN, "-q", "-t", "ed25519", "-N", "", "-f", str(d / "host_key")], check=True)
    subprocess.run([KEYGEN, "-q", "-t", "ed25519", "-N", "", "-f", str(d / "client_key")], check=True)
    (d / "authorized_keys").write_text((d / "client_key.pub").read_text())
    os.chmod(d / "authorized_keys", 0o600)
    port = _free_port()
    # The remote session must find the berth of this interpreter.
    path = f"{BERTH_BIN}:/usr/local/bin:/usr/bin:/bin"
    (d / "sshd_config").write_text(
        f"Port {port}\n"
        "ListenAddress 127.0.0.1\n"
        f"HostKey {d / 'host_key'}\n"
        f"AuthorizedKeysFile {d / 'authorized_keys'}\n"
        f"PidFile {d / 'sshd.pid'}\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "PubkeyAuthentication yes\n"
        "PermitRootLogin prohibit-password\n"
        "StrictModes no\n"
        "UsePAM no\n"
        f"SetEnv PATH={path} PYTHONDONTWRITEBYTECODE=1\n"
    )
    (d / "ssh_config").write_text(
        "Host *\n"
        "  StrictHostKeyChecking no\n"
        "  UserKnownHostsFile /dev/null\n"
        f"  IdentityFile {d / 'client_key'}\n"
        "  IdentitiesOnly yes\n"
        "  BatchMode yes\n"
        "  LogLevel ERROR\n"
    )
    with open(d / "sshd.log", "wb") as log:
        proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(d / "sshd_config")], stdout=subprocess.DEVNULL, stderr=log
        )
    try:
        deadline = time.monotonic() + 10
        while True:
            if proc.poll() is not None:
                pytest.skip(f"sshd did not start: {(d / 'sshd.log').read_text()[-500:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.skip("sshd did not listen in time")
                time.sleep(0.05)
        yield {"port": port, "config": str(d / "ssh_config"), "dir": d}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def ssh_env(sshd, monkeypatch):
    monkeypatch.setenv("BERTH_SSH_CONFIG", sshd["config"])
    return sshd


def _check_daemon_over(c: APIClient, fake: FakeDaemon) -> None:
    assert c.ping() == "OK"
    assert c.version()["Version"] == "27.0.0-fake"
    assert list(c.events()) == EVENTS
    sock = c.hijack("POST", "/containers/web/attach")
    with sock:
        sock.sendall(b"over ssh")
        sock.shutdown_write()
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    assert data == b"hello from daemon\necho:over ssh"


def test_ssh_default_remote_command_with_socket_path(ssh_env, fake):
    user = getpass.getuser()
    sock_path = fake.url[len("unix://") :]
    url = f"ssh://{user}@127.0.0.1:{ssh_env['port']}{sock_path}"
    with APIClient(url) as c:
        _check_daemon_over(c, fake)
        # keep-alive: one ssh session carried ping, version and events
        assert fake.connections == 2  # + the hijack's own connection


def test_ssh_remote_command_override(ssh_env, fake, monkeypatch):
    # what a remote that only has docker needs: BERTH_SSH_REMOTE_COMMAND="docker system dial-stdio"
    monkeypatch.setenv("BERTH_SSH_REMOTE_COMMAND", f"berth -H {fake.url} system dial-stdio")
    with APIClient(f"ssh://{getpass.getuser()}@127.0.0.1:{ssh_env['port']}") as c:
        _check_daemon_over(c, fake)


def test_ssh_unreachable_host_reports_the_ssh_failure(ssh_env):
    port = _free_port()
    with APIClient(f"ssh://{getpass.getuser()}@127.0.0.1:{port}") as c:
        with pytest.raises(errors.DaemonConnectionError) as e:
            c.ping()
    text = str(e.value)
    assert "exited with exit status 255" in text
    assert "Connection refused" in text
    assert "ssh -F" in text


def test_ssh_remote_without_daemon(ssh_env, short_tmp):
    url = f"ssh://{getpass.getuser()}@127.0.0.1:{ssh_env['port']}{short_tmp}/none.sock"
    with APIClient(url) as c:
        with pytest.raises(errors.DaemonConnectionError) as e:
            c.ping()
    assert "Cannot connect to the Docker daemon" in str(e.value)
