"""ssh:// endpoints: run ``ssh ... -- host <remote dial-stdio>`` and speak HTTP over its stdio.

Like the docker CLI's connection helper. The remote command is ``berth system dial-stdio``
(``berth --host=unix://<path> system dial-stdio`` when the URL has a socket path). To reach a
remote that only has docker, set ``BERTH_SSH_REMOTE_COMMAND="docker system dial-stdio"`` (a
shell command line, used verbatim). ``BERTH_SSH_CONFIG`` adds ``-F <file>`` (ssh itself reads
``~/.ssh/config`` from the passwd home, not $HOME, so tests need this).

ssh gets one end of a socketpair as its stdin and stdout, so the caller holds a real socket:
http.client, select() and half-close (``shutdown(SHUT_WR)`` -> EOF on ssh's stdin) just work.
"""

from __future__ import annotations

import collections
import os
import shlex
import socket
import subprocess
import threading

from berth.client.errors import DaemonConnectionError
from berth.client.hosts import HostURL

REMOTE_COMMAND_ENV = "BERTH_SSH_REMOTE_COMMAND"
CONFIG_ENV = "BERTH_SSH_CONFIG"
DEFAULT_REMOTE = ["berth", "system", "dial-stdio"]


def remote_command(url: HostURL, override: str | None = None) -> str:
    override = override if override is not None else os.environ.get(REMOTE_COMMAND_ENV)
    if override:
        return override
    argv = list(DEFAULT_REMOTE)
    if url.path.strip("/"):
        argv.insert(1, "--host=unix://" + url.path)
    return shlex.join(argv)


def ssh_argv(url: HostURL, remote: str) -> list[str]:
    argv = ["ssh"]
    config = os.environ.get(CONFIG_ENV)
    if config:
        argv += ["-F", config]
    if url.user:
        argv += ["-l", url.user]
    if url.port:
        argv += ["-p", str(url.port)]
    # -T: no pty (binary-clean stdio); ConnectTimeout as docker sets it
    argv += ["-o", "ConnectTimeout=30", "-T", "--", url.address, remote]
    return argv


class SSHProcess:
    """The running ssh command and our end of its stdio socket."""

    def __init__(self, argv: list[str]):
        self.argv = argv
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.proc = subprocess.Popen(
                argv,
                stdin=theirs,
                stdout=theirs,
                stderr=subprocess.PIPE,
                close_fds=True,
                start_new_session=True,  # a Ctrl-C for berth must not kill ssh mid-request
            )
        except OSError as e:
            ours.close()
            raise DaemonConnectionError(f"error during connect: failed to run {argv[0]}: {e}") from e
        finally:
            theirs.close()
        self.sock = ours
        self._stderr: collections.deque[bytes] = collections.deque(maxlen=64)
        self._reader = threading.Thread(target=self._drain_stderr, daemon=True)
        self._reader.start()

    def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in iter(self.proc.stderr.readline, b""):
            self._stderr.append(line)
        self.proc.stderr.close()

    def stderr_text(self) -> str:
        return b"".join(self._stderr).decode("utf-8", "replace").strip()

    def failure(self, method: str = "", url: str = "") -> DaemonConnectionError:
        """Docker's wording for a helper command that went away."""
        try:
            rc = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            rc = None
        self._reader.join(timeout=1)
        status = f"exited with exit status {rc}" if rc is not None else "not exited"
        where = f'{method} "{url}": ' if method else ""
        return DaemonConnectionError(
            f"error during connect: {where}command [{shlex.join(self.argv)}] has {status}, "
            "make sure the URL is valid, and Berth or Docker 18.09 or later is installed on "
            f"the remote host: stderr={self.stderr_text()}"
        )

    def close(self, timeout: float = 2.0) -> None:
        """Close our end (ssh sees EOF and exits), reap it; kill it if it lingers."""
        try:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)  # EOF now, even if a makefile() holds the fd
            except OSError:
                pass
            self.sock.close()
        finally:
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
