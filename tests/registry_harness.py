"""Test registries: Debian's ``docker-registry`` (CNCF distribution 2.8) on 127.0.0.1 in four
setups, and the small servers that go with them.

- ``plain``: HTTP (127.0.0.0/8 is insecure by default, as in Docker);
- ``tls``: HTTPS with a certificate from a CA of the test's own (``trustme``); the daemon
  trusts it through ``<certs_root>/<host:port>/ca.crt`` (``BERTH_CERTS_DIRS``);
- ``basic``: htpasswd (bcrypt) basic auth;
- ``token``: ``auth: token`` with a token server of the test's own (``TokenServer``): RS256
  JWTs with an ``x5c`` chain whose root is the registry's ``rootcertbundle``, the Bearer flow
  of Docker Hub and GHCR (anonymous tokens for ``public/*``, refresh tokens for logins).

Everything listens on 127.0.0.1, lives in a temp directory and is stopped by ``stop()``.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

REGISTRY_BIN = shutil.which("docker-registry") or "/usr/bin/docker-registry"
USER, PASSWORD = "berth", "s3cret-pass"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, process: subprocess.Popen | None = None, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"registry exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def bcrypt_entry(user: str, password: str) -> str:
    htpasswd = shutil.which("htpasswd")
    if htpasswd:
        out = subprocess.run([htpasswd, "-Bbn", user, password], capture_output=True, text=True,
                             check=True).stdout
        return out.strip() + "\n"
    import bcrypt  # the test extra's fallback
    return f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()}\n"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """A Docker-style token server: ``GET /token?service=&scope=&account=`` with optional
    basic credentials, ``POST /token`` with a refresh token."""

    def __init__(self, root: str, service: str, issuer: str, users: dict[str, str]):
        import trustme
        from cryptography.hazmat.primitives import serialization

        self.ca = trustme.CA(key_type=trustme.KeyType.RSA)
        leaf = self.ca.issue_cert("token-signer.test", key_type=trustme.KeyType.RSA)
        self.key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), None)
        from cryptography import x509
        cert = x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes())
        self.x5c = [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()]
        self.bundle = os.path.join(root, "token-root.pem")
        self.ca.cert_pem.write_to_path(self.bundle)
        self.service, self.issuer, self.users = service, issuer, users
        self.refresh: dict[str, str] = {}
        self.requests: list[dict] = []
        self.port = free_port()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _answer(self, status: int, document: dict) -> None:
                body = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                query = parse_qs(urlsplit(self.path).query)
                account = None
                header = self.headers.get("Authorization", "")
                if header.startswith("Basic "):
                    user, _, password = base64.b64decode(header[6:]).decode().partition(":")
                    if server.users.get(user) != password:
                        self._answer(401, {"details": "incorrect username or password"})
                        return
                    account = user
                server.requests.append({"method": "GET", "account": account,
                                        "scope": query.get("scope", [])})
                document = server.issue(account, query.get("scope", []))
                if account and query.get("offline_token") == ["true"]:
                    token = uuid.uuid4().hex
                    server.refresh[token] = account
                    document["refresh_token"] = token
                self._answer(200, document)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                account = server.refresh.get((form.get("refresh_token") or [""])[0])
                server.requests.append({"method": "POST", "account": account,
                                        "scope": (form.get("scope") or [""])[0].split()})
                if form.get("grant_type") != ["refresh_token"] or account is None:
                    self._answer(401, {"details": "invalid refresh token"})
                    return
                document = server.issue(account, (form.get("scope") or [""])[0].split())
                document["access_token"] = document.pop("token")
                self._answer(200, document)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    def allowed(self, account: str | None, name: str, actions: list[str]) -> list[str]:
        if account:
            return actions
        return [a for a in actions if a == "pull"] if name.startswith("public/") else []

    def issue(self, account: str | None, scopes: list[str]) -> dict:
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            granted = self.allowed(account, name, actions.split(",")) if kind == "repository" else []
            access.append({"type": kind, "name": name, "actions": granted})
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": account or "", "aud": self.service, "exp": now + 300,
                  "nbf": now - 10, "iat": now, "jti": uuid.uuid4().hex, "access": access}
        header = {"typ": "JWT", "alg": "RS256", "x5c": self.x5c}
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return {"token": f"{signing_input}.{_b64url(signature)}", "expires_in": 300,
                "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))}

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@dataclass
class Registry:
    kind: str
    root: str
    port: int
    process: subprocess.Popen
    certs_root: str = ""          # BERTH_CERTS_DIRS for the daemon (tls)
    ca_pem: bytes = b""
    token_server: TokenServer | None = None
    extra: list = field(default_factory=list)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.kind == 'tls' else 'http'}://{self.host}"

    def log(self) -> str:
        try:
            with open(os.path.join(self.root, "registry.log"), encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def requests(self, method: str, uri: str) -> int:
        """How many requests the access log shows (``"GET /v2/x/blobs/sha256:.. HTTP/1.1"``)."""
        needle = f'"{method} {uri} HTTP/'
        return sum(line.count(needle) for line in self.log().splitlines())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.token_server is not None:
            self.token_server.stop()
        for extra in self.extra:
            extra.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def kill(self) -> None:
        """Stop the registry abruptly (a registry that dies mid-pull)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def restart(self) -> None:
        self.kill()
        self.process = _spawn(self.root, self.port)


def _spawn(root: str, port: int) -> subprocess.Popen:
    log = open(os.path.join(root, "registry.log"), "ab")
    try:
        process = subprocess.Popen([REGISTRY_BIN, "serve", os.path.join(root, "config.yml")],
                                   stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    finally:
        log.close()
    wait_port(port, process)
    return process


def start_registry(kind: str = "plain", port: int | None = None) -> Registry:
    """A registry of the given ``kind`` (plain, tls, basic, token), listening and ready."""
    root = tempfile.mkdtemp(prefix=f"berth-registry-{kind}-")
    port = port or free_port()
    lines = ["version: 0.1", "log:", "  level: info", "  accesslog:", "    disabled: false",
             "storage:", "  filesystem:", f"    rootdirectory: {root}/data", "  delete:",
             "    enabled: true", "validation:", "  manifests:", "    urls:", "      allow:",
             "        - ^https?://127\\.0\\.0\\.1[:/]",  # foreign layers served by the tests
             "http:", f"  addr: 127.0.0.1:{port}", "  secret: berth-test"]
    registry_extra: dict = {}
    if kind == "tls":
        import trustme
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        cert.private_key_pem.write_to_path(os.path.join(root, "server.key"))
        cert.cert_chain_pems[0].write_to_path(os.path.join(root, "server.crt"))
        certs_root = os.path.join(root, "certs.d")
        os.makedirs(os.path.join(certs_root, f"127.0.0.1:{port}"))
        ca.cert_pem.write_to_path(os.path.join(certs_root, f"127.0.0.1:{port}", "ca.crt"))
        lines += ["  tls:", f"    certificate: {root}/server.crt", f"    key: {root}/server.key"]
        registry_extra.update(certs_root=certs_root, ca_pem=ca.cert_pem.bytes())
    elif kind == "basic":
        with open(os.path.join(root, "htpasswd"), "w", encoding="utf-8") as handle:
            handle.write(bcrypt_entry(USER, PASSWORD))
        lines += ["auth:", "  htpasswd:", "    realm: berth-test-realm", f"    path: {root}/htpasswd"]
    elif kind == "token":
        server = TokenServer(root, "berth-registry", "berth-token-issuer", {USER: PASSWORD})
        registry_extra["token_server"] = server
        lines += ["auth:", "  token:", f"    realm: {server.realm}", "    service: berth-registry",
                  "    issuer: berth-token-issuer", f"    rootcertbundle: {server.bundle}"]
    elif kind != "plain":
        raise ValueError(kind)
    with open(os.path.join(root, "config.yml"), "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    try:
        process = _spawn(root, port)
    except BaseException:
        if registry_extra.get("token_server"):
            registry_extra["token_server"].stop()
        shutil.rmtree(root, ignore_errors=True)
        raise
    return Registry(kind, root, port, process, **registry_extra)


class SearchServer:
    """Docker Hub's search API (``/v1/search``) over plain HTTP, with fixed results."""

    def __init__(self, results: list[dict]):
        self.results = results
        self.port = free_port()
        self.queries: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                if parts.path == "/v1/_ping":
                    body = b"true"
                elif parts.path == "/v1/search":
                    server.queries.append(query)
                    term = query.get("q", [""])[0]
                    limit = int(query.get("n", ["25"])[0])
                    found = [r for r in server.results if term in r["name"]][:limit]
                    body = json.dumps({"num_results": len(found), "query": term,
                                       "results": found}).encode()
                else:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
