"""``APIClient``: the Engine API over a ``Transport``, with version negotiation.

Request paths are prefixed with ``/v<version>``. The version is pinned (argument, or the
``DOCKER_API_VERSION`` environment variable) or negotiated on first use: ``GET /_ping`` and
``min(1.47, server's Api-Version)``, as the docker CLI does.

The endpoint groups (``containers``, ``images``, ``objects``) build on the generic helpers: ``get``/``post``/``delete``
(JSON in, decoded JSON out), ``request`` (a raw ``Response``), ``stream_json_lines`` (progress
and events) and ``hijack`` (attach/exec).
"""

from __future__ import annotations

import json as _json
import os
import sys
import threading
from typing import Any, Iterable, Iterator, Mapping, NamedTuple
from urllib.parse import quote, urlencode

from berth import API_VERSION, __version__
from berth.client import errors
from berth.client.containers import ContainersAPI
from berth.client.hijack import HijackedSocket, read_error_body, read_response_head
from berth.client.hosts import DEFAULT_HOST, parse_host
from berth.client.images import ImagesAPI
from berth.client.objects import NetworksAPI, SystemAPI, VolumesAPI
from berth.client.response import Response
from berth.client.timestamps import get_timestamp
from berth.client.tlsconfig import TLSConfig
from berth.client.trace import WireTrace, env_enabled
from berth.client.transport import Transport

MAX_API_VERSION = API_VERSION
USER_AGENT = f"Berth-Client/{__version__} ({sys.platform})"

Filters = Mapping[str, Any]


class PingResult(NamedTuple):
    api_version: str
    os_type: str
    experimental: bool
    builder_version: str
    swarm: str

    @classmethod
    def from_headers(cls, headers: Any) -> "PingResult":
        return cls(
            api_version=headers.get("Api-Version", "") or "",
            os_type=headers.get("Ostype", "") or "",
            experimental=(headers.get("Docker-Experimental", "") or "") == "true",
            builder_version=headers.get("Builder-Version", "") or "",
            swarm=headers.get("Swarm", "") or "",
        )


def version_tuple(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in v.split(".") if p.isdigit())


def encode_filters(filters: Filters | None) -> str | None:
    """Filters as the API wants them: ``{"type": ["container"]}`` JSON.

    Values may be a string, a list of strings, or docker's ``{"value": true}`` map.
    """
    if not filters:
        return None
    out: dict[str, Any] = {}
    for key, value in filters.items():
        if value is None:
            continue
        if isinstance(value, (str, int, bool)):
            out[key] = [str(value) if not isinstance(value, bool) else str(value).lower()]
        elif isinstance(value, Mapping):
            out[key] = {str(k): bool(v) for k, v in value.items()}
        else:
            out[key] = [str(v) for v in value]
    return _json.dumps(out, separators=(",", ":")) if out else None


def encode_query(params: Mapping[str, Any] | None) -> str:
    """Query string: None skipped, bools as 1/0, lists repeated, dicts (filters) as JSON."""
    if not params:
        return ""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        if value is None:
            continue
        if key == "filters" and not isinstance(value, str):
            encoded = encode_filters(value)
            if encoded is not None:
                pairs.append((key, encoded))
        elif isinstance(value, bool):
            pairs.append((key, "1" if value else "0"))
        elif isinstance(value, Mapping):
            pairs.append((key, _json.dumps(value, separators=(",", ":"))))
        elif isinstance(value, (list, tuple)):
            pairs.extend((key, str(v)) for v in value)
        else:
            pairs.append((key, str(value)))
    return urlencode(pairs, quote_via=quote)


class APIClient(ContainersAPI, ImagesAPI, VolumesAPI, NetworksAPI, SystemAPI):
    """A client for one daemon. Thread-safe; close() (or ``with``) releases connections.

    The endpoint groups live in their own modules (``containers``, ``images``, ``objects``)."""

    def __init__(
        self,
        base_url: str | None = None,
        *,
        version: str | None = None,
        tls: TLSConfig | None = None,
        timeout: float | None = None,
        debug: bool | None = None,
        user_agent: str = USER_AGENT,
        ssh_remote_command: str | None = None,
        trace_out: Any = None,
    ):
        host = parse_host(base_url) if base_url else DEFAULT_HOST
        if debug is None:
            debug = env_enabled()
        self.trace = WireTrace(trace_out) if debug else None
        self.transport = Transport(
            host, tls=tls, timeout=timeout, ssh_remote_command=ssh_remote_command, trace=self.trace
        )
        self.base_url = host
        self.user_agent = user_agent
        pinned = version or os.environ.get("DOCKER_API_VERSION") or None
        if pinned in ("auto",):
            pinned = None
        self._version: str | None = pinned.lstrip("v") if pinned else None
        self.pinned = self._version is not None  # no negotiation when pinned
        self._negotiate_lock = threading.Lock()
        self.last_ping: PingResult | None = None

    # -- construction from the environment / contexts --------------------------------------------
    @classmethod
    def from_env(cls, **kwargs: Any) -> "APIClient":
        """The daemon the docker CLI would use: DOCKER_HOST, DOCKER_CONTEXT, the current
        context in config.json, DOCKER_TLS_VERIFY/DOCKER_CERT_PATH; else berth's default."""
        from berth.client.contexts import ClientOptions, resolve_endpoint

        endpoint = resolve_endpoint(ClientOptions())
        return cls.from_endpoint(endpoint, **kwargs)

    @classmethod
    def from_endpoint(cls, endpoint: Any, **kwargs: Any) -> "APIClient":
        kwargs.setdefault("tls", endpoint.tls)
        return cls(endpoint.host, **kwargs)

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> "APIClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- versions --------------------------------------------------------------------------------
    @property
    def api_version(self) -> str:
        """The version in request paths; negotiates with the daemon on first use."""
        if self._version is None:
            with self._negotiate_lock:
                if self._version is None:
                    self._negotiate()
        assert self._version is not None
        return self._version

    @property
    def negotiated(self) -> bool:
        return self._version is not None

    def _negotiate(self) -> None:
        if self.last_ping is None:
            self.ping()
        self._version = self._negotiated_version()

    def _negotiated_version(self) -> str:
        server = self.last_ping.api_version if self.last_ping else ""
        if not server:
            return MAX_API_VERSION  # a daemon without Api-Version: assume ours
        if version_tuple(server) < version_tuple(MAX_API_VERSION):
            return server
        return MAX_API_VERSION

    def versioned(self, path: str) -> str:
        return f"/v{self.api_version}{path}"

    # -- requests ----------------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: bytes | Iterable[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
        versioned: bool = True,
        stream: bool = False,
        check: bool = True,
    ) -> Response:
        """One exchange. Returns the response (body unread when ``stream``).

        ``check`` raises ``APIError`` (NotFound, Conflict, ...) for status >= 400.
        ``data`` as an iterable of bytes is sent chunked.
        """
        target = self._target(path, params, versioned)
        hdrs = {"User-Agent": self.user_agent}
        body: Any = None
        chunked = False
        if json is not None:
            body = encode_json_body(json)
            hdrs["Content-Type"] = "application/json"
        elif data is not None:
            body = data
            chunked = not isinstance(data, (bytes, bytearray))
        elif method in ("POST", "PUT"):
            body = b""  # Content-Length: 0, as Go's client sends
        if headers:
            hdrs.update(headers)
        conn, raw = self.transport.exchange(method, target, hdrs, body, chunked=chunked)

        def done(reusable: bool) -> None:
            if reusable:
                self.transport.release(conn)
            else:
                conn.close()

        resp = Response(raw, done, url=self.transport.url_for(target))
        if check and resp.status >= 400:
            raise self._error_from(resp, method)
        if not stream:
            resp.read()  # fill: the caller gets a complete body, the connection goes back
        return resp

    def _target(self, path: str, params: Mapping[str, Any] | None, versioned: bool) -> str:
        if not path.startswith("/"):
            path = "/" + path
        if versioned:
            path = self.versioned(path)
        target = self.transport.base_path + quote(path, safe="/:@!$&'()*+,;=-._~")
        query = encode_query(params)
        return f"{target}?{query}" if query else target

    def _error_from(self, resp: Response, method: str) -> errors.APIError:
        """Docker's checkResponseErr: the daemon's ``message``, or a description."""
        try:
            body = resp.read() if method != "HEAD" else b""
        finally:
            resp.close()
        reason = resp.reason or ""
        status_text = f"{resp.status} {reason}".strip()
        message = ""
        if body.strip():
            if resp.content_type == "application/json":
                try:
                    decoded = _json.loads(body)
                    message = str(decoded.get("message", "")) if isinstance(decoded, dict) else ""
                except ValueError as e:
                    message = f"error reading JSON: {e}"
                if not message:
                    message = f"API returned a {resp.status} ({reason}) but provided no error-message"
            else:
                message = body.decode("utf-8", "replace")
            message = message.strip()
        else:
            message = (
                f"request returned {status_text} for API route and version {resp.url}, "
                "check if the server supports the requested API version"
            )
        return errors.api_error(resp.status, message, reason=reason, url=resp.url)

    def get(self, path: str, params: Mapping[str, Any] | None = None, **kw: Any) -> Any:
        return self.request("GET", path, params=params, **kw).decoded()

    def post(self, path: str, params: Mapping[str, Any] | None = None, json: Any = None, **kw: Any) -> Any:
        return self.request("POST", path, params=params, json=json, **kw).decoded()

    def put(self, path: str, params: Mapping[str, Any] | None = None, **kw: Any) -> Any:
        return self.request("PUT", path, params=params, **kw).decoded()

    def delete(self, path: str, params: Mapping[str, Any] | None = None, **kw: Any) -> Any:
        return self.request("DELETE", path, params=params, **kw).decoded()

    def head(self, path: str, params: Mapping[str, Any] | None = None, **kw: Any) -> Response:
        return self.request("HEAD", path, params=params, **kw)

    def stream_json_lines(
        self,
        method: str,
        path: str,
        *,
        raise_on_error: bool = True,
        **kw: Any,
    ) -> Iterator[Any]:
        """JSON objects of a streaming answer (progress, events) as they arrive.

        A ``{"error": ...}`` line raises ``StreamError`` unless ``raise_on_error=False``.
        Closing the iterator closes the connection.
        """
        headers = dict(kw.pop("headers", None) or {})
        headers.setdefault("Accept", "application/jsonl, application/x-ndjson;q=0.9, application/json-seq;q=0.5")
        # The request is made now (errors surface here); the body is read as iterated.
        resp = self.request(method, path, stream=True, headers=headers, **kw)
        return resp.iter_json(raise_on_error=raise_on_error)

    def stream_raw(self, method: str, path: str, **kw: Any) -> Response:
        """A streaming response to read with ``read1``/``iter_chunks`` (logs, exports)."""
        return self.request(method, path, stream=True, **kw)

    def hijack(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        versioned: bool = True,
        proto: str = "tcp",
    ) -> HijackedSocket:
        """Send an upgrade request on a fresh connection; on 101 (or 200) return the raw stream."""
        target = self._target(path, params, versioned)
        body = encode_json_body(json) if json is not None else b""
        lines = [
            f"{method} {target} HTTP/1.1",
            f"Host: {self.transport.host_header}",
            f"User-Agent: {self.user_agent}",
            "Connection: Upgrade",
            f"Upgrade: {proto}",
        ]
        if json is not None:
            lines.append("Content-Type: application/json")
        lines.extend(f"{k}: {v}" for k, v in (headers or {}).items())
        lines.append(f"Content-Length: {len(body)}")
        if self.trace is not None:
            self.trace.request(self.transport.host, lines)
        stream, closer = self.transport.open_raw()
        try:
            stream.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
            status, reason, hdrs, leftover, version = read_response_head(stream)
        except errors.ClientError:
            _close_raw(stream, closer)
            raise
        except Exception as e:
            _close_raw(stream, closer)
            if closer is not None:
                raise closer.failure(method, self.transport.url_for(target)) from e
            raise self.transport.map_error(e, method=method, target=target) from e
        if self.trace is not None:
            self.trace.response(version, status, reason, hdrs.items())
        if status >= 400:
            body_bytes = read_error_body(stream, hdrs, leftover)
            _close_raw(stream, closer)
            raise errors.api_error(status, _error_message(body_bytes, hdrs, status, reason), reason=reason)
        if status not in (101, 200):
            _close_raw(stream, closer)
            raise errors.DaemonConnectionError(f"unable to upgrade to {proto}, received {status}")
        return HijackedSocket(stream, leftover, status=status, headers=hdrs, closer=closer)

    # -- system endpoints -----------------------------------------------------------------------
    def ping(self) -> str:
        """``GET /_ping``; records the daemon's headers in ``last_ping``."""
        resp = self.request("GET", "/_ping", versioned=False)
        self.last_ping = PingResult.from_headers(resp.headers)
        if self._version is None:  # a ping is what negotiation needs: use this one
            self._version = self._negotiated_version()
        return resp.text()

    def version(self, api_version: bool = True) -> dict:
        return self.get("/version", versioned=api_version)

    def info(self) -> dict:
        return self.get("/info")

    def events(
        self,
        since: Any = None,
        until: Any = None,
        filters: Filters | None = None,
        decode: bool = True,
    ) -> Iterator[Any]:
        """Daemon events as dicts until ``until`` (or forever). since/until: unix time,
        datetime, RFC 3339 text or a duration like ``10m``."""
        params: dict[str, Any] = {}
        if since not in (None, ""):
            params["since"] = get_timestamp(since)
        if until not in (None, ""):
            params["until"] = get_timestamp(until)
        if filters:
            params["filters"] = filters
        if not decode:
            return self.stream_raw("GET", "/events", params=params).iter_chunks()
        return self.stream_json_lines("GET", "/events", params=params, raise_on_error=False)


def encode_json_body(obj: Any) -> bytes:
    """A request body as Go's json.Encoder writes it (compact, HTML-escaped, newline)."""
    from berth.client.gojson import dumps

    return (dumps(obj) + "\n").encode("utf-8")


def _error_message(body: bytes, headers: Any, status: int, reason: str) -> str:
    text = body.decode("utf-8", "replace").strip()
    if (headers.get("Content-Type") or "").startswith("application/json") and text:
        try:
            decoded = _json.loads(text)
            if isinstance(decoded, dict) and decoded.get("message"):
                return str(decoded["message"]).strip()
        except ValueError:
            pass
    return text or f"request returned {status} {reason}".strip()


def _close_raw(stream: Any, closer: Any) -> None:
    try:
        stream.close()
    finally:
        if closer is not None:
            closer.close()

