"""Registry credentials in Docker's client formats: ``auths`` in ``config.json`` (``auth`` is
base64 of ``user:password``; ``identitytoken`` when the registry gave one) or a
``docker-credential-<helper>`` program (``credsStore``, or ``credHelpers`` per registry),
spoken to as the docker CLI does: ``store`` / ``get`` / ``erase`` with JSON on stdin.

Docker Hub's key is ``https://index.docker.io/v1/``; another registry's is its host[:port].
A helper stores an identity token under the user name ``<token>``.
"""

from __future__ import annotations

import base64
import json
import subprocess
from dataclasses import dataclass
from typing import Any, Mapping

INDEX_SERVER = "https://index.docker.io/v1/"
TOKEN_USERNAME = "<token>"


class CredentialsError(Exception):
    pass


@dataclass
class Credentials:
    username: str = ""
    password: str = ""
    server_address: str = ""
    identity_token: str = ""

    def auth_config(self) -> dict[str, str]:
        """The AuthConfig JSON of X-Registry-Auth and POST /auth (empty fields left out)."""
        out = {}
        if self.username:
            out["username"] = self.username
        if self.password:
            out["password"] = self.password
        if self.server_address:
            out["serveraddress"] = self.server_address
        if self.identity_token:
            out["identitytoken"] = self.identity_token
        return out


def convert_to_hostname(address: str) -> str:
    """docker's credentials.ConvertToHostname: scheme and path dropped."""
    text = address
    if "://" in text:
        text = text.split("://", 1)[1]
    return text.split("/", 1)[0]


def registry_key(domain_or_address: str) -> str:
    if domain_or_address in ("", "docker.io", "index.docker.io", "registry-1.docker.io") or \
            domain_or_address.rstrip("/") == INDEX_SERVER.rstrip("/"):
        return INDEX_SERVER
    return convert_to_hostname(domain_or_address)


def helper_for(config: Mapping[str, Any], key: str) -> str:
    helpers = config.get("credHelpers") or {}
    if isinstance(helpers, dict):
        host = convert_to_hostname(key) if key != INDEX_SERVER else key
        for candidate in (key, host):
            if candidate in helpers and helpers[candidate]:
                return str(helpers[candidate])
    return str(config.get("credsStore") or "")


def _run_helper(helper: str, action: str, payload: str) -> str:
    program = f"docker-credential-{helper}"
    try:
        done = subprocess.run([program, action], input=payload, capture_output=True, text=True,
                              timeout=60)
    except FileNotFoundError:
        raise CredentialsError(f'exec: "{program}": executable file not found in $PATH') from None
    if done.returncode != 0:
        message = (done.stdout or done.stderr).strip()
        raise CredentialsError(message or f"{program} {action} failed")
    return done.stdout


def _find_file_entry(auths: Mapping[str, Any], key: str) -> tuple[str, dict] | None:
    if key in auths and isinstance(auths[key], dict):
        return key, auths[key]
    for candidate, entry in auths.items():
        if isinstance(entry, dict) and convert_to_hostname(candidate) == convert_to_hostname(key):
            return candidate, entry
    return None


def get(config: Mapping[str, Any], key: str) -> Credentials:
    """What is stored for ``key`` (empty Credentials when nothing is)."""
    helper = helper_for(config, key)
    if helper:
        try:
            out = _run_helper(helper, "get", key)
        except CredentialsError as exc:
            if "credentials not found" in str(exc).lower():
                return Credentials(server_address=key)
            raise
        document = json.loads(out or "{}")
        username, secret = document.get("Username", ""), document.get("Secret", "")
        if username == TOKEN_USERNAME:
            return Credentials(server_address=key, identity_token=secret)
        return Credentials(username, secret, key)
    found = _find_file_entry(config.get("auths") or {}, key)
    if found is None:
        return Credentials(server_address=key)
    address, entry = found
    username, password = entry.get("username", ""), entry.get("password", "")
    if entry.get("auth"):
        try:
            username, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            pass
    return Credentials(username, password, address, entry.get("identitytoken", ""))


def store(config: dict[str, Any], key: str, creds: Credentials) -> bool:
    """Keep ``creds`` for ``key``; returns True when they went into config.json itself
    (the caller saves the file and warns, as docker does)."""
    helper = helper_for(config, key)
    if helper:
        username, secret = creds.username, creds.password
        if creds.identity_token:
            username, secret = TOKEN_USERNAME, creds.identity_token
        _run_helper(helper, "store", json.dumps({"ServerURL": key, "Username": username,
                                                 "Secret": secret}))
        config.setdefault("auths", {})[key] = {}
        return False
    password = "" if creds.identity_token else creds.password
    entry: dict[str, str] = {"auth": base64.b64encode(f"{creds.username}:{password}".encode()).decode()}
    if creds.identity_token:
        entry["identitytoken"] = creds.identity_token
    config.setdefault("auths", {})[key] = entry
    return True


def erase(config: dict[str, Any], key: str) -> None:
    helper = helper_for(config, key)
    if helper:
        try:
            _run_helper(helper, "erase", key)
        except CredentialsError as exc:
            if "not found" not in str(exc).lower():
                raise
    auths = config.get("auths")
    if isinstance(auths, dict):
        auths.pop(key, None)


def encode_header(creds: Credentials) -> str:
    """X-Registry-Auth: the AuthConfig JSON in URL-safe base64 (``e30=`` for none)."""
    return base64.urlsafe_b64encode(json.dumps(creds.auth_config(), separators=(",", ":")).encode()).decode()
