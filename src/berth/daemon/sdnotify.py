"""systemd's readiness protocol (sd_notify(3)): one datagram to ``$NOTIFY_SOCKET`` per change.

berthd.service is ``Type=notify``: systemd counts the daemon as started when it says
``READY=1`` (the API is served), and as going away when it says ``STOPPING=1``. The address
is a path or, with a leading ``@``, a socket in the abstract namespace.

The variable is taken out of the environment when it is read: the daemon's children (the shim
spawner, the shims, runc) must not see it. runc run with ``NOTIFY_SOCKET`` set passes the
socket into the container and waits for the container itself to say ``READY=1``.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import MutableMapping

log = logging.getLogger("berthd")
NOTIFY_SOCKET = "NOTIFY_SOCKET"


def socket_address(value: str) -> str | None:
    """The AF_UNIX address of a ``$NOTIFY_SOCKET`` value; None for one berthd cannot use."""
    if value.startswith("/"):
        return value
    if value.startswith("@") and len(value) > 1:
        return "\0" + value[1:]
    return None


class Notifier:
    """Tells systemd (when it started the daemon) how the daemon is doing."""

    def __init__(self, address: str | None):
        self.address = address

    @classmethod
    def from_environment(cls, environ: MutableMapping[str, str] = os.environ) -> "Notifier":
        """Takes ``$NOTIFY_SOCKET`` out of ``environ``: a notifier that does nothing without it."""
        value = environ.pop(NOTIFY_SOCKET, "")
        if not value:
            return cls(None)
        address = socket_address(value)
        if address is None:
            log.warning("NOTIFY_SOCKET=%s is neither a path nor an abstract socket (@name): "
                        "systemd will not hear that berthd is ready", value)
        return cls(address)

    def notify(self, *assignments: str) -> bool:
        """Send ``READY=1``, ``STOPPING=1``, ``STATUS=...`` in one datagram; True if sent."""
        if self.address is None:
            return False
        message = "\n".join(assignments).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(message, self.address)
        except OSError as exc:
            log.warning("telling systemd %s over NOTIFY_SOCKET failed: %s",
                        " ".join(assignments), exc)
            return False
        return True
