"""Containers: create, start, stop, kill, wait, remove, rename, list, attach, logs.

The service keeps every container record in memory and in SQLite (table ``containers``), and
a lock per container around each state change. A running container is a shim process
(``berth.runtime.shim``) that outlives the daemon; a monitor task per running container waits
for its exit and records it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal as signals
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable

from berth.engine import ids
from berth.engine import mounts
from berth.engine.mounts import MountPlan
from berth.engine.containers import config as cconfig
from berth.engine.containers import hostfiles, logattrs, startup
from berth.runtime.logread import (LogLine, LogOptions, current_size, existing_lines,
                                   follow_lines)
from berth.engine.containers.health import validate as health_validate
from berth.engine.containers.record import Container
from berth.engine.containers.streams import AsyncShimStream, exit_notice, wait_ended
from berth.engine.images import initlayer
from berth.engine.store import register_schema
from berth.errors import (BerthError, Conflict, InvalidParameter, NotFound, NotModified,
                          SystemError_)
from berth.runtime import cgroups, oci, shim as shimlib, spec as speclib
from berth.storage.trash import Trash
from berth.threads import run_in_own_thread
from berth.timeutil import rfc3339_nano

if TYPE_CHECKING:
    from berth.engine.engine import Engine

log = logging.getLogger("berth.containers")

register_schema("""
CREATE TABLE IF NOT EXISTS containers (
    id   TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    doc  TEXT NOT NULL
);
""")

DEFAULT_STOP_TIMEOUT = 10


@dataclass
class AttachRequest:
    """What a client attached with; connected to the shim when the container starts."""

    stdin: bool
    stdout: bool
    stderr: bool
    ready: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())


def wait_in_thread(call: Callable[[], Any]) -> "asyncio.Future[Any]":
    """Waits on a shim last as long as containers do: each gets a daemon thread of its own."""
    return run_in_own_thread(call, "shim-wait")


def _own_pid_namespace(container: Container) -> bool:
    """Init's exit ends every process of the container (the kernel kills the namespace)."""
    return not container.host_config.get("PidMode")


def _end_shim(client: shimlib.ShimClient) -> None:
    """Kill what a start that failed halfway left running, and let its shim finish."""
    try:
        client.kill(signals.SIGKILL, all=True)
        client.wait(timeout=10)
    except BerthError:
        pass


class ContainerService:
    def __init__(self, engine: "Engine"):
        self.engine = engine
        self.root = os.path.join(engine.data_root, "containers")
        self.runtime_root = os.path.join(engine.exec_root, "runc")
        self.spawner = shimlib.ShimSpawner(engine.exec_root, self._runtime_paths)
        os.makedirs(self.root, mode=0o710, exist_ok=True)
        self._trash = Trash(os.path.join(self.root, ".trash"))  # removed containers' files
        self._containers: dict[str, Container] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._exited: dict[str, asyncio.Event] = {}
        self._removed: dict[str, asyncio.Event] = {}
        self._pending_attach: dict[str, list[AttachRequest]] = {}
        self._monitors: dict[str, asyncio.Task] = {}
        # container id -> the task that waits for an exited container's shim to finish
        # (runc delete) and then removes its state directory; starts and removals await it
        self._shim_ends: dict[str, asyncio.Task] = {}
        self._mounted: dict[str, list[MountPlan]] = {}
        # Lifecycle observers (health checks, restart policies...): objects with optional
        # on_start(container), on_exit(container), on_remove(container) methods.
        self.observers: list[Any] = []
        # lifecycle (issue 5): restart policies and healthchecks are observers; a daemon
        # shutting down restarts nothing
        from berth.engine.containers.health import HealthMonitor
        from berth.engine.containers.restart import RestartManager
        self.shutting_down = False
        self.restarts = RestartManager(self)
        self.health = HealthMonitor(self)
        self.observers += [self.restarts, self.health]
        for row in engine.store.query("SELECT doc FROM containers"):
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

    def all(self) -> list[Container]:
        return sorted(self._containers.values(), key=lambda c: c.created, reverse=True)

    def _lock(self, container_id: str) -> asyncio.Lock:
        return self._locks.setdefault(container_id, asyncio.Lock())

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

    def using_image(self, image_id: str) -> list[Container]:
        return [c for c in self._containers.values() if c.image_id == image_id]

    def _notify(self, what: str, container: Container) -> None:
        for observer in self.observers:
            handler = getattr(observer, what, None)
            if handler:
                try:
                    handler(container)
                except Exception:  # noqa: BLE001 - an observer must not break the lifecycle
                    log.exception("%s observer failed for %s", what, container.id[:12])

    def _save(self, container: Container) -> None:
        with self.engine.store.transaction() as db:
            db.execute("INSERT OR REPLACE INTO containers (id, name, doc) VALUES (?, ?, ?)",
                       (container.id, container.name, json.dumps(container.to_doc())))

    def _event(self, container: Container, action: str, **extra: str) -> None:
        attributes = dict(container.config.get("Labels") or {})
        attributes.update(image=container.image, name=container.name)
        attributes.update(extra)
        self.engine.events.publish("container", action, container.id, attributes)

    # -- create ----------------------------------------------------------------------------
    async def create(self, body: Any, name: str | None) -> dict[str, Any]:
        config, host_config, networking = cconfig.split_body(body)
        image_ref = config.get("Image") or ""
        if not image_ref:
            raise InvalidParameter("Config cannot be empty in order to create a container")
        image = self.engine.images.get(image_ref)
        merged = cconfig.merge_image_config(config, image.config)
        merged["Image"] = image_ref
        path, args = cconfig.command_of(merged)
        host_config = cconfig.normalise_host_config(
            host_config, self.engine.config.default_runtime or "runc",
            self.engine.default_cgroupns_mode(bool(host_config.get("Privileged"))),
            self.engine.config.default_shm_size_bytes)
        self._runtime(host_config)  # an unknown runtime is refused now, not at start
        driver, log_opts = self._log_driver(host_config)
        host_config["LogConfig"] = {"Type": driver, "Config": log_opts}  # as Docker records it
        cconfig.check_create(merged, host_config)
        cconfig.check_storage_opt(host_config, self.engine.images.driver_name)
        health_validate(merged.get("Healthcheck"))  # lifecycle (issue 5)
        # networking (issue 6): networks, --ip, aliases and ports are checked now; the
        # EndpointsConfig is kept in NetworkSettings.Networks until start
        networks = getattr(self.engine, "networks", None)
        network_settings = (networks.prepare_create(merged, host_config, networking) if networks
                            else self._initial_network_settings(host_config, networking))
        # on the loop: two stats of cgroupfs and arithmetic, less than a trip to a thread
        warnings = speclib.validate_host_config(host_config)
        speclib.stop_signal(merged)  # refuse a bad StopSignal now, not at stop time
        if name:
            name = ids.check_container_name(name)
        container_id = ids.new_id()
        if name:
            self._claim_name(name, container_id)
        else:
            name = ids.generated_name(c.name for c in self._containers.values())
        mount_plans = self._plan_mounts(merged, host_config)
        directory = os.path.join(self.root, container_id)
        os.makedirs(directory, mode=0o710)
        container = Container(
            id=container_id, name=name, created=rfc3339_nano(), image=image_ref,
            image_id=image.id, config=merged, host_config=host_config, path=path, args=args,
            driver=self.engine.images.driver_name,
            log_path=os.path.join(directory, f"{container_id}-json.log")
            if self._log_driver(host_config)[0] == "json-file" else "",
            network_settings=network_settings)
        self._containers[container_id] = container  # holds the name against racing creates
        try:
            await asyncio.to_thread(self._create_filesystem, container, image.top_layer, mount_plans)
            self._save(container)
        except BaseException:
            self._containers.pop(container_id, None)
            shutil.rmtree(directory, ignore_errors=True)
            try:
                await asyncio.to_thread(self.engine.images.layers.remove_rw, container_id)
            except BerthError:
                pass
            raise
        self._event(container, "create")
        return {"Id": container_id, "Warnings": warnings or []}

    def _claim_name(self, name: str, container_id: str) -> None:
        for other in self._containers.values():
            if other.name == name:
                raise Conflict(f'Conflict. The container name "/{name}" is already in use by '
                               f'container "{other.id}". You have to remove (or rename) that '
                               "container to be able to reuse that name.")

    def _log_driver(self, host_config: dict[str, Any]) -> tuple[str, dict[str, str]]:
        log_config = host_config.get("LogConfig") or {}
        driver = log_config.get("Type") or self.engine.config.log_driver or "json-file"
        options = dict(log_config.get("Config") or {})
        if not log_config.get("Type"):
            options = {**dict(self.engine.config.log_opts), **options}
        if driver not in ("json-file", "none"):
            raise InvalidParameter(f'logger: no log driver named \'{driver}\' is registered')
        return driver, options

    def _initial_network_settings(self, host_config: dict, networking: dict) -> dict[str, Any]:
        return {"Bridge": "", "SandboxID": "", "SandboxKey": "", "HairpinMode": False,
                "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0, "Ports": {},
                "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None,
                "EndpointID": "", "Gateway": "", "GlobalIPv6Address": "",
                "GlobalIPv6PrefixLen": 0, "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "",
                "MacAddress": "", "Networks": {}}

    # -- volumes and mounts (engine.volumes does the work; engine.mounts is pure) ----------
    def _plan_mounts(self, config: dict[str, Any], host_config: dict[str, Any]) -> list[MountPlan]:
        return mounts.plan_mounts(
            config, host_config, data_root=self.engine.data_root, exists=os.path.exists,
            volumes_from=lambda ref: mounts.plans_from_docs(self.get(ref).mounts))

    def _create_filesystem(self, container: Container, top_layer: str | None,
                           plans: list[MountPlan]) -> None:
        """The container's read-write layer and its volumes (one trip to a worker thread)."""
        layers = self.engine.images.layers
        # a --rm container does not outlive a host crash (reconcile removes it): not synced
        layers.create_rw(container.id, top_layer, initlayer.prepare,  # mount points out of the diff
                         durable=not container.host_config.get("AutoRemove"))
        container.graph_data = layers.rw_metadata(container.id)
        container.mounts = self._create_volumes(container, plans)

    def _create_volumes(self, container: Container, plans: list[MountPlan]) -> list[dict[str, Any]]:
        """Create/reference the container's volumes and copy image content into new ones."""
        if not plans:
            return []
        volumes = self.engine.volumes
        layers = self.engine.images.layers
        rootfs = layers.mount(container.id)
        try:
            attached = volumes.attach(container.id, plans, rootfs=rootfs)
            try:
                volumes.populate(container.id, attached, rootfs)
            except BaseException:
                volumes.detach(container.id, attached, remove_anonymous=True)
                raise
        finally:
            layers.unmount(container.id)
        return mounts.container_mount_docs(attached)

    def _mount_volumes(self, container: Container) -> list[MountPlan]:
        started = self.engine.volumes.mount_plans(container.id, mounts.plans_from_docs(container.mounts))
        self._mounted[container.id] = started
        return started

    def _unmount_all(self, container: Container, rootfs: bool) -> None:
        """Volumes, then (with ``rootfs``) the container's filesystem; failures are logged."""
        try:
            self._unmount_volumes(container)
        except BerthError as exc:
            log.warning("unmounting volumes of %s failed: %s", container.id[:12], exc)
        if rootfs:
            try:
                self.engine.images.layers.unmount(container.id)
            except BerthError as exc:
                log.warning("unmount of %s failed: %s", container.id[:12], exc)

    def _unmount_volumes(self, container: Container) -> None:
        started = self._mounted.pop(container.id, None)
        if started is None:  # after a daemon restart: what the record says was mounted
            started = mounts.plans_from_docs(container.mounts)
        self.engine.volumes.unmount_plans(container.id, started)

    # -- start -----------------------------------------------------------------------------
    async def start(self, ref: str) -> None:
        container = self.get(ref)
        async with self._lock(container.id):
            if container.paused:
                raise Conflict("cannot start a paused container, try unpause instead")
            if container.running:
                raise NotModified("container already started")
            if container.removal_in_progress or container.state.get("Dead"):
                raise Conflict(f"cannot start container {container.id}: container is marked for removal")
            # lifecycle (issue 5): a user start resets the restart manager (dockerd's
            # ResetRestartManager): RestartCount 0, no longer "manually stopped"
            self.restarts.reset(container.id)
            container.restart_count = 0
            container.has_been_manually_stopped = False
            await self._start_locked(container)

    async def start_by_policy(self, container: Container) -> None:
        """The restart manager's start, after its back-off delay (lifecycle, issue 5). A start
        that fails leaves the container exited with the code of its last run."""
        async with self._lock(container.id):
            if not container.restarting or container.removal_in_progress \
                    or container.id not in self._containers:
                return
            code = int(container.state.get("ExitCode") or 0)
            finished = container.state.get("FinishedAt")
            try:
                await self._start_locked(container)
            except Exception as exc:  # noqa: BLE001 - recorded on the container
                message = exc.message if isinstance(exc, BerthError) else str(exc)
                log.warning("restart of %s failed: %s", container.id[:12], message)
                container.set_stopped(code, finished, error=message)
                self._save(container)
                exited = self._exited.get(container.id)
                if exited:
                    exited.set()

    async def _start_locked(self, container: Container) -> None:
        await self._shim_ended(container.id)  # the runtime may still be deleting the last run
        state = shimlib.state_dir(self.engine.exec_root, container.id)
        # clients that attached before the start get their streams first (startup.py)
        requests = [r for r in self._pending_attach.pop(container.id, []) if not r.ready.done()]
        mounted: list[str] = []  # the rootfs, once mounted: unmounted if the start fails
        try:
            os.makedirs(state, mode=0o700, exist_ok=True)
            netns = await self._network_setup(container)
            options = self._shim_options(container)
            started = await asyncio.to_thread(self._launch, container, netns, state, options,
                                              requests, mounted)
        except oci.StartError as exc:
            await self._fail_start(container, state, mounted, exc.message, exc.exit_code, requests)
            raise
        except BerthError as exc:
            await self._fail_start(container, state, mounted, exc.message, 128, requests)
            raise
        except Exception as exc:
            await self._fail_start(container, state, mounted, str(exc), 128, requests)
            raise SystemError_(str(exc)) from exc
        await self._hand_out_streams(requests, started.streams)
        container.set_running(int(started.info.get("pid") or 0), started.info.get("started_at"))
        container.restart_count = container.restart_count  # kept across restarts
        self._exit_event(container.id)
        self._save(container)
        self._event(container, "start")
        self._monitors[container.id] = asyncio.ensure_future(
            self._monitor(container, started.client, started.exit_wait))
        self._notify("on_start", container)
        await self._attach_latecomers(container, started.client)

    def _runtime_paths(self) -> list[str]:
        """Every configured runtime binary, resolved as shims run them."""
        paths = (spec.get("path") or name for name, spec in self.engine.runtimes().items())
        return sorted({shimlib.runtime_path(path) for path in paths})

    def _runtime(self, host_config: dict[str, Any]) -> tuple[str, list[str]]:
        """The container's runtime binary and its daemon.json ``runtimeArgs``."""
        name = host_config.get("Runtime") or self.engine.config.default_runtime or "runc"
        runtimes = self.engine.runtimes()
        if name not in runtimes:
            raise InvalidParameter(f"unknown or invalid runtime name: {name}")
        runtime = runtimes[name]
        return runtime.get("path") or name, [str(a) for a in runtime.get("runtimeArgs") or []]

    def _build_spec(self, container: Container, rootfs: str, netns: str | None) -> dict[str, Any]:
        directory = os.path.join(self.root, container.id)
        host_network = container.host_config.get("NetworkMode") == "host"
        hostname = hostfiles.hostname_for(container.id, container.config, container.host_config)
        container.config["Hostname"] = hostname
        paths = {name: os.path.join(directory, name) for name in ("hostname", "hosts", "resolv.conf")}
        hostfiles.write_atomic(paths["hostname"], hostname + "\n")
        # networking (issue 6): resolv.conf (embedded DNS on user networks), the hosts file of a
        # container:<id> target and the host-gateway address come from the network service
        networks = getattr(self.engine, "networks", None)
        files = networks.host_files(container) if networks else {}
        hostfiles.write_atomic(paths["hosts"], files.get("hosts") or hostfiles.hosts_file(
            hostname, container.config.get("Domainname") or "", self._addresses(container),
            container.host_config.get("ExtraHosts"), host_gateway=files.get("host_gateway"),
            host_network=host_network))
        hostfiles.write_atomic(paths["resolv.conf"], files.get("resolv.conf") or hostfiles.resolv_conf(
            hostfiles.host_resolv_conf(), container.host_config.get("Dns"),
            container.host_config.get("DnsSearch"), container.host_config.get("DnsOptions"),
            host_network=host_network))
        container.hostname_path = paths["hostname"]
        container.hosts_path = paths["hosts"]
        container.resolv_conf_path = paths["resolv.conf"]
        oci_mounts = [speclib.bind_mount(paths["resolv.conf"], "/etc/resolv.conf"),
                  speclib.bind_mount(paths["hostname"], "/etc/hostname"),
                  speclib.bind_mount(paths["hosts"], "/etc/hosts")]
        started = self._mount_volumes(container)
        oci_mounts += mounts.oci_mounts(started)
        config = self.engine.config
        default_ulimits = list(dict(config.default_ulimits).values()) or None
        spec = speclib.build_spec(
            container.config, container.host_config, container_id=container.id, rootfs=rootfs,
            mounts=oci_mounts, netns_path=netns,
            cgroup_parent=config.cgroup_parent, default_ulimits=default_ulimits,
            daemon_init=bool(config.init), default_no_new_privileges=bool(config.no_new_privileges),
            default_seccomp=self.engine.seccomp_default,
            **({"init_binary": config.init_path} if config.init_path else {}))
        propagation = mounts.rootfs_propagation(started)
        if propagation:
            spec.setdefault("linux", {})["rootfsPropagation"] = propagation
        return spec

    def _addresses(self, container: Container) -> list[str]:
        networks = (container.network_settings or {}).get("Networks") or {}
        return [n["IPAddress"] for n in networks.values() if n.get("IPAddress")]

    # Networking contract (``engine.networks``, when present): ``setup_container`` makes the
    # container's network namespace and endpoints, fills NetworkSettings and returns the netns
    # path for the OCI spec (None: runc makes a private one; host mode: no netns at all);
    # ``teardown_container`` undoes it when the container stops; ``remove_container`` forgets
    # it when the container is removed.
    async def _network_setup(self, container: Container) -> str | None:
        networks = getattr(self.engine, "networks", None)
        return await networks.setup_container(container) if networks else None

    def _shim_options(self, container: Container) -> shimlib.ShimOptions:
        driver, log_opts = self._log_driver(container.host_config)
        cgroup = speclib.container_cgroup(container.id, container.host_config,
                                          self.engine.config.cgroup_parent)
        runtime, runtime_args = self._runtime(container.host_config)
        return shimlib.ShimOptions(
            container_id=container.id, runtime_root=self.runtime_root,
            runtime=runtime, runtime_args=runtime_args,
            stdin=bool(container.config.get("OpenStdin")), tty=bool(container.config.get("Tty")),
            log_driver=driver, log_path=container.log_path or None, log_opts=log_opts,
            log_attrs=(logattrs.log_attributes(container, log_opts) or None)
            if driver == "json-file" else None,
            oom=cgroups.oom_probe(cgroup), run=True)

    def _launch(self, container: Container, netns: str | None, state: str,
                options: shimlib.ShimOptions, requests: list[AttachRequest],
                mounted: list[str]) -> startup.Started:
        """Shim, rootfs, spec, bundle, ``runc run --detach`` and start, in one trip to a
        worker thread. The rootfs goes into ``mounted`` as soon as it is mounted."""
        def write_bundle() -> None:
            # a --rm container's changes go with it, even after a crash (reconcile removes it)
            rootfs = self.engine.images.layers.mount(container.id,
                                                     bool(container.host_config.get("AutoRemove")))
            mounted.append(rootfs)
            oci.write_bundle(state, self._build_spec(container, rootfs, netns))

        return startup.launch_and_start(
            state, options, self.spawner, write_bundle,
            [(r.stdin, r.stdout, r.stderr) for r in requests],
            bool(container.config.get("StdinOnce")), _own_pid_namespace(container), _end_shim)

    async def _attach_latecomers(self, container: Container, client: shimlib.ShimClient) -> None:
        """Clients that attached while the container was starting: streams of the running
        container (what it printed before they came is in its log)."""
        requests = [r for r in self._pending_attach.pop(container.id, []) if not r.ready.done()]
        if not requests:
            return
        stdin_once = bool(container.config.get("StdinOnce"))
        streams = await asyncio.to_thread(
            lambda: [startup.attach(client, (r.stdin, r.stdout, r.stderr), stdin_once) for r in requests])
        await self._hand_out_streams(requests, streams)

    async def _hand_out_streams(self, requests: list[AttachRequest], streams: list[Any]) -> None:
        for request, raw in zip(requests, streams):
            if request.ready.done():  # the attacher went away meanwhile
                if not isinstance(raw, Exception):
                    raw.close()
            elif isinstance(raw, Exception):
                request.ready.set_exception(raw)
            else:
                try:
                    request.ready.set_result(await AsyncShimStream.wrap(raw))
                except Exception as exc:  # noqa: BLE001 - hand the failure to the attacher
                    request.ready.set_exception(exc)

    async def _fail_start(self, container: Container, state: str, mounted: list[str],
                          message: str, exit_code: int, requests: list[AttachRequest]) -> None:
        """``mounted``: the rootfs if it was mounted; ``requests``: the attached clients."""
        container.set_start_error(message, exit_code)
        self._save(container)
        for request in requests + self._pending_attach.pop(container.id, []):
            if not request.ready.done():
                request.ready.set_exception(Conflict(message))
        await self._release_resources(container, state, unmount=bool(mounted))
        exited = self._exited.get(container.id)
        if exited:
            exited.set()
        if container.host_config.get("AutoRemove"):
            # As dockerd: a --rm container that cannot start is removed (`docker run --rm`
            # waits for that), after this start call has answered with its error.
            asyncio.get_running_loop().call_soon(
                lambda: asyncio.ensure_future(self._auto_remove(container)))

    async def _release_resources(self, container: Container, state: str, unmount: bool = True,
                                 remove_state: bool = True) -> None:
        if unmount or container.mounts or self._mounted.get(container.id):
            await asyncio.to_thread(self._unmount_all, container, unmount)
        else:  # nothing to unmount: no trip to a worker thread
            self._mounted.pop(container.id, None)
        networks = getattr(self.engine, "networks", None)
        if networks:
            try:
                await networks.teardown_container(container)
            except Exception:  # noqa: BLE001 - the container is gone either way; log and go on
                log.exception("network teardown of %s failed", container.id[:12])
        if remove_state:
            shutil.rmtree(state, ignore_errors=True)

    # -- exit ------------------------------------------------------------------------------
    async def _monitor(self, container: Container, client: shimlib.ShimClient,
                       exit_wait: shimlib.PendingExit | None = None) -> None:
        """``exit_wait``: the wait the start sent already (startup.py)."""
        notice = None
        try:
            if _own_pid_namespace(container):
                notice = await exit_notice(exit_wait or client.request_wait_exited())
                result = notice.record
            else:  # other processes may outlive init until runc delete has killed them
                result = await wait_in_thread(lambda: client.wait(None))
        except asyncio.CancelledError:
            return
        except Exception as exc:  # noqa: BLE001 - a monitor that died would leave it "running"
            if not isinstance(exc, BerthError):
                log.exception("waiting on the shim of %s failed", container.id[:12])
            # the shim unlinks its socket just before it writes exit.json: give it a moment
            result = await asyncio.to_thread(client.read_exit_when_gone) or \
                {"exit_code": 255, "error": getattr(exc, "message", None) or str(exc)}
        await self._on_exit(container, result, notice)

    async def _on_exit(self, container: Container, result: dict[str, Any],
                       notice: shimlib.ExitNotice | None = None) -> None:
        """Record an exit. With a ``notice`` the shim is still deleting the runtime's
        container: the rest of the clean-up goes on meanwhile, and the state directory goes
        once the shim is done (``_shim_ended``)."""
        code = int(result.get("exit_code", 255))
        # a --rm container is removed right after: its removal unmounts the rootfs and deletes
        # the record (_auto_remove saves the stopped state only if that fails)
        auto_remove = bool(container.host_config.get("AutoRemove"))
        async with self._lock(container.id):
            self._monitors.pop(container.id, None)
            state = shimlib.state_dir(self.engine.exec_root, container.id)
            container.set_stopped(code, result.get("finished_at") or rfc3339_nano(),
                                  oom_killed=bool(result.get("oom_killed")))
            # The restart policy decides now, before the first await: a `docker stop` in the
            # clean-up below would find the container stopped (a no-op) and then see it
            # restart. dockerd too sets "restarting" before it emits die.
            self._notify("on_exit", container)
            await self._release_resources(container, state, unmount=not auto_remove,
                                          remove_state=notice is None)
            if notice is not None:
                self._shim_ends[container.id] = asyncio.ensure_future(
                    self._remove_state_when_ended(container.id, notice, state))
            if not auto_remove:
                self._save(container)
            if result.get("oom_killed"):
                self._event(container, "oom")
            self._event(container, "die", exitCode=str(code))
            exited = self._exited.get(container.id)
            if exited:
                exited.set()
        if auto_remove:
            await self._auto_remove(container)

    async def _remove_state_when_ended(self, container_id: str, notice: shimlib.ExitNotice,
                                       state: str) -> None:
        try:
            await wait_ended(notice)
            await asyncio.to_thread(shutil.rmtree, state, True)
        finally:
            if self._shim_ends.get(container_id) is asyncio.current_task():
                del self._shim_ends[container_id]

    async def _shim_ended(self, container_id: str) -> None:
        """Wait until the shim of the container's last run has finished, and its state
        directory is gone."""
        task = self._shim_ends.get(container_id)
        if task is not None:
            try:
                await asyncio.shield(task)
            except Exception:  # noqa: BLE001 - the shim is gone either way
                log.exception("clean-up after the shim of %s failed", container_id[:12])

    async def _auto_remove(self, container: Container) -> None:
        if container.id not in self._containers or container.removal_in_progress:
            return  # gone already, or going: that removal unmounts and forgets it
        try:
            await self.remove(container.id, force=True, volumes=True)
        except BerthError as exc:
            log.warning("auto-remove of %s failed: %s", container.id[:12], exc)
            if container.id in self._containers and not container.removal_in_progress:
                async with self._lock(container.id):  # kept: as any stopped container
                    await asyncio.to_thread(self._unmount_all, container, True)
                    self._save(container)

    def _client(self, container: Container) -> shimlib.ShimClient:
        state = shimlib.state_dir(self.engine.exec_root, container.id)
        return shimlib.ShimClient(os.path.join(state, shimlib.SOCKET_NAME))

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

    # -- stop / kill / restart -------------------------------------------------------------
    async def kill(self, ref: str, signal_name: str | None = None) -> None:
        container = self.get(ref)
        number = speclib.stop_signal({"StopSignal": signal_name or "SIGKILL"})
        if not container.running:
            raise Conflict(f"Cannot kill container: {ref}: Container {container.id} is not running")
        await self._signal(container, number)

    async def _signal(self, container: Container, number: int, manual: bool = True) -> None:
        # lifecycle (issue 5), as dockerd's killWithSignal: the stop signal (any signal when
        # no StopSignal is configured) or SIGKILL means "exit on next": the restart policy
        # no longer applies; any kill marks the container manually stopped; a restarting
        # container gets no signal; a paused one is thawed after the signal so it acts on it.
        configured = container.config.get("StopSignal")
        exit_on_next = (not configured or number == signals.SIGKILL
                        or speclib.stop_signal(container.config) == number)
        if exit_on_next:
            self.restarts.exit_on_next(container.id)
        if manual and not self.shutting_down:
            container.has_been_manually_stopped = True
            self._save(container)
        if container.restarting:
            if exit_on_next:
                self.restarts.cancel(container)
            return
        unpause = exit_on_next and container.paused
        client = self._client(container)
        try:
            await asyncio.to_thread(client.kill, number, False)
        except (BerthError, OSError) as exc:
            # the shim goes away when the container exits: give its exit a moment to arrive
            if container.running and not await self.wait_exit(container, 2.0):
                message = exc.message if isinstance(exc, BerthError) else str(exc)
                raise SystemError_(f"Cannot kill container: {container.id}: {message}") from exc
            unpause = False
        self._event(container, "kill", signal=str(number))
        if unpause:
            await self.resume_after_signal(container)

    def runtime_for(self, container: Container) -> oci.Runtime:
        """The OCI runtime driver of a container (pause/resume/update/ps; lifecycle, issue 5)."""
        binary, args = self._runtime(container.host_config)
        return oci.Runtime(binary, self.runtime_root, extra_args=args)

    async def resume_after_signal(self, container: Container) -> None:
        """Thaw a paused container that was just sent its stop signal (dockerd does this in
        kill; the runtime's resume event becomes ``unpause``)."""
        try:
            await asyncio.to_thread(self.runtime_for(container).resume, container.id)
        except BerthError as exc:
            log.warning("cannot unpause container %s: %s", container.id[:12], exc.message)
            return
        if container.paused:
            container.set_paused(False)
            self._save(container)
            self._event(container, "unpause")
            self.health.resume(container)

    async def stop(self, ref: str, timeout: int | None = None, signal_name: str | None = None) -> None:
        container = self.get(ref)
        if not container.running:
            raise NotModified("container already stopped")
        container.has_been_manually_stopped = True
        self._save(container)
        await self._stop_container(container, timeout, signal_name)
        await self._exit_recorded(container)
        self._event(container, "stop")

    async def _exit_recorded(self, container: Container) -> None:
        """Wait until the exit handler (which holds the container's lock from marking it
        stopped until ``die`` is out) is done: dockerd's ``stop`` event comes after ``die``."""
        async with self._lock(container.id):
            pass

    async def _stop_container(self, container: Container, timeout: int | None,
                              signal_name: str | None = None, manual: bool = True) -> None:
        if timeout is None:
            timeout = container.config.get("StopTimeout")
        if timeout is None:
            timeout = DEFAULT_STOP_TIMEOUT
        number = speclib.stop_signal({"StopSignal": signal_name} if signal_name else container.config)
        if number != signals.SIGKILL:
            await self._signal(container, number, manual)
            if await self.wait_exit(container, None if timeout < 0 else timeout):
                return
            log.info("Container %s failed to exit within %ss of signal %d - using the force",
                     container.id[:12], timeout, number)
        await self._signal(container, signals.SIGKILL, manual)
        await self.wait_exit(container, None)

    async def restart(self, ref: str, timeout: int | None = None, signal_name: str | None = None) -> None:
        container = self.get(ref)
        if container.running:
            await self._stop_container(container, timeout, signal_name)
            await self._exit_recorded(container)
            self._event(container, "stop")  # as dockerd's restart, which stops first
        await self.start(container.id)
        self._event(container, "restart")

    # -- wait ------------------------------------------------------------------------------
    def prepare_wait(self, ref: str, condition: str = "not-running"):
        """Register a wait now and return a coroutine function that completes it.

        Registering first matters: ``docker run`` asks for ``next-exit`` and starts the
        container as soon as the response headers arrive."""
        container = self.get(ref)
        if condition not in ("not-running", "next-exit", "removed", ""):
            raise InvalidParameter(f"invalid condition: \"{condition}\"")
        event: asyncio.Event | None = None
        if condition == "removed":
            event = self._removed.setdefault(container.id, asyncio.Event())
        elif condition == "next-exit" or container.running:
            event = self._exit_event(container.id)

        async def finish() -> dict[str, Any]:
            if event is not None:
                await event.wait()
            result: dict[str, Any] = {"StatusCode": container.state["ExitCode"]}
            # as dockerd: a removal that succeeded clears the error (of a failed start)
            if container.state.get("Error") and condition != "removed":
                result["Error"] = {"Message": container.state["Error"]}
            return result
        return finish

    def _exit_event(self, container_id: str) -> asyncio.Event:
        """The event set when the current (or next) run ends."""
        event = self._exited.get(container_id)
        if event is None or event.is_set():
            event = self._exited[container_id] = asyncio.Event()
        return event

    # -- remove ----------------------------------------------------------------------------
    async def remove(self, ref: str, force: bool = False, volumes: bool = False) -> None:
        container = self.get(ref)
        if container.running and not force:
            if container.paused:  # lifecycle (issue 5): dockerd's texts for each state
                raise Conflict(f'cannot remove container "/{container.name}": container is '
                               "paused and must be unpaused first")
            state = "restarting" if container.restarting else "running"
            raise Conflict(f'cannot remove container "/{container.name}": container is {state}: '
                           "stop the container before removing or force remove")
        if container.removal_in_progress:
            raise Conflict(f"removal of container {container.id[:12]} is already in progress")
        container.removal_in_progress = True
        try:
            if container.running:
                await self._signal(container, signals.SIGKILL)
                await self.wait_exit(container, None)
            async with self._lock(container.id):
                await self._remove_locked(container, volumes)
        except BaseException:
            container.removal_in_progress = False
            raise

    async def _remove_locked(self, container: Container, volumes: bool) -> None:
        monitor = self._monitors.pop(container.id, None)
        if monitor:
            monitor.cancel()
        errors = await asyncio.to_thread(self._remove_layer_and_volumes, container, volumes)
        for error in errors:
            log.warning("removing volumes of %s: %s", container.id[:12], error)
        networks = getattr(self.engine, "networks", None)
        if networks:
            await networks.remove_container(container)
        self._trash.discard(os.path.join(self.root, container.id))
        if container.id not in self._shim_ends:
            shutil.rmtree(shimlib.state_dir(self.engine.exec_root, container.id), ignore_errors=True)
        # else the shim is still deleting the runtime's container: its state directory goes
        # when it is done (_remove_state_when_ended), and nothing of it can clash with a new
        # container, which has its own ID; a daemon killed meanwhile cleans it up at restart
        with self.engine.store.transaction() as db:
            db.execute("DELETE FROM containers WHERE id = ?", (container.id,))
        self._containers.pop(container.id, None)
        self._locks.pop(container.id, None)
        self._event(container, "destroy")
        self._notify("on_remove", container)
        removed = self._removed.pop(container.id, None)
        if removed:
            removed.set()

    def _remove_layer_and_volumes(self, container: Container, anonymous_volumes: bool) -> list[str]:
        """The container's layer goes and its volume references are dropped (with
        ``anonymous_volumes``, as ``rm -v``, its anonymous volumes too); returns errors."""
        try:
            self.engine.images.layers.remove_rw(container.id)
        except NotFound:
            pass
        return self.engine.volumes.detach(container.id, mounts.plans_from_docs(container.mounts),
                                          remove_anonymous=anonymous_volumes)

    # -- rename / resize -------------------------------------------------------------------
    async def rename(self, ref: str, new_name: str) -> None:
        container = self.get(ref)
        if not new_name:
            raise InvalidParameter("Neither old nor new names may be empty")
        new_name = ids.check_container_name(new_name)
        if new_name == container.name:
            raise InvalidParameter(f"Renaming a container with the same name as its current "
                                   f"name")
        async with self._lock(container.id):
            self._claim_name(new_name, container.id)
            old = container.name
            container.name = new_name
            networks = getattr(self.engine, "networks", None)
            if networks:
                networks.rename_container(container, old)
            self._save(container)
        self._event(container, "rename", oldName="/" + old)

    async def resize(self, ref: str, height: int, width: int) -> None:
        container = self.get(ref)
        if not container.running:
            raise Conflict(f"Container {container.id} is not running")
        await asyncio.to_thread(self._client(container).resize, height, width)
        self._event(container, "resize", height=str(height), width=str(width))

    # -- attach ----------------------------------------------------------------------------
    def detached(self, container_id: str) -> None:
        """An attached client left with the detach keys (dockerd's ``detach`` event)."""
        container = self._containers.get(container_id)
        if container is not None:
            self._event(container, "detach")

    async def attach(self, ref: str, stdin: bool, stdout: bool, stderr: bool) -> AsyncShimStream:
        """A live stream of the container's stdio. For a container that has not started yet,
        the stream is connected when it starts (``docker run`` attaches before starting)."""
        container = self.get(ref)
        self._event(container, "attach")
        if container.running:
            raw = await asyncio.to_thread(self._client(container).attach, stdin, stdout, stderr,
                                          bool(container.config.get("StdinOnce")))
            return await AsyncShimStream.wrap(raw)
        if container.state["Status"] not in ("created", "exited") or container.removal_in_progress:
            raise Conflict("You cannot attach to a stopped container, start it first")
        request = AttachRequest(stdin, stdout, stderr)
        self._pending_attach.setdefault(container.id, []).append(request)
        return await request.ready

    def cancel_attach(self, ref: str) -> None:
        """A client that attached to a not-yet-started container went away."""
        try:
            container = self.get(ref)
        except NotFound:
            return
        pending = self._pending_attach.get(container.id, [])
        for request in pending:
            if not request.ready.done():
                request.ready.cancel()

    # -- logs ------------------------------------------------------------------------------
    async def logs(self, ref: str, options: LogOptions) -> AsyncIterator[LogLine]:
        container = self.get(ref)
        driver, log_opts = self._log_driver(container.host_config)
        if driver == "none" or not container.log_path:
            raise InvalidParameter(f'configured logging driver does not support reading')
        max_files = int(log_opts.get("max-file", "1") or 1)
        offset = current_size(container.log_path)
        lines = await asyncio.to_thread(
            lambda: list(existing_lines(container.log_path, options, max_files, offset)))
        for line in lines:
            yield line
        if options.follow and container.running:
            async for line in follow_lines(container.log_path, options,
                                           lambda: container.running, offset):
                yield line

    # -- daemon start / stop ---------------------------------------------------------------
    async def restore(self) -> None:
        """After a daemon (re)start: reattach to live shims (live-restore) or stop them,
        record exits that happened while the daemon was away, clean what crashes left, and
        start the containers whose restart policy asks for it (``containers.reconcile``)."""
        from berth.engine.containers import reconcile
        await reconcile.restore(self, bool(self.engine.config.live_restore))

    def reattach(self, container: Container, client: shimlib.ShimClient) -> None:
        """Follow a container whose shim outlived the previous daemon (live-restore)."""
        self._exit_event(container.id)
        self._monitors[container.id] = asyncio.ensure_future(self._monitor(container, client))

    async def shutdown(self, live_restore: bool) -> None:
        """Without live-restore, stop every running container (in parallel) before exiting.
        Pending restarts and health probes end either way (lifecycle, issue 5)."""
        self.shutting_down = True
        for observer in self.observers:
            stop = getattr(observer, "shutdown", None)
            if stop is not None:
                try:
                    await stop()
                except Exception:  # noqa: BLE001 - shutting down regardless
                    log.exception("observer shutdown failed")
        running = [c for c in self._containers.values() if c.running]
        if not live_restore and running:
            for container in running:
                if container.restarting:  # as dockerd's kill of a restarting container
                    self.restarts.cancel(container)
            await asyncio.gather(*(self._stop_container(c, None, manual=False)
                                   for c in running if c.running), return_exceptions=True)
        for task in list(self._monitors.values()):
            task.cancel()
        if self._shim_ends:  # a few ms each; what is left is cleaned up at the next start
            await asyncio.wait(list(self._shim_ends.values()), timeout=10)
        await asyncio.to_thread(self._trash.wait_empty, 10)
        await asyncio.to_thread(self.spawner.close)
