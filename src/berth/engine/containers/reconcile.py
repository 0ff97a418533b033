"""Daemon start: make the container records agree with the shims, the runtime and the disk.

``Reconciler.restore`` runs once at daemon start, before the API serves requests:

1. What a crash left without a record is removed: a read-write layer or a container
   directory of a create that never finished, a state directory or runtime state of an
   unknown container (its shim and process are killed), volume references of unknown
   containers (their anonymous volumes go, as ``docker rm -v`` would).
2. Each record is brought up to date:

   - running, shim alive: with live-restore the daemon follows it again (same PID, logs the
     shim wrote meanwhile, exec/attach/stop/stats work); without, it is stopped gracefully
     (its StopSignal, then SIGKILL after its timeout), as dockerd does;
   - running, shim gone, ``exit.json`` present: the exit is recorded with its real exit code
     and FinishedAt, ``die`` is emitted and the restart policy applies;
   - running, shim gone without an exit record (the shim was killed): the runtime's container
     is force-deleted; exit code 137 if the process was still there, else 255 (unknown);
   - restarting (the daemon died during the back-off): exited with the code of its last run;
   - not running but a shim or runtime state is alive (a crash during start): the process is
     killed and what start took (mounts, network) is released; the record keeps its state;
   - a crash during removal (``removal_in_progress``) or a record whose read-write layer is
     gone: the container is ``dead``, for the user to remove (dockerd does the same);
   - stale rootfs mounts of stopped containers are unmounted.

3. Containers whose restart policy asks for it are started (``always``; ``unless-stopped``
   unless the user stopped it; ``on-failure`` after a non-zero exit, within its retries), and
   ``--rm`` containers that are not running are removed (started or not, as dockerd).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import time
from typing import Any

from berth.engine.containers.record import Container
from berth.engine.containers.records import ContainerRecords
from berth.engine.containers.restart import Policy, should_restart
from berth.engine.containers.service import ContainerService
from berth.engine.containers.shims import Shims
from berth.engine.volumes import VolumeService
from berth.errors import BerthError, NotFound
from berth.storage.drivers import mount as mnt
from berth.storage.layers import LayerStore
from berth.storage.shm import unmount_shm

log = logging.getLogger("berth.reconcile")

PARALLEL = 16               # containers started or stopped at once at daemon start


class Reconciler:
    def __init__(self, records: ContainerRecords, lifecycle: ContainerService, shims: Shims,
                 layers: LayerStore, volumes: VolumeService):
        self.records = records
        self.lifecycle = lifecycle
        self.shims = shims
        self.layers = layers
        self.volumes = volumes

    async def restore(self, live_restore: bool) -> None:
        started = time.monotonic()
        await asyncio.to_thread(self.clean_orphans)
        mounted = await asyncio.to_thread(lambda: {mp for mp, _ in mnt.mountpoints()})
        to_stop: list[Container] = []
        sem = asyncio.Semaphore(PARALLEL * 4)

        async def one(container: Container) -> None:
            async with sem:
                try:
                    if await self.restore_one(container, live_restore, mounted):
                        to_stop.append(container)
                except Exception:  # noqa: BLE001 - one broken container must not stop the daemon
                    log.exception("restoring container %s failed", container.id[:12])

        await asyncio.gather(*(one(c) for c in self.records))
        if to_stop:
            await _bounded(PARALLEL, [self.lifecycle.stop_container(c, None, manual=False)
                                      for c in to_stop])
        await self.start_by_policy()
        log.info("restored %d containers in %.2fs", len(self.records),
                 time.monotonic() - started)

    # -- 1. leftovers without a record --------------------------------------------------------
    def clean_orphans(self) -> None:
        known = self.records.ids()
        layers = self.layers
        for rw in layers.rw_layers():
            if rw.container_id not in known:
                log.info("removing the read-write layer of unknown container %s",
                         rw.container_id[:12])
                try:
                    layers.remove_rw(rw.container_id)
                except BerthError as exc:
                    log.warning("removing layer of %s: %s", rw.container_id[:12], exc.message)
        for name in _listdir(self.lifecycle.root):
            if name not in known and _is_id(name):
                shutil.rmtree(os.path.join(self.lifecycle.root, name), ignore_errors=True)
        states = self.shims.states_root
        for name in _listdir(states):
            if name not in known:
                self.kill_leftover(name)
                shutil.rmtree(os.path.join(states, name), ignore_errors=True)
        for name in _listdir(self.shims.runtime_root):
            if name not in known and _is_id(name):
                self.shims.delete_runtime_state(name)
        self.volumes.release_all_but(known)

    def kill_leftover(self, container_id: str) -> None:
        """A shim (and container) nobody follows: kill the process tree and forget the
        runtime state. Blocking."""
        client = self.shims.client(container_id)
        if client.is_alive():
            try:
                client.kill(signal.SIGKILL, True)
                client.wait(10.0)
            except (BerthError, OSError):  # it may finish (and close) while we talk to it
                pass
            pid = client.shim_pid()
            if pid and client.is_alive():
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        self.shims.delete_runtime_state(container_id)

    # -- 2. each record -----------------------------------------------------------------------
    async def restore_one(self, container: Container, live_restore: bool,
                          mounted: set[str]) -> bool:
        """Bring one record up to date; True if the container must now be stopped (it is
        alive and live-restore is off)."""
        records = self.records
        state_dir = self.shims.state_dir(container.id)
        if container.removal_in_progress:
            container.removal_in_progress = False
            self._mark_dead(container)
            return False
        if container.restarting:
            container.set_stopped(int(container.state.get("ExitCode") or 0),
                                  container.state.get("FinishedAt"))
            records.save(container)
        if container.running:
            client = self.shims.client(container.id)
            if await asyncio.to_thread(client.is_alive):
                await self.lifecycle.reattach(container, client)
                return not live_restore
            result = await asyncio.to_thread(client.read_exit)
            if result is None:
                result = await asyncio.to_thread(self.shims.end_orphan, container)
            await self.lifecycle.record_exit(container, result)
            return False
        # not running: nothing of it may be left alive or mounted
        if container.host_config.get("IpcMode") == "shareable":
            await asyncio.to_thread(unmount_shm, self.lifecycle.shm_dir(container.id))
        if os.path.isdir(state_dir) or os.path.isdir(os.path.join(self.shims.runtime_root,
                                                                  container.id)):
            await asyncio.to_thread(self.kill_leftover, container.id)
            await self.lifecycle.release_resources(container,
                                                   unmount=_rootfs_mounted(container, mounted))
        elif _rootfs_mounted(container, mounted):
            try:
                await asyncio.to_thread(self.layers.unmount, container.id)
            except BerthError:
                pass
        if not container.state.get("Dead"):
            try:
                self.layers.get_rw(container.id)
            except NotFound:
                log.warning("container %s has no read-write layer: marking it dead",
                            container.id[:12])
                self._mark_dead(container)
        return False

    def _mark_dead(self, container: Container) -> None:
        container.state.update(Status="dead", Dead=True, Running=False, Paused=False,
                               Restarting=False, Pid=0)
        self.records.save(container)

    # -- 3. restart policies at daemon start --------------------------------------------------
    async def start_by_policy(self) -> None:
        to_start, to_remove = [], []
        for container in self.records:
            if container.running:
                continue
            if container.host_config.get("AutoRemove"):
                # as dockerd's restore: a --rm container that is not running goes, even one
                # created and never started, or whose `docker run --rm` a crash cut short
                to_remove.append(container)
                continue
            if container.state.get("Dead") or not container.has_been_started:
                continue
            policy = Policy.of(container.host_config)
            if should_restart(policy, int(container.state.get("ExitCode") or 0),
                              container.has_been_manually_stopped, container.restart_count):
                to_start.append(container)

        async def start(container: Container) -> None:
            try:
                await self.lifecycle.start(container.id)
            except BerthError as exc:
                log.error("failed to start container %s: %s", container.id[:12], exc.message)

        async def remove(container: Container) -> None:
            try:
                await self.lifecycle.remove(container.id, force=True, volumes=True)
            except BerthError as exc:
                log.error("failed to remove container %s: %s", container.id[:12], exc.message)

        await _bounded(PARALLEL, [start(c) for c in to_start] + [remove(c) for c in to_remove])


async def _bounded(limit: int, coros: list[Any]) -> list[Any]:
    sem = asyncio.Semaphore(limit)

    async def run(coro: Any) -> Any:
        async with sem:
            return await coro

    return await asyncio.gather(*(run(c) for c in coros), return_exceptions=True)


def _listdir(path: str) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except FileNotFoundError:
        return []


def _is_id(name: str) -> bool:
    return len(name) == 64 and all(c in "0123456789abcdef" for c in name)


def _rootfs_mounted(container: Container, mounted: set[str]) -> bool:
    merged = (container.graph_data or {}).get("MergedDir")
    return bool(merged) and merged in mounted
