"""The ``X-Registry-Auth`` header for pull/push: credentials from config.json for the image's
registry, base64url-encoded JSON (``e30=`` -- ``{}`` -- when there are none), as docker sends."""

from __future__ import annotations

import base64
import json
from typing import Any, Mapping

INDEX_SERVER = "https://index.docker.io/v1/"


def registry_key(domain: str) -> str:
    """The auths key docker looks up: Docker Hub's index URL, else the registry host."""
    return INDEX_SERVER if domain in ("docker.io", "index.docker.io", "") else domain


def _find(auths: Mapping[str, Any], key: str) -> tuple[str, dict] | None:
    if key in auths:
        return key, auths[key]
    for candidate, entry in auths.items():
        host = candidate.split("://", 1)[-1].split("/", 1)[0]
        if host == key:
            return candidate, entry
    return None


def encode_auth(config: Mapping[str, Any], domain: str) -> str:
    key = registry_key(domain)
    found = _find(config.get("auths") or {}, key)
    data: dict[str, str] = {}
    if found is not None:
        address, entry = found
        if isinstance(entry, dict):
            user, password = entry.get("username", ""), entry.get("password", "")
            if entry.get("auth"):
                try:
                    user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
                except (ValueError, UnicodeDecodeError):
                    pass
            if user:
                data["username"] = user
            if password:
                data["password"] = password
            data["serveraddress"] = address
            if entry.get("identitytoken"):
                data["identitytoken"] = entry["identitytoken"]
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode()


def build_config(config: Mapping[str, Any]) -> str:
    """``X-Registry-Config`` for a build: every configured registry's credentials, as a
    base64url JSON map of server address to auth config (docker's GetAllCredentials)."""
    out: dict[str, dict[str, str]] = {}
    for address, entry in (config.get("auths") or {}).items():
        if not isinstance(entry, dict):
            continue
        user, password = entry.get("username", ""), entry.get("password", "")
        if entry.get("auth"):
            try:
                user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                pass
        item = {"serveraddress": address}
        if user:
            item["username"] = user
        if password:
            item["password"] = password
        if entry.get("identitytoken"):
            item["identitytoken"] = entry["identitytoken"]
        out[address] = item
    return base64.urlsafe_b64encode(json.dumps(out, separators=(",", ":")).encode()).decode()
