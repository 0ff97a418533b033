"""berthd as systemd starts it (berthd.service, berth.socket): the API socket handed over as
``-H fd://`` and readiness told over ``$NOTIFY_SOCKET``. systemd-socket-activate plays systemd:
it listens, and execs berthd with LISTEN_FDS once a client connects."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

import pytest

from daemon_harness import remove_root, start_daemon
from images_harness import import_busybox

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(shutil.which("systemd-socket-activate") is None,
                                 reason="systemd-socket-activate (Debian's systemd) is not installed")]


def children(pid: int) -> list[int]:
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as handle:
            found += [int(child) for child in handle.read().split()]
    return found


def environ(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/environ", "rb") as handle:
        pairs = [item.decode(errors="replace").partition("=") for item in handle.read().split(b"\0") if item]
    return {name: value for name, _, value in pairs}


def open_sockets(pid: int) -> set[str]:
    found = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            found.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            pass
    return {link for link in found if link.startswith("socket:")}


def test_socket_activation_ready_and_stopping():
    root = tempfile.mkdtemp(prefix="berth-test-")
    notify_name = f"berth-test-notify-{os.getpid()}-{os.urandom(4).hex()}"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind("\0" + notify_name)
    notify.settimeout(30)
    daemon = None
    try:
        env = dict(os.environ, NOTIFY_SOCKET="@" + notify_name)
        launcher = ["systemd-socket-activate", "-l", os.path.join(root, "berthd.sock")]
        for name in env:  # it hands the program only the variables it is told to
            launcher += ["-E", name]
        # start_daemon's first ping is the connection that makes systemd-socket-activate exec
        # berthd; berthd answers it on the socket it was handed.
        daemon = start_daemon(root=root, launcher=launcher, host="fd://", env=env)
        assert notify.recv(4096).split(b"\n")[0] == b"READY=1"
        pid = daemon.process.pid
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            assert b"berth.daemon" in handle.read()  # systemd-socket-activate became berthd

        # A container starts (runc that saw NOTIFY_SOCKET would wait for the container to say
        # READY=1), and no child of berthd has the variables or the API's socket.
        import_busybox(daemon.env())
        run = subprocess.run(["docker", "run", "--rm", "--network", "none", "busybox", "echo", "hi"],
                             env=daemon.env(), capture_output=True, text=True, timeout=60)
        assert (run.returncode, run.stdout) == (0, "hi\n"), run.stderr
        api_socket = os.readlink(f"/proc/{pid}/fd/3")
        spawned = children(pid)
        assert spawned, "berthd keeps a shim spawner"
        for child in spawned:
            leaked = {"NOTIFY_SOCKET", "LISTEN_PID", "LISTEN_FDS"} & set(environ(child))
            assert not leaked, f"child {child} inherited {leaked}"
            assert api_socket not in open_sockets(child)

        daemon.process.send_signal(signal.SIGTERM)
        assert notify.recv(4096).split(b"\n")[0] == b"STOPPING=1"
        assert daemon.process.wait(30) == 0
    finally:
        notify.close()
        if daemon is not None:
            daemon.stop()
        remove_root(root)


def test_fd_host_without_systemd_is_refused_in_words(tmp_path):
    result = subprocess.run([sys.executable, "-m", "berth.daemon", "--config-file", "/dev/null",
                             "--data-root", str(tmp_path / "data"), "--exec-root", str(tmp_path / "exec"),
                             "--pidfile", str(tmp_path / "pid"), "-H", "fd://"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "no sockets found via socket activation" in result.stderr
    assert not os.path.exists(tmp_path / "data" / "berth.db")  # refused before any state
