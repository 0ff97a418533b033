"""A daemon response: status, headers and a body that can be read whole or streamed.

When the body has been read to its end the connection goes back to the transport's pool;
closing a response early discards the connection (the rest of its body is unread).
"""

from __future__ import annotations

import http.client
import json
from typing import Any, Callable, Iterator

from berth.client.errors import StreamError

_decoder = json.JSONDecoder()


class Response:
    def __init__(self, raw: http.client.HTTPResponse, done: Callable[[bool], None], url: str = ""):
        self.raw = raw
        self.status: int = raw.status
        self.reason: str = raw.reason
        self.headers = raw.headers
        self.url = url
        self._done: Callable[[bool], None] | None = done
        self._content: bytes | None = None
        if raw.isclosed():  # no body at all (HEAD, 204, 304, 1xx)
            self._finish()

    # -- lifecycle ----------------------------------------------------------------------------
    def _finish(self) -> None:
        done, self._done = self._done, None
        if done is not None:
            done(self.raw.isclosed() and not self.raw.will_close)

    def close(self) -> None:
        """Stop reading. An unfinished body makes the connection unusable: it is dropped."""
        if self._done is not None:
            finished = self.raw.isclosed()
            done, self._done = self._done, None
            done(finished and not self.raw.will_close)
        self.raw.close()

    def __enter__(self) -> "Response":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ------------------------------------------------------------------------------
    @property
    def content_type(self) -> str:
        return (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()

    def read(self, amt: int | None = None) -> bytes:
        """``read()`` returns the whole body, and keeps it: later calls return it again."""
        if amt is None and self._content is not None:
            return self._content
        try:
            data = self.raw.read(amt)
        except BaseException:
            self.close()
            raise
        if self.raw.isclosed():
            self._finish()
        if amt is None:
            self._content = data
        return data

    def read1(self, amt: int = 65536) -> bytes:
        """What has arrived (at least one byte unless at the end): for live streams."""
        if self.raw.isclosed():
            self._finish()
            return b""
        try:
            data = self.raw.read1(amt)
        except BaseException:
            self.close()
            raise
        if not data or self.raw.isclosed():
            self._finish()
        return data

    def iter_chunks(self, size: int = 65536) -> Iterator[bytes]:
        try:
            while True:
                data = self.read1(size)
                if not data:
                    return
                yield data
        finally:
            self.close()

    def text(self) -> str:
        return self.read().decode("utf-8", "replace")

    def json(self) -> Any:
        data = self.read()
        if not data.strip():
            return None
        return json.loads(data)

    def decoded(self) -> Any:
        """The body as JSON when it says so (or looks like it), else text."""
        data = self.read()
        if self.content_type == "application/json" or data[:1] in (b"{", b"["):
            try:
                return json.loads(data) if data.strip() else None
            except ValueError:
                pass
        return data.decode("utf-8", "replace")

    def iter_json(self, raise_on_error: bool = False) -> Iterator[Any]:
        """JSON values from a JSON-lines / concatenated-JSON stream, as they arrive."""
        return iter_json_values(self.iter_chunks(), raise_on_error=raise_on_error)


def iter_json_values(chunks: Iterator[bytes], raise_on_error: bool = False) -> Iterator[Any]:
    """Split a byte stream of JSON values (newline separated or not) into objects.

    With ``raise_on_error`` a progress line ``{"error": ..., "errorDetail": ...}`` (a failure
    reported after the 200) raises ``StreamError``.
    """
    buf = ""
    pending = b""
    for chunk in chunks:
        pending += chunk
        try:
            buf += pending.decode("utf-8")
            pending = b""
        except UnicodeDecodeError:
            # a multi-byte character split across chunks: wait for the rest
            cut = _utf8_safe_cut(pending)
            buf += pending[:cut].decode("utf-8", "replace")
            pending = pending[cut:]
        pos = 0
        n = len(buf)
        while True:
            while pos < n and buf[pos] in " \t\r\n":
                pos += 1
            if pos >= n:
                break
            try:
                value, end = _decoder.raw_decode(buf, pos)
            except ValueError:
                break  # incomplete: wait for more bytes
            pos = end
            if raise_on_error:
                _raise_stream_error(value)
            yield value
        buf = buf[pos:]
    rest = (buf + pending.decode("utf-8", "replace")).strip()
    if rest:
        value = json.loads(rest)  # a truncated value raises here, which is right
        if raise_on_error:
            _raise_stream_error(value)
        yield value


def _utf8_safe_cut(data: bytes) -> int:
    """Length of the longest prefix that does not end inside a UTF-8 sequence."""
    i = len(data)
    for back in range(1, min(4, len(data)) + 1):
        b = data[-back]
        if b & 0xC0 != 0x80:  # a lead byte (or ASCII)
            need = 1 if b < 0x80 else 2 if b >> 5 == 0b110 else 3 if b >> 4 == 0b1110 else 4
            return i - back if need > back else i
    return i


def _raise_stream_error(value: Any) -> None:
    if isinstance(value, dict) and (value.get("error") or value.get("errorDetail")):
        detail = value.get("errorDetail") or {}
        message = value.get("error") or (detail.get("message") if isinstance(detail, dict) else "") or ""
        raise StreamError(str(message), detail if isinstance(detail, dict) else None)
