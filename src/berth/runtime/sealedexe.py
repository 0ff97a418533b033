"""Sealed in-memory copies of runtime binaries, for shims to run runc from.

Each time runc starts a container process (``runc init``, for ``run``, ``create`` and
``exec``) it makes sure it does not run from the host's binary, so that a container cannot
overwrite runc through ``/proc/self/exe`` (CVE-2019-5736): Debian's runc 1.1.5 bind-mounts its
binary read-only on a temporary file and re-executes itself from it (a mount, a remount and
an unmount in the host's mount namespace per container start: mount events for systemd and
contention on the kernel's namespace lock on busy hosts); newer runc copies its 8.7 MB into a
new memfd instead (runc PR 3931). Both are skipped when runc already runs from a memfd sealed
against every change (``cloned_binary.c``: such a file can be shared, nobody can write it),
which is what runc's own ``memfd-bind`` tool makes. The spawner makes one copy per runtime
and every shim forked from it execs runc from that copy. Measured here (runc 1.1.5): well
under a millisecond per start, and no mounts; the copy a newer runc would make takes 2.5 ms.

Imports only C-level modules: the spawner, and with it every shim, carries what this imports.
Anything that fails leaves the runtime to be run from its own path.
"""

from __future__ import annotations

import fcntl
import os

# What runc requires, exactly (RUNC_MEMFD_SEALS).
SEALS = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE
ELF_MAGIC = b"\x7fELF"


def identity(path: str) -> tuple[int, int, int, int] | None:
    """What changes when the file at ``path`` is replaced or rewritten (a runc upgrade)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def seal_copy(path: str) -> int | None:
    """A close-on-exec fd of a sealed memfd holding the ELF executable at ``path``, or None.

    Scripts are left alone: their interpreter would open ``/proc/self/fd/N`` after exec has
    closed it. The fd is close-on-exec: exec resolves ``/proc/self/fd/N`` before it closes
    the fd, so runc runs from it without holding it (and containers never see it).
    """
    try:
        src = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    memfd = -1
    try:
        size = os.fstat(src).st_size
        if os.pread(src, 4, 0) != ELF_MAGIC:
            return None
        memfd = os.memfd_create(os.path.basename(path), os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        offset = 0
        while offset < size:
            sent = os.sendfile(memfd, src, offset, size - offset)
            if sent == 0:
                raise OSError("short read")
            offset += sent
        fcntl.fcntl(memfd, fcntl.F_ADD_SEALS, SEALS)
        result, memfd = memfd, -1
        return result
    except (OSError, AttributeError):  # AttributeError: no memfd_create on this platform
        return None
    finally:
        os.close(src)
        if memfd >= 0:
            os.close(memfd)


def is_sealed(fd: int) -> bool:
    try:
        return fcntl.fcntl(fd, fcntl.F_GET_SEALS) == SEALS
    except OSError:
        return False


def exec_path(fd: int) -> str:
    """The path to exec the copy by, valid in this process and in what it spawns."""
    return f"/proc/self/fd/{fd}"


class SealedRuntimes:
    """The spawner's copies: runtime path -> fd, remade when a binary changes on disk."""

    def __init__(self, paths: list[str]):
        self.copies: dict[str, tuple[tuple | None, int]] = {}
        for path in paths:
            self._make(path)

    def _make(self, path: str) -> None:
        ident = identity(path)
        fd = seal_copy(path) if ident else None
        if fd is not None:
            self.copies[path] = (ident, fd)

    def refresh(self) -> None:
        """Drop and remake the copy of any binary that changed (or vanished) since."""
        for path, (ident, fd) in list(self.copies.items()):
            if identity(path) != ident:
                del self.copies[path]
                os.close(fd)  # shims that run from it keep their own inherited fd
                self._make(path)

    def fds(self) -> dict[str, int]:
        return {path: fd for path, (_, fd) in self.copies.items()}
