"""The ``X-Registry-Auth`` header for pull/push: the credentials docker would use for the
image's registry (``config.json`` ``auths`` or a ``docker-credential-*`` helper), as
base64url-encoded JSON (``e30=`` -- ``{}`` -- when there are none)."""

from __future__ import annotations

from typing import Any, Mapping

from berth.client.credentials import INDEX_SERVER, CredentialsError, Credentials, encode_header, get
from berth.client.credentials import registry_key as _registry_key

__all__ = ["INDEX_SERVER", "encode_auth", "registry_key"]


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
