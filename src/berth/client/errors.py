"""Errors raised by ``berth.client``.

The texts follow the docker CLI's (users and scripts grep for them): a daemon error prints as
``Error response from daemon: <message>``, an unreachable daemon as
``Cannot connect to the Docker daemon at <host>. Is the docker daemon running?``.
"""

from __future__ import annotations


class ClientError(Exception):
    """Base class of every error this package raises."""


class APIError(ClientError):
    """The daemon answered with a status >= 400. ``message`` is the daemon's own text."""

    def __init__(self, status: int, message: str, *, reason: str = "", url: str = ""):
        self.status = status
        self.message = message
        self.reason = reason
        self.url = url
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"Error response from daemon: {self.message}"

    # docker-py names, so code written against it reads naturally
    @property
    def status_code(self) -> int:
        return self.status

    @property
    def explanation(self) -> str:
        return self.message


class BadRequest(APIError):
    pass


class NotFound(APIError):
    pass


class ImageNotFound(NotFound):
    pass


class Conflict(APIError):
    pass


class ServerError(APIError):
    pass


def api_error(status: int, message: str, *, reason: str = "", url: str = "") -> APIError:
    """The most specific APIError subclass for a status (docker-py's mapping)."""
    cls: type[APIError] = APIError
    if status == 404:
        cls = ImageNotFound if "no such image" in message.lower() else NotFound
    elif status == 409:
        cls = Conflict
    elif status == 400:
        cls = BadRequest
    elif status >= 500:
        cls = ServerError
    return cls(status, message, reason=reason, url=url)


class InvalidArgument(ClientError):
    """A request refused before it was sent (an empty ID, a bad reference); docker's text."""


class DaemonConnectionError(ClientError):
    """The daemon could not be reached (refused, missing socket, ssh failed, ...)."""

    def __init__(self, message: str, host: str = ""):
        self.host = host
        super().__init__(message)


class TLSError(DaemonConnectionError):
    """The TLS handshake or TLS configuration failed."""


class InvalidHost(ClientError):
    """A daemon address (DOCKER_HOST, -H, context endpoint) could not be parsed."""


class StreamError(ClientError):
    """A streaming response carried an error after its 200 (``{"error": ...}`` line)."""

    def __init__(self, message: str, detail: dict | None = None):
        self.message = message
        self.detail = detail or {}
        super().__init__(message)


class ContextError(ClientError):
    """A context store or config.json problem; the text is docker's."""


class ContextNotFound(ContextError):
    pass


def connection_failed(host: str) -> DaemonConnectionError:
    if not host:
        return DaemonConnectionError(
            "Cannot connect to the Docker daemon. Is the docker daemon running on this host?"
        )
    return DaemonConnectionError(
        f"Cannot connect to the Docker daemon at {host}. Is the docker daemon running?", host
    )
