"""``docker stats``: a container's samples in Docker's JSON document, once or streamed.

Reading the cgroup (v1 or v2), the host's CPU time and the namespace's network counters is
:mod:`berth.runtime.cgstats`; here :class:`StatsCollector` samples every watched container
once per interval for all its subscribers (dockerd's collector), and each sample becomes
Docker's document (name, id, and the previous sample as ``precpu_stats``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any, AsyncIterator

from berth.engine.containers.observers import LifecycleObserver
from berth.runtime.cgstats import Sampler, empty_blkio, empty_cpu, system_cpu

if TYPE_CHECKING:
    from berth.engine.containers.record import Container
    from berth.engine.containers.records import ContainerRecords

log = logging.getLogger("berth.stats")

ZERO_TIME = "0001-01-01T00:00:00Z"
INTERVAL = 1.0               # seconds between samples (dockerd's collector)


def empty_stats(container: "Container") -> dict[str, Any]:
    """What dockerd answers for a container that is not running."""
    return {"read": ZERO_TIME, "preread": ZERO_TIME, "pids_stats": {},
            "blkio_stats": empty_blkio(), "num_procs": 0,
            "storage_stats": {}, "cpu_stats": empty_cpu(), "precpu_stats": empty_cpu(),
            "memory_stats": {}, "name": "/" + container.name, "id": container.id}


def sample_document(container: "Container", system: tuple[int, int],
                    sampler: Sampler) -> dict[str, Any]:
    """One sample of a running container as dockerd answers it (raises OSError if the
    container's process is gone). No network counters for host networking or a container
    with networking disabled."""
    networks = container.host_config.get("NetworkMode") != "host" and \
        not container.config.get("NetworkDisabled")
    sample = sampler.sample(container.id, int(container.state.get("Pid") or 0), system,
                            networks=networks)
    result = {"read": sample["read"], "preread": ZERO_TIME, "pids_stats": sample["pids_stats"],
              "blkio_stats": sample["blkio_stats"], "num_procs": 0, "storage_stats": {},
              "cpu_stats": sample["cpu_stats"], "precpu_stats": empty_cpu(),
              "memory_stats": sample["memory_stats"], "name": "/" + container.name,
              "id": container.id}
    if "networks" in sample:
        result["networks"] = sample["networks"]
    return result


# -- the collector ------------------------------------------------------------------------------
class StatsCollector(LifecycleObserver):
    """Samples each watched container once per interval and hands the sample to every
    subscriber (a queue per ``docker stats`` stream). An observer of the container lifecycle:
    a removed container's streams end."""

    def __init__(self, records: "ContainerRecords", interval: float = INTERVAL):
        self.records = records
        self.interval = interval
        self.sampler = Sampler()
        self._subscribers: dict[str, set[asyncio.Queue]] = {}
        self._task: asyncio.Task | None = None

    def current(self, container: "Container") -> dict[str, Any]:
        """One sample now, or the empty answer when it is not running (blocking)."""
        if not container.running or container.restarting:
            return empty_stats(container)
        try:
            return sample_document(container, system_cpu(), self.sampler)
        except OSError:
            return empty_stats(container)

    def subscribe(self, container: "Container") -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue(maxsize=4)
        self._subscribers.setdefault(container.id, set()).add(queue)
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())
        return queue

    def unsubscribe(self, container: "Container", queue: asyncio.Queue) -> None:
        queues = self._subscribers.get(container.id)
        if queues is not None:
            queues.discard(queue)
            if not queues:
                self._subscribers.pop(container.id, None)

    def on_remove(self, container: "Container") -> None:
        for queue in self._subscribers.pop(container.id, set()):
            _offer(queue, None)
        self.sampler.forget(container.id)

    async def _run(self) -> None:
        while self._subscribers:
            watched = [self.records.find(cid) for cid in list(self._subscribers)]
            watched = [c for c in watched if c is not None]
            samples = await asyncio.to_thread(self._sample_all, watched)
            taken = time.monotonic()
            for container, sample in zip(watched, samples):
                for queue in list(self._subscribers.get(container.id, ())):
                    _offer(queue, (taken, sample))
            await asyncio.sleep(self.interval)

    def _sample_all(self, containers: list["Container"]) -> list[dict[str, Any]]:
        system = system_cpu()
        out = []
        for container in containers:
            if not container.running or container.restarting:
                out.append(empty_stats(container))
                continue
            try:
                out.append(sample_document(container, system, self.sampler))
            except OSError:
                out.append(empty_stats(container))
        return out

    async def stream(self, container: "Container", stream: bool,
                     one_shot: bool) -> AsyncIterator[dict[str, Any]]:
        """dockerd's ContainerStats: not streaming -> one answer (empty when not running; a
        single sample with one-shot; else a sample taken one interval after a first one, so
        precpu is filled); streaming -> a sample now, then one per interval from the
        collector, each with the previous one's CPU as precpu."""
        if not stream:
            if not container.running or container.restarting:
                yield empty_stats(container)
                return
            first = await asyncio.to_thread(self.current, container)
            if one_shot:
                yield first
                return
            await asyncio.sleep(self.interval)
            second = await asyncio.to_thread(self.current, container)
            if first["read"] != ZERO_TIME and second["read"] != ZERO_TIME:
                second["preread"] = first["read"]
                second["precpu_stats"] = first["cpu_stats"]
            yield second
            return
        queue = self.subscribe(container)
        try:
            previous = await asyncio.to_thread(self.current, container)
            last = time.monotonic()
            yield previous
            while True:
                item = await queue.get()
                if item is None:
                    return
                taken, sample = item
                if taken - last < self.interval / 2:
                    continue  # the collector sampled just after our own first sample
                sample = dict(sample)
                if previous["read"] != ZERO_TIME and sample["read"] != ZERO_TIME:
                    sample["preread"] = previous["read"]
                    sample["precpu_stats"] = previous["cpu_stats"]
                yield sample
                previous, last = sample, taken
        finally:
            self.unsubscribe(container, queue)


def _offer(queue: asyncio.Queue, item: Any) -> None:
    """Deliver without blocking the collector: a slow reader loses old samples."""
    if item is None:
        while not queue.empty():
            queue.get_nowait()
    elif queue.full():
        try:
            queue.get_nowait()
        except asyncio.QueueEmpty:
            pass
    try:
        queue.put_nowait(item)
    except asyncio.QueueFull:
        pass
