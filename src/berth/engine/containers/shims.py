"""Where a container's shim and runtime are: the one path from the engine to runc.

A container that has a shim is driven through it, for every runtime call (start, exec, kill,
pause, resume, update), as containerd routes task calls through the task's shim: the shim
owns the container, and two processes calling runc on one container would race. The engine
runs the runtime itself only where no shim speaks for the container: reading its processes
for `docker top`, and cleaning up after a shim that died (``default_runtime``).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
from typing import Any, Callable

from berth.engine.containers.record import Container
from berth.errors import BerthError, InvalidParameter, NotFound
from berth.runtime import oci, shim as shimlib
from berth.timeutil import rfc3339_nano

log = logging.getLogger("berth.containers")


class Shims:
    def __init__(self, exec_root: str, config: Any):
        self.exec_root = exec_root
        self.runtime_root = os.path.join(exec_root, "runc")
        self._config = config
        self.spawner = shimlib.ShimSpawner(exec_root, self._runtime_paths)

    # -- runtimes (daemon.json ``runtimes``, ``default-runtime``) --------------------------
    def runtimes(self) -> dict[str, dict[str, Any]]:
        runtimes: dict[str, dict[str, Any]] = {"runc": {"path": "runc"}}
        for name, spec in dict(self._config.runtimes).items():
            runtimes[name] = dict(spec)
        return runtimes

    @property
    def default_runtime_name(self) -> str:
        return self._config.default_runtime or "runc"

    def runtime(self, host_config: dict[str, Any]) -> tuple[str, list[str]]:
        """The container's runtime binary and its daemon.json ``runtimeArgs``; an unknown
        runtime is refused."""
        name = host_config.get("Runtime") or self.default_runtime_name
        runtimes = self.runtimes()
        if name not in runtimes:
            raise InvalidParameter(f"unknown or invalid runtime name: {name}")
        runtime = runtimes[name]
        return runtime.get("path") or name, [str(a) for a in runtime.get("runtimeArgs") or []]

    def runtime_for(self, container: Container) -> oci.Runtime:
        """The runtime driver of a container, for the calls no shim makes (see above)."""
        return self._driver(container.host_config)

    def default_runtime(self) -> oci.Runtime:
        """The default runtime's driver: for leftovers of containers nobody knows."""
        return self._driver({})

    def _driver(self, host_config: dict[str, Any]) -> oci.Runtime:
        binary, args = self.runtime(host_config)
        return oci.Runtime(binary, self.runtime_root, extra_args=args)

    def _runtime_paths(self) -> list[str]:
        """Every configured runtime binary, resolved as shims run them."""
        paths = (spec.get("path") or name for name, spec in self.runtimes().items())
        return sorted({shimlib.runtime_path(path) for path in paths})

    # -- shims ---------------------------------------------------------------------------
    @property
    def states_root(self) -> str:
        """Where every container's state directory is."""
        return shimlib.states_root(self.exec_root)

    def state_dir(self, container_id: str) -> str:
        return shimlib.state_dir(self.exec_root, container_id)

    def client(self, container_id: str) -> shimlib.ShimClient:
        return shimlib.ShimClient(os.path.join(self.state_dir(container_id), shimlib.SOCKET_NAME))

    def spec_path(self, container_id: str) -> str:
        """The container's OCI spec (the bundle's config.json), which exec processes copy."""
        return os.path.join(self.state_dir(container_id), "config.json")

    # Blocking: called from worker threads.
    def pause(self, container: Container) -> None:
        client = self.client(container.id)
        self._control(container, client.pause, lambda runtime: runtime.pause(container.id))

    def resume(self, container: Container) -> None:
        client = self.client(container.id)
        self._control(container, client.resume, lambda runtime: runtime.resume(container.id))

    def update(self, container: Container, resources: dict[str, Any]) -> None:
        client = self.client(container.id)
        self._control(container, lambda: client.update(resources),
                      lambda runtime: runtime.update(container.id, resources))

    def _control(self, container: Container, through_shim: Callable[[], None],
                 direct: Callable[[oci.Runtime], None]) -> None:
        try:
            through_shim()
        except InvalidParameter as exc:
            # A shim started by an older berthd (kept across an upgrade by live-restore)
            # does not know the op: the runtime is called directly for it, as before.
            if not exc.message.startswith("unknown op"):
                raise
            direct(self.runtime_for(container))

    # -- containers whose shim is gone --------------------------------------------------------
    def end_orphan(self, container: Container) -> dict[str, Any]:
        """The shim died without recording an exit: end the container through the runtime,
        as containerd does when a shim dies (kill it, thaw it if frozen, delete it), and
        return its exit record: 137 if it was still there, else 255 (unknown). Blocking."""
        runtime = self.runtime_for(container)
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
            self.delete_runtime_state(container.id)
        log.warning("shim of %s is gone without an exit record; exit code %d",
                    container.id[:12], code)
        return {"exit_code": code, "finished_at": rfc3339_nano()}

    def delete_runtime_state(self, container_id: str) -> bool:
        """``runc delete --force`` of a container no shim speaks for: True if the runtime
        still knew it."""
        try:
            self.default_runtime().delete(container_id, force=True)
            return True
        except NotFound:
            return False
        except BerthError as exc:
            log.warning("runtime delete of %s: %s", container_id[:12], exc.message)
            shutil.rmtree(os.path.join(self.runtime_root, container_id), ignore_errors=True)
            return False
