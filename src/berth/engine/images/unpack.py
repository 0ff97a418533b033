"""Unpack an uploaded image archive (`docker load`) without trusting its names.

Nothing in the archive decides a host path: each regular file is written to a fresh temp
file named by a counter, and the archive's names live only in an index. Names are cleaned
like moby's (a leading ``/`` is dropped; ``..`` that climbs out of the archive fails the
load); symlinks and hardlinks are recorded, never created, and are followed only inside the
archive's own name space (moby's FollowSymlinkInScope), so a link to ``/etc/passwd`` or
``../../x`` can never reach a host file.
"""

from __future__ import annotations

import os
from typing import BinaryIO

from berth.errors import InvalidParameter
from berth.storage import tarformat as tf
from berth.storage.compression import decompress_stream

_MAX_LINK_HOPS = 255


class ArchiveError(InvalidParameter):
    pass


def clean_name(name: str) -> str:
    """``path.Clean`` relative to the archive root; "" for the root itself."""
    parts: list[str] = []
    for comp in name.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            if not parts:
                raise ArchiveError(f'invalid archive: "{name}" is outside of the archive')
            parts.pop()
            continue
        parts.append(comp)
    return "/".join(parts)


class ArchiveIndex:
    """The archive's names mapped to temp files; lookups resolve links inside the archive."""

    def __init__(self) -> None:
        self.files: dict[str, str] = {}   # name -> temp file path
        self.links: dict[str, str] = {}   # name -> symlink target, as written
        self.dirs: set[str] = set()

    def resolve_name(self, name: str, follow_last: bool = True) -> str:
        """The name ``name`` reaches after following symlinks, clamped at the archive root."""
        todo = list(reversed(name.split("/")))
        parts: list[str] = []
        hops = 0
        while todo:
            comp = todo.pop()
            if comp in ("", "."):
                continue
            if comp == "..":
                if parts:
                    parts.pop()
                continue
            candidate = "/".join(parts + [comp])
            if candidate in self.links and (todo or follow_last):
                hops += 1
                if hops > _MAX_LINK_HOPS:
                    raise ArchiveError(f"invalid archive: too many links resolving {name}")
                target = self.links[candidate]
                if target.startswith("/"):
                    parts = []
                todo.extend(reversed(target.split("/")))
                continue
            parts.append(comp)
        return "/".join(parts)

    def path(self, name: str) -> str | None:
        """The temp file holding ``name``, or None if the archive has no such file."""
        return self.files.get(self.resolve_name(name))

    def has(self, name: str) -> bool:
        return self.path(name) is not None

    def read(self, name: str, limit: int = 64 << 20) -> bytes:
        path = self.path(name)
        if path is None:
            raise ArchiveError(f"invalid archive: missing {name}")
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
        if len(data) > limit:
            raise ArchiveError(f"invalid archive: {name} is too large")
        return data


def unpack(stream: BinaryIO, directory: str) -> ArchiveIndex:
    """Read a (possibly compressed) tar from ``stream`` into temp files under ``directory``."""
    raw, _ = decompress_stream(stream)  # type: ignore[arg-type]
    reader = tf.TarReader(raw)
    index = ArchiveIndex()
    counter = 0
    try:
        for header in reader:
            name = clean_name(header.name)
            if not name:
                continue
            # Parents resolve through links already seen, as extraction into a real root
            # would; the last component is the entry itself.
            head, _, base = name.rpartition("/")
            name = f"{index.resolve_name(head)}/{base}".lstrip("/") if head else base
            if header.type == tf.DIR:
                index.dirs.add(name)
            elif header.type == tf.SYMLINK:
                index.links[name] = header.linkname
                index.files.pop(name, None)
            elif header.type == tf.LINK:
                target = index.path(clean_name(header.linkname))
                if target is None:
                    raise ArchiveError(f"invalid archive: hardlink {header.name} to missing "
                                       f"{header.linkname}")
                index.files[name] = target
                index.links.pop(name, None)
            elif header.is_regular:
                counter += 1
                path = os.path.join(directory, f"f{counter:07d}")
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
                try:
                    for chunk in reader.payload_chunks():
                        view = chunk
                        while view:
                            written = os.write(fd, view)
                            view = view[written:]
                finally:
                    os.close(fd)
                index.files[name] = path
                index.links.pop(name, None)
            # devices, fifos and the like mean nothing in an image archive: skipped
    except tf.TarError as exc:
        raise ArchiveError(f"invalid archive: {exc}") from None
    return index
