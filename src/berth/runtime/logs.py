"""The ``json-file`` log driver in Docker's exact format, and ``none``.

One line per message: ``{"log":"hi\\n","stream":"stdout","time":"2026-11-27T22:43:22.123456789Z"}``
(optional ``"attrs"`` before ``"time"``), escaped like moby's jsonlog (``<``, ``>``, ``&`` as
``\\u003c``..., invalid UTF-8 bytes as ``\\ufffd``), time in Go's RFC3339Nano (trailing zeros
trimmed). Output is split into lines like moby's logger.Copier: a line longer than 16 KiB is
logged in parts, the parts without a trailing newline. Rotation (``max-size``/``max-file``/
``compress``) renames ``<id>-json.log`` to ``.1``, ``.2``... as moby's loggerutils does.

The shim process imports this module, so the writer side uses only ``os``/``time``/``codecs``
(already loaded by any interpreter); the reader imports ``json`` lazily.
"""

from __future__ import annotations

import codecs
import os
import time

BUF_SIZE = 16 * 1024  # moby's defaultBufSize: longest line logged in one piece

_MARK = "\ud800"  # stands for one invalid input byte while escaping


def _per_byte_replace(err: UnicodeDecodeError) -> tuple[str, int]:
    return _MARK * (err.end - err.start), err.end


codecs.register_error("berth-jsonlog", _per_byte_replace)

_ESCAPES = {c: "\\u%04x" % c for c in range(0x20)}
_ESCAPES.update({ord("\n"): "\\n", ord("\r"): "\\r", ord('"'): '\\"', ord("\\"): "\\\\",
                 ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026",
                 0x2028: "\\u2028", 0x2029: "\\u2029", ord(_MARK): "\\ufffd"})


def json_string(data: bytes) -> bytes:
    """``data`` as a JSON string literal, escaped exactly like moby's jsonlog."""
    text = data.decode("utf-8", "berth-jsonlog")
    return b'"' + text.translate(_ESCAPES).encode("utf-8") + b'"'


def attrs_object(attrs: dict[str, str]) -> bytes:
    """A json-file line's ``attrs``: keys sorted and strings escaped as Go encodes a map."""
    members = (json_string(k.encode()) + b":" + json_string(v.encode())
               for k, v in sorted(attrs.items()))
    return b"{" + b",".join(members) + b"}"


def format_time(ns: int) -> str:
    """Go's ``time.RFC3339Nano`` in UTC: fraction with trailing zeros trimmed."""
    sec, frac = divmod(ns, 1_000_000_000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
    if frac:
        return base + ("." + "%09d" % frac).rstrip("0") + "Z"
    return base + "Z"


def entry(stream: str, line: bytes, ns: int, attrs: bytes = b"") -> bytes:
    """One json-file line (with its newline). ``attrs`` is a pre-encoded JSON object."""
    parts = [b"{"]
    if line:
        parts += [b'"log":', json_string(line), b","]
    parts += [b'"stream":"', stream.encode(), b'",']
    if attrs:
        parts += [b'"attrs":', attrs, b","]
    parts += [b'"time":"', format_time(ns).encode(), b'"}\n']
    return b"".join(parts)


_DECIMAL = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "p": 10**15}


def parse_size(text: str) -> int:
    """go-units FromHumanSize (decimal: ``10m`` = 10,000,000 bytes), as Docker's max-size."""
    s = text.strip().lower()
    if s.endswith("b"):
        s = s[:-1]
    if s.endswith("i"):
        s = s[:-1]
    unit = s[-1:] if s[-1:] in _DECIMAL and s[-1:] else ""
    number = s[: len(s) - len(unit)].strip()
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"invalid size: '{text}'") from None
    if value < 0:
        raise ValueError(f"invalid size: '{text}'")
    return int(value * _DECIMAL[unit])


def validate_log_opts(driver: str, opts: dict[str, str] | None) -> tuple[int, int, bool]:
    """(max_size or -1, max_files, compress) for json-file; Docker's errors as ValueError."""
    opts = opts or {}
    if driver == "none":
        if opts:
            raise ValueError(f"unknown log opt '{next(iter(opts))}' for none log driver")
        return -1, 1, False
    if driver != "json-file":
        raise ValueError(f'logger: no log driver named \'{driver}\' is registered')
    for key in opts:
        if key not in ("max-file", "max-size", "compress", "labels", "labels-regex", "env",
                       "env-regex", "tag"):
            raise ValueError(f"unknown log opt '{key}' for json-file log driver")
    max_size = -1
    if "max-size" in opts:
        max_size = parse_size(opts["max-size"])
        if max_size <= 0:
            raise ValueError("max-size must be a positive number")
    max_files = 1
    if "max-file" in opts:
        try:
            max_files = int(opts["max-file"])
        except ValueError:
            raise ValueError(f'strconv.Atoi: parsing "{opts["max-file"]}": invalid syntax') from None
        if max_files < 1:
            raise ValueError("max-file cannot be less than 1")
    compress = False
    if "compress" in opts:
        value = opts["compress"].lower()
        if value not in ("1", "t", "true", "0", "f", "false"):
            raise ValueError(f'strconv.ParseBool: parsing "{opts["compress"]}": invalid syntax')
        compress = value in ("1", "t", "true")
        if compress and (max_files == 1 or max_size == -1):
            raise ValueError("compress cannot be true when max-file is less than 2 or max-size is not set")
    return max_size, max_files, compress


class JSONFileWriter:
    """Appends entries to ``path`` and rotates it; one instance per container."""

    def __init__(self, path: str, max_size: int = -1, max_files: int = 1, compress: bool = False,
                 attrs: bytes = b""):
        self.path = path
        self.max_size = max_size
        self.max_files = max_files
        self.compress = compress
        self.attrs = attrs
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self.size = os.fstat(self.fd).st_size

    def write(self, stream: str, lines: list[bytes], ns: int) -> None:
        """Log ``lines`` (each a message, newline included when complete) with one timestamp."""
        pending: list[bytes] = []
        for line in lines:
            data = entry(stream, line, ns, self.attrs)
            if self.max_size != -1 and self.size >= self.max_size:
                self._flush(pending)
                pending = []
                self._rotate()
            pending.append(data)
            self.size += len(data)
        self._flush(pending)

    def _flush(self, pending: list[bytes]) -> None:
        if pending:
            data = b"".join(pending)
            while data:
                n = os.write(self.fd, data)
                data = data[n:]

    def _rotate(self) -> None:
        os.close(self.fd)
        ext = ".gz" if self.compress else ""
        if self.max_files >= 2:
            _unlink(f"{self.path}.{self.max_files - 1}{ext}")
            for i in range(self.max_files - 1, 1, -1):
                _rename(f"{self.path}.{i - 1}{ext}", f"{self.path}.{i}{ext}")
            _rename(self.path, self.path + ".1")
            if self.compress:
                _gzip_file(self.path + ".1")
        else:
            _unlink(self.path)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_TRUNC
                          | os.O_CLOEXEC, 0o640)
        self.size = 0

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class NullWriter:
    """The ``none`` driver."""

    def write(self, stream: str, lines: list[bytes], ns: int) -> None:
        pass

    def close(self) -> None:
        pass


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _rename(src: str, dst: str) -> None:
    try:
        os.rename(src, dst)
    except FileNotFoundError:
        pass


def _gzip_file(path: str) -> None:
    import gzip  # only when compress=true: keeps the shim small otherwise
    with open(path, "rb") as src, gzip.open(path + ".gz.tmp", "wb") as dst:
        while chunk := src.read(1 << 16):
            dst.write(chunk)
    os.rename(path + ".gz.tmp", path + ".gz")
    os.unlink(path)


class LineSplitter:
    """Splits one stream's output into log messages like moby's Copier."""

    def __init__(self) -> None:
        self.buf = b""

    def feed(self, data: bytes) -> list[bytes]:
        self.buf += data
        out = []
        while True:
            i = self.buf.find(b"\n", 0, BUF_SIZE)
            if i >= 0:
                out.append(self.buf[: i + 1])
                self.buf = self.buf[i + 1:]
            elif len(self.buf) >= BUF_SIZE:  # a line longer than the buffer: log a part
                out.append(self.buf[:BUF_SIZE])
                self.buf = self.buf[BUF_SIZE:]
            else:
                return out

    def flush(self) -> list[bytes]:
        """At EOF: what is left, as a final message without newline."""
        out, self.buf = ([self.buf] if self.buf else []), b""
        return out


def log_files(path: str, max_files: int = 1) -> list[str]:
    """Existing files of a container's log, oldest first (``.N`` ... ``.1``, then current)."""
    files = []
    for i in range(max(max_files, 1) + 8, 0, -1):  # tolerate a lowered max-file
        for candidate in (f"{path}.{i}.gz", f"{path}.{i}"):
            if os.path.exists(candidate):
                files.append(candidate)
                break
    if os.path.exists(path):
        files.append(path)
    return files


def read_entries(path: str, max_files: int = 1):
    """Yield ``(stream, data: bytes, time: str, attrs: dict|None)`` from a json-file log,
    rotated files first. Broken lines (a crash mid-write) are skipped."""
    import gzip
    import json
    for name in log_files(path, max_files):
        opener = gzip.open if name.endswith(".gz") else open
        with opener(name, "rb") as f:
            for raw in f:
                try:
                    obj = json.loads(raw)
                except ValueError:
                    continue
                data = obj.get("log", "").encode("utf-8", "surrogatepass")
                yield obj.get("stream", ""), data, obj.get("time", ""), obj.get("attrs")
