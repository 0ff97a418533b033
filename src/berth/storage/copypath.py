"""``docker cp`` support: stat, tar and untar paths of a container rootfs (the archive endpoints
``HEAD|GET|PUT /containers/{id}/archive``).

Paths are container paths, resolved inside ``root`` the way a process chrooted there would see
them (symlinks, including absolute ones and ``..``, never leave the root). As in moby's
``ResolvePath``, the directory part is resolved fully and the last component is kept as given,
so a symlink named by the path is reported (and archived) as a link, unless the path ends in
``/`` or ``/.``.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import time
from dataclasses import dataclass, replace
from typing import Iterator

from berth.errors import InvalidParameter, NotFound

from .archive import ApplyResult, untar
from .fsroot import O_DIR_NOFOLLOW, RootFS
from .tarwrite import TarWriter

# Go's os.FileMode type bits (the "mode" field of X-Docker-Container-Path-Stat).
GO_MODE_DIR = 1 << 31
GO_MODE_SYMLINK = 1 << 27
GO_MODE_DEVICE = 1 << 26
GO_MODE_NAMED_PIPE = 1 << 25
GO_MODE_SOCKET = 1 << 24
GO_MODE_SETUID = 1 << 23
GO_MODE_SETGID = 1 << 22
GO_MODE_CHAR_DEVICE = 1 << 21
GO_MODE_STICKY = 1 << 20


class PathNotFound(NotFound):
    """The container path does not exist. The engine may re-raise with Docker's wording
    ``Could not find the file <path> in container <name>``."""

    def __init__(self, path: str):
        super().__init__(f"Could not find the file {path}")
        self.path = path


def go_file_mode(st_mode: int) -> int:
    mode = st_mode & 0o777
    if stat.S_ISDIR(st_mode):
        mode |= GO_MODE_DIR
    elif stat.S_ISLNK(st_mode):
        mode |= GO_MODE_SYMLINK
    elif stat.S_ISBLK(st_mode):
        mode |= GO_MODE_DEVICE
    elif stat.S_ISCHR(st_mode):
        mode |= GO_MODE_DEVICE | GO_MODE_CHAR_DEVICE
    elif stat.S_ISFIFO(st_mode):
        mode |= GO_MODE_NAMED_PIPE
    elif stat.S_ISSOCK(st_mode):
        mode |= GO_MODE_SOCKET
    if st_mode & stat.S_ISUID:
        mode |= GO_MODE_SETUID
    if st_mode & stat.S_ISGID:
        mode |= GO_MODE_SETGID
    if st_mode & stat.S_ISVTX:
        mode |= GO_MODE_STICKY
    return mode


def rfc3339_nano(ns: int) -> str:
    """Go's time.RFC3339Nano in UTC: fraction without trailing zeros."""
    sec, frac = divmod(ns, 1_000_000_000)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
    if frac:
        text += "." + f"{frac:09d}".rstrip("0")
    return text + "Z"


@dataclass(frozen=True)
class PathStat:
    name: str
    size: int
    mode: int  # Go os.FileMode bits
    mtime_ns: int
    link_target: str

    @property
    def is_dir(self) -> bool:
        return bool(self.mode & GO_MODE_DIR)

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "size": self.size,
            "mode": self.mode,
            "mtime": rfc3339_nano(self.mtime_ns),
            "linkTarget": self.link_target,
        }

    def header_value(self) -> str:
        """Value of the ``X-Docker-Container-Path-Stat`` header (base64 of the JSON)."""
        return base64.b64encode(json.dumps(self.to_json()).encode()).decode()


# --- Go path helpers ---------------------------------------------------------------------------


def clean_abs(path: str) -> str:
    """``filepath.Join("/", path)``: absolute, cleaned, ``..`` stops at ``/``."""
    parts: list[str] = []
    for comp in path.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            if parts:
                parts.pop()
        else:
            parts.append(comp)
    return "/" + "/".join(parts)


def go_base(path: str) -> str:
    path = path.rstrip("/")
    if not path:
        return "/"
    return path.rsplit("/", 1)[-1]


def preserve_trailing(cleaned: str, original: str) -> str:
    """archive.PreserveTrailingDotOrSeparator."""
    if go_base(cleaned) != "." and go_base(original) == ".":
        if not cleaned.endswith("/"):
            cleaned += "/"
        cleaned += "."
    if not cleaned.endswith("/") and original.endswith("/"):
        cleaned += "/"
    return cleaned


def container_path(path: str) -> str:
    return preserve_trailing(clean_abs(path), path)


# --- operations -------------------------------------------------------------------------------


def _resolve_parent(rootfs: RootFS, abs_path: str):
    head, _, base = abs_path.rpartition("/")
    try:
        return rootfs.resolve(head or "/"), base
    except (FileNotFoundError, NotADirectoryError):
        raise PathNotFound(abs_path) from None


def _lstat(parent_fd: int, base: str, abs_path: str) -> os.stat_result:
    try:
        if base in ("", "."):
            return os.fstat(parent_fd)
        return os.stat(base, dir_fd=parent_fd, follow_symlinks=False)
    except (FileNotFoundError, NotADirectoryError):
        raise PathNotFound(abs_path) from None


def _stat(rootfs: RootFS, abs_path: str, parent_fd: int, base: str) -> PathStat:
    st = _lstat(parent_fd, base, abs_path)
    link_target = ""
    if stat.S_ISLNK(st.st_mode):
        with rootfs.resolve(abs_path, missing_ok=True) as full:
            link_target = "/" + full.relpath
    return PathStat(go_base(abs_path), st.st_size, go_file_mode(st.st_mode), st.st_mtime_ns, link_target)


def stat_path(root: str, path: str) -> PathStat:
    """``HEAD /containers/{id}/archive``: stat of a container path inside ``root``."""
    abs_path = container_path(path)
    with RootFS(root) as rootfs:
        parent, base = _resolve_parent(rootfs, abs_path)
        with parent:
            return _stat(rootfs, abs_path, parent.fd, base)


def archive_path(root: str, path: str, rebase: str | None = None) -> tuple[PathStat, Iterator[bytes]]:
    """``GET /containers/{id}/archive``: the stat and a tar of the path, entries named after
    the requested path's base name (``etc/``, ``etc/passwd``...), like moby's rebase, or
    after ``rebase`` when given (a volume's root stands for its mount point's name).
    Resolution happens again when the stream starts (nothing is held open until then)."""
    abs_path = container_path(path)
    pstat = stat_path(root, path)
    if rebase:
        pstat = replace(pstat, name=rebase)

    def generate() -> Iterator[bytes]:
        with RootFS(root) as rootfs:
            parent, base = _resolve_parent(rootfs, abs_path)
            with parent:
                w = TarWriter()
                base_name = rebase or go_base(abs_path)
                name = "/" if base_name == "/" else base_name
                st = _lstat(parent.fd, base, abs_path)
                if not stat.S_ISDIR(st.st_mode):
                    yield from w.entry(parent.fd, base, name, st)
                else:
                    fd = os.open(base or ".", O_DIR_NOFOLLOW, dir_fd=parent.fd)
                    try:
                        w.dir_header(name, os.fstat(fd))
                        yield from w.tree(fd, name)
                    finally:
                        os.close(fd)
                yield from w.finish()

    return pstat, generate()


def extract_archive(
    root: str,
    path: str,
    stream: object,
    *,
    no_overwrite_dir_non_dir: bool = False,
    chown: tuple[int, int] | None = None,
) -> ApplyResult:
    """``PUT /containers/{id}/archive``: extract a (possibly compressed) tar into the
    directory ``path``. ``chown`` is the container user's (uid, gid) when copyUIDGID is set
    (the engine looks the user up); otherwise the archive's owners are kept."""
    abs_path = container_path(path)
    with RootFS(root) as rootfs:
        try:
            res = rootfs.resolve(abs_path)
        except (FileNotFoundError, NotADirectoryError):
            raise PathNotFound(abs_path) from None
        with res:
            if not stat.S_ISDIR(os.fstat(res.fd).st_mode):
                raise InvalidParameter("extraction point is not a directory")
            dest = list(res.parts)
    return untar(root, stream, dest=dest, no_overwrite_dir_non_dir=no_overwrite_dir_non_dir, chown=chown)
