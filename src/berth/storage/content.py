"""Content store: immutable blobs addressed by digest (containerd-style, no image knowledge).

Layout: ``<root>/<algorithm>/<hex>`` for committed blobs, ``<root>/ingest/`` for writes in
progress. A writer streams into a temp file while hashing, then fsyncs, verifies the expected
digest/size and links the file into place; a crash leaves only ingest files, which
``cleanup_temp()`` removes. Two writers of the same blob are harmless: the first link wins,
the second finds the blob present and drops its temp file.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from dataclasses import dataclass
from typing import BinaryIO, Iterator

from berth.errors import Conflict, InvalidParameter, NotFound

from .fsutil import fsync_dir

_ALGORITHMS = {"sha256": 64, "sha384": 96, "sha512": 128}
_DIGEST_RE = re.compile(r"^(sha256|sha384|sha512):([a-f0-9]+)$")
_COPY_CHUNK = 1 << 20


class DigestMismatch(InvalidParameter):
    """The written bytes do not hash to the expected digest."""


class SizeMismatch(InvalidParameter):
    """The written byte count differs from the expected size."""


def parse_digest(digest: str) -> tuple[str, str]:
    """Split ``sha256:<hex>`` into (algorithm, hex); raises InvalidParameter if malformed."""
    m = _DIGEST_RE.match(digest) if isinstance(digest, str) else None
    if m is None or len(m.group(2)) != _ALGORITHMS[m.group(1)]:
        raise InvalidParameter(f"invalid digest {digest!r}")
    return m.group(1), m.group(2)


def digest_bytes(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


@dataclass(frozen=True)
class BlobInfo:
    digest: str
    size: int
    created: float  # mtime of the committed file, seconds since the epoch


class BlobWriter:
    """Streams one blob into the store. Use as a context manager; call ``commit()`` to keep it.

    Leaving the ``with`` block without a commit (or with an exception) discards the data."""

    def __init__(self, store: "ContentStore", expected: str | None, size: int | None):
        self._store = store
        self.expected = expected
        self.expected_size = size
        algorithm = parse_digest(expected)[0] if expected else "sha256"
        self.algorithm = algorithm
        self._hash = hashlib.new(algorithm)
        self.size = 0
        self.digest: str | None = None
        self._tmp = os.path.join(store.ingest_dir, f"{os.getpid()}-{os.urandom(8).hex()}")
        self._fd: int | None = os.open(
            self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644
        )

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self._fd is None:
            raise ValueError("blob writer is closed")
        view = memoryview(data)
        n = len(view)
        if self.expected_size is not None and self.size + n > self.expected_size:
            raise SizeMismatch(
                f"unexpected commit size {self.size + n}, expected {self.expected_size}"
            )
        self._hash.update(view)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self.size += n
        return n

    def copy_from(self, src: BinaryIO) -> int:
        """Write everything ``src`` yields until EOF; returns the number of bytes."""
        total = 0
        while True:
            chunk = src.read(_COPY_CHUNK)
            if not chunk:
                return total
            total += self.write(chunk)

    def current_digest(self) -> str:
        return f"{self.algorithm}:{self._hash.hexdigest()}"

    def commit(self) -> str:
        """Verify, fsync and publish the blob; returns its digest."""
        if self._fd is None:
            raise ValueError("blob writer is closed")
        digest = self.current_digest()
        if self.expected_size is not None and self.size != self.expected_size:
            self.abort()
            raise SizeMismatch(f"unexpected commit size {self.size}, expected {self.expected_size}")
        if self.expected is not None and digest != self.expected:
            self.abort()
            raise DigestMismatch(f"unexpected commit digest {digest}, expected {self.expected}")
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = None
        final = self._store.path(digest)
        parent = os.path.dirname(final)
        os.makedirs(parent, exist_ok=True)
        try:
            os.link(self._tmp, final)  # atomic publish; fails if present, unlike rename
        except FileExistsError:
            pass  # same content committed by someone else
        os.unlink(self._tmp)
        fsync_dir(parent)
        self.digest = digest
        return digest

    def abort(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        try:
            os.unlink(self._tmp)
        except FileNotFoundError:
            pass

    def __enter__(self) -> "BlobWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            self.abort()


class ContentStore:
    def __init__(self, root: str):
        self.root = os.path.abspath(root)
        self.ingest_dir = os.path.join(self.root, "ingest")
        os.makedirs(self.ingest_dir, exist_ok=True)
        for algorithm in _ALGORITHMS:
            os.makedirs(os.path.join(self.root, algorithm), exist_ok=True)

    def path(self, digest: str) -> str:
        algorithm, hexpart = parse_digest(digest)
        return os.path.join(self.root, algorithm, hexpart)

    def writer(self, expected: str | None = None, size: int | None = None) -> BlobWriter:
        return BlobWriter(self, expected, size)

    def ingest(self, src: BinaryIO, expected: str | None = None, size: int | None = None) -> BlobInfo:
        """Copy a readable stream into the store (verifying ``expected``/``size`` if given).
        Callers that can skip a transfer should check ``exists()`` first."""
        with self.writer(expected, size) as w:
            w.copy_from(src)
            digest = w.commit()
        return self.info(digest)

    def put_bytes(self, data: bytes, expected: str | None = None) -> str:
        with self.writer(expected, len(data)) as w:
            w.write(data)
            return w.commit()

    def exists(self, digest: str) -> bool:
        return os.path.isfile(self.path(digest))

    def info(self, digest: str) -> BlobInfo:
        try:
            st = os.stat(self.path(digest))
        except FileNotFoundError:
            raise NotFound(f"content {digest}: not found") from None
        return BlobInfo(digest, st.st_size, st.st_mtime)

    def size(self, digest: str) -> int:
        return self.info(digest).size

    def open(self, digest: str) -> BinaryIO:
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError:
            raise NotFound(f"content {digest}: not found") from None

    def read_bytes(self, digest: str, max_size: int = 64 << 20) -> bytes:
        """Read a small blob (configs, manifests) fully."""
        with self.open(digest) as f:
            data = f.read(max_size + 1)
        if len(data) > max_size:
            raise Conflict(f"content {digest} is larger than {max_size} bytes")
        return data

    def delete(self, digest: str) -> bool:
        """Remove a blob; returns False if it was not present."""
        try:
            os.unlink(self.path(digest))
        except FileNotFoundError:
            return False
        return True

    def walk(self) -> Iterator[BlobInfo]:
        for algorithm, length in _ALGORITHMS.items():
            base = os.path.join(self.root, algorithm)
            try:
                entries = list(os.scandir(base))
            except FileNotFoundError:
                continue
            for entry in sorted(entries, key=lambda e: e.name):
                if len(entry.name) != length or not entry.is_file(follow_symlinks=False):
                    continue
                st = entry.stat(follow_symlinks=False)
                yield BlobInfo(f"{algorithm}:{entry.name}", st.st_size, st.st_mtime)

    def cleanup_temp(self, older_than: float = 0.0) -> int:
        """Remove ingest files older than ``older_than`` seconds (all of them at startup)."""
        removed = 0
        now = time.time()
        for entry in os.scandir(self.ingest_dir):
            try:
                if older_than and now - entry.stat(follow_symlinks=False).st_mtime < older_than:
                    continue
                os.unlink(entry.path)
                removed += 1
            except FileNotFoundError:
                continue
        return removed
