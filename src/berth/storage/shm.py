"""A container's shareable /dev/shm (``--ipc shareable``): a tmpfs on the host, which the
container and the containers that join its IPC namespace (``--ipc container:<id>``) all
bind-mount, as dockerd's ``containers/<id>/mounts/shm``. A private /dev/shm needs none: the
runtime makes it inside the container."""

from __future__ import annotations

import errno
import os

from berth.storage.drivers import mount as mnt

MS_NOSUID, MS_NODEV, MS_NOEXEC = 2, 4, 8


def mount_shm(path: str, size: int) -> None:
    """A tmpfs of ``size`` bytes at ``path`` (made if missing); a no-op if mounted already
    (a daemon that restarts while the container runs)."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    if mnt.is_mountpoint(path):
        return
    mnt.mount("shm", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, f"mode=1777,size={size}")


def unmount_shm(path: str) -> None:
    """Unmount it (if mounted) and remove the directory; what does not exist is fine."""
    try:
        if mnt.is_mountpoint(path):
            mnt.unmount(path)
        os.rmdir(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        if exc.errno not in (errno.ENOENT, errno.EINVAL):
            raise
