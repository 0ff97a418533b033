"""Registry credentials as clients send them: the ``X-Registry-Auth`` header (JSON in
URL-safe base64, padding optional) and the body of ``POST /auth`` (plain JSON). Decoded
here, at the edge, into ``distribution.auth.AuthConfig``."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from berth.distribution.auth import AuthConfig
from berth.errors import InvalidParameter

HEADER = "x-registry-auth"


def decode_header(value: str | None) -> AuthConfig:
    """moby's DecodeAuthConfig: empty means anonymous; anything else must decode."""
    if not value:
        return AuthConfig()
    text = value.strip()
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        document = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise InvalidParameter(f"invalid X-Registry-Auth header: {exc}") from None
    if document is None:
        return AuthConfig()
    if not isinstance(document, dict):
        raise InvalidParameter("invalid X-Registry-Auth header: not a JSON object")
    return AuthConfig.from_json(document)


def decode_lenient(value: str | None) -> AuthConfig:
    """For search: a header that does not decode counts as none (moby ignores it there)."""
    try:
        return decode_header(value)
    except InvalidParameter:
        return AuthConfig()


def from_body(document: Any) -> AuthConfig:
    if not isinstance(document, dict):
        raise InvalidParameter("invalid auth configuration: not a JSON object")
    return AuthConfig.from_json(document)
