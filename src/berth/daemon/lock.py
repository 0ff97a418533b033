"""One daemon per data-root (a lock), and dockerd's pidfile."""

from __future__ import annotations

import fcntl
import os

from berth.daemon.config import ConfigError


class DataRootLock:
    """An exclusive flock on <data-root>/berthd.lock, held for the daemon's lifetime."""

    def __init__(self, data_root: str):
        self.path = os.path.join(data_root, "berthd.lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        os.makedirs(os.path.dirname(self.path), mode=0o711, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise ConfigError(
                f"another berthd (pid {holder}) is already using data-root "
                f"{os.path.dirname(self.path)}: stop it first, or give this one its own --data-root"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def write_pidfile(path: str) -> None:
    """Refuse to start when the pidfile names a live process, as dockerd does."""
    try:
        with open(path, encoding="ascii") as handle:
            old = int(handle.read().strip() or 0)
    except (FileNotFoundError, ValueError):
        old = 0
    if old and old != os.getpid() and os.path.exists(f"/proc/{old}"):
        raise ConfigError(f"pid file found, ensure berthd is not running or delete {path}: "
                          f"process with PID {old} is still running")
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="ascii") as handle:
        handle.write(str(os.getpid()))
    os.rename(tmp, path)


def remove_pidfile(path: str) -> None:
    try:
        with open(path, encoding="ascii") as handle:
            if handle.read().strip() == str(os.getpid()):
                os.unlink(path)
    except OSError:
        pass
