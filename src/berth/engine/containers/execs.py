"""Exec instances: extra processes in a running container (``docker exec``).

Like dockerd, exec records live in memory only; the process itself runs under the
container's shim, so it survives a daemon restart, but its record does not.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from berth.engine.containers.observers import LifecycleObserver
from berth.engine import ids
from berth.engine.containers.records import ContainerRecords
from berth.engine.containers.shims import Shims
from berth.engine.containers.streams import AsyncShimStream, wait_in_thread
from berth.errors import BerthError, Conflict, InvalidParameter, NotFound
from berth.runtime import shim as shimlib, spec as speclib


@dataclass
class Exec:
    id: str
    container_id: str
    config: dict[str, Any]
    running: bool = False
    exit_code: int | None = None
    pid: int = 0
    started: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def command(self) -> str:
        """As dockerd puts it in exec events: the entrypoint, a space, the arguments."""
        cmd = list(self.config.get("Cmd") or [])
        return f"{cmd[0]} {' '.join(cmd[1:])}" if cmd else ""

    def inspect(self) -> dict[str, Any]:
        cmd = list(self.config.get("Cmd") or [])
        return {
            "ID": self.id,
            "Running": self.running,
            "ExitCode": self.exit_code,
            "ProcessConfig": {"tty": bool(self.config.get("Tty")),
                              "entrypoint": cmd[0] if cmd else "",
                              "arguments": cmd[1:], "privileged": bool(self.config.get("Privileged")),
                              **({"user": self.config["User"]} if self.config.get("User") else {})},
            "OpenStdin": bool(self.config.get("AttachStdin")),
            "OpenStderr": bool(self.config.get("AttachStderr")),
            "OpenStdout": bool(self.config.get("AttachStdout")),
            "CanRemove": False,
            "ContainerID": self.container_id,
            "DetachKeys": self.config.get("DetachKeys") or "",
            "Pid": self.pid,
        }


def _stopped_meanwhile(container: Any, exc: BerthError) -> bool:
    """An exec start that failed because its container was stopping or being removed: the
    client is told so (409), not that the runtime failed (500)."""
    return (container.removal_in_progress or not container.running
            or "stopped container" in exc.message or "not running" in exc.message)


class ExecService(LifecycleObserver):
    def __init__(self, records: ContainerRecords, shims: Shims):
        self.records = records
        self.shims = shims
        self._execs: dict[str, Exec] = {}

    def get(self, exec_id: str) -> Exec:
        found = self._execs.get(exec_id)
        if found is None:
            matches = ids.match_prefix(exec_id, self._execs)
            if len(matches) == 1:
                found = self._execs[matches[0]]
        if found is None:
            raise NotFound(f"No such exec instance: {exec_id}")
        return found

    def create(self, ref: str, body: Any) -> str:
        container = self.records.get(ref)
        if not isinstance(body, dict):
            raise InvalidParameter("exec config cannot be empty")
        if not body.get("Cmd"):
            raise InvalidParameter("No exec command specified")
        if not container.running:
            raise Conflict(f"container {container.id} is not running")
        if container.paused:
            raise Conflict(f"Container {container.id} is paused, unpause the container before exec")
        if container.state.get("Restarting"):
            raise Conflict(f"Container {container.id} is restarting, wait until the container is running")
        instance = Exec(ids.new_id(), container.id, dict(body))
        self._execs[instance.id] = instance
        container.exec_ids.append(instance.id)
        self.records.emit(container, f"exec_create: {instance.command}", execID=instance.id)
        return instance.id

    async def start(self, exec_id: str, detach: bool) -> AsyncShimStream | None:
        """Run the exec process, with the terminal (or not) that its create asked for, as
        dockerd: the start body's own ``Tty`` changes nothing."""
        instance = self.get(exec_id)
        if instance.started:
            raise Conflict(f"Error: Exec command {exec_id} has already run")
        container = self.records.get(instance.container_id)
        if not container.running:
            raise Conflict(f"container {container.id} is not running")
        instance.started = True
        self.records.emit(container, f"exec_start: {instance.command}", execID=instance.id)
        config = dict(instance.config)
        try:
            try:
                process = await asyncio.to_thread(self._process, container.id, config)
                client = self.shims.client(container.id)
                pid, raw = await asyncio.to_thread(
                    client.exec, instance.id, process, bool(config.get("AttachStdin")),
                    True, True, bool(config.get("Tty")), detach)
            except (FileNotFoundError, shimlib.ShimGone) as exc:
                # the container stopped (or went) meanwhile: its bundle or shim is gone
                raise Conflict(f"container {container.id} is not running") from exc
            except BerthError as exc:
                if _stopped_meanwhile(container, exc):
                    raise Conflict(f"container {container.id} is not running") from exc
                raise
        except BaseException:
            # as dockerd: a start that fails (unknown user, no such command, a container
            # that stopped...) leaves exit code 126 for `docker exec` to report
            instance.exit_code = 126
            instance.done.set()
            if instance.id in container.exec_ids:
                container.exec_ids.remove(instance.id)
            raise
        instance.pid = pid
        instance.running = True
        asyncio.ensure_future(self._watch(instance, client))
        if raw is None:
            return None
        return await AsyncShimStream.wrap(raw)

    def _process(self, container_id: str, config: dict[str, Any]) -> dict[str, Any]:
        with open(self.shims.spec_path(container_id), encoding="utf-8") as handle:
            spec = json.load(handle)
        return speclib.build_exec_process(spec, config, rootfs=spec.get("root", {}).get("path"))

    async def _watch(self, instance: Exec, client: shimlib.ShimClient) -> None:
        try:
            result = await wait_in_thread(lambda: client.wait(None, instance.id))
            code = int(result.get("exit_code", 255))
        except Exception:  # noqa: BLE001 - the shim went away with the container
            code = 137 if instance.exit_code is None else instance.exit_code
        instance.exit_code = code
        instance.running = False
        instance.done.set()
        try:
            container = self.records.get(instance.container_id)
        except NotFound:
            return
        self.records.emit(container, "exec_die", execID=instance.id, exitCode=str(code))

    def stream_ended(self, exec_id: str, exit_code: int | None) -> None:
        """The attached client saw the process end: record its code before the client asks."""
        instance = self.get(exec_id)
        if exit_code is not None:
            instance.exit_code = exit_code
            instance.running = False

    async def resize(self, exec_id: str, height: int, width: int) -> None:
        instance = self.get(exec_id)
        container = self.records.get(instance.container_id)
        await asyncio.to_thread(self.shims.client(container.id).resize, height, width, instance.id)

    def on_remove(self, container: Any) -> None:
        """A removed container's exec records go with it (an observer of the lifecycle)."""
        for exec_id in [e.id for e in self._execs.values() if e.container_id == container.id]:
            self._execs.pop(exec_id, None)
