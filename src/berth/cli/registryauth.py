"""The ``X-Registry-Auth`` header for pull/push: the credentials docker would use for the
image's registry (``config.json`` ``auths`` or a ``docker-credential-*`` helper), as
base64url-encoded JSON (``e30=`` -- ``{}`` -- when there are none)."""

from __future__ import annotations

import base64
import json
from typing import Any, Mapping

from berth.client.credentials import INDEX_SERVER, CredentialsError, Credentials, encode_header, get
from berth.client.credentials import registry_key as _registry_key

__all__ = ["INDEX_SERVER", "build_config", "encode_auth", "registry_key"]


def registry_key(domain: str) -> str:
    """The auths key docker looks up: Docker Hub's index URL, else the registry host."""
    return _registry_key(domain)


def encode_auth(config: Mapping[str, Any], domain: str) -> str:
    key = registry_key(domain)
    try:
        creds = get(config, key)
    except (CredentialsError, ValueError):
        creds = Credentials()
    if not (creds.username or creds.password or creds.identity_token):
        creds = Credentials()
    return encode_header(creds)


def build_config(config: Mapping[str, Any]) -> str:
    """``X-Registry-Config`` for a build: the credentials of every registry the config names
    (its ``auths`` and ``credHelpers``, through the helpers as docker's GetAllCredentials),
    as a base64url JSON map of server address to auth config."""
    keys = list(config.get("auths") or {}) + list(config.get("credHelpers") or {})
    out: dict[str, dict[str, str]] = {}
    for key in dict.fromkeys(keys):
        try:
            creds = get(config, key)
        except (CredentialsError, ValueError):
            continue
        item = creds.auth_config()
        item.setdefault("serveraddress", key)
        out[key] = item
    return base64.urlsafe_b64encode(json.dumps(out, separators=(",", ":")).encode()).decode()
