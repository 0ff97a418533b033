"""A container's init layer (moby's daemon/initlayer): the mount points the runtime binds
over (/etc/hosts, /etc/resolv.conf...) made in a layer between the image and the container's
read-write layer, so they never show up in `docker diff`, `docker export` or a commit."""

from __future__ import annotations

import os

from berth.runtime.rootfs import secure_join

# path -> kind, in moby's order; "/etc/mtab" links to /proc/mounts.
ENTRIES = (
    ("/dev/pts", "dir"), ("/dev/shm", "dir"), ("/proc", "dir"), ("/sys", "dir"),
    ("/.dockerenv", "file"), ("/etc/resolv.conf", "file"), ("/etc/hosts", "file"),
    ("/etc/hostname", "file"), ("/dev/console", "file"), ("/etc/mtab", "/proc/mounts"),
)


def prepare(root: str) -> None:
    """Create each entry that the image does not already have (``root`` is the init
    layer's mounted view over the image). Paths resolve inside ``root``."""
    for path, kind in ENTRIES:
        target = secure_join(root, path)
        if os.path.lexists(target):
            continue
        parent = os.path.dirname(target)
        if not os.path.isdir(parent):
            if os.path.lexists(parent):
                continue  # the image has a non-directory there: leave it alone
            os.makedirs(parent, 0o755, exist_ok=True)
        if kind == "dir":
            os.mkdir(target, 0o755)
        elif kind == "file":
            os.close(os.open(target, os.O_CREAT | os.O_WRONLY | os.O_EXCL | os.O_CLOEXEC, 0o755))
        else:
            os.symlink(kind, target)
