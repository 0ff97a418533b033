"""Daemon start: make the container records agree with the shims, the runtime and the disk.

Called once by ``ContainerService.restore`` before the API serves requests:

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
   stopped ``--rm`` containers are removed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import time
from typing import TYPE_CHECKING, Any

from berth.engine.containers.restart import Policy, should_restart
from berth.errors import BerthError, NotFound
from berth.runtime import shim as shimlib
from berth.storage.drivers import mount as mnt
from berth.timeutil import rfc3339_nano

if TYPE_CHECKING:
    from berth.engine.containers.record import Container
    from berth.engine.containers.service import ContainerService

log = logging.getLogger("berth.reconcile")

PARALLEL = 16               # containers started or stopped at once at daemon start
ANONYMOUS_LABEL = "com.docker.volume.anonymous"


async def restore(service: "ContainerService", live_restore: bool) -> None:
    started = time.monotonic()
    await asyncio.to_thread(clean_orphans, service)
    mounted = await asyncio.to_thread(lambda: {mp for mp, _ in mnt.mountpoints()})
    to_stop: list["Container"] = []
    sem = asyncio.Semaphore(PARALLEL * 4)

    async def one(container: "Container") -> None:
        async with sem:
            try:
                if await restore_one(service, container, live_restore, mounted):
                    to_stop.append(container)
            except Exception:  # noqa: BLE001 - one broken container must not stop the daemon
                log.exception("restoring container %s failed", container.id[:12])

    await asyncio.gather(*(one(c) for c in list(service._containers.values())))
    if to_stop:
        await _bounded(PARALLEL, [service._stop_container(c, None, manual=False)
                                  for c in to_stop])
    await start_by_policy(service)
    log.info("restored %d containers in %.2fs", len(service._containers),
             time.monotonic() - started)


async def _bounded(limit: int, coros: list[Any]) -> list[Any]:
    sem = asyncio.Semaphore(limit)

    async def run(coro: Any) -> Any:
        async with sem:
            return await coro

    return await asyncio.gather(*(run(c) for c in coros), return_exceptions=True)


# -- 1. leftovers without a record ------------------------------------------------------------
def clean_orphans(service: "ContainerService") -> None:
    engine = service.engine
    known = set(service._containers)
    layers = engine.images.layers
    for rw in layers.rw_layers():
        if rw.container_id not in known:
            log.info("removing the read-write layer of unknown container %s", rw.container_id[:12])
            try:
                layers.remove_rw(rw.container_id)
            except BerthError as exc:
                log.warning("removing layer of %s: %s", rw.container_id[:12], exc.message)
    for name in _listdir(service.root):
        if name not in known and _is_id(name):
            shutil.rmtree(os.path.join(service.root, name), ignore_errors=True)
    states = os.path.join(engine.exec_root, "containers")
    for name in _listdir(states):
        if name not in known:
            kill_leftover(service, name)
            shutil.rmtree(os.path.join(states, name), ignore_errors=True)
    for name in _listdir(service.runtime_root):
        if name not in known and _is_id(name):
            _runtime_delete(service, name)
    _drop_volume_refs(service, known)


def _drop_volume_refs(service: "ContainerService", known: set[str]) -> None:
    volumes = service.engine.volumes
    try:
        rows = service.engine.store.query("SELECT name, container_id FROM volume_refs")
    except Exception:  # noqa: BLE001 - no volume table yet
        return
    for row in rows:
        if row["container_id"] in known:
            continue
        name = row["name"]
        volumes.remove_reference(name, row["container_id"])
        try:
            labels = volumes.get(name).get("Labels") or {}
            if ANONYMOUS_LABEL in labels and not volumes.in_use(name):
                volumes.remove(name)
        except BerthError:
            pass


def kill_leftover(service: "ContainerService", container_id: str) -> None:
    """A shim (and container) nobody follows: kill the process tree and forget the runtime
    state. Blocking."""
    client = shimlib.ShimClient(os.path.join(shimlib.state_dir(service.engine.exec_root,
                                                               container_id), shimlib.SOCKET_NAME))
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
    _runtime_delete(service, container_id)


def _runtime_delete(service: "ContainerService", container_id: str) -> bool:
    """``runc delete --force``: True if the runtime still knew the container."""
    runtime = _runtime(service)
    try:
        runtime.delete(container_id, force=True)
        return True
    except NotFound:
        return False
    except BerthError as exc:
        log.warning("runtime delete of %s: %s", container_id[:12], exc.message)
        shutil.rmtree(os.path.join(service.runtime_root, container_id), ignore_errors=True)
        return False


def _runtime(service: "ContainerService") -> Any:
    from berth.runtime import oci
    name = service.engine.config.default_runtime or "runc"
    path = service.engine.runtimes().get(name, {}).get("path") or name
    return oci.Runtime(path, service.runtime_root)


def _listdir(path: str) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except FileNotFoundError:
        return []


def _is_id(name: str) -> bool:
    return len(name) == 64 and all(c in "0123456789abcdef" for c in name)


# -- 2. each record ---------------------------------------------------------------------------
async def restore_one(service: "ContainerService", container: "Container",
                      live_restore: bool, mounted: set[str]) -> bool:
    """Bring one record up to date; True if the container must now be stopped (it is alive
    and live-restore is off)."""
    layers = service.engine.images.layers
    state_dir = shimlib.state_dir(service.engine.exec_root, container.id)
    if container.removal_in_progress:
        container.removal_in_progress = False
        _mark_dead(service, container)
        return False
    if container.restarting:
        container.set_stopped(int(container.state.get("ExitCode") or 0),
                              container.state.get("FinishedAt"))
        service._save(container)
    if container.running:
        client = service._client(container)
        if await asyncio.to_thread(client.is_alive):
            await _reattach(service, container, client)
            return not live_restore
        result = await asyncio.to_thread(client.read_exit)
        if result is None:
            result = await asyncio.to_thread(_dead_shim, service, container)
        await service._on_exit(container, result)
        return False
    # not running: nothing of it may be left alive or mounted
    if os.path.isdir(state_dir) or os.path.isdir(os.path.join(service.runtime_root, container.id)):
        await asyncio.to_thread(kill_leftover, service, container.id)
        await service._release_resources(container, state_dir,
                                         unmount=_rootfs_mounted(container, mounted))
    elif _rootfs_mounted(container, mounted):
        try:
            await asyncio.to_thread(layers.unmount, container.id)
        except BerthError:
            pass
    if not container.state.get("Dead"):
        try:
            layers.get_rw(container.id)
        except NotFound:
            log.warning("container %s has no read-write layer: marking it dead", container.id[:12])
            _mark_dead(service, container)
    return False


def _rootfs_mounted(container: "Container", mounted: set[str]) -> bool:
    merged = (container.graph_data or {}).get("MergedDir")
    return bool(merged) and merged in mounted


def _mark_dead(service: "ContainerService", container: "Container") -> None:
    container.state.update(Status="dead", Dead=True, Running=False, Paused=False,
                           Restarting=False, Pid=0)
    service._save(container)


async def _reattach(service: "ContainerService", container: "Container",
                    client: shimlib.ShimClient) -> None:
    service.reattach(container, client)
    plans = _volume_plans(container)
    if plans:
        volumes = service.engine.volumes
        for plan in plans:
            if plan.type == "volume" and plan.name:
                try:
                    await asyncio.to_thread(volumes.restore_mount, plan.name, container.id)
                except BerthError:
                    pass
        service._mounted[container.id] = plans
    if container.paused and not await asyncio.to_thread(_frozen, service, container):
        container.set_paused(False)
        service._save(container)
    service._notify("on_start", container)


def _volume_plans(container: "Container") -> list[Any]:
    from berth.engine import mounts
    return mounts.plans_from_docs(container.mounts) if container.mounts else []


def _frozen(service: "ContainerService", container: "Container") -> bool:
    try:
        return service.runtime_for(container).state(container.id).get("status") == "paused"
    except BerthError:
        return False


def _dead_shim(service: "ContainerService", container: "Container") -> dict[str, Any]:
    """The shim died without recording an exit: end the container through the runtime."""
    runtime = service.runtime_for(container)
    code = 255
    try:
        status = runtime.state(container.id).get("status")
    except BerthError:
        status = None
    if status in ("running", "paused", "created"):
        code = 137
        try:
            runtime.kill(container.id, signal.SIGKILL, all=True)
        except BerthError:
            pass
        if status == "paused":
            try:
                runtime.resume(container.id)
            except BerthError:
                pass
    if status is not None:
        _runtime_delete(service, container.id)
    log.warning("shim of %s is gone without an exit record; exit code %d", container.id[:12], code)
    return {"exit_code": code, "finished_at": rfc3339_nano()}


# -- 3. restart policies at daemon start ------------------------------------------------------
async def start_by_policy(service: "ContainerService") -> None:
    to_start, to_remove = [], []
    for container in list(service._containers.values()):
        if container.running or container.state.get("Dead") or not container.has_been_started:
            continue
        policy = Policy.of(container.host_config)
        if should_restart(policy, int(container.state.get("ExitCode") or 0),
                          container.has_been_manually_stopped, container.restart_count):
            to_start.append(container)
        elif container.host_config.get("AutoRemove"):
            to_remove.append(container)

    async def start(container: "Container") -> None:
        try:
            await service.start(container.id)
        except BerthError as exc:
            log.error("failed to start container %s: %s", container.id[:12], exc.message)

    async def remove(container: "Container") -> None:
        try:
            await service.remove(container.id, force=True, volumes=True)
        except BerthError as exc:
            log.error("failed to remove container %s: %s", container.id[:12], exc.message)

    await _bounded(PARALLEL, [start(c) for c in to_start] + [remove(c) for c in to_remove])
