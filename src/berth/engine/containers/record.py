"""A container's record: what the engine stores, and its Docker JSON views (inspect, ps)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from berth.units import human_duration
from berth.timeutil import parse_time_value, rfc3339_nano

ZERO_TIME = "0001-01-01T00:00:00Z"


def new_state() -> dict[str, Any]:
    return {"Status": "created", "Running": False, "Paused": False, "Restarting": False,
            "OOMKilled": False, "Dead": False, "Pid": 0, "ExitCode": 0, "Error": "",
            "StartedAt": ZERO_TIME, "FinishedAt": ZERO_TIME}


@dataclass
class Container:
    id: str
    name: str                      # without the leading slash
    created: str                   # RFC 3339 nano
    image: str                     # what the user asked for (Config.Image)
    image_id: str                  # sha256:...
    config: dict[str, Any]         # Engine API Config (merged with the image's)
    host_config: dict[str, Any]
    path: str = ""
    args: list[str] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=new_state)
    network_settings: dict[str, Any] = field(default_factory=dict)
    mounts: list[dict[str, Any]] = field(default_factory=list)
    restart_count: int = 0
    driver: str = "overlay2"
    graph_data: dict[str, str] = field(default_factory=dict)
    log_path: str = ""
    resolv_conf_path: str = ""
    hostname_path: str = ""
    hosts_path: str = ""
    has_been_started: bool = False
    has_been_manually_stopped: bool = False
    removal_in_progress: bool = False
    exec_ids: list[str] = field(default_factory=list)

    # -- persistence ------------------------------------------------------------------------
    def to_doc(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> "Container":
        known = {k: v for k, v in doc.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    # -- state ------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return bool(self.state["Running"])

    @property
    def paused(self) -> bool:
        return bool(self.state["Paused"])

    @property
    def status(self) -> str:
        return self.state["Status"]

    def set_running(self, pid: int, started_at: str | None = None) -> None:
        self.state.update(Status="running", Running=True, Paused=False, Restarting=False,
                          Pid=pid, ExitCode=0, Error="", OOMKilled=False,
                          StartedAt=started_at or rfc3339_nano(), Dead=False)
        self.has_been_started = True

    def set_stopped(self, exit_code: int, finished_at: str | None = None,
                    oom_killed: bool = False, error: str = "") -> None:
        self.state.update(Status="exited", Running=False, Paused=False, Restarting=False,
                          Pid=0, ExitCode=exit_code, OOMKilled=oom_killed, Error=error,
                          FinishedAt=finished_at or rfc3339_nano())

    # Lifecycle states of restart policies and pause.
    def set_restarting(self, exit_code: int, finished_at: str | None = None) -> None:
        """Waiting to be restarted by its restart policy: Docker counts it as running (so
        stop/rm/kill treat it as such), without a process."""
        self.state.update(Status="restarting", Running=True, Restarting=True, Paused=False,
                          Pid=0, ExitCode=exit_code, FinishedAt=finished_at or rfc3339_nano())

    def set_paused(self, paused: bool) -> None:
        self.state.update(Paused=paused, Status="paused" if paused else "running")

    @property
    def restarting(self) -> bool:
        return bool(self.state.get("Restarting"))

    def set_start_error(self, message: str, exit_code: int) -> None:
        """A failed start leaves the container inspectable, with the error (Docker: 'created'
        if it never ran, else 'exited')."""
        self.state.update(Error=message, ExitCode=exit_code, Running=False, Pid=0,
                          Restarting=False, Paused=False)
        if self.has_been_started:
            self.state.update(Status="exited", FinishedAt=rfc3339_nano())

    # -- views ------------------------------------------------------------------------------
    def human_status(self, now: float | None = None) -> str:
        """The STATUS column of `docker ps`."""
        now = time.time() if now is None else now
        state = self.state
        if self.removal_in_progress:
            return "Removal In Progress"
        if state["Running"]:
            if state.get("Restarting"):
                return f"Restarting ({state['ExitCode']}) {human_duration(now - _ts(state['FinishedAt']))} ago"
            text = f"Up {human_duration(now - _ts(state['StartedAt']))}"
            if state["Paused"]:
                text += " (Paused)"
            health = (state.get("Health") or {}).get("Status")
            if health == "starting":
                text += " (health: starting)"
            elif health in ("healthy", "unhealthy"):
                text += f" ({health})"
            return text
        if state.get("Dead"):
            return "Dead"
        if state["Status"] == "created" or state["FinishedAt"] == ZERO_TIME:
            return "Created"
        return f"Exited ({state['ExitCode']}) {human_duration(now - _ts(state['FinishedAt']))} ago"

    def command_line(self) -> str:
        parts = [self.path] + list(self.args)
        return " ".join(p for p in parts if p is not None)

    def inspect(self, size: dict[str, int] | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "Id": self.id,
            "Created": self.created,
            "Path": self.path,
            "Args": list(self.args),
            "State": dict(self.state),
            "Image": self.image_id,
            "ResolvConfPath": self.resolv_conf_path,
            "HostnamePath": self.hostname_path,
            "HostsPath": self.hosts_path,
            "LogPath": self.log_path,
            "Name": "/" + self.name,
            "RestartCount": self.restart_count,
            "Driver": self.driver,
            "Platform": "linux",
            "MountLabel": "",
            "ProcessLabel": "",
            "AppArmorProfile": "",
            "ExecIDs": list(self.exec_ids) or None,
            "HostConfig": _without_empty(self.host_config, HOST_CONFIG_OMITEMPTY),
            "GraphDriver": {"Data": dict(self.graph_data) or None, "Name": self.driver},
            "Mounts": [{k: v for k, v in m.items() if k != "Plan"} for m in self.mounts],
            "Config": _without_empty(self.config, CONFIG_OMITEMPTY),
            "NetworkSettings": self.network_settings,
        }
        if size is not None:
            data["SizeRw"] = size.get("rw", 0)
            data["SizeRootFs"] = size.get("rootfs", 0)
        return data

    def summary(self, image_name: str, ports: list[dict[str, Any]],
                size: dict[str, int] | None = None) -> dict[str, Any]:
        """One entry of GET /containers/json."""
        networks = (self.network_settings or {}).get("Networks") or {}
        data: dict[str, Any] = {
            "Id": self.id,
            "Names": ["/" + self.name],
            "Image": image_name,
            "ImageID": self.image_id,
            "Command": self.command_line(),
            "Created": int(_ts(self.created)),
            "Ports": ports,
            "Labels": dict(self.config.get("Labels") or {}),
            "State": self.status,
            "Status": self.human_status(),
            "HostConfig": {"NetworkMode": self.host_config.get("NetworkMode") or "default"},
            "NetworkSettings": {"Networks": networks},
            "Mounts": [_mount_point(m) for m in self.mounts],
        }
        if size is not None:
            data["SizeRw"] = size.get("rw", 0)
            data["SizeRootFs"] = size.get("rootfs", 0)
        return data


def _mount_point(mount: dict[str, Any]) -> dict[str, Any]:
    return {k: mount.get(k) for k in ("Type", "Name", "Source", "Destination", "Driver",
                                      "Mode", "RW", "Propagation") if k in mount}


def _ts(value: str) -> float:
    """Seconds since the epoch from an RFC 3339 nano string (0 for Go's zero time)."""
    if not value or value.startswith("0001-"):
        return 0.0
    return parse_time_value(value) / 1e9


# Fields Docker's types mark `omitempty`: absent from inspect when empty (pointers: when nil).
CONFIG_OMITEMPTY = {"ExposedPorts": "empty", "Healthcheck": "nil", "ArgsEscaped": "empty",
                    "NetworkDisabled": "empty", "MacAddress": "empty", "StopSignal": "empty",
                    "StopTimeout": "nil", "Shell": "empty"}
HOST_CONFIG_OMITEMPTY = {"Init": "nil", "Annotations": "empty"}


def _without_empty(doc: dict[str, Any], omitempty: dict[str, str]) -> dict[str, Any]:
    def omitted(key: str, value: Any) -> bool:
        rule = omitempty.get(key)
        return rule == "nil" and value is None or rule == "empty" and not value
    return {k: v for k, v in doc.items() if not omitted(k, v)}
