"""berth.client: a Python SDK for the Docker Engine API (berthd or dockerd).

    from berth.client import APIClient
    with APIClient.from_env() as c:          # DOCKER_HOST / contexts, like the docker CLI
        print(c.version()["Version"])
        for event in c.events(since="10m", until="0s", filters={"type": ["container"]}):
            ...

Modules: ``api`` (APIClient), ``transport`` (unix/tcp/TLS/ssh connections), ``contexts``
(docker's context store), ``config`` (config.json), ``errors``, ``hijack``, ``response``.
Names are imported lazily so that ``import berth.client.contexts`` stays cheap (the CLI's
context commands do not need HTTP at all).
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "APIClient": "berth.client.api",
    "PingResult": "berth.client.api",
    "TLSConfig": "berth.client.tlsconfig",
    "Endpoint": "berth.client.contexts",
    "ClientOptions": "berth.client.contexts",
    "resolve_endpoint": "berth.client.contexts",
    "APIError": "berth.client.errors",
    "NotFound": "berth.client.errors",
    "Conflict": "berth.client.errors",
    "DaemonConnectionError": "berth.client.errors",
    "TLSError": "berth.client.errors",
    "HijackedSocket": "berth.client.hijack",
    "DEFAULT_HOST": "berth.client.hosts",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'berth.client' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
