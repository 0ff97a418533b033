"""Start and stop a real berthd for tests: its own socket, data-root, exec-root and pidfile."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field


@dataclass
class RunningDaemon:
    root: str
    socket_path: str
    process: subprocess.Popen
    log_path: str
    extra_hosts: list[str] = field(default_factory=list)

    @property
    def host(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def data_root(self) -> str:
        return os.path.join(self.root, "data")

    @property
    def exec_root(self) -> str:
        return os.path.join(self.root, "exec")

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for a docker/berth client pointed at this daemon, with its own config dir."""
        env = dict(os.environ)
        for name in ("DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_API_VERSION"):
            env.pop(name, None)
        env["DOCKER_HOST"] = self.host
        env["DOCKER_CONFIG"] = os.path.join(self.root, "client-config")
        env.update(extra)
        return env

    def log(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as handle:
            return handle.read()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def wait_for_socket(path: str, process: subprocess.Popen, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"berthd exited early with {process.returncode}")
        try:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.connect(path)
                sock.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
                if sock.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("berthd did not start listening in time")


def start_daemon(root: str | None = None, args: list[str] | None = None,
                 config: dict | None = None, wait: bool = True,
                 launcher: list[str] | None = None, host: str | None = None,
                 env: dict[str, str] | None = None) -> RunningDaemon:
    """``launcher`` goes before the command (e.g. systemd-socket-activate listening on the
    daemon's socket path, with ``host="fd://"``); ``env`` is added to the daemon's
    environment."""
    root = root or tempfile.mkdtemp(prefix="berth-test-")
    socket_path = os.path.join(root, "berthd.sock")
    config_path = os.path.join(root, "daemon.json")
    with open(config_path, "w", encoding="utf-8") as handle:
        json.dump(config or {}, handle)
    log_path = os.path.join(root, "berthd.log")
    command = list(launcher or []) + [sys.executable, "-m", "berth.daemon",
               "--config-file", config_path,
               "--data-root", os.path.join(root, "data"),
               "--exec-root", os.path.join(root, "exec"),
               "--pidfile", os.path.join(root, "berthd.pid"),
               "-H", host or f"unix://{socket_path}"] + list(args or [])
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL,
                                   env={**os.environ, **env} if env else None)
    daemon = RunningDaemon(root, socket_path, process, log_path)
    if wait:
        try:
            wait_for_socket(socket_path, process)
        except RuntimeError:
            daemon.stop(signal.SIGKILL)
            raise RuntimeError("berthd failed to start:\n" + daemon.log()) from None
    return daemon


def remove_root(root: str) -> None:
    shutil.rmtree(root, ignore_errors=True)
