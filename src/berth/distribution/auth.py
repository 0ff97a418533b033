"""Registry authentication: Docker's ``AuthConfig``, ``WWW-Authenticate`` challenges, HTTP
basic credentials and Bearer tokens with scopes (the token flow of Docker Hub, GHCR and
distribution's ``auth: token``), anonymous tokens, refresh (identity) tokens, a token cache.

Token requests follow distribution's client: ``GET <realm>?service=..&scope=..`` with basic
credentials when there are any (none: an anonymous token), or, with an identity token,
``POST <realm>`` (``grant_type=refresh_token``). A login asks for an offline token
(``offline_token=true&client_id=docker``) so the registry may hand back a refresh token,
which becomes the ``IdentityToken`` clients store instead of the password.

The HTTP exchange itself is the caller's (``registry``): this module only builds requests
and reads answers, so it is tested without sockets.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

CLIENT_ID = "docker"
MIN_TOKEN_LIFETIME = 60  # seconds, as distribution's client assumes


@dataclass(frozen=True)
class AuthConfig:
    """What a client sends in ``X-Registry-Auth`` or ``POST /auth`` (Docker's AuthConfig)."""

    username: str = ""
    password: str = ""
    server_address: str = ""
    identity_token: str = ""
    registry_token: str = ""
    email: str = ""

    @classmethod
    def from_json(cls, value: Any) -> "AuthConfig":
        if not isinstance(value, dict):
            return cls()
        username = str(value.get("username") or "")
        password = str(value.get("password") or "")
        encoded = value.get("auth") or ""
        if encoded and not username:
            try:
                username, _, password = base64.b64decode(encoded).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                pass
        return cls(username, password, str(value.get("serveraddress") or ""),
                   str(value.get("identitytoken") or ""), str(value.get("registrytoken") or ""),
                   str(value.get("email") or ""))

    @property
    def empty(self) -> bool:
        return not (self.username or self.password or self.identity_token or self.registry_token)


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lower case: "basic", "bearer"
    params: dict[str, str] = field(default_factory=dict, hash=False)


def _tokens(header: str) -> list[tuple[str, str | None]]:
    """Split a challenge header into (name, value) items: value None for a bare word."""
    items: list[tuple[str, str | None]] = []
    i, n = 0, len(header)
    while i < n:
        while i < n and header[i] in " \t,":
            i += 1
        start = i
        while i < n and header[i] not in " \t,=":
            i += 1
        name = header[start:i]
        if not name:
            i += 1
            continue
        j = i
        while j < n and header[j] in " \t":
            j += 1
        if j < n and header[j] == "=":
            j += 1
            while j < n and header[j] in " \t":
                j += 1
            if j < n and header[j] == '"':
                j += 1
                value = []
                while j < n and header[j] != '"':
                    if header[j] == "\\" and j + 1 < n:
                        j += 1
                    value.append(header[j])
                    j += 1
                items.append((name, "".join(value)))
                i = j + 1
            else:
                start = j
                while j < n and header[j] not in " \t,":
                    j += 1
                items.append((name, header[start:j]))
                i = j
        else:
            items.append((name, None))
            i = j
    return items


def parse_challenges(headers: list[str]) -> list[Challenge]:
    """Every challenge of the ``WWW-Authenticate`` headers (one header may hold several)."""
    challenges: list[Challenge] = []
    for header in headers:
        current: Challenge | None = None
        for name, value in _tokens(header):
            if value is None:
                current = Challenge(name.lower(), {})
                challenges.append(current)
            elif current is not None:
                current.params[name.lower()] = value
    return challenges


def repository_scope(name: str, actions: tuple[str, ...]) -> str:
    return f"repository:{name}:{','.join(actions)}"


def basic_header(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


@dataclass(frozen=True)
class TokenRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None = None


def token_request(challenge: Challenge, scopes: list[str], auth: AuthConfig,
                  offline: bool = False) -> TokenRequest:
    """The request that fetches a Bearer token for ``scopes`` from ``challenge``'s realm."""
    realm = challenge.params.get("realm", "")
    service = challenge.params.get("service", "")
    if auth.identity_token:
        form = {"grant_type": "refresh_token", "refresh_token": auth.identity_token,
                "client_id": CLIENT_ID, "access_type": "offline" if offline else "online"}
        if service:
            form["service"] = service
        if scopes:
            form["scope"] = " ".join(scopes)
        return TokenRequest("POST", realm, {"Content-Type": "application/x-www-form-urlencoded"},
                            urlencode(form).encode())
    query: list[tuple[str, str]] = []
    headers: dict[str, str] = {}
    if auth.username:
        query.append(("account", auth.username))
        headers["Authorization"] = basic_header(auth.username, auth.password)
    if offline:
        query += [("client_id", CLIENT_ID), ("offline_token", "true")]
    if service:
        query.append(("service", service))
    query += [("scope", scope) for scope in scopes]
    separator = "&" if "?" in realm else "?"
    return TokenRequest("GET", realm + (separator + urlencode(query) if query else ""), headers)


@dataclass(frozen=True)
class Token:
    token: str
    expires_at: float
    refresh_token: str = ""


def parse_token_response(body: bytes, now: float | None = None) -> Token:
    """``{"token"|"access_token", "expires_in", "refresh_token"}``; at least a minute."""
    document = json.loads(body)
    if not isinstance(document, dict):
        raise ValueError("token response is not a JSON object")
    token = document.get("access_token") or document.get("token") or ""
    if not isinstance(token, str) or not token:
        raise ValueError("authorization server did not include a token in the response")
    expires = document.get("expires_in")
    lifetime = expires if isinstance(expires, (int, float)) and expires > MIN_TOKEN_LIFETIME \
        else MIN_TOKEN_LIFETIME
    return Token(token, (time.time() if now is None else now) + lifetime,
                 str(document.get("refresh_token") or ""))


class TokenCache:
    """Tokens by (realm, service, scopes, account): reused until a few seconds before they
    expire, shared by every pull and push of the daemon."""

    def __init__(self, margin: float = 5.0):
        self._lock = threading.Lock()
        self._tokens: dict[tuple[str, ...], Token] = {}
        self._margin = margin

    @staticmethod
    def key(challenge: Challenge, scopes: list[str], auth: AuthConfig) -> tuple[str, ...]:
        secret = auth.identity_token or auth.password
        return (challenge.params.get("realm", ""), challenge.params.get("service", ""),
                " ".join(sorted(scopes)), auth.username, str(hash(secret)))

    def get(self, key: tuple[str, ...]) -> Token | None:
        with self._lock:
            token = self._tokens.get(key)
            if token is None or token.expires_at - self._margin <= time.time():
                self._tokens.pop(key, None)
                return None
            return token

    def put(self, key: tuple[str, ...], token: Token) -> None:
        with self._lock:
            if len(self._tokens) > 1000:
                now = time.time()
                self._tokens = {k: t for k, t in self._tokens.items() if t.expires_at > now}
            self._tokens[key] = token

    def drop(self, key: tuple[str, ...]) -> None:
        with self._lock:
            self._tokens.pop(key, None)
