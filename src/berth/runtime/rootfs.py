"""Paths inside a container's root filesystem, resolved the way the container would see them.

The rootfs belongs to the image, so its symlinks are untrusted: ``/etc/passwd -> /etc/shadow``
or ``../../..`` must resolve inside the rootfs, never on the host (moby's FollowSymlinkInScope).
"""

from __future__ import annotations

import os

_MAX_LINKS = 255


def secure_join(root: str, path: str) -> str:
    """Host path of ``path`` as seen from inside ``root``, symlinks resolved within ``root``."""
    root = os.path.abspath(root)
    parts = [p for p in path.split("/") if p not in ("", ".")]
    resolved: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        try:
            target = os.readlink(candidate)
        except OSError:  # not a link, or does not exist: take it literally
            resolved.append(part)
            continue
        links += 1
        if links > _MAX_LINKS:
            raise OSError(f"too many levels of symbolic links in {path!r}")
        if target.startswith("/"):
            resolved = []
        parts = [p for p in target.split("/") if p not in ("", ".")] + parts
    return os.path.join(root, *resolved)


def ensure_dir(root: str, path: str, uid: int = 0, gid: int = 0) -> str:
    """Create directory ``path`` inside ``root`` (like Docker does for WorkingDir), owned by
    ``uid:gid`` for the parts it creates; returns the host path."""
    host = secure_join(root, path)
    missing = []
    probe = host
    while not os.path.exists(probe) and probe != root:
        missing.append(probe)
        probe = os.path.dirname(probe)
    for p in reversed(missing):
        os.mkdir(p, 0o755)
        os.chown(p, uid, gid)
    return host
