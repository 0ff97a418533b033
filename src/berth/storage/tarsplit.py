"""Remember a layer tar's exact bytes without storing its file contents twice.

While a layer is applied, the tar reader hands every non-payload byte (headers, PAX records,
padding, end blocks, trailing bytes) to a :class:`Recorder`, and the extractor records a
reference (path, size) for each regular file's payload. ``reassemble`` later streams the
identical tar back by reading those files from the layer directory, so ``docker save`` and
``push`` produce layers whose sha256 equals the diff ID recorded at import (moby keeps
``tar-split.json.gz`` for the same reason).

A file referenced earlier but removed or replaced later in the same archive (duplicate
entries, a whiteout of a path the layer itself wrote) has its bytes captured into the record
before it disappears.
"""

from __future__ import annotations

import os
import stat
import struct
import zlib
from typing import Callable, Iterator

from .fsroot import RootFS

MAGIC = b"BERTHTS1"
_RAW, _ZEROS, _FILE = b"R", b"Z", b"F"
_MAX_RAW_RECORD = 4 << 20
_CHUNK = 1 << 20

ReadFn = Callable[[str, int], bytes]


class TarSplitError(Exception):
    pass


class Recorder:
    def __init__(self) -> None:
        # Entries: bytearray (raw bytes), int (a run of zero bytes) or [path, size] (file ref).
        self._entries: list[bytearray | int | list] = []
        self._refs: dict[str, list[int]] = {}  # path -> entry indexes of live references
        self._ref_dirs: dict[str, int] = {}  # ancestors of referenced paths -> count

    def raw(self, data: bytes | memoryview) -> None:
        b = data if type(data) is bytes else bytes(data)
        if not b:
            return
        last = self._entries[-1] if self._entries else None
        if b.count(0) == len(b):
            if isinstance(last, int):
                self._entries[-1] = last + len(b)
            else:
                self._entries.append(len(b))
            return
        if isinstance(last, bytearray) and len(last) + len(b) <= _MAX_RAW_RECORD:
            last.extend(b)
        else:
            self._entries.append(bytearray(b))

    def file(self, path: str, size: int) -> None:
        """The payload of the entry just read is the content of ``path`` (root-relative)."""
        if size == 0:
            return
        self._refs.setdefault(path, []).append(len(self._entries))
        self._entries.append([path, size])
        parent = path
        while "/" in parent:
            parent = parent.rsplit("/", 1)[0]
            self._ref_dirs[parent] = self._ref_dirs.get(parent, 0) + 1

    def before_remove(self, path: str, read: ReadFn) -> None:
        """``path`` (root-relative; "" is the root) is about to be removed or replaced:
        capture the content of every live reference at or below it."""
        if not self._refs:
            return
        hit = [path] if path in self._refs else []
        if path == "" or path in self._ref_dirs:
            prefix = path + "/" if path else ""
            hit += [p for p in self._refs if p.startswith(prefix) and p != path]
        for p in hit:
            for idx in self._refs.pop(p):
                ref = self._entries[idx]
                assert isinstance(ref, list)
                data = read(p, ref[1])
                if len(data) != ref[1]:
                    raise TarSplitError(f"cannot capture {p!r}: size changed")
                self._entries[idx] = bytearray(data)
            parent = p
            while "/" in parent:
                parent = parent.rsplit("/", 1)[0]
                n = self._ref_dirs.get(parent, 0) - 1
                if n > 0:
                    self._ref_dirs[parent] = n
                else:
                    self._ref_dirs.pop(parent, None)

    def write(self, path: str) -> None:
        """Serialise (zlib-compressed) to ``path`` and fsync it."""
        comp = zlib.compressobj(3)
        with open(path, "wb") as f:
            f.write(MAGIC)
            for entry in self._entries:
                if isinstance(entry, int):
                    rec = _ZEROS + struct.pack(">Q", entry)
                elif isinstance(entry, list):
                    p = entry[0].encode("utf-8", "surrogateescape")
                    rec = _FILE + struct.pack(">QI", entry[1], len(p)) + p
                else:
                    rec = _RAW + struct.pack(">I", len(entry)) + entry
                f.write(comp.compress(rec))
            f.write(comp.flush())
            f.flush()
            os.fsync(f.fileno())


def _records(path: str) -> Iterator[tuple[bytes, object]]:
    decomp = zlib.decompressobj()
    buf = bytearray()
    with open(path, "rb") as f:
        if f.read(len(MAGIC)) != MAGIC:
            raise TarSplitError(f"{path}: not a tar-split file")
        eof = False
        pos = 0

        def need(n: int) -> bool:
            nonlocal eof, pos
            while len(buf) - pos < n and not eof:
                data = f.read(_CHUNK)
                if not data:
                    buf.extend(decomp.flush())
                    eof = True
                else:
                    del buf[:pos]
                    pos = 0
                    buf.extend(decomp.decompress(data))
            return len(buf) - pos >= n

        while need(1):
            kind = bytes(buf[pos:pos + 1])
            if kind == _RAW:
                if not need(5):
                    break
                (n,) = struct.unpack_from(">I", buf, pos + 1)
                if not need(5 + n):
                    break
                yield kind, bytes(buf[pos + 5:pos + 5 + n])
                pos += 5 + n
            elif kind == _ZEROS:
                if not need(9):
                    break
                (n,) = struct.unpack_from(">Q", buf, pos + 1)
                yield kind, n
                pos += 9
            elif kind == _FILE:
                if not need(13):
                    break
                size, plen = struct.unpack_from(">QI", buf, pos + 1)
                if not need(13 + plen):
                    break
                p = bytes(buf[pos + 13:pos + 13 + plen]).decode("utf-8", "surrogateescape")
                yield kind, (p, size)
                pos += 13 + plen
            else:
                raise TarSplitError(f"{path}: corrupt record")
        if len(buf) - pos:
            raise TarSplitError(f"{path}: truncated")


def read_file_in_root(root: RootFS, path: str, size: int) -> Iterator[bytes]:
    """Yield exactly ``size`` bytes of the regular file ``path`` inside ``root``."""
    parent, name = root.resolve_parent(path)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent.fd)
    finally:
        parent.close()
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise TarSplitError(f"{path!r} is no longer a regular file")
        left = size
        while left:
            data = os.read(fd, min(left, _CHUNK))
            if not data:
                raise TarSplitError(f"{path!r} is shorter than recorded")
            left -= len(data)
            yield data
    finally:
        os.close(fd)


def reassemble(split_path: str, layer_dir: str) -> Iterator[bytes]:
    """Yield the original tar stream of a layer from its tar-split record and files."""
    zeros = bytes(_CHUNK)
    with RootFS(layer_dir) as root:
        pending = bytearray()
        for kind, value in _records(split_path):
            if kind == _RAW:
                pending += value  # type: ignore[operator]
            elif kind == _ZEROS:
                n = value  # type: ignore[assignment]
                while n:
                    take = min(n, _CHUNK)
                    pending += zeros[:take]
                    n -= take
                    if len(pending) >= _CHUNK:
                        yield bytes(pending)
                        pending.clear()
            else:
                p, size = value  # type: ignore[misc]
                if size < 64 << 10:
                    for data in read_file_in_root(root, p, size):
                        pending += data
                else:
                    if pending:
                        yield bytes(pending)
                        pending.clear()
                    yield from read_file_in_root(root, p, size)
            if len(pending) >= _CHUNK:
                yield bytes(pending)
                pending.clear()
        if pending:
            yield bytes(pending)


def opath_reader(root: RootFS) -> ReadFn:
    """A ReadFn for ``Recorder.before_remove`` reading files inside ``root``."""

    def read(path: str, size: int) -> bytes:
        return b"".join(read_file_in_root(root, path, size))

    return read


__all__ = ["Recorder", "reassemble", "opath_reader", "TarSplitError"]
