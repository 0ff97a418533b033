"""Detect and undo layer compression by magic bytes (uncompressed, gzip, zstd, bzip2, xz).

Every reader here offers ``readinto`` and ``read`` so the tar reader can pull large blocks.
"""

from __future__ import annotations

import zlib
from typing import Protocol

NONE, GZIP, ZSTD, BZIP2, XZ = "none", "gzip", "zstd", "bzip2", "xz"
_READ_SIZE = 1 << 20


class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


def detect(prefix: bytes) -> str:
    if prefix.startswith(b"\x1f\x8b\x08"):
        return GZIP
    if prefix.startswith(b"\x28\xb5\x2f\xfd"):
        return ZSTD
    if prefix.startswith(b"BZh"):
        return BZIP2
    if prefix.startswith(b"\xfd7zXZ\x00"):
        return XZ
    return NONE


class _RawReader:
    """Base: implements ``read`` on top of ``readinto``."""

    def readinto(self, buf: memoryview | bytearray) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            parts = []
            while True:
                chunk = self.read(_READ_SIZE)
                if not chunk:
                    return b"".join(parts)
                parts.append(chunk)
        buf = bytearray(n)
        got = self.readinto(buf)
        return bytes(buf[:got])

    def close(self) -> None:
        pass


class PrefixedReader(_RawReader):
    """Replays bytes already consumed (for magic detection) before the rest of ``src``."""

    def __init__(self, prefix: bytes, src: Readable):
        self._prefix = memoryview(prefix)
        self._src = src
        self._src_readinto = getattr(src, "readinto", None)

    def readinto(self, buf: memoryview | bytearray) -> int:
        out = memoryview(buf)
        if self._prefix:
            n = min(len(self._prefix), len(out))
            out[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        if self._src_readinto is not None:
            return self._src_readinto(out) or 0
        data = self._src.read(len(out))
        out[: len(data)] = data
        return len(data)

    def close(self) -> None:
        close = getattr(self._src, "close", None)
        if close:
            close()


class _ChunkDecoder(_RawReader):
    """Runs a decompressor over ``src`` and serves its output."""

    def __init__(self, src: Readable):
        self._src = src
        self._pending = memoryview(b"")
        self._eof = False

    def _decode(self, data: bytes) -> bytes:  # pragma: no cover - abstract
        raise NotImplementedError

    def _finish(self) -> bytes:
        return b""

    def readinto(self, buf: memoryview | bytearray) -> int:
        out = memoryview(buf)
        while not self._pending:
            if self._eof:
                return 0
            data = self._src.read(_READ_SIZE)
            if not data:
                self._eof = True
                self._pending = memoryview(self._finish())
            else:
                self._pending = memoryview(self._decode(data))
        n = min(len(out), len(self._pending))
        out[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


class GzipReader(_ChunkDecoder):
    """gzip with concatenated members (pigz and ``cat a.gz b.gz`` produce those)."""

    def __init__(self, src: Readable):
        super().__init__(src)
        self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._done = False

    def _decode(self, data: bytes) -> bytes:
        out = []
        while data:
            if self._done:
                if data.strip(b"\x00") == b"":
                    return b"".join(out)  # zero padding after the last member
                self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
                self._done = False
            out.append(self._d.decompress(data))
            if self._d.eof:
                self._done = True
                data = self._d.unused_data
            else:
                data = b""
        return b"".join(out)

    def _finish(self) -> bytes:
        if not self._done:
            tail = self._d.flush()
            if not self._d.eof:
                raise EOFError("unexpected end of gzip stream")
            return tail
        return b""


class _StdlibDecoder(_ChunkDecoder):
    def __init__(self, src: Readable, decompressor: object):
        super().__init__(src)
        self._d = decompressor

    def _decode(self, data: bytes) -> bytes:
        out = []
        while data:
            out.append(self._d.decompress(data))  # type: ignore[attr-defined]
            if self._d.eof:  # type: ignore[attr-defined]
                data = self._d.unused_data  # type: ignore[attr-defined]
                if data.strip(b"\x00") == b"":
                    break
                self._d = type(self._d)()
            else:
                data = b""
        return b"".join(out)

    def _finish(self) -> bytes:
        if not self._d.eof:  # type: ignore[attr-defined]
            raise EOFError("unexpected end of compressed stream")
        return b""


class _ZstdReader(_RawReader):
    def __init__(self, src: Readable):
        import zstandard

        self._r = zstandard.ZstdDecompressor().stream_reader(
            src, read_size=_READ_SIZE, read_across_frames=True
        )

    def readinto(self, buf: memoryview | bytearray) -> int:
        return self._r.readinto(buf)


def decompress_stream(src: Readable) -> tuple[_RawReader, str]:
    """Wrap ``src`` so reads return uncompressed bytes; also returns the detected format."""
    prefix = b""
    while len(prefix) < 6:
        chunk = src.read(6 - len(prefix))
        if not chunk:
            break
        prefix += chunk
    kind = detect(prefix)
    raw = PrefixedReader(prefix, src)
    if kind == GZIP:
        return GzipReader(raw), kind
    if kind == ZSTD:
        return _ZstdReader(raw), kind
    if kind == BZIP2:
        import bz2

        return _StdlibDecoder(raw, bz2.BZ2Decompressor()), kind
    if kind == XZ:
        import lzma

        return _StdlibDecoder(raw, lzma.LZMADecompressor()), kind
    return raw, kind
