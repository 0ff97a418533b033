"""Container operations beyond run/stop: pause, unpause, top, stats, update and prune.
``engine.container_ops`` is what ``api.routes.container_ops`` calls; each operation takes the
container's lock where it changes state, and emits dockerd's event. The runtime calls
(pause, resume, update) go through the container's shim (``Shims``)."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any, AsyncIterator

from berth.engine.containers import prune as prunelib, resources
from berth.engine.containers.health import HealthMonitor
from berth.engine.containers.record import Container
from berth.engine.containers.records import ContainerRecords
from berth.engine.containers.service import ContainerService
from berth.engine.containers.shims import Shims
from berth.engine.containers.stats import StatsCollector
from berth.engine.events import EventBus
from berth.errors import BerthError, Conflict, SystemError_
from berth.runtime import cgroups, cgstats, top as toplib
from berth.storage.layers import LayerStore

log = logging.getLogger("berth.containers")


def _restarting(container: Container) -> Conflict:
    return Conflict(f"Container {container.id} is restarting, wait until the container is running")


def _not_running(container: Container) -> Conflict:
    return Conflict(f"container {container.id} is not running")


def _check_not_removed(container: Container, action: str) -> None:
    """A container being removed is being killed: freezing it now would stall its exit."""
    if container.removal_in_progress or container.state.get("Dead"):
        raise Conflict(f"container {container.id} is marked for removal and cannot be "
                       f'"{action}"')


class ContainerOps:
    def __init__(self, records: ContainerRecords, shims: Shims, health: HealthMonitor,
                 stats: StatsCollector, lifecycle: ContainerService, layers: LayerStore,
                 events: EventBus):
        self.records = records
        self.shims = shims
        self.health = health
        self.stats_collector = stats
        self.lifecycle = lifecycle
        self.layers = layers
        self.events = events
        self._prune_lock = threading.Lock()

    # -- pause / unpause (the freezer cgroup, through the shim) ------------------------------
    async def pause(self, ref: str) -> None:
        container = self.records.get(ref)
        async with self.records.lock(container.id):
            if not container.running:
                raise _not_running(container)
            _check_not_removed(container, "pause")
            if container.paused:
                raise Conflict(f"container {container.id} is already paused")
            if container.restarting:
                raise _restarting(container)
            try:
                await asyncio.to_thread(self.shims.pause, container)
            except BerthError as exc:
                raise SystemError_(f"cannot pause container {container.id}: {exc.message}") from exc
            container.set_paused(True)
            self.health.stop(container.id)
            self.records.emit(container, "pause")
            self.records.save(container)

    async def unpause(self, ref: str) -> None:
        container = self.records.get(ref)
        async with self.records.lock(container.id):
            if not container.paused:
                raise SystemError_(f"Container {container.id} is not paused")
            if not container.running:
                raise _not_running(container)
            _check_not_removed(container, "unpause")
            try:
                await asyncio.to_thread(self.shims.resume, container)
            except BerthError as exc:
                raise SystemError_(f"Cannot unpause container {container.id}: {exc.message}") from exc
            container.set_paused(False)
            self.health.resume(container)
            self.records.emit(container, "unpause")
            self.records.save(container)

    # -- top ---------------------------------------------------------------------------------
    async def top(self, ref: str, ps_args: str | None) -> dict[str, Any]:
        ps_args = ps_args or "-ef"
        toplib.validate_ps_args(ps_args)
        container = self.records.get(ref)
        if not container.running:
            raise _not_running(container)
        if container.restarting:
            raise _restarting(container)
        pids = await asyncio.to_thread(self._pids, container)
        output = await asyncio.to_thread(toplib.run_ps, ps_args, pids)
        result = toplib.parse_ps_output(output, pids)
        self.records.emit(container, "top")
        return result

    def _pids(self, container: Container) -> list[int]:
        """Every process of the container: its cgroup's ``cgroup.procs`` (exec processes
        included), else ``runc ps`` (a read, which the daemon may make beside the shim)."""
        pid = int(container.state.get("Pid") or 0)
        try:
            pids = cgstats.cgroup_pids(self.stats_collector.sampler.dirs(container.id, pid))
            if pids is not None:
                return pids
        except OSError:
            pass
        try:
            return [int(p) for p in self.shims.runtime_for(container).ps(container.id)]
        except BerthError as exc:
            if not container.running:
                raise _not_running(container) from exc
            raise

    # -- stats ---------------------------------------------------------------------------------
    def stats(self, ref: str, stream: bool, one_shot: bool) -> AsyncIterator[dict[str, Any]]:
        container = self.records.get(ref)
        return self.stats_collector.stream(container, stream, one_shot)

    # -- update --------------------------------------------------------------------------------
    async def update(self, ref: str, body: Any) -> dict[str, Any]:
        update = resources.parse_update(body)
        mode = cgroups.cgroup_mode()
        warnings = resources.validate_update(update, cgroups.swap_limit_supported(mode),
                                             blkio_weight=cgroups.blkio_weight_supported(mode))
        container = self.records.get(ref)
        async with self.records.lock(container.id):
            if container.removal_in_progress or container.state.get("Dead"):
                raise SystemError_(f"Cannot update container {container.id}: container is "
                                   "marked for removal and cannot be \"update\"")
            old = container.host_config
            container.host_config = resources.merge_update(old, update, container.id)
            self.records.save(container)
            self.records.emit(container, "update")
            if not container.running or container.restarting:
                return {"Warnings": warnings or None}
            oci_resources = resources.runtime_resources(update)
            if oci_resources:
                try:
                    await asyncio.to_thread(self.shims.update, container, oci_resources)
                except BerthError as exc:
                    container.host_config = old
                    self.records.save(container)
                    raise SystemError_(f"Cannot update container {container.id}: "
                                       f"{exc.message}") from exc
        return {"Warnings": warnings or None}

    # -- prune ---------------------------------------------------------------------------------
    async def prune(self, filters: dict[str, list[str]]) -> dict[str, Any]:
        if not self._prune_lock.acquire(blocking=False):
            raise Conflict("a prune operation is already running")
        try:
            chosen = prunelib.select(self.records.all(), filters)
            deleted: list[str] = []
            reclaimed = 0
            for container in chosen:
                try:
                    size = await asyncio.to_thread(self.layers.rw_size, container.id)
                except BerthError:
                    size = 0
                try:
                    await self.lifecycle.remove(container.id, force=False, volumes=False)
                except BerthError as exc:
                    log.warning("failed to prune container %s: %s", container.id[:12], exc.message)
                    continue
                reclaimed += max(0, size)
                deleted.append(container.id)
            self.events.publish("container", "prune", "", {"reclaimed": str(reclaimed)})
            return prunelib.report(deleted, reclaimed)
        finally:
            self._prune_lock.release()
