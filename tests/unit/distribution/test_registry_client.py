"""The registry client against small fake servers on 127.0.0.1: Bearer tokens with scopes
(and their reuse), redirects to blob storage without the Authorization header, Range
resume after a dropped connection, errcode bodies and challenges mapped to Docker's words,
endpoint choice (insecure, certs.d), and a pull into in-memory stores that keeps nothing
when a blob does not match its digest."""

import gzip
import hashlib
import io
import json
import os
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from berth import errors
from berth.distribution import mediatypes as mt
from berth.distribution.auth import AuthConfig
from berth.distribution.pull import PullOptions, Puller, Transfers, chain_id
from berth.distribution.registry import (Endpoint, Endpoints, Registry, RegistryError,
                                         RegistryOptions, TransportError, certs_for,
                                         parse_error_body)
from berth.distribution.auth import parse_challenges


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer_tar(name: str, payload: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


class Server:
    """A tiny HTTP server whose handler is a function of (handler, method)."""

    def __init__(self, handle):
        self.handle = handle
        self.seen = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _do(self):
                server.seen.append((self.command, self.path, dict(self.headers)))
                server.handle(self)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = _do

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def host(self):
        return f"127.0.0.1:{self.port}"

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def reply(h, status, body=b"", headers=()):
    h.send_response(status)
    for name, value in headers:
        h.send_header(name, value)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    if h.command != "HEAD":
        h.wfile.write(body)


TAR = layer_tar("hello.txt", os.urandom(300_000))
BLOB = gzip.compress(TAR, mtime=0)
CONFIG = json.dumps({"os": "linux", "architecture": "amd64",
                     "rootfs": {"type": "layers", "diff_ids": [sha(TAR)]}}).encode()
MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": mt.DOCKER_MANIFEST,
                       "config": {"mediaType": mt.DOCKER_CONFIG, "digest": sha(CONFIG), "size": len(CONFIG)},
                       "layers": [{"mediaType": mt.DOCKER_LAYER, "digest": sha(BLOB), "size": len(BLOB)}]}).encode()


@pytest.fixture
def world():
    """A token server, a storage server (blob redirects land there) and a registry that
    wants Bearer tokens with the right scope."""
    state = {"drop_once": True, "tokens": 0}
    storage = Server(lambda h: storage_handle(h, state))
    tokens = Server(lambda h: token_handle(h, state))
    registry = Server(lambda h: registry_handle(h, state, tokens, storage))
    yield state, registry, tokens, storage
    for server in (registry, tokens, storage):
        server.stop()


def token_handle(h, state):
    state["tokens"] += 1
    scope = h.path.split("scope=")[-1] if "scope=" in h.path else ""
    reply(h, 200, json.dumps({"token": "tok:" + scope, "expires_in": 300}).encode(),
          [("Content-Type", "application/json")])


def storage_handle(h, state):
    if "Authorization" in h.headers:
        reply(h, 400, b"authorization leaked to storage")
        return
    start = 0
    if h.headers.get("Range"):
        start = int(h.headers["Range"].split("=")[1].rstrip("-"))
    data = BLOB[start:]
    if state.get("corrupt"):
        data = data[:-1] + bytes([data[-1] ^ 1])
    if state["drop_once"] and not start:
        state["drop_once"] = False
        h.send_response(200)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data[:100_000])
        h.wfile.flush()
        h.connection.shutdown(2)  # the connection drops mid-blob
        h.close_connection = True
        return
    status = 206 if start else 200
    reply(h, status, data, [("Content-Range", f"bytes {start}-{len(BLOB) - 1}/{len(BLOB)}")] if start else [])


def registry_handle(h, state, tokens, storage):
    path = h.path.split("?")[0]
    challenge = (f'Bearer realm="http://{tokens.host}/token",service="fake",'
                 f'scope="repository:team/app:pull"')
    if path == "/v2/":
        reply(h, 401, b"{}", [("WWW-Authenticate", challenge)])
        return
    authorization = h.headers.get("Authorization", "")
    if not authorization.startswith("Bearer tok:repository%3Ateam%2Fapp%3Apull"):
        if authorization:
            reply(h, 401, b'{"errors":[{"code":"DENIED","message":"x"}]}',
                  [("WWW-Authenticate", challenge + ',error="insufficient_scope"')])
        else:
            reply(h, 401, b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}',
                  [("WWW-Authenticate", challenge)])
        return
    if path == "/v2/team/app/manifests/v1" or path == f"/v2/team/app/manifests/{sha(MANIFEST)}":
        reply(h, 200, MANIFEST, [("Content-Type", mt.DOCKER_MANIFEST),
                                 ("Docker-Content-Digest", sha(MANIFEST))])
    elif path.startswith("/v2/team/app/manifests/"):
        reply(h, 404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}')
    elif path == f"/v2/team/app/blobs/{sha(CONFIG)}":
        reply(h, 200, CONFIG)
    elif path == f"/v2/team/app/blobs/{sha(BLOB)}":
        reply(h, 307, b"", [("Location", f"http://{storage.host}/blob")])
    else:
        reply(h, 404, b'{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}')


class MemoryBlobs:
    def __init__(self):
        self.blobs = {}

    def exists(self, digest):
        return digest in self.blobs

    def size(self, digest):
        return len(self.blobs[digest])

    def open(self, digest):
        return io.BytesIO(self.blobs[digest])

    def writer(self, expected=None, size=None):
        store = self

        class Writer:
            def __init__(self):
                self.size, self.data = 0, bytearray()

            def write(self, data):
                self.data += data
                self.size += len(data)
                return len(data)

            def commit(self):
                if sha(bytes(self.data)) != expected:
                    raise errors.InvalidParameter("unexpected commit digest")
                store.blobs[expected] = bytes(self.data)
                return expected

            def abort(self):
                self.data = bytearray()
        return Writer()


class MemoryLayers:
    def __init__(self):
        self.layers, self.refs = {}, {}

    def exists(self, cid):
        return cid in self.layers

    def get(self, cid):
        self.refs[cid] += 1
        return self.layers[cid]

    def release(self, cid):
        self.refs[cid] -= 1
        if self.refs[cid] == 0:
            del self.layers[cid], self.refs[cid]
            return [cid]
        return []

    def register(self, stream, parent=None, expected_diff_id=None):
        tar = gzip.decompress(stream.read())
        diff_id = sha(tar)
        if expected_diff_id and diff_id != expected_diff_id:
            raise errors.InvalidParameter("layer diff ID mismatch")

        class L:
            pass
        layer = L()
        layer.diff_id, layer.chain_id = diff_id, chain_id(parent, diff_id)
        self.layers[layer.chain_id] = layer
        self.refs[layer.chain_id] = 1
        return layer


class MemoryMetadata:
    def __init__(self):
        self.sources = []

    def add(self, source):
        self.sources.append(source)

    def sources_for(self, diff_id):
        return [s for s in self.sources if s.diff_id == diff_id]


def _puller(registry_server, messages, blobs=None, layers=None, auth=None):
    registry = Registry(RegistryOptions())
    repo = registry.repository(registry_server.host, "team/app", auth or AuthConfig())
    return Puller(repo, blobs or MemoryBlobs(), layers or MemoryLayers(), MemoryMetadata(),
                  Transfers(), messages.append, PullOptions(max_download_attempts=3)), registry


def test_pull_with_tokens_redirects_and_range_resume(world):
    state, registry_server, _, storage = world
    messages = []
    puller, registry = _puller(registry_server, messages)
    manifest, digest, media = puller.resolve("v1", "x")
    assert digest == sha(MANIFEST)
    pulled = puller.pull(manifest, digest, media)
    assert pulled.config == CONFIG and pulled.layers == [sha(TAR)]
    statuses = [m["status"] for m in messages]
    assert statuses[0] == "Pulling fs layer"
    assert any(s.startswith("Retrying in") for s in statuses)
    assert statuses[-3:] == ["Download complete", "Extracting", "Pull complete"] or \
        "Pull complete" == statuses[-1]
    ranges = [headers.get("Range") for method, path, headers in storage.seen]
    assert ranges == [None, "bytes=100000-"]  # resumed where the dropped connection stopped
    assert state["tokens"] == 1  # one token, reused for every request of the scope
    assert puller.metadata.sources[0].digest == sha(BLOB)
    registry.close()


def test_unknown_manifest_and_denied_scope_read_as_docker(world):
    _, registry_server, _, _ = world
    puller, registry = _puller(registry_server, [])
    with pytest.raises(RegistryError) as caught:
        puller.resolve("nothere", "x")
    assert (caught.value.message, caught.value.status) == ("manifest unknown: manifest unknown", 404)
    other = registry.repository(registry_server.host, "team/other", AuthConfig())
    with pytest.raises(RegistryError) as caught:
        other.with_fallback(lambda: other.resolve("v1"))
    assert caught.value.code == "DENIED"
    assert caught.value.message == "denied: requested access to the resource is denied"
    registry.close()


def test_a_corrupt_blob_fails_the_pull_and_keeps_nothing(world):
    state, registry_server, _, storage = world
    state["drop_once"] = False
    state["corrupt"] = True
    messages = []
    blobs, layers = MemoryBlobs(), MemoryLayers()
    puller, registry = _puller(registry_server, messages, blobs, layers)
    manifest, digest, media = puller.resolve("v1", "x")
    with pytest.raises(errors.BerthError) as caught:
        puller.pull(manifest, digest, media)
    assert caught.value.message == f"filesystem layer verification failed for digest {sha(BLOB)}"
    assert blobs.blobs == {} and layers.layers == {}
    registry.close()


def test_error_bodies_and_challenges():
    error = parse_error_body(404, b'{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}', [])
    assert (error.message, error.status) == ("name unknown: repository name not known to registry", 404)
    hub = parse_error_body(401, b'{"details":"incorrect username or password"}', [])
    assert hub.message == "unauthorized: incorrect username or password"
    stale = parse_error_body(401, b"", parse_challenges(['Bearer realm="r",error="invalid_token"']))
    assert stale.message == "unauthorized: authentication required"
    several = parse_error_body(400, b'{"errors":[{"code":"DIGEST_INVALID","message":"a"},{"code":"SIZE_INVALID","message":"b"}]}', [])
    assert several.message == "errors:\ndigest invalid: a\nsize invalid: b\n"


def test_unreachable_registry_reads_like_go():
    registry = Registry(RegistryOptions())
    repo = registry.repository("127.0.0.1:1", "x", AuthConfig())
    with pytest.raises(TransportError) as caught:
        repo.with_fallback(lambda: repo.resolve("latest"))
    assert caught.value.message == 'Get "http://127.0.0.1:1/v2/": dial tcp 127.0.0.1:1: connect: connection refused'


def test_endpoints_insecure_and_certs(tmp_path):
    endpoints = Endpoints(RegistryOptions(insecure_registries=["reg.example:5000", "10.0.0.0/8"],
                                          certs_dirs=(str(tmp_path),)))
    assert [e.base for e in endpoints.for_host("127.0.0.1:5000")] == ["https://127.0.0.1:5000",
                                                                      "http://127.0.0.1:5000"]
    assert not endpoints.for_host("127.0.0.1:5000")[0].verify
    assert [e.scheme for e in endpoints.for_host("reg.example:5000")] == ["https", "http"]
    assert [e.scheme for e in endpoints.for_host("10.1.2.3")] == ["https", "http"]
    host_dir = tmp_path / "127.0.0.1:5001"
    host_dir.mkdir()
    (host_dir / "ca.crt").write_text("x")
    secure = endpoints.for_host("127.0.0.1:5001")
    assert [(e.scheme, e.verify) for e in secure] == [("https", True)]  # a CA in certs.d: verified
    assert secure[0].ca_files == (str(host_dir / "ca.crt"),)
    (host_dir / "client.cert").write_text("x")
    with pytest.raises(errors.InvalidParameter, match="missing key client.key"):
        certs_for("127.0.0.1:5001", (str(tmp_path),))
    mirrors = Endpoints(RegistryOptions(registry_mirrors=["http://127.0.0.1:6000"]))
    hub = mirrors.for_domain("docker.io")
    assert hub[0] == Endpoint("http", "127.0.0.1:6000", False, True)
    assert hub[-1].host == "registry-1.docker.io"
    assert all(not e.mirror for e in mirrors.for_domain("docker.io", push=True))


def _static_registry(manifests):
    """A registry without auth serving ``manifests``: reference -> (content type, bytes)."""
    def handle(h):
        path = h.path.split("?")[0]
        if path == "/v2/":
            reply(h, 200, b"{}")
            return
        name = path.rsplit("/", 1)[-1]
        by_digest = {sha(data): key for key, (_, data) in manifests.items()}
        name = by_digest.get(name, name)
        if name in manifests:
            media, data = manifests[name]
            reply(h, 200, data, [("Content-Type", media), ("Docker-Content-Digest", sha(data))])
        else:
            reply(h, 404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}')
    return Server(handle)


def test_schema1_huge_and_malformed_manifests_fail_after_the_fetch():
    schema1 = json.dumps({"schemaVersion": 1, "name": "a/b", "tag": "old", "fsLayers": []}).encode()
    server = _static_registry({
        "old": (mt.DOCKER_SCHEMA1_SIGNED, schema1),
        "huge": (mt.DOCKER_MANIFEST, b" " * (4 << 20) + b"{}"),
        "broken": (mt.DOCKER_MANIFEST, b'{"schemaVersion": 2, "mediaType": "' + mt.DOCKER_MANIFEST.encode()
                   + b'", "config": {"digest": "md5:x"}}'),
    })
    registry = Registry(RegistryOptions())
    try:
        repo = registry.repository(server.host, "a/b", AuthConfig())
        puller = Puller(repo, MemoryBlobs(), MemoryLayers(), MemoryMetadata(), Transfers(),
                        lambda m: None, PullOptions())
        data, media, _ = puller.fetch("old")
        with pytest.raises(errors.InvalidParameter, match="schema 1 support has been removed"):
            puller.select(data, media, f"{server.host}/a/b:old")
        with pytest.raises(errors.InvalidParameter, match="manifest too large"):
            puller.fetch("huge")
        data, media, _ = puller.fetch("broken")
        with pytest.raises(errors.InvalidParameter, match="invalid digest"):
            puller.select(data, media, "x")
    finally:
        registry.close()
        server.stop()


def test_requests_go_through_the_environments_proxy(monkeypatch):
    """HTTP_PROXY from the daemon's environment: the proxy gets the absolute URL; NO_PROXY
    hosts are reached directly."""
    proxied = []

    def proxy_handle(h):
        proxied.append(h.path)
        reply(h, 200, b"{}", [("Docker-Distribution-API-Version", "registry/2.0")])
    proxy = Server(proxy_handle)
    try:
        monkeypatch.setenv("HTTP_PROXY", f"http://{proxy.host}")
        monkeypatch.setenv("http_proxy", f"http://{proxy.host}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        registry = Registry(RegistryOptions(insecure_registries=["registry.invalid:5000"]))
        endpoint = Endpoint("http", "registry.invalid:5000", verify=False)
        response = registry.transport.request(endpoint, "GET", "http://registry.invalid:5000/v2/", {})
        assert response.status == 200
        response.close()
        assert proxied == ["http://registry.invalid:5000/v2/"]
        monkeypatch.setenv("NO_PROXY", "registry.invalid")
        monkeypatch.setenv("no_proxy", "registry.invalid")
        with pytest.raises(TransportError, match="no such host"):
            registry.transport.request(endpoint, "GET", "http://registry.invalid:5000/v2/", {})
        registry.close()
    finally:
        proxy.stop()
