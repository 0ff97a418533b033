"""The one owner of container records: every module reads and writes them through here.

A record lives in memory (for lookups on every request) and in SQLite (table ``containers``,
one JSON document per container). This module is the only one that touches either; the rest
of the engine calls :meth:`ContainerRecords.save`, :meth:`lock` and :meth:`emit`, never the
table or the dict. A lock per container orders every state change of that container.
"""

from __future__ import annotations

import asyncio
import json
from typing import Iterator

from berth.engine import ids
from berth.engine.containers.record import Container
from berth.engine.events import EventBus
from berth.engine.store import Store, register_schema
from berth.errors import Conflict, InvalidParameter, NotFound

register_schema("""
CREATE TABLE IF NOT EXISTS containers (
    id   TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    doc  TEXT NOT NULL
);
""")


class ContainerRecords:
    def __init__(self, store: Store, events: EventBus):
        self._store = store
        self._events = events
        self._containers: dict[str, Container] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        for row in store.query("SELECT doc FROM containers"):
            container = Container.from_doc(json.loads(row["doc"]))
            self._containers[container.id] = container

    # -- lookup ----------------------------------------------------------------------------
    def get(self, ref: str) -> Container:
        """By full ID, name (with or without "/"), or unique ID prefix, as Docker resolves."""
        if ref in self._containers:
            return self._containers[ref]
        name = ref.lstrip("/")
        for container in self._containers.values():
            if container.name == name:
                return container
        matches = ids.match_prefix(ref, self._containers)
        if len(matches) == 1:
            return self._containers[matches[0]]
        if len(matches) > 1:
            raise InvalidParameter(f"Multiple IDs found with provided prefix: {ref}")
        raise NotFound(f"No such container: {ref}")

    def find(self, container_id: str) -> Container | None:
        """The container with exactly this ID, if it is (still) known."""
        return self._containers.get(container_id)

    def __contains__(self, container_id: object) -> bool:
        return container_id in self._containers

    def __iter__(self) -> Iterator[Container]:
        return iter(list(self._containers.values()))

    def __len__(self) -> int:
        return len(self._containers)

    def ids(self) -> set[str]:
        return set(self._containers)

    def all(self) -> list[Container]:
        """Newest first, as `docker ps` lists them."""
        return sorted(self._containers.values(), key=lambda c: c.created, reverse=True)

    def counts(self) -> dict[str, int]:
        counts = {"running": 0, "paused": 0, "stopped": 0}
        for container in self._containers.values():
            if container.paused:
                counts["paused"] += 1
            elif container.running:
                counts["running"] += 1
            else:
                counts["stopped"] += 1
        return counts

    # -- names -----------------------------------------------------------------------------
    def claim_name(self, name: str, container_id: str) -> None:
        """Refuse a name another container has (Docker's text)."""
        for other in self._containers.values():
            if other.name == name and other.id != container_id:
                raise Conflict(f'Conflict. The container name "/{name}" is already in use by '
                               f'container "{other.id}". You have to remove (or rename) that '
                               "container to be able to reuse that name.")

    def generated_name(self) -> str:
        return ids.generated_name(c.name for c in self._containers.values())

    # -- changes ---------------------------------------------------------------------------
    def add(self, container: Container) -> None:
        """Known from now on (its name is taken), not yet stored: ``save`` stores it, and
        ``discard`` forgets a create that failed."""
        self._containers[container.id] = container

    def discard(self, container_id: str) -> None:
        self._containers.pop(container_id, None)

    def save(self, container: Container) -> None:
        with self._store.transaction() as db:
            db.execute("INSERT OR REPLACE INTO containers (id, name, doc) VALUES (?, ?, ?)",
                       (container.id, container.name, json.dumps(container.to_doc())))

    def delete(self, container: Container) -> None:
        """The record goes, from the table and from memory, with its lock."""
        with self._store.transaction() as db:
            db.execute("DELETE FROM containers WHERE id = ?", (container.id,))
        self._containers.pop(container.id, None)
        self._locks.pop(container.id, None)

    def lock(self, container_id: str) -> asyncio.Lock:
        """The lock that orders state changes of one container."""
        return self._locks.setdefault(container_id, asyncio.Lock())

    def emit(self, container: Container, action: str, **extra: str) -> None:
        """A container event, with the attributes dockerd gives it: the container's labels,
        ``image``, ``name``, then ``extra``."""
        attributes = dict(container.config.get("Labels") or {})
        attributes.update(image=container.image, name=container.name)
        attributes.update(extra)
        self._events.publish("container", action, container.id, attributes)
