"""Waiting for a container to exit or to be removed (``docker wait``, stop, restart...).

One event per container for its current (or next) run, set when that run has ended, and one
for its removal. The lifecycle sets them; anyone may wait.
"""

from __future__ import annotations

import asyncio

from berth.engine.containers.record import Container


class ExitWaits:
    def __init__(self) -> None:
        self._exited: dict[str, asyncio.Event] = {}
        self._removed: dict[str, asyncio.Event] = {}

    def next_exit(self, container_id: str) -> asyncio.Event:
        """The event set when the current (or next) run ends."""
        event = self._exited.get(container_id)
        if event is None or event.is_set():
            event = self._exited[container_id] = asyncio.Event()
        return event

    def current_exit(self, container_id: str) -> asyncio.Event | None:
        return self._exited.get(container_id)

    def exited(self, container_id: str) -> None:
        """The run has ended: wake whoever waits for it."""
        event = self._exited.get(container_id)
        if event is not None:
            event.set()

    async def wait_exit(self, container: Container, timeout: float | None) -> bool:
        """True once the container has stopped (False if ``timeout`` ran out first)."""
        event = self._exited.get(container.id)
        if not container.running or event is None:
            return True
        try:
            await asyncio.wait_for(event.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False

    def removal_awaited(self, container_id: str) -> bool:
        """Does anyone wait for the container's removal (``docker run --rm``)?"""
        return container_id in self._removed

    def removal(self, container_id: str) -> asyncio.Event:
        return self._removed.setdefault(container_id, asyncio.Event())

    def removed(self, container_id: str) -> None:
        """The container is gone: wake removal waiters, forget its exit event (a wait
        registered before holds its own reference)."""
        self._exited.pop(container_id, None)
        event = self._removed.pop(container_id, None)
        if event is not None:
            event.set()
