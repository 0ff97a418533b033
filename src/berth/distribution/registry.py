"""The registry HTTP client: endpoints, TLS, proxies, connection reuse, auth, and the calls
of the OCI distribution API that pull, push, login and search make.

Endpoints (moby's ``lookupV2Endpoints``): a Docker Hub name goes to each
``registry-mirrors`` entry first (pulls only), then to ``registry-1.docker.io``. Another
registry is tried over HTTPS; an *insecure* one (listed in ``insecure-registries`` by host,
``host:port`` or CIDR, or resolving into 127.0.0.0/8 or ::1, as Docker's defaults) over
HTTPS without verification and then over plain HTTP. CA and client certificates come from
``<certs.d root>/<host:port>/`` (``*.crt`` CAs, ``*.cert``/``*.key`` pairs), roots
``/etc/docker/certs.d`` and ``/etc/berth/certs.d``. One deliberate difference from dockerd:
a loopback registry whose certs.d directory holds a CA is treated as secure (verified TLS,
no HTTP fallback): a CA put there for a host means "verify it", which dockerd ignores for
the hosts it deems insecure by default.

Connections: one pool per (scheme, host, port, proxy), HTTP/1.1 keep-alive, reused across
requests and threads. ``HTTP_PROXY``/``HTTPS_PROXY``/``NO_PROXY`` are read from the daemon's
environment (CONNECT tunnels for HTTPS). Redirects (blob downloads handed to storage) are
followed without the ``Authorization`` header when they leave the registry's host.

Errors: registry error bodies (``{"errors": [{"code", "message", "detail"}]}``) become
``RegistryError`` with distribution's text (``manifest unknown: manifest unknown``) and the
status kind; Bearer challenges with ``error="insufficient_scope"`` become ``denied``, as
distribution's client reads them; transport failures read like Go's
(``Get "http://h/v2/": dial tcp h: connect: connection refused``).
"""

from __future__ import annotations

import errno
import glob
import http.client
import ipaddress
import json
import os
import socket
import ssl
import threading
import urllib.request
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Callable, Iterable, Iterator
from urllib.parse import urlencode, urljoin, urlsplit

from berth import errors
from berth.distribution import mediatypes as mt
from berth.distribution.auth import (AuthConfig, Challenge, Token, TokenCache, basic_header,
                                     parse_challenges, parse_token_response, repository_scope,
                                     token_request)
from berth.distribution.manifest import MAX_MANIFEST_SIZE, ManifestError, check_digest, verify

DOCKER_HUB = "docker.io"
DOCKER_HUB_REGISTRY = "registry-1.docker.io"
INDEX_SERVER = "https://index.docker.io/v1/"
DEFAULT_CERTS_DIRS = ("/etc/docker/certs.d", "/etc/berth/certs.d")
DEFAULT_INSECURE_CIDRS = ("127.0.0.0/8", "::1/128")
USER_AGENT = "berth/0.1 (distribution client)"
_CHUNK = 1 << 20
_TIMEOUT = 60.0
_MAX_REDIRECTS = 10

# distribution's error codes: the HTTP status each stands for (errcode descriptors)
_CODE_STATUS = {
    "UNAUTHORIZED": 401, "DENIED": 403, "UNSUPPORTED": 405, "TOOMANYREQUESTS": 429,
    "NAME_UNKNOWN": 404, "MANIFEST_UNKNOWN": 404, "BLOB_UNKNOWN": 404,
    "BLOB_UPLOAD_UNKNOWN": 404, "MANIFEST_BLOB_UNKNOWN": 404, "TAG_INVALID": 400,
    "NAME_INVALID": 400, "DIGEST_INVALID": 400, "SIZE_INVALID": 400, "MANIFEST_INVALID": 400,
    "MANIFEST_UNVERIFIED": 400, "BLOB_UPLOAD_INVALID": 400, "PAGINATION_NUMBER_INVALID": 400,
    "RANGE_INVALID": 416, "UNAVAILABLE": 503, "UNKNOWN": 500,
}
_CODE_MESSAGE = {
    "UNAUTHORIZED": "authentication required",
    "DENIED": "requested access to the resource is denied",
    "UNKNOWN": "unknown error",
}


# -- errors ------------------------------------------------------------------------------------

def _kind_for(status: int) -> type[errors.BerthError]:
    return {400: errors.InvalidParameter, 401: errors.Unauthorized, 403: errors.Forbidden,
            404: errors.NotFound, 409: errors.Conflict,
            503: errors.Unavailable}.get(status, errors.SystemError_)


class RegistryError(errors.BerthError):
    """A registry's errcode error (the first of its list, as moby reports it)."""

    def __init__(self, code: str, message: str, status: int, detail: Any = None,
                 all_errors: list[tuple[str, str]] | None = None):
        self.code = code
        self.detail = detail
        self.registry_message = message
        self.errors = all_errors or [(code, message)]
        text = format_errcode(code, message)
        if len(self.errors) > 1:
            text = "errors:\n" + "".join(format_errcode(c, m) + "\n" for c, m in self.errors)
        super().__init__(text)
        self.status = _kind_for(_CODE_STATUS.get(code, status)).status


def format_errcode(code: str, message: str) -> str:
    """distribution's ``errcode.Error.Error()``: ``manifest unknown: manifest unknown``."""
    return f"{code.lower().replace('_', ' ')}: {message}"


class UnexpectedStatus(errors.BerthError):
    """A status the client did not expect, without an errcode body."""

    def __init__(self, status: int, reason: str, body: bytes = b"", what: str = ""):
        self.http_status = status
        self.body = body
        text = what or f"unexpected status from registry: {status} {reason}"
        super().__init__(text)
        self.status = _kind_for(status).status


class TransportError(errors.SystemError_):
    """The registry could not be reached (connection, TLS, DNS): the next endpoint may do."""

    def __init__(self, message: str, tls: bool = False):
        super().__init__(message)
        self.tls = tls


def parse_error_body(status: int, body: bytes, challenges: list[Challenge]) -> errors.BerthError:
    """distribution's ``HandleErrorResponse``: Bearer ``error=`` parameters first, then the
    body's ``errors`` list, then Docker Hub's ``{"details": ...}``."""
    for challenge in challenges:
        if challenge.scheme != "bearer":
            continue
        code = {"invalid_token": "UNAUTHORIZED",
                "insufficient_scope": "DENIED"}.get(challenge.params.get("error", ""))
        if code:
            message = challenge.params.get("error_description") or _CODE_MESSAGE[code]
            return RegistryError(code, message, status)
    document: Any = None
    try:
        document = json.loads(body) if body else None
    except (ValueError, UnicodeDecodeError):
        document = None
    if isinstance(document, dict):
        details = document.get("details")
        if isinstance(details, str) and details:
            code = {401: "UNAUTHORIZED", 429: "TOOMANYREQUESTS"}.get(status, "UNKNOWN")
            return RegistryError(code, details, status)
        found = document.get("errors")
        if isinstance(found, list) and found:
            listed = []
            for item in found:
                if isinstance(item, dict):
                    code = str(item.get("code") or "UNKNOWN").upper()
                    listed.append((code, str(item.get("message") or _CODE_MESSAGE.get(code, code.lower()))))
            if listed:
                first = found[0] if isinstance(found[0], dict) else {}
                return RegistryError(listed[0][0], listed[0][1], status, first.get("detail"), listed)
    if status == 401:
        return RegistryError("UNAUTHORIZED", _CODE_MESSAGE["UNAUTHORIZED"], status)
    return UnexpectedStatus(status, http.client.responses.get(status, ""), body)


# OpenSSL's verify codes in Go's crypto/x509 words
_X509_REASONS = {
    18: "certificate signed by unknown authority", 19: "certificate signed by unknown authority",
    20: "certificate signed by unknown authority", 21: "certificate signed by unknown authority",
    9: "certificate has expired or is not yet valid", 10: "certificate has expired or is not yet valid",
    62: "certificate is not valid for the requested name",
}


def _go_error(method: str, url: str, exc: BaseException, host: str) -> TransportError:
    """A transport failure worded as Go's ``*url.Error``."""
    op = method[:1] + method[1:].lower()
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = _X509_REASONS.get(exc.verify_code, exc.verify_message or str(exc))
        return TransportError(f'{op} "{url}": tls: failed to verify certificate: x509: {reason}',
                              tls=True)
    if isinstance(exc, ssl.SSLError):
        return TransportError(f'{op} "{url}": tls: {exc.reason or exc}'.lower().replace("tls: tls", "tls"),
                              tls=True)
    if isinstance(exc, socket.gaierror):
        name = host.rsplit(":", 1)[0]
        return TransportError(f'{op} "{url}": dial tcp: lookup {name}: no such host')
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return TransportError(f'{op} "{url}": dial tcp {host}: i/o timeout')
    if isinstance(exc, ConnectionRefusedError) or getattr(exc, "errno", None) == errno.ECONNREFUSED:
        return TransportError(f'{op} "{url}": dial tcp {host}: connect: connection refused')
    if isinstance(exc, (ConnectionResetError, BrokenPipeError)):
        return TransportError(f'{op} "{url}": read: connection reset by peer')
    if isinstance(exc, (http.client.RemoteDisconnected, http.client.IncompleteRead)):
        return TransportError(f'{op} "{url}": EOF')
    text = getattr(exc, "strerror", None) or str(exc) or exc.__class__.__name__
    return TransportError(f'{op} "{url}": {text}')


# -- endpoints ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Endpoint:
    scheme: str
    host: str            # host[:port] as in URLs
    verify: bool = True
    mirror: bool = False
    ca_files: tuple[str, ...] = ()
    client_certs: tuple[tuple[str, str], ...] = ()

    @property
    def base(self) -> str:
        return f"{self.scheme}://{self.host}"


@dataclass
class RegistryOptions:
    """The daemon's registry settings (daemon.json names)."""

    insecure_registries: list[str] = field(default_factory=list)
    registry_mirrors: list[str] = field(default_factory=list)
    certs_dirs: tuple[str, ...] = DEFAULT_CERTS_DIRS
    max_download_attempts: int = 5


def _host_only(host: str) -> str:
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _addresses(host: str) -> list[ipaddress._BaseAddress]:
    name = _host_only(host)
    try:
        return [ipaddress.ip_address(name)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return []
    out = []
    for info in infos:
        try:
            out.append(ipaddress.ip_address(info[4][0].split("%", 1)[0]))
        except ValueError:
            continue
    return out


def certs_for(host: str, roots: Iterable[str]) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """CA files and (cert, key) pairs from ``<root>/<host>/`` (moby's ReadCertsDirectory)."""
    cas: list[str] = []
    pairs: list[tuple[str, str]] = []
    for root in roots:
        directory = os.path.join(root, host)
        if not os.path.isdir(directory):
            continue
        for path in sorted(glob.glob(os.path.join(directory, "*.crt"))):
            cas.append(path)
        for cert in sorted(glob.glob(os.path.join(directory, "*.cert"))):
            key = cert[:-len(".cert")] + ".key"
            if not os.path.exists(key):
                raise errors.InvalidParameter(f"missing key {os.path.basename(key)} for client "
                                              f"certificate {os.path.basename(cert)}. CA certificates "
                                              f"must use the extension .crt")
            pairs.append((cert, key))
        for key in sorted(glob.glob(os.path.join(directory, "*.key"))):
            cert = key[:-len(".key")] + ".cert"
            if not os.path.exists(cert):
                raise errors.InvalidParameter(f"missing client certificate {os.path.basename(cert)} "
                                              f"for key {os.path.basename(key)}")
    return tuple(cas), tuple(pairs)


class Endpoints:
    """Which URLs serve a registry domain, and what TLS they get."""

    def __init__(self, options: RegistryOptions):
        self.options = options

    def is_insecure(self, host: str) -> bool:
        listed = self.options.insecure_registries
        if host in listed or _host_only(host) in listed:
            return True
        networks = []
        for entry in list(listed) + list(DEFAULT_INSECURE_CIDRS):
            if "/" in entry:
                try:
                    networks.append(ipaddress.ip_network(entry, strict=False))
                except ValueError:
                    continue
        return any(addr in net for addr in _addresses(host) for net in networks
                   if addr.version == net.version)

    def for_host(self, host: str) -> list[Endpoint]:
        cas, pairs = certs_for(host, self.options.certs_dirs)
        listed = host in self.options.insecure_registries or \
            _host_only(host) in self.options.insecure_registries
        insecure = self.is_insecure(host) and (listed or not cas)
        secure = Endpoint("https", host, verify=not insecure, ca_files=cas, client_certs=pairs)
        return [secure, Endpoint("http", host, verify=False)] if insecure else [secure]

    def for_domain(self, domain: str, push: bool = False) -> list[Endpoint]:
        if domain in (DOCKER_HUB, "index.docker.io", ""):
            found: list[Endpoint] = []
            if not push:
                for mirror in self.options.registry_mirrors:
                    parts = urlsplit(mirror if "://" in mirror else "https://" + mirror)
                    host = parts.netloc
                    if parts.scheme == "http" or self.is_insecure(host):
                        found += [replace_mirror(e) for e in self.for_host(host)
                                  if parts.scheme != "http" or e.scheme == "http"]
                    else:
                        found += [replace_mirror(e) for e in self.for_host(host)]
            return found + self.for_host(DOCKER_HUB_REGISTRY)
        return self.for_host(domain)


def replace_mirror(endpoint: Endpoint) -> Endpoint:
    return Endpoint(endpoint.scheme, endpoint.host, endpoint.verify, True, endpoint.ca_files,
                    endpoint.client_certs)


# -- transport -----------------------------------------------------------------------------------

class Response:
    """One HTTP response; ``close()`` (or reading to the end) returns the connection."""

    def __init__(self, transport: "Transport", key: tuple, conn: http.client.HTTPConnection,
                 raw: http.client.HTTPResponse, url: str, method: str = "GET"):
        self._transport = transport
        self.method = method
        self._key = key
        self._conn: http.client.HTTPConnection | None = conn
        self.raw = raw
        self.status = raw.status
        self.reason = raw.reason
        self.headers = raw.headers
        self.url = url

    def header(self, name: str, default: str = "") -> str:
        return self.raw.getheader(name, default) or default

    def header_list(self, name: str) -> list[str]:
        return self.raw.headers.get_all(name) or []

    def read(self, n: int = -1) -> bytes:
        try:
            data = self.raw.read() if n is None or n < 0 else self.raw.read(n)
        except (OSError, http.client.HTTPException) as exc:
            self._discard()
            raise _go_error("GET", self.url, exc, urlsplit(self.url).netloc) from None
        if (n is None or n < 0 or not data) and self.raw.isclosed():
            self._release()
        return data

    def readinto(self, buffer: Any) -> int:
        try:
            count = self.raw.readinto(buffer)
        except (OSError, http.client.HTTPException) as exc:
            self._discard()
            raise _go_error("GET", self.url, exc, urlsplit(self.url).netloc) from None
        if not count and self.raw.isclosed():
            self._release()
        return count

    def read_limited(self, limit: int) -> bytes:
        data = self.read(limit + 1)
        while len(data) <= limit:
            more = self.read(limit + 1 - len(data))
            if not more:
                break
            data += more
        if len(data) > limit:
            self._discard()
        else:
            self.close()
        return data

    def _release(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            if self.raw.will_close:
                conn.close()
            else:
                self._transport._put(self._key, conn)

    def _discard(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()

    def close(self) -> None:
        """Drain a small remainder to keep the connection; drop it otherwise."""
        if self._conn is None:
            return
        try:
            length = self.raw.length
            if self.raw.isclosed() or (length is not None and length <= 65536):
                self.raw.read()
                self._release()
                return
        except (OSError, http.client.HTTPException):
            pass
        self._discard()


def _proxy_for(scheme: str, host: str) -> str | None:
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(scheme)
    if not proxy:
        return None
    if urllib.request.proxy_bypass_environment(_host_only(host), proxies):
        return None
    return proxy


class Transport:
    """A pool of keep-alive connections, shared by every request of the daemon."""

    def __init__(self, timeout: float = _TIMEOUT, max_idle: int = 16):
        self._lock = threading.Lock()
        self._idle: dict[tuple, list[http.client.HTTPConnection]] = {}
        self._contexts: dict[tuple, ssl.SSLContext] = {}
        self.timeout = timeout
        self.max_idle = max_idle

    def context(self, endpoint: Endpoint) -> ssl.SSLContext:
        key = (endpoint.verify, endpoint.ca_files, endpoint.client_certs)
        with self._lock:
            found = self._contexts.get(key)
        if found is not None:
            return found
        ctx = ssl.create_default_context()
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if not endpoint.verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        for ca in endpoint.ca_files:
            ctx.load_verify_locations(cafile=ca)
        for cert, key_file in endpoint.client_certs:
            ctx.load_cert_chain(cert, key_file)
        with self._lock:
            self._contexts[key] = ctx
        return ctx

    def _connect(self, scheme: str, host: str, ctx: ssl.SSLContext | None,
                 proxy: str | None) -> http.client.HTTPConnection:
        if proxy:
            parts = urlsplit(proxy if "://" in proxy else "http://" + proxy)
            headers = {}
            if parts.username:
                headers["Proxy-Authorization"] = basic_header(parts.username, parts.password or "")
            proxy_host = parts.hostname or ""
            proxy_port = parts.port or (443 if parts.scheme == "https" else 80)
            if scheme == "https":
                conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                    proxy_host, proxy_port, timeout=self.timeout, context=ctx)
                target_host, _, target_port = host.rpartition(":") if ":" in host.lstrip("[").split("]")[-1] else (host, "", "")
                conn.set_tunnel(target_host.strip("[]"), int(target_port) if target_port else 443,
                                headers=headers)
            else:
                conn = http.client.HTTPConnection(proxy_host, proxy_port, timeout=self.timeout)
            return conn
        if scheme == "https":
            return http.client.HTTPSConnection(host, timeout=self.timeout, context=ctx)
        return http.client.HTTPConnection(host, timeout=self.timeout)

    def _get(self, key: tuple) -> http.client.HTTPConnection | None:
        with self._lock:
            idle = self._idle.get(key)
            while idle:
                conn = idle.pop()
                if conn.sock is not None:
                    return conn
        return None

    def _put(self, key: tuple, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < self.max_idle:
                idle.append(conn)
                return
        conn.close()

    def _drop(self, key: tuple) -> None:
        with self._lock:
            idle = self._idle.pop(key, [])
        for conn in idle:
            conn.close()

    def close(self) -> None:
        with self._lock:
            pools, self._idle = self._idle, {}
        for idle in pools.values():
            for conn in idle:
                conn.close()

    def request(self, endpoint: Endpoint | None, method: str, url: str,
                headers: dict[str, str], body: Any = None, chunked: bool = False) -> Response:
        parts = urlsplit(url)
        scheme, host = parts.scheme, parts.netloc
        if endpoint is None or endpoint.host != host or endpoint.scheme != scheme:
            endpoint = Endpoint(scheme, host, verify=True)  # a redirect target: default trust
        ctx = self.context(endpoint) if scheme == "https" else None
        proxy = _proxy_for(scheme, host)
        key = (scheme, host, proxy, id(ctx))
        path = url if (proxy and scheme == "http") else (parts.path or "/") + (
            "?" + parts.query if parts.query else "")
        send = dict(headers)
        send.setdefault("User-Agent", USER_AGENT)
        if proxy and scheme == "http":
            proxy_parts = urlsplit(proxy if "://" in proxy else "http://" + proxy)
            if proxy_parts.username:
                send["Proxy-Authorization"] = basic_header(proxy_parts.username,
                                                           proxy_parts.password or "")
        rewindable = body is None or isinstance(body, (bytes, bytearray))
        for attempt in range(2):
            conn = self._get(key) if attempt == 0 else None
            reused = conn is not None
            if conn is None:
                conn = self._connect(scheme, host, ctx, proxy)
            try:
                conn.request(method, path, body=body, headers=send, encode_chunked=chunked)
                raw = conn.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                if reused and rewindable and attempt == 0 and isinstance(
                        exc, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                              http.client.BadStatusLine)):
                    self._drop(key)
                    continue  # a stale keep-alive connection: once more on a new one
                raise _go_error(method, url, exc, host) from None
            return Response(self, key, conn, raw, url, method)
        raise TransportError(f'{method} "{url}": connection failed')  # pragma: no cover


# -- one repository -------------------------------------------------------------------------------

@dataclass(frozen=True)
class RemoteDescriptor:
    media_type: str
    digest: str
    size: int


class Registry:
    """Everything the daemon shares across registry calls: options, endpoints, the
    connection pool, the token cache, the challenges each host answered with, and which
    endpoint of a host last worked."""

    def __init__(self, options: RegistryOptions | None = None):
        self.options = options or RegistryOptions()
        self.endpoints = Endpoints(self.options)
        self.transport = Transport()
        self.tokens = TokenCache()
        self._challenges: dict[str, list[Challenge]] = {}
        self._working: dict[str, str] = {}
        self._lock = threading.Lock()

    def configure(self, options: RegistryOptions) -> None:
        self.options = options
        self.endpoints = Endpoints(options)

    def challenges(self, base: str) -> list[Challenge] | None:
        with self._lock:
            return self._challenges.get(base)

    def remember_challenges(self, base: str, found: list[Challenge]) -> None:
        with self._lock:
            self._challenges[base] = found

    def ordered(self, endpoints: list[Endpoint], domain: str) -> list[Endpoint]:
        """Endpoints with the one that last worked for ``domain`` first (mirrors keep their
        place: they are preferred whenever they answer)."""
        with self._lock:
            good = self._working.get(domain)
        if good is None:
            return endpoints
        mirrors = [e for e in endpoints if e.mirror]
        rest = [e for e in endpoints if not e.mirror]
        rest.sort(key=lambda e: e.base != good)
        return mirrors + rest

    def worked(self, domain: str, endpoint: Endpoint) -> None:
        if not endpoint.mirror:
            with self._lock:
                self._working[domain] = endpoint.base

    def repository(self, domain: str, path: str, auth: AuthConfig | None = None,
                   push: bool = False) -> "Repository":
        return Repository(self, domain, path, auth or AuthConfig(), push)

    def close(self) -> None:
        self.transport.close()


class Repository:
    """The distribution API of one repository (``path``, e.g. ``library/busybox``) of one
    registry domain, over the first endpoint that answers."""

    def __init__(self, registry: Registry, domain: str, path: str, auth: AuthConfig, push: bool):
        self.registry = registry
        self.domain = domain
        self.path = path
        self.auth = auth
        self.push = push
        self.actions: tuple[str, ...] = ("pull", "push") if push else ("pull",)
        self._endpoints = registry.ordered(registry.endpoints.for_domain(domain, push), domain)
        self.endpoint = self._endpoints[0]
        self._auth_header: dict[str, str | None] = {}
        self._token_keys: dict[str, tuple[str, ...]] = {}
        self._lock = threading.Lock()

    # -- requests --------------------------------------------------------------------------
    def url(self, suffix: str, endpoint: Endpoint | None = None) -> str:
        return f"{(endpoint or self.endpoint).base}/v2/{self.path}/{suffix}"

    def scopes(self, extra: tuple[str, ...] = ()) -> list[str]:
        return [repository_scope(self.path, self.actions)] + list(extra)

    def _authorization(self, endpoint: Endpoint, challenges: list[Challenge], url: str,
                       method: str, extra: tuple[str, ...] = ()) -> str | None:
        """The Authorization header for ``endpoint`` after ``challenges`` (None: anonymous)."""
        for challenge in challenges:
            if challenge.scheme == "bearer":
                return "Bearer " + self._token(endpoint, challenge, extra)
        for challenge in challenges:
            if challenge.scheme == "basic":
                if self.auth.username or self.auth.password:
                    return basic_header(self.auth.username, self.auth.password)
                op = method[:1] + method[1:].lower()
                raise errors.Unauthorized(f'{op} "{url}": no basic auth credentials')
        return None

    def _token(self, endpoint: Endpoint, challenge: Challenge, extra: tuple[str, ...] = ()) -> str:
        if self.auth.registry_token:
            return self.auth.registry_token
        scopes = self.scopes(extra)
        key = TokenCache.key(challenge, scopes, self.auth)
        cached = self.registry.tokens.get(key)
        if cached is not None:
            return cached.token
        token = fetch_token(self.registry.transport, endpoint, challenge, scopes, self.auth)
        self.registry.tokens.put(key, token)
        with self._lock:
            self._token_keys[endpoint.base] = key
        return token.token

    def _send(self, endpoint: Endpoint, method: str, url: str, headers: dict[str, str],
              body: Any, chunked: bool, authorization: str | None) -> Response:
        send = dict(headers)
        if authorization:
            send["Authorization"] = authorization
        return self.registry.transport.request(endpoint, method, url, send, body, chunked)

    def request(self, method: str, suffix_or_url: str, headers: dict[str, str] | None = None,
                body: Any = None, chunked: bool = False, follow: bool = True,
                extra_scopes: tuple[str, ...] = ()) -> Response:
        """One call on the current endpoint, authorised as its challenges ask (a Bearer
        token for this repository's scope plus ``extra_scopes``), following redirects
        (without the Authorization header once the host changes). A body that is a stream
        is only sent once the endpoint's auth is known."""
        endpoint = self.endpoint
        url = suffix_or_url if "://" in suffix_or_url else self.url(suffix_or_url, endpoint)
        headers = dict(headers or {})
        challenges = self.registry.challenges(endpoint.base)
        authorization = None
        if challenges:
            authorization = self._authorization(endpoint, challenges, url, method, extra_scopes)
        rewindable = body is None or isinstance(body, (bytes, bytearray))
        if challenges is None and not rewindable:
            self.ping()
            return self.request(method, suffix_or_url, headers, body, chunked, follow, extra_scopes)
        response = self._send(endpoint, method, url, headers, body, chunked, authorization)
        if response.status == 401 and rewindable:
            found = parse_challenges(response.header_list("WWW-Authenticate"))
            error = self._error_of(response)
            if found and not any(c.params.get("error") == "insufficient_scope" for c in found) \
                    and (authorization is None or _is_stale_token(found)):
                self.registry.remember_challenges(endpoint.base, found)
                self._forget_token(endpoint)
                authorization = self._authorization(endpoint, found, url, method, extra_scopes)
                if authorization is not None:
                    response = self._send(endpoint, method, url, headers, body, chunked,
                                           authorization)
                    if response.status == 401:
                        raise self._error_of(response)
                else:
                    raise error
            else:
                raise error
        redirects = 0
        while follow and response.status in (301, 302, 303, 307, 308) and redirects < _MAX_REDIRECTS:
            redirects += 1
            location = response.header("Location")
            response.close()
            target = urljoin(url, location)
            same_host = urlsplit(target).netloc == urlsplit(url).netloc
            if not same_host:
                authorization = None
            if response.status == 303:
                method, body = "GET", None
            url = target
            response = self._send(endpoint, method, url, headers, body, chunked, authorization)
        return response

    def _forget_token(self, endpoint: Endpoint) -> None:
        with self._lock:
            key = self._token_keys.pop(endpoint.base, None)
        if key is not None:
            self.registry.tokens.drop(key)

    def _error_of(self, response: Response) -> errors.BerthError:
        body = b"" if response.method == "HEAD" else response.read_limited(1 << 20)
        response.close()
        return parse_error_body(response.status, body,
                                parse_challenges(response.header_list("WWW-Authenticate")))

    def check(self, response: Response, *ok: int) -> Response:
        if response.status in ok:
            return response
        raise self._error_of(response)

    # -- endpoint choice -----------------------------------------------------------------------
    def ping(self) -> None:
        """``GET /v2/`` on each endpoint in turn until one answers as a registry (200 or 401);
        remembers its challenges. Transport failures move to the next endpoint; the error of
        the last one is raised."""
        last: errors.BerthError | None = None
        for endpoint in self._endpoints:
            url = f"{endpoint.base}/v2/"
            try:
                response = self.registry.transport.request(endpoint, "GET", url, {})
            except TransportError as exc:
                last = exc
                continue
            body = response.read_limited(1 << 16)
            if response.status in (200, 401):
                self.registry.remember_challenges(
                    endpoint.base, parse_challenges(response.header_list("WWW-Authenticate")))
                self.endpoint = endpoint
                self.registry.worked(self.domain, endpoint)
                return
            if endpoint.mirror:
                last = UnexpectedStatus(response.status, response.reason, body)
                continue
            last = UnexpectedStatus(response.status, response.reason, body)
            if endpoint.scheme == "https" and any(e.scheme == "http" for e in self._endpoints):
                continue
            raise last
        assert last is not None
        raise last

    def with_fallback(self, call: Callable[[], Any]) -> Any:
        """Run ``call`` on the endpoints in turn: after a transport failure, or on a mirror
        after any failure, the next endpoint is tried (moby's fallback)."""
        if self.registry.challenges(self.endpoint.base) is None:
            self.ping()
        start = self._endpoints.index(self.endpoint)
        last: BaseException | None = None
        for endpoint in self._endpoints[start:]:
            if endpoint is not self.endpoint:
                self.endpoint = endpoint
                if self.registry.challenges(endpoint.base) is None:
                    try:
                        self._ping_one(endpoint)
                    except TransportError as exc:
                        last = exc
                        continue
            try:
                result = call()
            except TransportError as exc:
                last = exc
                continue
            except errors.BerthError as exc:
                if endpoint.mirror:
                    last = exc
                    continue
                raise
            self.registry.worked(self.domain, endpoint)
            return result
        assert last is not None
        raise last

    def _ping_one(self, endpoint: Endpoint) -> None:
        response = self.registry.transport.request(endpoint, "GET", f"{endpoint.base}/v2/", {})
        response.read_limited(1 << 16)
        self.registry.remember_challenges(
            endpoint.base, parse_challenges(response.header_list("WWW-Authenticate")))

    # -- manifests ---------------------------------------------------------------------------
    def resolve(self, reference: str) -> RemoteDescriptor:
        """Tag or digest -> the manifest's descriptor: HEAD first, GET for the error details
        (or from a registry without HEAD), as distribution's ``Tags().Get``."""
        headers = {"Accept": ", ".join(mt.MANIFEST_ACCEPT)}
        response = self.request("HEAD", f"manifests/{reference}", headers)
        digest = response.header("Docker-Content-Digest")
        if 200 <= response.status < 300 and digest:
            response.close()
            return RemoteDescriptor(response.header("Content-Type"), check_digest(digest),
                                    int(response.header("Content-Length", "0") or 0))
        response.close()
        data, media_type, digest = self.get_manifest(reference)
        return RemoteDescriptor(media_type, digest, len(data))

    def get_manifest(self, reference: str) -> tuple[bytes, str, str]:
        """(bytes, media type, digest) of a manifest; size-limited, verified by digest when
        fetched by digest."""
        headers = {"Accept": ", ".join(mt.MANIFEST_ACCEPT)}
        response = self.check(self.request("GET", f"manifests/{reference}", headers), 200)
        length = response.header("Content-Length")
        if length and length.isdigit() and int(length) > MAX_MANIFEST_SIZE:
            response._discard()
            raise ManifestError(f"manifest too large: {length} bytes exceeds the limit of "
                                f"{MAX_MANIFEST_SIZE} bytes")
        data = response.read_limited(MAX_MANIFEST_SIZE)
        if len(data) > MAX_MANIFEST_SIZE:
            raise ManifestError(f"manifest too large: more than {MAX_MANIFEST_SIZE} bytes")
        if ":" in reference:
            verify(data, reference)
            digest = reference
        else:
            from berth.distribution.manifest import digest_of
            digest = digest_of(data)
        return data, response.header("Content-Type"), digest

    def put_manifest(self, reference: str, media_type: str, data: bytes) -> str:
        response = self.request("PUT", f"manifests/{reference}",
                                {"Content-Type": media_type}, data)
        self.check(response, 201, 200, 202)
        response.close()
        return response.header("Docker-Content-Digest")

    def tags(self) -> list[str]:
        found: list[str] = []
        url = self.url("tags/list")
        while url:
            response = self.check(self.request("GET", url), 200)
            document = json.loads(response.read_limited(16 << 20) or b"{}")
            found += [t for t in document.get("tags") or [] if isinstance(t, str)]
            link = response.header("Link")
            url = ""
            if link.startswith("<") and 'rel="next"' in link:
                url = urljoin(self.url("tags/list"), link[1:link.index(">")])
        return found

    # -- blobs -------------------------------------------------------------------------------
    def get_blob(self, digest: str, offset: int = 0) -> Response:
        """A blob's bytes (``offset`` > 0: a ``Range`` request; the caller checks for 206)."""
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        return self.check(self.request("GET", f"blobs/{digest}", headers), 200, 206)

    def read_blob(self, digest: str, limit: int) -> bytes:
        data = self.get_blob(digest).read_limited(limit)
        if len(data) > limit:
            raise ManifestError(f"blob {digest} is larger than {limit} bytes")
        verify(data, digest)
        return data

    def blob_exists(self, digest: str) -> bool:
        response = self.request("HEAD", f"blobs/{digest}")
        response.close()
        if response.status == 200:
            return True
        if response.status == 404:
            return False
        raise self._error_of(response)

    def mount_blob(self, digest: str, source: str) -> str | None:
        """Cross-repository mount (``POST uploads/?mount=&from=``): None when mounted, else
        the upload location the registry opened instead."""
        query = urlencode({"mount": digest, "from": source})
        response = self.request("POST", f"blobs/uploads/?{query}", {"Content-Length": "0"}, b"",
                                extra_scopes=(repository_scope(source, ("pull",)),))
        if response.status == 201:
            response.close()
            return None
        self.check(response, 202)
        response.close()
        return urljoin(response.url, response.header("Location"))

    def start_upload(self) -> str:
        response = self.check(self.request("POST", "blobs/uploads/", {"Content-Length": "0"}, b""),
                              202)
        response.close()
        return urljoin(response.url, response.header("Location"))

    def upload(self, location: str, digest: str, source: BinaryIO | Iterator[bytes] | bytes,
               size: int | None) -> None:
        """One blob to an upload session: a monolithic ``PUT ?digest=`` when the size is
        known, else a streamed (chunked) ``PATCH`` and then the closing ``PUT``."""
        if size is not None and not isinstance(source, Iterator):
            url = _with_query(location, {"digest": digest})
            response = self.request("PUT", url, {"Content-Type": "application/octet-stream",
                                                 "Content-Length": str(size)}, source)
            self.check(response, 201, 204)
            response.close()
            return
        body = source if isinstance(source, Iterator) else _chunks(source)  # type: ignore[arg-type]
        response = self.request("PATCH", location, {"Content-Type": "application/octet-stream"},
                                body, chunked=True)
        self.check(response, 202, 204)
        response.close()
        next_location = urljoin(response.url, response.header("Location") or location)
        response = self.request("PUT", _with_query(next_location, {"digest": digest}),
                                {"Content-Length": "0"}, b"")
        self.check(response, 201, 204)
        response.close()


def _is_stale_token(challenges: list[Challenge]) -> bool:
    return any(c.params.get("error") == "invalid_token" for c in challenges)


def _with_query(url: str, params: dict[str, str]) -> str:
    return url + ("&" if "?" in url else "?") + urlencode(params)


def _chunks(handle: BinaryIO) -> Iterator[bytes]:
    while True:
        data = handle.read(_CHUNK)
        if not data:
            return
        yield data


def fetch_token(transport: Transport, endpoint: Endpoint, challenge: Challenge,
                scopes: list[str], auth: AuthConfig, offline: bool = False) -> Token:
    """Ask the challenge's realm for a token (with the registry endpoint's TLS trust)."""
    request = token_request(challenge, scopes, auth, offline)
    if not request.url:
        raise errors.Unauthorized("unauthorized: no realm in the Bearer challenge")
    realm_host = urlsplit(request.url).netloc
    realm_endpoint = Endpoint(urlsplit(request.url).scheme, realm_host, endpoint.verify,
                              False, endpoint.ca_files, endpoint.client_certs)
    response = transport.request(realm_endpoint, request.method, request.url, request.headers,
                                 request.body)
    body = response.read_limited(1 << 20)
    if not 200 <= response.status < 300:
        raise parse_error_body(response.status, body, [])
    try:
        return parse_token_response(body)
    except ValueError as exc:
        raise errors.SystemError_(f"unable to decode token response: {exc}") from None


def login(registry: Registry, server: str, auth: AuthConfig) -> tuple[str, str]:
    """``POST /auth``: ``GET /v2/`` on the server's endpoints with the credentials (an
    offline token for Bearer registries). Returns (status, identity token)."""
    host = server_host(server)
    endpoints = registry.endpoints.for_domain(host if host != "index.docker.io" else DOCKER_HUB,
                                              push=True)
    last: BaseException | None = None
    for endpoint in endpoints:
        url = f"{endpoint.base}/v2/"
        try:
            response = registry.transport.request(endpoint, "GET", url, {})
            response.read_limited(1 << 16)
            if response.status == 200:
                return "Login Succeeded", ""
            challenges = parse_challenges(response.header_list("WWW-Authenticate"))
            bearer = next((c for c in challenges if c.scheme == "bearer"), None)
            if response.status == 401 and bearer is not None:
                try:
                    token = fetch_token(registry.transport, endpoint, bearer, [], auth, offline=True)
                except RegistryError as exc:
                    raise errors.Unauthorized(f'Get "{bearer.params.get("realm", url)}": '
                                              f'{exc.message}') from None
                response = registry.transport.request(
                    endpoint, "GET", url, {"Authorization": "Bearer " + token.token})
                response.read_limited(1 << 16)
                if response.status == 200:
                    return "Login Succeeded", token.refresh_token
            elif response.status == 401 and any(c.scheme == "basic" for c in challenges):
                if not auth.username:
                    raise errors.Unauthorized(f'Get "{url}": no basic auth credentials')
                response = registry.transport.request(
                    endpoint, "GET", url, {"Authorization": basic_header(auth.username, auth.password)})
                response.read_limited(1 << 16)
                if response.status == 200:
                    return "Login Succeeded", ""
            status_text = f"{response.status} {http.client.responses.get(response.status, '')}".strip()
            error = errors.Unauthorized(f"login attempt to {url} failed with status: {status_text}")
            if response.status != 401:
                error = errors.SystemError_(error.message)
            raise error
        except TransportError as exc:
            last = exc
            continue
    assert last is not None
    raise last


def server_host(server: str) -> str:
    """The registry host a ``serveraddress`` names (Docker Hub's index URL: docker.io)."""
    if not server or server.rstrip("/") in (INDEX_SERVER.rstrip("/"), "https://index.docker.io/v1",
                                            "index.docker.io", "docker.io"):
        return DOCKER_HUB
    text = server if "://" in server else "https://" + server
    return urlsplit(text).netloc or server


def retry_delays(attempts: int) -> Iterator[float]:
    """moby's back-off between download attempts: 5 s, 10 s, 15 s... (scaled down here: the
    first retries are quick, as most failures are a dropped connection)."""
    for attempt in range(1, attempts):
        yield min(0.5 * attempt, 5.0)
