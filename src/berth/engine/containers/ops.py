"""Container lifecycle operations beyond run/stop (issue 5): pause, unpause, top, stats,
update and prune. ``engine.container_ops`` is what ``api.routes.container_ops`` calls; each
operation takes the container's lock where it changes state, and emits dockerd's event."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from typing import TYPE_CHECKING, Any, AsyncIterator

from berth.engine.containers import prune as prunelib, resources, top as toplib
from berth.engine.containers.stats import StatsCollector
from berth.errors import BerthError, Conflict, SystemError_
from berth.runtime import cgroups

if TYPE_CHECKING:
    from berth.engine.containers.record import Container
    from berth.engine.engine import Engine

log = logging.getLogger("berth.containers")


def _restarting(container: "Container") -> Conflict:
    return Conflict(f"Container {container.id} is restarting, wait until the container is running")


def _not_running(container: "Container") -> Conflict:
    return Conflict(f"container {container.id} is not running")


class ContainerOps:
    def __init__(self, engine: "Engine"):
        self.engine = engine
        self.containers = engine.containers
        self.stats_collector = StatsCollector(self.containers)
        self.containers.observers.append(self.stats_collector)
        self._prune_lock = threading.Lock()

    # -- pause / unpause (freezer cgroup, through the runtime) ------------------------------
    async def pause(self, ref: str) -> None:
        service = self.containers
        container = service.get(ref)
        async with service._lock(container.id):
            if not container.running:
                raise _not_running(container)
            if container.paused:
                raise Conflict(f"container {container.id} is already paused")
            if container.restarting:
                raise _restarting(container)
            try:
                await asyncio.to_thread(service.runtime_for(container).pause, container.id)
            except BerthError as exc:
                raise SystemError_(f"cannot pause container {container.id}: {exc.message}") from exc
            container.set_paused(True)
            service.health.stop(container.id)
            service._event(container, "pause")
            service._save(container)

    async def unpause(self, ref: str) -> None:
        service = self.containers
        container = service.get(ref)
        async with service._lock(container.id):
            if not container.paused:
                raise SystemError_(f"Container {container.id} is not paused")
            if not container.running:
                raise _not_running(container)
            try:
                await asyncio.to_thread(service.runtime_for(container).resume, container.id)
            except BerthError as exc:
                raise SystemError_(f"Cannot unpause container {container.id}: {exc.message}") from exc
            container.set_paused(False)
            service.health.resume(container)
            service._event(container, "unpause")
            service._save(container)

    # -- top ---------------------------------------------------------------------------------
    async def top(self, ref: str, ps_args: str | None) -> dict[str, Any]:
        ps_args = ps_args or "-ef"
        toplib.validate_ps_args(ps_args)
        service = self.containers
        container = service.get(ref)
        if not container.running:
            raise _not_running(container)
        if container.restarting:
            raise _restarting(container)
        pids = await asyncio.to_thread(self._pids, container)
        output = await asyncio.to_thread(toplib.run_ps, ps_args, pids)
        result = toplib.parse_ps_output(output, pids)
        service._event(container, "top")
        return result

    def _pids(self, container: "Container") -> list[int]:
        """Every process of the container: its cgroup's ``cgroup.procs`` (exec processes
        included), else ``runc ps``."""
        pid = int(container.state.get("Pid") or 0)
        try:
            dirs = self.stats_collector.sampler.dirs(container.id, pid)
            for controller in ("pids", "memory", "cpu", "freezer", ""):
                if controller in dirs:
                    return toplib.cgroup_pids(os.path.join(dirs[controller], "cgroup.procs"))
        except OSError:
            pass
        try:
            return [int(p) for p in self.containers.runtime_for(container).ps(container.id)]
        except BerthError as exc:
            if not container.running:
                raise _not_running(container) from exc
            raise

    # -- stats ---------------------------------------------------------------------------------
    def stats(self, ref: str, stream: bool, one_shot: bool) -> AsyncIterator[dict[str, Any]]:
        container = self.containers.get(ref)
        return self.stats_collector.stream(container, stream, one_shot)

    # -- update --------------------------------------------------------------------------------
    async def update(self, ref: str, body: Any) -> dict[str, Any]:
        service = self.containers
        update = resources.parse_update(body)
        mode = cgroups.cgroup_mode()
        warnings = resources.validate_update(update, cgroups.swap_limit_supported(mode),
                                             blkio_weight=cgroups.blkio_weight_supported(mode))
        container = service.get(ref)
        async with service._lock(container.id):
            if container.removal_in_progress or container.state.get("Dead"):
                raise SystemError_(f"Cannot update container {container.id}: container is "
                                   "marked for removal and cannot be \"update\"")
            old = container.host_config
            container.host_config = resources.merge_update(old, update, container.id)
            service._save(container)
            service._event(container, "update")
            if not container.running or container.restarting:
                return {"Warnings": warnings or None}
            oci_resources = resources.runtime_resources(update)
            if oci_resources:
                try:
                    await asyncio.to_thread(service.runtime_for(container).update,
                                            container.id, oci_resources)
                except BerthError as exc:
                    container.host_config = old
                    service._save(container)
                    raise SystemError_(f"Cannot update container {container.id}: "
                                       f"{exc.message}") from exc
        return {"Warnings": warnings or None}

    # -- prune ---------------------------------------------------------------------------------
    async def prune(self, filters: dict[str, list[str]]) -> dict[str, Any]:
        if not self._prune_lock.acquire(blocking=False):
            raise Conflict("a prune operation is already running")
        try:
            service = self.containers
            chosen = prunelib.select(service.all(), filters)
            deleted: list[str] = []
            reclaimed = 0
            for container in chosen:
                try:
                    size = await asyncio.to_thread(self.engine.images.layers.rw_size, container.id)
                except BerthError:
                    size = 0
                try:
                    await service.remove(container.id, force=False, volumes=False)
                except BerthError as exc:
                    log.warning("failed to prune container %s: %s", container.id[:12], exc.message)
                    continue
                reclaimed += max(0, size)
                deleted.append(container.id)
            self.engine.events.publish("container", "prune", "", {"reclaimed": str(reclaimed)})
            return prunelib.report(deleted, reclaimed)
        finally:
            self._prune_lock.release()
