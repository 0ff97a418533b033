"""Names for completion: from the daemon, never waiting long, and from the context store.

Each daemon request runs in a worker thread that the caller waits for until a deadline
(``BERTH_COMPLETION_TIMEOUT`` seconds, default 2, for all requests of one completion
together); the socket gets the same timeout. A daemon that is down, slow or answers an
error gives empty lists, and is not asked again in the same completion.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Callable, Sequence

TIMEOUT_ENV = "BERTH_COMPLETION_TIMEOUT"
DEFAULT_TIMEOUT = 2.0


def completion_timeout() -> float:
    try:
        value = float(os.environ.get(TIMEOUT_ENV, ""))
    except ValueError:
        return DEFAULT_TIMEOUT
    return value if value > 0 else DEFAULT_TIMEOUT


class DaemonNames:
    """The daemon's containers, images, networks and volumes, its info, and the contexts."""

    def __init__(self, options: Any, timeout: float | None = None):
        self.options = options  # berth.client.contexts.ClientOptions
        self.timeout = completion_timeout() if timeout is None else timeout
        self._deadline: float | None = None
        self._cache: dict[Any, Any] = {}
        self._client: Any = None
        self._down = False

    @classmethod
    def from_global_flags(cls, words: Sequence[str]) -> "DaemonNames":
        """The daemon that ``berth <words> COMMAND`` talks to (-H, --context, TLS flags, the
        environment); bad flags are ignored."""
        from berth.cli.app import client_options, global_flags
        from berth.cli.flags import FlagError

        flags = global_flags()
        try:
            ns, _, _ = flags.parse(list(words))
        except FlagError:
            ns, _, _ = flags.parse([])
        return cls(client_options(ns))

    # -- the daemon -----------------------------------------------------------------------------
    def containers(self, all: bool = True) -> list[dict]:
        return self._ask(("containers", all), lambda c: c.containers(all=all)) or []

    def images(self) -> list[dict]:
        return self._ask("images", lambda c: c.images()) or []

    def networks(self) -> list[dict]:
        return self._ask("networks", lambda c: c.networks()) or []

    def volumes(self) -> list[dict]:
        return (self._ask("volumes", lambda c: c.volumes()) or {}).get("Volumes") or []

    def info(self) -> dict | None:
        return self._ask("info", lambda c: c.info())

    def _ask(self, key: Any, call: Callable[[Any], Any]) -> Any:
        if key in self._cache:
            return self._cache[key]
        if self._down:
            return None
        if self._deadline is None:
            self._deadline = time.monotonic() + self.timeout
        result = _within(self._deadline, lambda: call(self._connected()))
        if result is None:
            self._down = True
        self._cache[key] = result
        return result

    def _connected(self) -> Any:
        if self._client is None:
            from berth.cli.state import Cli

            from berth.client.api import APIClient

            endpoint = Cli(self.options).endpoint()
            self._client = APIClient.from_endpoint(endpoint, timeout=self.timeout)
        return self._client

    # -- the context store ----------------------------------------------------------------------
    def contexts(self) -> tuple[list[str], str]:
        """The context names (``default`` first) and the current one; no daemon involved."""
        from berth.client.config import ConfigFile
        from berth.client.contexts import DEFAULT_CONTEXT, ContextStore, resolve_context_name

        names = [DEFAULT_CONTEXT]
        try:
            names += [c.name for c in ContextStore(self.options.directory).list() if c.name != DEFAULT_CONTEXT]
        except Exception:
            pass
        try:
            current = resolve_context_name(self.options, ConfigFile.load(self.options.directory))
        except Exception:
            current = ""
        return names, current


def _within(deadline: float, call: Callable[[], Any]) -> Any:
    """``call()`` in a daemon thread; None if it fails or is not done by the deadline (the
    thread is then left behind: the process ends soon)."""
    box: list[Any] = []

    def run() -> None:
        try:
            box.append(call())
        except Exception:
            pass

    thread = threading.Thread(target=run, name="completion-names", daemon=True)
    thread.start()
    thread.join(max(0.0, deadline - time.monotonic()))
    return box[0] if box else None
