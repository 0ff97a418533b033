"""Path resolution confined to a directory, as if it were ``/`` (chroot semantics), using fds.

Every component is opened with ``O_PATH|O_NOFOLLOW`` relative to the previous directory fd.
Symlinks are read and their targets resolved again inside the root: absolute targets restart
at the root and ``..`` never climbs above it (like ``openat2(RESOLVE_IN_ROOT)``). The kernel
never follows a link on our behalf, so nothing outside the root is reached even if the tree is
changed concurrently (a container writing to its rootfs during ``docker cp``).
"""

from __future__ import annotations

import errno
import os
import stat
from typing import Callable

O_PATH_NOFOLLOW = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
O_DIR_NOFOLLOW = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
MAX_SYMLINKS = 40

# Called to create a missing intermediate directory: (parent_fd, name).
MkdirFn = Callable[[int, str], None]


def split(path: str) -> list[str]:
    """Path components, keeping '..' (resolution handles it) and dropping '' and '.'."""
    return [p for p in path.split("/") if p not in ("", ".")]


def proc_fd_path(fd: int) -> str:
    """A path that reaches exactly the inode behind ``fd`` (works for O_PATH fds)."""
    return f"/proc/self/fd/{fd}"


class Resolved:
    """An open ``O_PATH`` fd plus the resolved, root-relative component list."""

    __slots__ = ("fd", "parts")

    def __init__(self, fd: int, parts: list[str]):
        self.fd = fd
        self.parts = parts

    @property
    def relpath(self) -> str:
        return "/".join(self.parts)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> "Resolved":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RootFS:
    """A directory used as a confinement root."""

    def __init__(self, path: str):
        self.path = os.path.abspath(path)
        self.fd = os.open(self.path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> "RootFS":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def resolve(
        self,
        path: str | list[str],
        *,
        follow: bool = True,
        mkdir: MkdirFn | None = None,
        start: Resolved | None = None,
        missing_ok: bool = False,
    ) -> Resolved:
        """Open ``path`` inside the root. ``follow`` decides whether a symlink in the final
        component is followed. With ``mkdir``, missing intermediate directories are created
        (the path is then taken to name a directory). ``start`` resolves relative to an already resolved
        directory instead of the root (absolute symlinks still restart at the root).
        With ``missing_ok`` a missing component ends the resolution: the rest is appended
        lexically to ``parts`` and ``fd`` is the deepest existing directory (moby's
        FollowSymlinkInScope). Raises FileNotFoundError, NotADirectoryError or
        OSError(ELOOP)."""
        todo = list(reversed(split(path) if isinstance(path, str) else path))
        fds: list[int] = [self.fd]
        names: list[str] = []
        if start is not None:
            fds.append(os.dup(start.fd))
            names = list(start.parts)
        links = 0
        try:
            while todo:
                comp = todo.pop()
                if comp in ("", "."):
                    continue
                if comp == "..":
                    if len(fds) > 1:
                        os.close(fds.pop())
                    if names:
                        names.pop()
                        if len(fds) == 1 and names:
                            # ``start`` was deeper than one level: reopen the new parent.
                            fds.append(self._reopen(names))
                    continue
                last = all(c in ("", ".") for c in todo)
                try:
                    fd = os.open(comp, O_PATH_NOFOLLOW, dir_fd=fds[-1])
                except FileNotFoundError:
                    if missing_ok:
                        rest = names + [comp]
                        for c in reversed(todo):
                            if c == "..":
                                if rest:
                                    rest.pop()
                            elif c not in ("", "."):
                                rest.append(c)
                        result = fds.pop() if len(fds) > 1 else os.dup(self.fd)
                        return Resolved(result, rest)
                    if mkdir is None:
                        raise
                    try:
                        mkdir(fds[-1], comp)
                    except FileExistsError:
                        pass
                    fd = os.open(comp, O_PATH_NOFOLLOW, dir_fd=fds[-1])
                mode = os.fstat(fd).st_mode
                if stat.S_ISLNK(mode) and (follow or not last):
                    links += 1
                    if links > MAX_SYMLINKS:
                        os.close(fd)
                        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), "/".join(names + [comp]))
                    try:
                        target = os.readlink(comp, dir_fd=fds[-1])
                    finally:
                        os.close(fd)
                    if not target:
                        raise FileNotFoundError(errno.ENOENT, "empty symlink", "/".join(names + [comp]))
                    if target.startswith("/"):
                        while len(fds) > 1:
                            os.close(fds.pop())
                        names.clear()
                    todo.extend(reversed(target.split("/")))
                    continue
                if not last and not stat.S_ISDIR(mode):
                    os.close(fd)
                    raise NotADirectoryError(
                        errno.ENOTDIR, os.strerror(errno.ENOTDIR), "/".join(names + [comp])
                    )
                fds.append(fd)
                names.append(comp)
            if mkdir is not None and len(fds) > 1 and not stat.S_ISDIR(os.fstat(fds[-1]).st_mode):
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), "/".join(names))
            result = fds.pop() if len(fds) > 1 else os.dup(self.fd)
            return Resolved(result, names)
        finally:
            for fd in fds[1:]:
                os.close(fd)

    def _reopen(self, parts: list[str]) -> int:
        res = self.resolve(parts, follow=False)
        return res.fd

    def resolve_parent(
        self, path: str | list[str], *, mkdir: MkdirFn | None = None
    ) -> tuple[Resolved, str]:
        """Resolve the directory containing ``path`` (following symlinks) and return it with
        the final name, which is not looked up. ``path`` must have at least one component."""
        parts = split(path) if isinstance(path, str) else [p for p in path if p not in ("", ".")]
        if not parts or parts[-1] == "..":
            raise ValueError(f"no final name in {path!r}")
        return self.resolve(parts[:-1], mkdir=mkdir), parts[-1]

    def realpath(self, path: str) -> str:
        """The in-root absolute path ``path`` resolves to (all symlinks followed)."""
        with self.resolve(path) as res:
            return "/" + res.relpath


def mkdir_implied(mode: int = 0o755, uid: int = 0, gid: int = 0) -> MkdirFn:
    """A MkdirFn creating directories as tar extraction does for implied parents."""

    def make(parent_fd: int, name: str) -> None:
        os.mkdir(name, mode, dir_fd=parent_fd)
        fd = os.open(name, O_DIR_NOFOLLOW, dir_fd=parent_fd)
        try:
            if uid or gid:
                os.fchown(fd, uid, gid)
            os.fchmod(fd, mode)  # mkdir is subject to the umask
        finally:
            os.close(fd)

    return make
