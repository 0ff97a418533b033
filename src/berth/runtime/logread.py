"""Reading a container's json-file log (the files ``berth.runtime.logs`` writes) for
`docker logs` and attach's log replay: stream and time filters, tail, follow across rotation.

The engine opens the reader for a container; the API renders the lines (``LogLine.render``)
with the options the client asked for (``LogOptions``)."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import deque
from dataclasses import dataclass
from typing import AsyncIterator, Callable, Iterator
from urllib.parse import quote_plus

from berth.runtime.logs import log_files
from berth.timeutil import parse_time_value


@dataclass
class LogOptions:
    stdout: bool = True
    stderr: bool = True
    since_ns: int | None = None
    until_ns: int | None = None
    tail: int | None = None  # None: all
    timestamps: bool = False
    details: bool = False
    follow: bool = False


@dataclass
class LogLine:
    stream: str     # "stdout" | "stderr"
    data: bytes
    time: str       # RFC 3339 nano, as stored
    attrs: dict | None

    def render(self, options: LogOptions) -> bytes:
        prefix = b""
        if options.timestamps:
            prefix += _padded_time(self.time).encode() + b" "
        if options.details:
            # Go's url.QueryEscape of each key and value, as dockerd's --details
            attrs = ",".join(f"{quote_plus(k, safe='')}={quote_plus(str(v), safe='')}"
                             for k, v in sorted((self.attrs or {}).items()))
            prefix += attrs.encode() + b" "
        return prefix + self.data


def _padded_time(value: str) -> str:
    """docker logs -t prints RFC3339Nano with a fixed 9-digit fraction."""
    main, _, frac = value.rstrip("Z").partition(".")
    return f"{main}.{frac.ljust(9, '0')[:9]}Z"


def _time_ns(value: str) -> int:
    try:
        return parse_time_value(value)
    except Exception:  # noqa: BLE001 - a damaged timestamp must not stop the log
        return 0


def _wanted(line: LogLine, options: LogOptions) -> bool:
    if line.stream == "stdout" and not options.stdout:
        return False
    if line.stream == "stderr" and not options.stderr:
        return False
    if options.since_ns is not None or options.until_ns is not None:
        stamp = _time_ns(line.time)
        if options.since_ns is not None and stamp < options.since_ns:
            return False
        if options.until_ns is not None and stamp > options.until_ns:
            return False
    return True


def current_size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def existing_lines(path: str, options: LogOptions, max_files: int,
                   end_offset: int | None = None) -> Iterator[LogLine]:
    """Lines already in the log: rotated files, then the current one up to ``end_offset``
    (where a follower takes over, so no line is lost or repeated)."""
    wanted = (line for line in _stored_lines(path, max_files, end_offset) if _wanted(line, options))
    if options.tail is not None and options.tail >= 0:
        yield from deque(wanted, maxlen=options.tail) if options.tail else ()
        return
    yield from wanted


def _stored_lines(path: str, max_files: int, end_offset: int | None) -> Iterator[LogLine]:
    import gzip
    for name in log_files(path, max_files):
        opener = gzip.open if name.endswith(".gz") else open
        try:
            with opener(name, "rb") as handle:
                data = handle.read(end_offset) if name == path and end_offset is not None \
                    else handle.read()
        except FileNotFoundError:
            continue
        for raw in data.split(b"\n"):
            line = _parse(raw) if raw else None
            if line:
                yield line


async def follow_lines(path: str, options: LogOptions, still_running: Callable[[], bool],
                       start_offset: int, poll: float = 0.1) -> AsyncIterator[LogLine]:
    """Lines appended after ``start_offset`` of the current file, until the container stops."""
    handle = _open(path)
    if handle:
        handle.seek(start_offset)
    pending = b""
    try:
        while True:
            running = still_running()
            chunk = handle.read() if handle else b""
            if chunk:
                pending += chunk
                *complete, pending = pending.split(b"\n")
                for raw in complete:
                    line = _parse(raw)
                    if line and _wanted(line, options):
                        if options.until_ns is not None and _time_ns(line.time) > options.until_ns:
                            return
                        yield line
                continue
            if handle is None or _rotated(path, handle):
                if handle:
                    handle.close()
                handle = _open(path)
                continue
            if not running:
                return
            if options.until_ns is not None and time.time_ns() > options.until_ns:
                return
            await asyncio.sleep(poll)
    finally:
        if handle:
            handle.close()


def _open(path: str):
    try:
        return open(path, "rb")
    except FileNotFoundError:
        return None


def _rotated(path: str, handle) -> bool:
    try:
        return os.stat(path).st_ino != os.fstat(handle.fileno()).st_ino
    except FileNotFoundError:
        return False


def _parse(raw: bytes) -> LogLine | None:
    try:
        obj = json.loads(raw)
    except ValueError:
        return None
    return LogLine(obj.get("stream", ""), obj.get("log", "").encode("utf-8", "surrogatepass"),
                   obj.get("time", ""), obj.get("attrs"))
