"""Containers' lifecycle: create, start, stop, kill, restart, wait, remove, rename, resize,
attach, logs, and the daemon's shutdown.

Records are read and written through ``ContainerRecords``; each state change holds the
container's lock there. A
running container is a shim process (``berth.runtime.shim``) that outlives the daemon; a
monitor task per running container waits for its exit and records it. Restart policies and
healthchecks are observers of starts, exits and removals.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal as signals
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable, Protocol

from berth.distribution import platform as platforms
from berth.engine import ids
from berth.engine import mounts
from berth.engine.mounts import MountPlan
from berth.engine.containers import config as cconfig
from berth.engine.containers import logattrs, startup
from berth.engine.containers.health import HealthMonitor, validate as health_validate
from berth.engine.containers.observers import LifecycleObserver
from berth.runtime.logread import LogLine, LogOptions, current_size, existing_lines, follow_lines
from berth.engine.containers.record import Container
from berth.engine.containers.records import ContainerRecords
from berth.engine.containers.restart import RestartManager
from berth.engine.containers.shims import Shims
from berth.engine.containers.streams import (AsyncShimStream, exit_notice, wait_ended,
                                             wait_in_thread)
from berth.engine.containers.waits import ExitWaits
from berth.engine.volumes import VolumeService
from berth.errors import BerthError, Conflict, InvalidParameter, NotFound, NotModified, SystemError_
from berth.network import hostfiles
from berth.runtime import cgroups, initlayer, oci, shim as shimlib, spec as speclib
from berth.storage import fsutil, shm as shmlib
from berth.storage.layers import LayerStore
from berth.storage.trash import Trash
from berth.timeutil import rfc3339_nano

log = logging.getLogger("berth.containers")

DEFAULT_STOP_TIMEOUT = 10
KILL_EXIT_WAIT = 10.0       # seconds a SIGKILL's answer waits for the exit
RECENTLY_REMOVED = 64       # auto-removed containers whose exit a late `wait` still gets
AUTO_REMOVE_GRACE = 1.0     # seconds an exited --rm container stays when nobody waits for it


@dataclass
class AttachRequest:
    """What a client attached with; connected to the shim when the container starts."""

    stdin: bool
    stdout: bool
    stderr: bool
    ready: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())


def _write_host_file(path: str, text: str) -> None:
    """Replace the file so a running container's readers see the old or the new one. The
    first write (a first start: no container reads it yet) creates it in place, a rename less."""
    data = text.encode()
    try:
        fsutil.write_new_files(os.path.dirname(path), {os.path.basename(path): data}, durable=False)
    except FileExistsError:
        fsutil.atomic_write(path, data, durable=False)


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


class ContainerNetworking(Protocol):
    """What the lifecycle asks of the network service. ``prepare_create`` checks networks,
    addresses, ports and legacy links and returns the initial NetworkSettings;
    ``register_links`` records a new container's legacy links (``--link``, in the form
    inspect shows); ``setup_container`` makes the container's network namespace and
    endpoints, fills NetworkSettings and returns the netns path for the OCI spec (None: runc
    makes a private one; host mode: none at all); ``teardown_container`` undoes it when the
    container stops; ``remove_container`` forgets it when it is removed; ``host_files`` gives
    the texts of its /etc/hosts and /etc/resolv.conf (keys ``hosts`` and ``resolv.conf``),
    ``joined_files`` the paths of the files it shares instead (``--network container:<x>``:
    x's own hostname, hosts and resolv.conf, as dockerd); ``link_environment`` the
    variables of its legacy links."""

    def prepare_create(self, config: dict[str, Any], host_config: dict[str, Any],
                       networking: dict[str, Any]) -> dict[str, Any]: ...
    def register_links(self, container: Container) -> None: ...
    async def setup_container(self, container: Container) -> str | None: ...
    async def teardown_container(self, container: Container) -> None: ...
    async def remove_container(self, container: Container) -> None: ...
    def rename_container(self, container: Container, old_name: str) -> None: ...
    def host_files(self, container: Container) -> dict[str, str]: ...
    def joined_files(self, container: Container) -> dict[str, str] | None: ...
    def link_environment(self, container: Container) -> list[str]: ...


class ImageLookup(Protocol):
    """The image store as containers see it: ``get`` resolves a reference to an image
    (``id``, ``config``, ``top_layer``)."""

    driver_name: str

    def get(self, ref: str) -> Any: ...


def _platform_check(image_ref: str, document: dict[str, Any], platform: str) -> str | None:
    """moby's create: an image of another platform than the one asked for is not found
    (the docker CLI then pulls that platform); without a platform asked for, one that the
    host cannot run gets Docker's warning."""
    actual = platforms.of_image(document)
    if platform:
        wanted = platforms.parse(platform)
        if not platforms.matches(wanted, actual):
            raise NotFound(f"image with reference {image_ref} was found but does not match the "
                           f"specified platform: wanted {wanted}, actual: {actual}")
        return None
    host = platforms.host()
    if not platforms.matches(host, actual):
        return (f"The requested image's platform ({actual}) does not match the detected host "
                f"platform ({host}) and no specific platform was requested")
    return None


class ContainerService:
    def __init__(self, records: ContainerRecords, waits: ExitWaits, shims: Shims,
                 images: ImageLookup, layers: LayerStore, volumes: VolumeService,
                 networks: ContainerNetworking, config: Any, *, data_root: str,
                 seccomp_default: Any, cgroupns_default: Callable[[bool], str],
                 health: HealthMonitor, restarts: RestartManager):
        self.records = records
        self.waits = waits
        self.shims = shims
        self.images = images
        self.layers = layers
        self.volumes = volumes
        self.networks = networks
        self.config = config
        self.data_root = data_root
        self.seccomp_default = seccomp_default  # read once at daemon start, as dockerd
        self.cgroupns_default = cgroupns_default
        self.health = health
        self.restarts = restarts
        self.root = os.path.join(data_root, "containers")
        os.makedirs(self.root, mode=0o710, exist_ok=True)
        self._trash = Trash(os.path.join(self.root, ".trash"))  # removed containers' files
        self._pending_attach: dict[str, list[AttachRequest]] = {}
        self._monitors: dict[str, asyncio.Task] = {}
        # container id -> the task that waits for an exited container's shim to finish
        # (runc delete) and then removes its state directory; starts and removals await it
        self._shim_ends: dict[str, asyncio.Task] = {}
        self._mounted: dict[str, list[MountPlan]] = {}
        # --rm containers removed lately: id -> (name, exit code), for waits that come late
        self._auto_removed: dict[str, tuple[str, int]] = {}
        self.observers: list[LifecycleObserver] = [restarts, health]
        self.shutting_down = False  # a daemon stopping its containers: not the user's stop

    def add_observer(self, observer: LifecycleObserver) -> None:
        self.observers.append(observer)

    # -- lookup ----------------------------------------------------------------------------
    def get(self, ref: str) -> Container:
        return self.records.get(ref)

    def all(self) -> list[Container]:
        return self.records.all()

    def counts(self) -> dict[str, int]:
        return self.records.counts()

    def _notify(self, what: str, container: Container) -> None:
        for observer in self.observers:
            try:
                getattr(observer, what)(container)  # on_start, on_exit or on_remove
            except Exception:  # noqa: BLE001 - an observer must not break the lifecycle
                log.exception("%s observer failed for %s", what, container.id[:12])

    # -- create ----------------------------------------------------------------------------
    async def create(self, body: Any, name: str | None, platform: str = "") -> dict[str, Any]:
        config, host_config, networking = cconfig.split_body(body)
        image_ref = config.get("Image") or ""
        if not image_ref:
            raise InvalidParameter("Config cannot be empty in order to create a container")
        image = self.images.get(image_ref)
        platform_warning = _platform_check(image_ref, image.document, platform)
        merged = cconfig.merge_image_config(config, image.config)
        merged["Image"] = image_ref
        path, args = cconfig.command_of(merged)
        host_config = cconfig.normalise_host_config(
            host_config, self.shims.default_runtime_name,
            self.cgroupns_default(bool(host_config.get("Privileged"))),
            self.config.default_shm_size_bytes, self.config.default_ipc_mode)
        self.shims.runtime(host_config)  # an unknown runtime is refused now, not at start
        driver, log_opts = self._log_driver(host_config)
        host_config["LogConfig"] = {"Type": driver, "Config": log_opts}  # as Docker records it
        cconfig.check_create(merged, host_config)
        cconfig.check_storage_opt(host_config, self.images.driver_name)
        health_validate(merged.get("Healthcheck"))
        # networks, --ip, aliases and ports are checked now; the EndpointsConfig is kept in
        # NetworkSettings.Networks until start
        network_settings = self.networks.prepare_create(merged, host_config, networking)
        # on the loop: two stats of cgroupfs and arithmetic, less than a trip to a thread
        warnings = speclib.validate_host_config(host_config)
        if platform_warning:
            warnings = list(warnings or []) + [platform_warning]
        speclib.stop_signal(merged)  # refuse a bad StopSignal now, not at stop time
        if name:
            name = ids.check_container_name(name)
        container_id = ids.new_id()
        if name:
            self.records.claim_name(name, container_id)
        else:
            name = self.records.generated_name()
        mount_plans = self._plan_mounts(merged, host_config)
        directory = os.path.join(self.root, container_id)
        os.makedirs(directory, mode=0o710)
        container = Container(
            id=container_id, name=name, created=rfc3339_nano(), image=image_ref,
            image_id=image.id, config=merged, host_config=host_config, path=path, args=args,
            driver=self.images.driver_name,
            log_path=os.path.join(directory, f"{container_id}-json.log")
            if self._log_driver(host_config)[0] == "json-file" else "",
            network_settings=network_settings)
        self.networks.register_links(container)
        self.records.add(container)  # holds the name against racing creates
        try:
            await asyncio.to_thread(self._create_filesystem, container, image.top_layer, mount_plans)
            self.records.save(container)
        except BaseException:
            self.records.discard(container_id)
            shutil.rmtree(directory, ignore_errors=True)
            try:
                await asyncio.to_thread(self.layers.remove_rw, container_id)
            except BerthError:
                pass
            raise
        self.records.emit(container, "create")
        return {"Id": container_id, "Warnings": warnings or []}

    def _log_driver(self, host_config: dict[str, Any]) -> tuple[str, dict[str, str]]:
        log_config = host_config.get("LogConfig") or {}
        driver = log_config.get("Type") or self.config.log_driver or "json-file"
        options = dict(log_config.get("Config") or {})
        if not log_config.get("Type"):
            options = {**dict(self.config.log_opts), **options}
        if driver not in ("json-file", "none"):
            raise InvalidParameter(f'logger: no log driver named \'{driver}\' is registered')
        return driver, options

    # -- volumes and mounts (the volume service does the work; engine.mounts is pure) ------
    def _plan_mounts(self, config: dict[str, Any], host_config: dict[str, Any]) -> list[MountPlan]:
        return mounts.plan_mounts(
            config, host_config, data_root=self.data_root, exists=os.path.exists,
            volumes_from=lambda ref: mounts.plans_from_docs(self.get(ref).mounts))

    def _create_filesystem(self, container: Container, top_layer: str | None,
                           plans: list[MountPlan]) -> None:
        """The container's read-write layer and its volumes (one trip to a worker thread)."""
        layers = self.layers
        # a --rm container does not outlive a host crash (reconcile removes it): not synced
        layers.create_rw(container.id, top_layer, initlayer.prepare,  # mount points out of the diff
                         durable=not container.host_config.get("AutoRemove"))
        container.graph_data = layers.rw_metadata(container.id)
        container.mounts = self._create_volumes(container, plans)

    def _create_volumes(self, container: Container, plans: list[MountPlan]) -> list[dict[str, Any]]:
        """Create/reference the container's volumes and copy image content into new ones."""
        if not plans:
            return []
        volumes = self.volumes
        layers = self.layers
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
        started = self.volumes.mount_plans(container.id, mounts.plans_from_docs(container.mounts))
        self._mounted[container.id] = started
        return started

    def _unmount_all(self, container: Container, rootfs: bool) -> None:
        """Volumes, a shareable /dev/shm, then (with ``rootfs``) the container's filesystem;
        failures are logged."""
        if container.host_config.get("IpcMode") == "shareable":
            try:
                shmlib.unmount_shm(self.shm_dir(container.id))
            except OSError as exc:
                log.warning("unmounting /dev/shm of %s failed: %s", container.id[:12], exc)
        try:
            self._unmount_volumes(container)
        except BerthError as exc:
            log.warning("unmounting volumes of %s failed: %s", container.id[:12], exc)
        if rootfs:
            try:
                self.layers.unmount(container.id)
            except BerthError as exc:
                log.warning("unmount of %s failed: %s", container.id[:12], exc)

    def _unmount_volumes(self, container: Container) -> None:
        started = self._mounted.pop(container.id, None)
        if started is None:  # after a daemon restart: what the record says was mounted
            started = mounts.plans_from_docs(container.mounts)
        self.volumes.unmount_plans(container.id, started)

    # -- start -----------------------------------------------------------------------------
    async def start(self, ref: str) -> None:
        container = self.get(ref)
        async with self.records.lock(container.id):
            if container.paused:
                raise Conflict("cannot start a paused container, try unpause instead")
            if container.running:
                raise NotModified("container already started")
            if container.removal_in_progress or container.state.get("Dead"):
                raise Conflict(f"cannot start container {container.id}: container is marked for removal")
            # a user start resets the restart manager (dockerd's ResetRestartManager):
            # RestartCount 0, no longer "manually stopped"
            self.restarts.reset(container.id)
            container.restart_count = 0
            container.has_been_manually_stopped = False
            await self._start_locked(container)

    async def start_by_policy(self, container: Container) -> None:
        """The restart manager's start, after its back-off delay. A start that fails leaves
        the container exited with the code of its last run."""
        async with self.records.lock(container.id):
            if not container.restarting or container.removal_in_progress \
                    or container.id not in self.records:
                return
            code = int(container.state.get("ExitCode") or 0)
            finished = container.state.get("FinishedAt")
            try:
                await self._start_locked(container)
            except Exception as exc:  # noqa: BLE001 - recorded on the container
                message = exc.message if isinstance(exc, BerthError) else str(exc)
                log.warning("restart of %s failed: %s", container.id[:12], message)
                container.set_stopped(code, finished, error=message)
                self.records.save(container)
                self.waits.exited(container.id)

    async def _start_locked(self, container: Container) -> None:
        await self._shim_ended(container.id)  # the runtime may still be deleting the last run
        state = self.shims.state_dir(container.id)
        # clients that attached before the start get their streams first (startup.py)
        requests = [r for r in self._pending_attach.pop(container.id, []) if not r.ready.done()]
        mounted: list[str] = []  # the rootfs, once mounted: unmounted if the start fails
        try:
            os.makedirs(state, mode=0o700, exist_ok=True)
            netns = await self.networks.setup_container(container)
            options = self._shim_options(container)
            started = await asyncio.to_thread(self._launch, container, netns, state, options,
                                              requests, mounted)
        except oci.StartError as exc:
            await self._fail_start(container, mounted, exc.message, exc.exit_code, requests)
            raise
        except BerthError as exc:
            await self._fail_start(container, mounted, exc.message, 128, requests)
            raise
        except Exception as exc:
            await self._fail_start(container, mounted, str(exc), 128, requests)
            raise SystemError_(str(exc)) from exc
        await self._hand_out_streams(requests, started.streams)
        container.set_running(int(started.info.get("pid") or 0), started.info.get("started_at"))
        self.waits.next_exit(container.id)
        self.records.save(container)
        self.records.emit(container, "start")
        self._monitors[container.id] = asyncio.ensure_future(
            self._monitor(container, started.client, started.exit_wait))
        self._notify("on_start", container)
        await self._attach_latecomers(container, started.client)

    def _build_spec(self, container: Container, rootfs: str, netns: str | None) -> dict[str, Any]:
        directory = os.path.join(self.root, container.id)
        hostname = hostfiles.hostname_for(container.id, container.config, container.host_config)
        container.config["Hostname"] = hostname
        paths = self.networks.joined_files(container)
        if paths is None:  # its own files (a container: one shares its target's, as dockerd)
            paths = {name: os.path.join(directory, name) for name in ("hostname", "hosts", "resolv.conf")}
            files = self.networks.host_files(container)
            for name, text in (("hostname", hostname + "\n"), ("hosts", files["hosts"]),
                               ("resolv.conf", files["resolv.conf"])):
                _write_host_file(paths[name], text)
        container.hostname_path = paths["hostname"]
        container.hosts_path = paths["hosts"]
        container.resolv_conf_path = paths["resolv.conf"]
        oci_mounts = [speclib.bind_mount(paths["resolv.conf"], "/etc/resolv.conf"),
                  speclib.bind_mount(paths["hostname"], "/etc/hostname"),
                  speclib.bind_mount(paths["hosts"], "/etc/hosts")]
        pid_ns, ipc_ns, shm = self._joined_namespaces(container)
        if (container.host_config.get("IpcMode") or "") == "shareable":
            shm = self.shm_dir(container.id)  # its own, on the host: others may join it
            shmlib.mount_shm(shm, int(container.host_config.get("ShmSize") or 0) or 64 << 20)
        if shm is not None:
            oci_mounts.append(speclib.bind_mount(shm, "/dev/shm"))
        started = self._mount_volumes(container)
        oci_mounts += mounts.oci_mounts(started)
        config = self.config
        default_ulimits = list(dict(config.default_ulimits).values()) or None
        spec = speclib.build_spec(
            container.config, container.host_config, container_id=container.id, rootfs=rootfs,
            mounts=oci_mounts, netns_path=netns, pid_ns_path=pid_ns, ipc_ns_path=ipc_ns,
            cgroup_parent=config.cgroup_parent, default_ulimits=default_ulimits,
            daemon_init=bool(config.init), default_no_new_privileges=bool(config.no_new_privileges),
            default_seccomp=self.seccomp_default,
            link_env=self.networks.link_environment(container),
            **({"init_binary": config.init_path} if config.init_path else {}))
        propagation = mounts.rootfs_propagation(started)
        if propagation:
            spec.setdefault("linux", {})["rootfsPropagation"] = propagation
        return spec

    def _joined_namespaces(self, container: Container) -> tuple[str | None, str | None, str | None]:
        """(PID namespace, IPC namespace, /dev/shm) of the containers that ``--pid
        container:<x>`` and ``--ipc container:<x>`` name, as dockerd joins them: x must run,
        and share its IPC (``--ipc shareable``) to be joined there."""
        hc = container.host_config
        pid_ns = ipc_ns = shm = None
        pid_mode = hc.get("PidMode") or ""
        if pid_mode.startswith("container:"):
            donor = self._namespace_donor(pid_mode.partition(":")[2])
            pid_ns = f"/proc/{donor.state['Pid']}/ns/pid"
        ipc_mode = hc.get("IpcMode") or ""
        if ipc_mode.startswith("container:"):
            ref = ipc_mode.partition(":")[2]
            donor = self._namespace_donor(ref)
            if (donor.host_config.get("IpcMode") or "private") not in ("shareable", "host"):
                raise InvalidParameter(f"container {ref}: non-shareable IPC (hint: use "
                                       "IpcMode:shareable for the donor container)")
            ipc_ns = f"/proc/{donor.state['Pid']}/ns/ipc"
            shm = "/dev/shm" if donor.host_config.get("IpcMode") == "host" \
                else self.shm_dir(donor.id)
        return pid_ns, ipc_ns, shm

    def shm_dir(self, container_id: str) -> str:
        """Where a ``--ipc shareable`` container's /dev/shm is on the host."""
        return os.path.join(self.root, container_id, "shm")

    def _namespace_donor(self, ref: str) -> Container:
        try:
            donor = self.records.get(ref)
        except NotFound as exc:
            raise InvalidParameter(exc.message) from None
        if donor.restarting:
            raise Conflict(f"Container {ref} is restarting, wait until the container is running")
        if not donor.running or not donor.state.get("Pid"):
            raise Conflict(f"container {ref} is not running")
        return donor

    def _shim_options(self, container: Container) -> shimlib.ShimOptions:
        driver, log_opts = self._log_driver(container.host_config)
        cgroup = speclib.container_cgroup(container.id, container.host_config,
                                          self.config.cgroup_parent)
        runtime, runtime_args = self.shims.runtime(container.host_config)
        return shimlib.ShimOptions(
            container_id=container.id, runtime_root=self.shims.runtime_root,
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
            rootfs = self.layers.mount(container.id, bool(container.host_config.get("AutoRemove")))
            mounted.append(rootfs)
            oci.write_bundle(state, self._build_spec(container, rootfs, netns))

        return startup.launch_and_start(
            state, options, self.shims.spawner, write_bundle,
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

    async def _fail_start(self, container: Container, mounted: list[str],
                          message: str, exit_code: int, requests: list[AttachRequest]) -> None:
        """``mounted``: the rootfs if it was mounted; ``requests``: the attached clients."""
        container.set_start_error(message, exit_code)
        self.records.save(container)
        for request in requests + self._pending_attach.pop(container.id, []):
            if not request.ready.done():
                request.ready.set_exception(Conflict(message))
        await self.release_resources(container, unmount=bool(mounted))
        self.waits.exited(container.id)
        if container.host_config.get("AutoRemove"):
            # As dockerd: a --rm container that cannot start is removed (`docker run --rm`
            # waits for that), after this start call has answered with its error.
            asyncio.get_running_loop().call_soon(
                lambda: asyncio.ensure_future(self._auto_remove(container)))

    async def release_resources(self, container: Container, unmount: bool = True,
                                remove_state: bool = True) -> None:
        """What a run took: volume mounts, a shareable /dev/shm, (with ``unmount``) the
        rootfs, the network endpoints and (with ``remove_state``) the shim's state
        directory."""
        if unmount or container.mounts or self._mounted.get(container.id) \
                or container.host_config.get("IpcMode") == "shareable":
            await asyncio.to_thread(self._unmount_all, container, unmount)
        else:  # nothing to unmount: no trip to a worker thread
            self._mounted.pop(container.id, None)
        try:
            await self.networks.teardown_container(container)
        except Exception:  # noqa: BLE001 - the container is gone either way; log and go on
            log.exception("network teardown of %s failed", container.id[:12])
        if remove_state:
            shutil.rmtree(self.shims.state_dir(container.id), ignore_errors=True)

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
            result = await asyncio.to_thread(client.read_exit_when_gone)
            if result is None:  # the shim died (killed?): its container may run on without it
                result = await asyncio.to_thread(self.shims.end_orphan, container)
        await self.record_exit(container, result, notice)

    async def record_exit(self, container: Container, result: dict[str, Any],
                          notice: shimlib.ExitNotice | None = None) -> None:
        """Record an exit. With a ``notice`` the shim is still deleting the runtime's
        container: the rest of the clean-up goes on meanwhile, and the state directory goes
        once the shim is done (``_shim_ended``)."""
        code = int(result.get("exit_code", 255))
        # a --rm container is removed right after: its removal unmounts the rootfs and deletes
        # the record (_auto_remove saves the stopped state only if that fails)
        auto_remove = bool(container.host_config.get("AutoRemove"))
        async with self.records.lock(container.id):
            self._monitors.pop(container.id, None)
            container.set_stopped(code, result.get("finished_at") or rfc3339_nano(),
                                  oom_killed=bool(result.get("oom_killed")))
            # The restart policy decides now, before the first await: a `docker stop` in the
            # clean-up below would find the container stopped (a no-op) and then see it
            # restart. dockerd too sets "restarting" before it emits die.
            self._notify("on_exit", container)
            await self.release_resources(container, unmount=not auto_remove,
                                         remove_state=notice is None)
            if notice is not None:
                self._shim_ends[container.id] = asyncio.ensure_future(
                    self._remove_state_when_ended(container.id, notice))
            if not auto_remove:
                self.records.save(container)
            if result.get("oom_killed"):
                self.records.emit(container, "oom")
            self.records.emit(container, "die", exitCode=str(code))
            self.waits.exited(container.id)
        if auto_remove:
            if self.waits.removal_awaited(container.id):
                await self._auto_remove(container)  # `docker run --rm` waits for it: at once
            else:
                # A client that started the container itself (docker-py's run: inspect, logs,
                # then wait) still finds it for a moment, as dockerd is slow enough to let it.
                asyncio.get_running_loop().call_later(
                    AUTO_REMOVE_GRACE, lambda: asyncio.ensure_future(self._auto_remove(container)))

    async def _remove_state_when_ended(self, container_id: str,
                                       notice: shimlib.ExitNotice) -> None:
        try:
            await wait_ended(notice)
            await asyncio.to_thread(shutil.rmtree, self.shims.state_dir(container_id), True)
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
        if container.id not in self.records or container.removal_in_progress:
            return  # gone already, or going: that removal unmounts and forgets it
        try:
            await self.remove(container.id, force=True, volumes=True)
        except BerthError as exc:
            log.warning("auto-remove of %s failed: %s", container.id[:12], exc)
            if container.id in self.records and not container.removal_in_progress:
                async with self.records.lock(container.id):  # kept: as any stopped container
                    await asyncio.to_thread(self._unmount_all, container, True)
                    self.records.save(container)

    # -- stop / kill / restart -------------------------------------------------------------
    async def kill(self, ref: str, signal_name: str | None = None) -> None:
        container = self.get(ref)
        number = speclib.stop_signal({"StopSignal": signal_name or "SIGKILL"})
        if not container.running:
            raise Conflict(f"Cannot kill container: {ref}: Container {container.id} is not running")
        await self._signal(container, number)
        # as dockerd's Kill: a SIGKILL is answered once the container has exited
        if number == signals.SIGKILL and not await self.waits.wait_exit(container, KILL_EXIT_WAIT):
            raise SystemError_("tried to kill container, but did not receive an exit event")

    async def _signal(self, container: Container, number: int, manual: bool = True) -> None:
        """Send ``number`` to the container, ordered with its other state changes by its
        lock: a pause in flight finishes first, so a paused container is thawed after the
        signal (or it would never act on it)."""
        failure: BaseException | None = None
        async with self.records.lock(container.id):
            if not container.running:
                return  # exited meanwhile: nothing to signal
            # As dockerd's killWithSignal: the stop signal (any signal when no StopSignal is
            # configured) or SIGKILL means "exit on next": the restart policy no longer
            # applies; any kill marks the container manually stopped; a restarting container
            # gets no signal; a paused one is thawed after the signal so it acts on it.
            configured = container.config.get("StopSignal")
            exit_on_next = (not configured or number == signals.SIGKILL
                            or speclib.stop_signal(container.config) == number)
            if exit_on_next:
                self.restarts.exit_on_next(container.id)
            if manual and not self.shutting_down:
                container.has_been_manually_stopped = True
                self.records.save(container)
            if container.restarting:
                if exit_on_next:
                    self.restarts.cancel(container)
                return
            client = self.shims.client(container.id)
            try:
                await asyncio.to_thread(client.kill, number, False)
            except (BerthError, OSError) as exc:
                failure = exc
            else:
                self.records.emit(container, "kill", signal=str(number))
                if exit_on_next and container.paused:
                    await self._resume_after_signal(container)
                return
        # the shim goes away when the container exits: give its exit a moment to arrive
        if container.running and not await self.waits.wait_exit(container, 2.0):
            message = failure.message if isinstance(failure, BerthError) else str(failure)
            raise SystemError_(f"Cannot kill container: {container.id}: {message}") from failure
        self.records.emit(container, "kill", signal=str(number))

    async def _resume_after_signal(self, container: Container) -> None:
        """Thaw a paused container that was just sent its stop signal (dockerd does this in
        kill; the runtime's resume event becomes ``unpause``)."""
        try:
            await asyncio.to_thread(self.shims.resume, container)
        except BerthError as exc:
            log.warning("cannot unpause container %s: %s", container.id[:12], exc.message)
            return
        if container.paused:
            container.set_paused(False)
            self.records.save(container)
            self.records.emit(container, "unpause")
            self.health.resume(container)

    async def stop(self, ref: str, timeout: int | None = None, signal_name: str | None = None) -> None:
        container = self.get(ref)
        if not container.running:
            raise NotModified("container already stopped")
        container.has_been_manually_stopped = True
        self.records.save(container)
        await self.stop_container(container, timeout, signal_name)
        await self._exit_recorded(container)
        self.records.emit(container, "stop")

    async def _exit_recorded(self, container: Container) -> None:
        """Wait until the exit handler (which holds the container's lock from marking it
        stopped until ``die`` is out) is done: dockerd's ``stop`` event comes after ``die``."""
        async with self.records.lock(container.id):
            pass

    async def stop_container(self, container: Container, timeout: int | None,
                             signal_name: str | None = None, manual: bool = True) -> None:
        """Its stop signal, then SIGKILL after ``timeout`` (its StopTimeout, else 10 s);
        ``manual``: the user's stop (restart policies step aside), not the daemon's."""
        if timeout is None:
            timeout = container.config.get("StopTimeout")
        if timeout is None:
            timeout = DEFAULT_STOP_TIMEOUT
        number = speclib.stop_signal({"StopSignal": signal_name} if signal_name else container.config)
        if number != signals.SIGKILL:
            await self._signal(container, number, manual)
            if await self.waits.wait_exit(container, None if timeout < 0 else timeout):
                return
            log.info("Container %s failed to exit within %ss of signal %d - using the force",
                     container.id[:12], timeout, number)
        await self._signal(container, signals.SIGKILL, manual)
        await self.waits.wait_exit(container, None)

    async def restart(self, ref: str, timeout: int | None = None, signal_name: str | None = None) -> None:
        container = self.get(ref)
        if container.running:
            await self.stop_container(container, timeout, signal_name)
            await self._exit_recorded(container)
            self.records.emit(container, "stop")  # as dockerd's restart, which stops first
        await self.start(container.id)
        self.records.emit(container, "restart")

    # -- wait ------------------------------------------------------------------------------
    def prepare_wait(self, ref: str, condition: str = "not-running"):
        """Register a wait now and return a coroutine function that completes it.

        Registering first matters: ``docker run`` asks for ``next-exit`` and starts the
        container as soon as the response headers arrive. A wait for a ``--rm`` container
        that has just been removed still gets its exit status (dockerd rarely loses that
        race; berthd removes faster)."""
        if condition not in ("not-running", "next-exit", "removed", ""):
            raise InvalidParameter(f"invalid condition: \"{condition}\"")
        try:
            container = self.get(ref)
        except NotFound:
            gone = self._recently_removed(ref)
            if gone is None:
                raise

            async def finish_removed() -> dict[str, Any]:
                return {"Error": None, "StatusCode": gone}
            return finish_removed
        event: asyncio.Event | None = None
        if condition == "removed":
            event = self.waits.removal(container.id)
        elif condition == "next-exit" or container.running:
            event = self.waits.next_exit(container.id)

        async def finish() -> dict[str, Any]:
            if event is not None:
                await event.wait()
            error = None
            # as dockerd: a removal that succeeded clears the error (of a failed start)
            if container.state.get("Error") and condition != "removed":
                error = {"Message": container.state["Error"]}
            return {"Error": error, "StatusCode": container.state["ExitCode"]}
        return finish

    def _recently_removed(self, ref: str) -> int | None:
        """The exit code of an auto-removed container named by ``ref`` (ID, prefix, name)."""
        name = ref.lstrip("/")
        for container_id, (container_name, code) in reversed(self._auto_removed.items()):
            if ref == container_id or name == container_name or \
                    (len(ref) >= 1 and container_id.startswith(ref)):
                return code
        return None

    # -- remove ----------------------------------------------------------------------------
    async def remove(self, ref: str, force: bool = False, volumes: bool = False) -> None:
        """Ordered by the container's lock: a start in flight finishes first, and what it
        started is killed and waited for (under ``force``) before the record goes."""
        container = self.get(ref)
        self._refuse_removal_while_running(container, force)
        if container.removal_in_progress:
            raise Conflict(f"removal of container {container.id[:12]} is already in progress")
        container.removal_in_progress = True  # from now on, starts are refused
        attempts = 0
        try:
            while True:
                async with self.records.lock(container.id):
                    if not container.running:
                        await self._remove_locked(container, volumes)
                        return
                    self._refuse_removal_while_running(container, force)
                    if attempts == 3:
                        raise SystemError_(f"Could not kill running container {container.id}, "
                                           "cannot remove")
                attempts += 1
                # outside the lock, which the exit's record takes
                await self._signal(container, signals.SIGKILL)
                await self.waits.wait_exit(container, None)
        except BaseException:
            container.removal_in_progress = False
            raise

    @staticmethod
    def _refuse_removal_while_running(container: Container, force: bool) -> None:
        if not container.running or force:
            return
        if container.paused:  # dockerd's texts for each state
            raise Conflict(f'cannot remove container "/{container.name}": container is '
                           "paused and must be unpaused first")
        state = "restarting" if container.restarting else "running"
        raise Conflict(f'cannot remove container "/{container.name}": container is {state}: '
                       "stop the container before removing or force remove")

    async def _remove_locked(self, container: Container, volumes: bool) -> None:
        monitor = self._monitors.pop(container.id, None)
        if monitor:
            monitor.cancel()
        errors = await asyncio.to_thread(self._remove_layer_and_volumes, container, volumes)
        for error in errors:
            log.warning("removing volumes of %s: %s", container.id[:12], error)
        await self.networks.remove_container(container)
        self._trash.discard(os.path.join(self.root, container.id))
        if container.id not in self._shim_ends:
            shutil.rmtree(self.shims.state_dir(container.id), ignore_errors=True)
        # else the shim is still deleting the runtime's container: its state directory goes
        # when it is done (_remove_state_when_ended), and nothing of it can clash with a new
        # container, which has its own ID; a daemon killed meanwhile cleans it up at restart
        self.records.delete(container)
        if container.host_config.get("AutoRemove"):
            self._auto_removed[container.id] = (container.name, container.state["ExitCode"])
            while len(self._auto_removed) > RECENTLY_REMOVED:
                self._auto_removed.pop(next(iter(self._auto_removed)))
        self.records.emit(container, "destroy")
        self._notify("on_remove", container)
        self.waits.removed(container.id)

    def _remove_layer_and_volumes(self, container: Container, anonymous_volumes: bool) -> list[str]:
        """The container's layer goes and its volume references are dropped (with
        ``anonymous_volumes``, as ``rm -v``, its anonymous volumes too); returns errors."""
        try:
            self.layers.remove_rw(container.id)
        except NotFound:
            pass
        return self.volumes.detach(container.id, mounts.plans_from_docs(container.mounts),
                                   remove_anonymous=anonymous_volumes)

    # -- rename / resize -------------------------------------------------------------------
    async def rename(self, ref: str, new_name: str) -> None:
        container = self.get(ref)
        if not new_name:
            raise InvalidParameter("Neither old nor new names may be empty")
        new_name = ids.check_container_name(new_name)
        if new_name == container.name:
            raise InvalidParameter("Renaming a container with the same name as its current "
                                   "name")
        async with self.records.lock(container.id):
            self.records.claim_name(new_name, container.id)
            old = container.name
            container.name = new_name
            self.networks.rename_container(container, old)
            self.records.save(container)
        self.records.emit(container, "rename", oldName="/" + old)

    async def resize(self, ref: str, height: int, width: int) -> None:
        container = self.get(ref)
        if not container.running:
            raise Conflict(f"Container {container.id} is not running")
        await asyncio.to_thread(self.shims.client(container.id).resize, height, width)
        self.records.emit(container, "resize", height=str(height), width=str(width))

    # -- attach ----------------------------------------------------------------------------
    def detached(self, container_id: str) -> None:
        """An attached client left with the detach keys (dockerd's ``detach`` event)."""
        container = self.records.find(container_id)
        if container is not None:
            self.records.emit(container, "detach")

    async def attach(self, ref: str, stdin: bool, stdout: bool, stderr: bool) -> AsyncShimStream:
        """A live stream of the container's stdio. For a container that has not started yet,
        the stream is connected when it starts (``docker run`` attaches before starting)."""
        container = self.get(ref)
        self.records.emit(container, "attach")
        if container.running:
            raw = await asyncio.to_thread(self.shims.client(container.id).attach, stdin, stdout,
                                          stderr, bool(container.config.get("StdinOnce")))
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
            raise InvalidParameter('configured logging driver does not support reading')
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
    async def reattach(self, container: Container, client: shimlib.ShimClient) -> None:
        """Follow a container whose shim outlived the previous daemon (live-restore): its
        exit, its volume mounts, and its observers (health checks) again."""
        self.waits.next_exit(container.id)
        self._monitors[container.id] = asyncio.ensure_future(self._monitor(container, client))
        plans = mounts.plans_from_docs(container.mounts) if container.mounts else []
        for plan in plans:
            if plan.type == "volume" and plan.name:
                try:
                    await asyncio.to_thread(self.volumes.restore_mount, plan.name, container.id)
                except BerthError:
                    pass
        if plans:
            self._mounted[container.id] = plans
        if container.paused and not await asyncio.to_thread(self._frozen, container, client):
            container.set_paused(False)
            self.records.save(container)
        self._notify("on_start", container)

    def _frozen(self, container: Container, client: shimlib.ShimClient) -> bool:
        """Still paused? Its shim knows (one started by an older berthd does not say: the
        runtime's state tells then)."""
        try:
            state = client.state()
            if "paused" in state:
                return bool(state["paused"])
            return self.shims.runtime_for(container).state(container.id).get("status") == "paused"
        except BerthError:
            return False

    async def shutdown(self, live_restore: bool) -> None:
        """Without live-restore, stop every running container (in parallel) before exiting.
        Pending restarts and health probes end either way."""
        self.shutting_down = True
        for observer in self.observers:
            try:
                await observer.shutdown()
            except Exception:  # noqa: BLE001 - shutting down regardless
                log.exception("observer shutdown failed")
        running = [c for c in self.records if c.running]
        if not live_restore and running:
            for container in running:
                if container.restarting:  # as dockerd's kill of a restarting container
                    self.restarts.cancel(container)
            await asyncio.gather(*(self.stop_container(c, None, manual=False)
                                   for c in running if c.running), return_exceptions=True)
        for task in list(self._monitors.values()):
            task.cancel()
        if self._shim_ends:  # a few ms each; what is left is cleaned up at the next start
            await asyncio.wait(list(self._shim_ends.values()), timeout=10)
        await asyncio.to_thread(self._trash.wait_empty, 10)
        await asyncio.to_thread(self.shims.spawner.close)
