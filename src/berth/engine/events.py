"""The in-daemon event bus behind ``GET /events``. Every engine mutation publishes here."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from typing import AsyncIterator

HISTORY = 1024  # events kept for `since` queries (dockerd keeps 256)


@dataclass
class Event:
    type: str
    action: str
    actor_id: str
    attributes: dict[str, str] = field(default_factory=dict)
    scope: str = "local"
    time_nano: int = field(default_factory=time.time_ns)

    def to_json(self) -> dict:
        """moby's events.Message, in its field order: the pre-1.22 ``status``, ``id`` and
        ``from`` (containers and images only; the docker CLI still prints them) come first."""
        data: dict = {}
        if self.type in ("container", "image"):
            data["status"] = self.action
            data["id"] = self.actor_id
            if "image" in self.attributes:
                data["from"] = self.attributes["image"]
        data.update({
            "Type": self.type,
            "Action": self.action,
            "Actor": {"ID": self.actor_id, "Attributes": dict(self.attributes)},
            "scope": self.scope,
            "time": self.time_nano // 1_000_000_000,
            "timeNano": self.time_nano,
        })
        return data


class EventFilter:
    """Docker's event filters: type, event/action, container, image, network, volume, label..."""

    def __init__(self, filters: dict[str, list[str]]):
        self.filters = {k: set(v) for k, v in filters.items() if v}

    def matches(self, event: Event) -> bool:
        f = self.filters
        if "type" in f and event.type not in f["type"]:
            return False
        if "event" in f and not self._action_matches(event.action, f["event"]):
            return False
        if "scope" in f and event.scope not in f["scope"]:
            return False
        for kind in ("container", "image", "network", "volume", "plugin", "daemon", "node",
                     "service", "secret", "config"):
            if kind in f:
                if event.type != kind and not (kind == "image" and event.type == "container"):
                    return False
                names = {event.actor_id, event.attributes.get("name", "")}
                if kind == "image" and event.type == "container":
                    names = {event.attributes.get("image", "")}
                if not any(self._id_or_name(value, names, event.actor_id) for value in f[kind]):
                    return False
        if "label" in f:
            for wanted in f["label"]:
                key, eq, value = wanted.partition("=")
                if key not in event.attributes or (eq and event.attributes[key] != value):
                    return False
        return True

    @staticmethod
    def _action_matches(action: str, wanted: set[str]) -> bool:
        # "exec_start: sh -c ..." and "health_status: healthy" match their bare prefix too.
        return action in wanted or action.split(":", 1)[0] in wanted

    @staticmethod
    def _id_or_name(value: str, names: set[str], actor_id: str) -> bool:
        return value in names or (len(value) >= 1 and actor_id.startswith(value))


class EventBus:
    def __init__(self) -> None:
        self._history: deque[Event] = deque(maxlen=HISTORY)
        self._subscribers: set[asyncio.Queue[Event]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def listener_count(self) -> int:
        return len(self._subscribers)

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """The daemon's loop; lets worker threads publish safely."""
        self._loop = loop

    def publish(self, type: str, action: str, actor_id: str,
                attributes: dict[str, str] | None = None, scope: str = "local") -> Event:
        event = Event(type, action, actor_id, dict(attributes or {}), scope)
        loop = self._loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is not None and running is not loop:
            loop.call_soon_threadsafe(self._deliver, event)
        else:
            self._deliver(event)
        return event

    def _deliver(self, event: Event) -> None:
        self._history.append(event)
        for queue in list(self._subscribers):
            queue.put_nowait(event)

    def history(self, since_nano: int | None, until_nano: int | None,
                event_filter: EventFilter) -> list[Event]:
        return [e for e in self._history
                if (since_nano is None or e.time_nano >= since_nano)
                and (until_nano is None or e.time_nano <= until_nano)
                and event_filter.matches(e)]

    async def subscribe(self, since_nano: int | None, until_nano: int | None,
                        event_filter: EventFilter) -> AsyncIterator[Event]:
        """Past events from ``since``, then live ones until ``until`` (or forever)."""
        queue: asyncio.Queue[Event] = asyncio.Queue()
        self._subscribers.add(queue)
        try:
            last_seen = 0
            if since_nano is not None:
                for event in self.history(since_nano, until_nano, event_filter):
                    last_seen = event.time_nano
                    yield event
            while True:
                timeout = None
                if until_nano is not None:
                    timeout = (until_nano - time.time_ns()) / 1e9
                    if timeout <= 0:
                        return
                try:
                    event = await asyncio.wait_for(queue.get(), timeout)
                except asyncio.TimeoutError:
                    return
                if event.time_nano <= last_seen or not event_filter.matches(event):
                    continue
                if until_nano is not None and event.time_nano > until_nano:
                    return
                yield event
        finally:
            self._subscribers.discard(queue)
