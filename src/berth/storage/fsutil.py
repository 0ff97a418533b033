"""Small filesystem helpers: atomic file replacement and directory fsync."""

from __future__ import annotations

import json
import os


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str, data: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` so readers see the old or the new file, never a part
    (temp file in the same directory, fsync, rename, fsync of the directory)."""
    directory = os.path.dirname(path) or "."
    tmp = os.path.join(directory, f".tmp-{os.path.basename(path)}-{os.urandom(6).hex()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    os.rename(tmp, path)
    fsync_dir(directory)


def atomic_write_json(path: str, obj: object, mode: int = 0o644) -> None:
    atomic_write(path, json.dumps(obj, sort_keys=True, separators=(",", ":")).encode(), mode)


def read_json(path: str) -> object:
    with open(path, "rb") as f:
        return json.loads(f.read())


def read_text(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return None


def remove_temp_files(directory: str) -> int:
    """Remove ``.tmp-*`` leftovers of interrupted atomic writes in ``directory``."""
    removed = 0
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return 0
    for e in entries:
        if e.name.startswith(".tmp-") and e.is_file(follow_symlinks=False):
            try:
                os.unlink(e.path)
                removed += 1
            except FileNotFoundError:
                pass
    return removed
