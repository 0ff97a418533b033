"""The engine: the one owner of daemon state. The API calls it; it calls the libraries.

``Engine`` is where the services are built and wired: each is given the collaborators it
uses, never the engine itself. What the API calls is one of the services below (each route
group declares the methods it needs) or the system facts here (version, info, events).
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from typing import Any, AsyncIterator

from berth import __version__
from berth.engine import system
from berth.engine.containers.execs import ExecService
from berth.engine.containers.filesystem import ContainerFilesystem
from berth.engine.containers.health import HealthMonitor
from berth.engine.containers.ops import ContainerOps
from berth.engine.containers.reconcile import Reconciler
from berth.engine.containers.records import ContainerRecords
from berth.engine.containers.restart import RestartManager
from berth.engine.containers.service import ContainerService
from berth.engine.containers.shims import Shims
from berth.engine.containers.stats import StatsCollector
from berth.engine.containers.views import ContainerViews
from berth.engine.containers.waits import ExitWaits
from berth.engine.build import BuildService
from berth.engine.build.backend import EngineBuildBackend
from berth.engine.diskusage import DiskUsage
from berth.engine.events import Event, EventBus, EventFilter
from berth.engine.images import ImageService
from berth.engine.images.commit import Committer
from berth.engine.images.operations import ImageOperations
from berth.engine.images.pull import ImagePuller
from berth.engine.images.push import ImagePusher
from berth.engine.images.registry import RegistryService
from berth.engine.networks import NetworkService
from berth.engine.store import Store
from berth.engine.volumes import VolumeService
from berth.errors import InvalidParameter
from berth.runtime import seccomp
from berth.timeutil import parse_time_value, rfc3339_nano


class Engine:
    def __init__(self, config: Any):
        self.config = config
        self.data_root = os.path.abspath(config.data_root)
        self.exec_root = os.path.abspath(config.exec_root)
        os.makedirs(self.data_root, mode=0o711, exist_ok=True)
        os.makedirs(self.exec_root, mode=0o700, exist_ok=True)
        # read once, as dockerd: a later change of the file needs a restart
        self.seccomp_default = seccomp.daemon_profile(config.seccomp_profile)
        self.events = EventBus()
        self.store = Store(os.path.join(self.data_root, "berth.db"))
        self.id = self._engine_id()
        self.started_at = time.time()

        self.volumes = VolumeService(self.store, self.events, self.data_root)
        self.images = ImageService(self.data_root, config.storage_driver, self.store, self.events)
        layers = self.images.layers

        records = self.container_records = ContainerRecords(self.store, self.events)
        waits = ExitWaits()
        self.shims = Shims(self.exec_root, config)
        self.networks = NetworkService(config, self.store, self.events, self.exec_root,
                                       containers=records)
        health = HealthMonitor(records, self.shims)
        restarts = RestartManager(records, waits,
                                  start=lambda container: self.containers.start_by_policy(container))
        self.containers = ContainerService(
            records, waits, self.shims, self.images, layers, self.volumes, self.networks, config,
            data_root=self.data_root, seccomp_default=self.seccomp_default,
            cgroupns_default=self.default_cgroupns_mode, health=health, restarts=restarts)
        self.execs = ExecService(records, self.shims)
        stats = StatsCollector(records)
        self.containers.add_observer(stats)
        self.containers.add_observer(self.execs)
        self.container_ops = ContainerOps(records, self.shims, health, stats, self.containers,
                                          layers, self.events)
        self.container_fs = ContainerFilesystem(records, layers)
        self.container_views = ContainerViews(records, self.images, layers)
        committer = Committer(records, self.container_ops, self.images)
        self.image_ops = ImageOperations(self.images, records.all, committer)
        self.registry = RegistryService(config)
        self.pulls = ImagePuller(self.images, self.registry, config)
        self.pushes = ImagePusher(self.images, self.registry, config)
        build_backend = EngineBuildBackend(self.images, self.containers, committer,
                                           pull=self.pulls.pull_for_build)
        self.builds = BuildService(self.images, self.containers, build_backend, self.image_ops.remover,
                                   self.data_root, experimental=bool(config.experimental))
        self.usage = DiskUsage(self.images, records, self.container_views, self.volumes,
                               self.builds)
        self._reconciler = Reconciler(records, self.containers, self.shims, layers, self.volumes)

    def _engine_id(self) -> str:
        path = os.path.join(self.data_root, "engine-id")
        try:
            with open(path, encoding="ascii") as handle:
                return handle.read().strip()
        except FileNotFoundError:
            new_id = str(uuid.uuid4())
            tmp = path + ".tmp"
            with open(tmp, "w", encoding="ascii") as handle:
                handle.write(new_id)
                handle.flush()
                os.fsync(handle.fileno())
            os.rename(tmp, path)
            return new_id

    async def start(self) -> None:
        """Bind to the running loop, then reconcile containers with their shims."""
        self.events.bind_loop(asyncio.get_running_loop())
        self.builds.bind_loop(asyncio.get_running_loop())
        await self.images.start()
        await self.networks.start()  # reconciles with the kernel in the background
        await self._reconciler.restore(bool(self.config.live_restore))

    async def shutdown(self) -> None:
        await self.containers.shutdown(bool(self.config.live_restore))
        await self.networks.shutdown(bool(self.config.live_restore))
        await self.images.shutdown(bool(self.config.live_restore))
        self.registry.close()
        self.builds.close()
        self.store.close()

    # -- system ---------------------------------------------------------------------------
    def version(self) -> dict:
        return system.version_info()

    def info(self) -> dict:
        os_name, os_version = system.operating_system()
        runc_version, runc_commit = system.binary_version("runc")
        containers = self.container_counts()
        cgroup_version = system.cgroup_version()
        security = [f"name=seccomp,profile={self.config.seccomp_profile or 'builtin'}"]
        if cgroup_version == "2":
            security.append("name=cgroupns")
        return {
            "ID": self.id,
            "Containers": sum(containers.values()),
            "ContainersRunning": containers["running"],
            "ContainersPaused": containers["paused"],
            "ContainersStopped": containers["stopped"],
            "Images": self.image_count(),
            "Driver": self.storage_driver_name(),
            "DriverStatus": self.storage_driver_status(),
            "DockerRootDir": self.data_root,
            "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "null"],
                        "Authorization": None,
                        "Log": ["json-file", "none"]},
            "MemoryLimit": True, "SwapLimit": os.path.exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"),
            "KernelMemoryTCP": False, "CpuCfsPeriod": True, "CpuCfsQuota": True,
            "CPUShares": True, "CPUSet": True, "PidsLimit": True, "OomKillDisable": cgroup_version == "1",
            "IPv4Forwarding": _read_int("/proc/sys/net/ipv4/ip_forward") == 1,
            "BridgeNfIptables": _read_int("/proc/sys/net/bridge/bridge-nf-call-iptables") == 1,
            "BridgeNfIp6tables": _read_int("/proc/sys/net/bridge/bridge-nf-call-ip6tables") == 1,
            "Debug": bool(self.config.debug),
            "NFd": len(os.listdir("/proc/self/fd")),
            "NGoroutines": len(asyncio.all_tasks()) if _loop_running() else 0,
            "SystemTime": rfc3339_nano(),
            "LoggingDriver": self.config.log_driver,
            "CgroupDriver": "cgroupfs",
            "CgroupVersion": cgroup_version,
            "NEventsListener": self.events.listener_count,
            "KernelVersion": system.kernel_version(),
            "OperatingSystem": os_name,
            "OSVersion": os_version,
            "OSType": "linux",
            "Architecture": os.uname().machine,
            "NCPU": os.cpu_count() or 1,
            "MemTotal": system.mem_total(),
            "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": self.registry_config(),
            "GenericResources": None,
            "HttpProxy": os.environ.get("HTTP_PROXY", os.environ.get("http_proxy", "")),
            "HttpsProxy": os.environ.get("HTTPS_PROXY", os.environ.get("https_proxy", "")),
            "NoProxy": os.environ.get("NO_PROXY", os.environ.get("no_proxy", "")),
            "Name": socket.gethostname(),
            "Labels": list(self.config.labels),
            "ExperimentalBuild": bool(self.config.experimental),
            "ServerVersion": __version__,
            "Runtimes": self.shims.runtimes(),
            "DefaultRuntime": self.config.default_runtime,
            "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive",
                      "ControlAvailable": False, "Error": "", "RemoteManagers": None},
            "LiveRestoreEnabled": bool(self.config.live_restore),
            "Isolation": "",
            "InitBinary": "docker-init",
            "ContainerdCommit": {"ID": ""},
            "RuncCommit": {"ID": runc_commit or runc_version},
            "InitCommit": {"ID": ""},
            "SecurityOptions": security,
            "DefaultAddressPools": list(self.config.default_address_pools),
            "CDISpecDirs": [],
            "Warnings": self.warnings(),
        }

    def warnings(self) -> list[str]:
        warnings = []
        for host in self.config.hosts:
            if host.startswith("tcp://") and not self.config.tls_enabled:
                warnings.append(f"WARNING: API is accessible on {host.replace('tcp://', 'http://')} "
                                "without encryption.")
        return warnings

    def container_counts(self) -> dict[str, int]:
        return self.container_records.counts()

    def image_count(self) -> int:
        return self.images.count()

    def storage_driver_name(self) -> str:
        return self.images.driver_name

    def storage_driver_status(self) -> list[list[str]]:
        return self.images.driver_status()

    def registry_config(self) -> dict:
        insecure = list(self.config.insecure_registries)
        return {"AllowNondistributableArtifactsCIDRs": None,
                "AllowNondistributableArtifactsHostnames": None,
                "InsecureRegistryCIDRs": ["::1/128", "127.0.0.0/8"] +
                [r for r in insecure if "/" in r],
                "IndexConfigs": {"docker.io": {"Name": "docker.io", "Mirrors": list(self.config.registry_mirrors),
                                               "Secure": True, "Official": True}},
                "Mirrors": list(self.config.registry_mirrors)}

    def default_cgroupns_mode(self, privileged: bool) -> str:
        """What a container that names no cgroup namespace mode gets, as with dockerd: the
        daemon's ``default-cgroupns-mode``, else ``private`` on cgroup v2 hosts and ``host``
        on v1 ones; a privileged container on a v1 host always ``host``."""
        unified = system.cgroup_version() == "2"
        if privileged and not unified:
            return "host"
        return self.config.default_cgroupns_mode or ("private" if unified else "host")

    def publish_reload(self) -> None:
        """The `daemon reload` event, with the reloaded settings as attributes (like dockerd)."""
        config = self.config
        self.events.publish("daemon", "reload", self.id, {
            "name": socket.gethostname(),
            "debug": str(bool(config.debug)).lower(),
            "labels": "[" + ", ".join(config.labels) + "]",
            "live-restore": str(bool(config.live_restore)).lower(),
            "log-level": config.log_level,
            "insecure-registries": "[" + ", ".join(config.insecure_registries) + "]",
            "shutdown-timeout": str(config.shutdown_timeout),
        }, scope="local")

    # -- events ---------------------------------------------------------------------------
    def parse_event_time(self, value: str | None, name: str) -> int | None:
        """Docker's since/until: unix seconds with optional fraction, RFC 3339, or a duration."""
        if value is None or value == "":
            return None
        return parse_time_value(value, name)

    def subscribe_events(self, since: str | None, until: str | None,
                         filters: dict[str, list[str]]) -> AsyncIterator[Event]:
        since_ns = self.parse_event_time(since, "since")
        until_ns = self.parse_event_time(until, "until")
        _check_event_filters(filters)
        return self.events.subscribe(since_ns, until_ns, EventFilter(filters))


EVENT_FILTERS = {"container", "daemon", "event", "image", "label", "network", "node", "plugin",
                 "scope", "secret", "service", "type", "volume", "config"}
EVENT_TYPES = {"container", "daemon", "image", "network", "plugin", "volume", "builder",
               "node", "secret", "service", "config"}


def _check_event_filters(filters: dict[str, list[str]]) -> None:
    for key, values in filters.items():
        if key not in EVENT_FILTERS:
            raise InvalidParameter(f"invalid filter '{key}'")
        if key == "type":
            for value in values:
                if value not in EVENT_TYPES:
                    raise InvalidParameter(f"Invalid event type filter '{value}'")


def _read_int(path: str) -> int | None:
    try:
        with open(path, encoding="ascii") as handle:
            return int(handle.read().strip())
    except (OSError, ValueError):
        return None


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
        return True
    except RuntimeError:
        return False
