"""Healthchecks: probes run as exec processes through the container's shim, as dockerd does.

The container's ``Config.Healthcheck`` (from the image, or create's ``Healthcheck``: Test
``["CMD", ...]``, ``["CMD-SHELL", "cmd"]`` or ``["NONE"]``; Interval, Timeout, StartPeriod,
StartInterval in nanoseconds; Retries) drives a monitor task per running, unpaused container.
``State.Health`` is ``{Status: starting|healthy|unhealthy, FailingStreak, Log}`` with the last
five results ``{Start, End, ExitCode, Output}``; a change of status is the event
``health_status: <status>``. Each probe is an exec (events ``exec_create``/``exec_start``/
``exec_die``), not listed in ExecIDs.

Pure rules are module functions (unit-tested); :class:`HealthMonitor` is the observer that
runs probes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import time
from typing import Any

from berth.engine.containers.observers import LifecycleObserver
from berth.engine import ids
from berth.engine.containers.record import Container
from berth.engine.containers.records import ContainerRecords
from berth.engine.containers.shims import Shims
from berth.engine.containers.streams import AsyncShimStream
from berth.errors import BerthError, InvalidParameter
from berth.runtime import shim as shimlib, spec as speclib
from berth.timeutil import parse_time_value, rfc3339_nano
from berth.units import go_duration_string

log = logging.getLogger("berth.health")

SECOND = 1_000_000_000
DEFAULT_INTERVAL = 30 * SECOND
DEFAULT_TIMEOUT = 30 * SECOND
DEFAULT_START_PERIOD = 0
DEFAULT_START_INTERVAL = 5 * SECOND
DEFAULT_RETRIES = 3
MIN_DURATION = 1_000_000        # 1ms, moby's MinimumDuration
MAX_OUTPUT = 4096               # bytes of probe output kept
MAX_LOG_ENTRIES = 5
EXEC_START_TIMEOUT = 30.0       # seconds to start the probe process (not counted in Timeout)

STARTING, HEALTHY, UNHEALTHY = "starting", "healthy", "unhealthy"


# -- pure rules ------------------------------------------------------------------------------
def validate(healthcheck: Any) -> None:
    """Create-time checks with moby's texts (validateHealthCheck)."""
    if not healthcheck:
        return
    if not isinstance(healthcheck, dict):
        raise InvalidParameter("invalid Healthcheck")
    for key in ("Interval", "Timeout", "StartPeriod", "StartInterval"):
        value = int(healthcheck.get(key) or 0)
        if value != 0 and value < MIN_DURATION:
            raise InvalidParameter(f"{key} in Healthcheck cannot be less than {go_duration_string(MIN_DURATION)}")
    if int(healthcheck.get("Retries") or 0) < 0:
        raise InvalidParameter("Retries in Healthcheck cannot be negative")


def probe_command(config: dict[str, Any]) -> list[str] | None:
    """The probe's argv, or None when the container has no (or a NONE) healthcheck.
    ``[]`` means CMD without a command: each probe then fails, as in dockerd."""
    healthcheck = config.get("Healthcheck") or {}
    test = list(healthcheck.get("Test") or [])
    if not test:
        return None
    kind, args = test[0], test[1:]
    if kind == "CMD":
        return args
    if kind == "CMD-SHELL":
        if not args:
            return []
        return list(config.get("Shell") or ["/bin/sh", "-c"]) + args
    if kind != "NONE":
        log.warning("Unknown healthcheck type '%s' (expected 'CMD')", kind)
    return None


def settings(config: dict[str, Any]) -> dict[str, int]:
    healthcheck = config.get("Healthcheck") or {}
    return {"interval": int(healthcheck.get("Interval") or 0) or DEFAULT_INTERVAL,
            "timeout": int(healthcheck.get("Timeout") or 0) or DEFAULT_TIMEOUT,
            "start_period": int(healthcheck.get("StartPeriod") or 0) or DEFAULT_START_PERIOD,
            "start_interval": int(healthcheck.get("StartInterval") or 0) or DEFAULT_START_INTERVAL,
            "retries": int(healthcheck.get("Retries") or 0) if int(healthcheck.get("Retries") or 0) > 0
            else DEFAULT_RETRIES}


def next_interval(opts: dict[str, int], status: str, since_start_ns: int) -> int:
    """Nanoseconds until the next probe: StartInterval while starting within StartPeriod."""
    if since_start_ns >= opts["start_period"]:
        return opts["interval"]
    return opts["start_interval"] if status == STARTING else opts["interval"]


def new_health() -> dict[str, Any]:
    return {"Status": STARTING, "FailingStreak": 0, "Log": []}


def record_result(health: dict[str, Any], result: dict[str, Any], opts: dict[str, int],
                  started_at_ns: int) -> str | None:
    """Apply one probe result to State.Health; returns the new status if it changed."""
    old = health.get("Status")
    log_entries = list(health.get("Log") or [])
    log_entries.append(result)
    health["Log"] = log_entries[-MAX_LOG_ENTRIES:]
    if result["ExitCode"] == 0:
        health["FailingStreak"] = 0
        health["Status"] = HEALTHY
    else:
        count = True
        if health.get("Status") == STARTING:
            # within the start period, failures of a container that never passed don't count
            probe_start = parse_time_value(result["Start"])
            if probe_start - started_at_ns < opts["start_period"]:
                count = False
        if count:
            health["FailingStreak"] = int(health.get("FailingStreak") or 0) + 1
            if health["FailingStreak"] >= opts["retries"]:
                health["Status"] = UNHEALTHY
    return health["Status"] if health["Status"] != old else None


class LimitedBuffer:
    """Keeps the first MAX_OUTPUT bytes; "..." is added when more came."""

    def __init__(self, limit: int = MAX_OUTPUT):
        self.limit = limit
        self.data = bytearray()
        self.truncated = False

    def write(self, data: bytes) -> None:
        room = self.limit - len(self.data)
        if room > 0:
            self.data += data[:room]
        if len(data) > max(room, 0):
            self.truncated = True

    def text(self) -> str:
        out = self.data.decode("utf-8", "replace")
        return out + "..." if self.truncated else out


# -- the monitor -----------------------------------------------------------------------------
class HealthMonitor(LifecycleObserver):
    """One probe loop per running, unpaused container with a healthcheck."""

    def __init__(self, records: ContainerRecords, shims: Shims):
        self.records = records
        self.shims = shims
        self._tasks: dict[str, asyncio.Task] = {}

    # observer hooks
    def on_start(self, container: Container) -> None:
        """Started, restarted or restored: health is ``starting`` again (the log is kept)."""
        if probe_command(container.config) is None:
            return
        health = container.state.get("Health")
        if isinstance(health, dict):
            health.update(Status=STARTING, FailingStreak=0)
            health.setdefault("Log", [])
        else:
            container.state["Health"] = new_health()
        self.resume(container)

    def on_exit(self, container: Container) -> None:
        self.stop(container.id)

    def on_remove(self, container: Container) -> None:
        self.stop(container.id)

    # pause/unpause
    def resume(self, container: Container) -> None:
        """(Re)start the probe loop if the container should have one."""
        self.stop(container.id)
        if probe_command(container.config) is None or "Health" not in container.state:
            return
        if not container.running or container.paused or container.restarting:
            return
        self._tasks[container.id] = asyncio.ensure_future(self._monitor(container))

    def stop(self, container_id: str) -> None:
        task = self._tasks.pop(container_id, None)
        if task is not None:
            task.cancel()

    async def shutdown(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # the loop
    async def _monitor(self, container: Container) -> None:
        command = probe_command(container.config)
        if command is None:
            return
        opts = settings(container.config)
        try:
            started_ns = parse_time_value(container.state["StartedAt"])
        except (InvalidParameter, KeyError):
            started_ns = time.time_ns()
        me = asyncio.current_task()
        while True:
            health = container.state.get("Health") or {}
            wait = next_interval(opts, health.get("Status", STARTING), time.time_ns() - started_ns)
            await asyncio.sleep(wait / SECOND)
            if self._tasks.get(container.id) is not me or not container.running:
                return
            start_ns = time.time_ns()
            try:
                exit_code, output = await self._probe(container, command, opts["timeout"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a failed probe, as dockerd records it
                log.warning("Health check for container %s error: %s", container.id[:12], exc)
                exit_code, output = -1, str(exc)
            if self._tasks.get(container.id) is not me:
                return
            result = {"Start": rfc3339_nano(start_ns), "End": rfc3339_nano(),
                      "ExitCode": exit_code, "Output": output}
            health = container.state.get("Health")
            if not isinstance(health, dict):
                return
            changed = record_result(health, result, opts, started_ns)
            if changed:
                self.records.save(container)
                self.records.emit(container, f"health_status: {changed}")

    async def _probe(self, container: Container, command: list[str],
                     timeout_ns: int) -> tuple[int, str]:
        if not command:
            return -1, f"healthcheck for container {container.id} has no command"
        exec_id = ids.new_id()
        shown = " ".join(command)
        self.records.emit(container, f"exec_create: {shown}", execID=exec_id)
        client = self.shims.client(container.id)
        process = await asyncio.to_thread(self._process, container, command)
        try:
            _pid, raw = await asyncio.wait_for(asyncio.to_thread(
                client.exec, exec_id, process, False, True, True, False, False),
                EXEC_START_TIMEOUT)
        except asyncio.TimeoutError:
            return -1, f"timed out starting health check for container {container.id}"
        except BerthError as exc:
            return -1, exc.message
        self.records.emit(container, f"exec_start: {shown}", execID=exec_id)
        assert raw is not None
        stream = await AsyncShimStream.wrap(raw)
        output = LimitedBuffer()
        try:
            try:
                async with asyncio.timeout(timeout_ns / SECOND):
                    while (frame := await stream.read_frame()) is not None:
                        output.write(frame[1])
            except TimeoutError:
                await self._kill(client, exec_id)
                await self._drain(stream, output)
                self._exec_died(container, exec_id, stream.exit_code)
                text = output.text()
                message = f"Health check exceeded timeout ({go_duration_string(timeout_ns)})"
                return -1, f"{message}: {text}" if text else message
            except asyncio.CancelledError:
                await asyncio.shield(self._kill(client, exec_id))
                raise
        finally:
            stream.close()
        code = stream.exit_code
        self._exec_died(container, exec_id, code)
        if code is None:
            return -1, f"healthcheck for container {container.id} has no exit code"
        return int(code), output.text()

    def _exec_died(self, container: Container, exec_id: str, code: int | None) -> None:
        self.records.emit(container, "exec_die", execID=exec_id,
                          exitCode=str(137 if code is None else code))

    @staticmethod
    async def _kill(client: shimlib.ShimClient, exec_id: str) -> None:
        try:
            await asyncio.to_thread(client.kill, signal.SIGKILL, False, exec_id)
        except BerthError:
            pass

    @staticmethod
    async def _drain(stream: AsyncShimStream, output: LimitedBuffer) -> None:
        try:
            async with asyncio.timeout(5):
                while (frame := await stream.read_frame()) is not None:
                    output.write(frame[1])
        except TimeoutError:
            pass

    def _process(self, container: Container, command: list[str]) -> dict[str, Any]:
        with open(self.shims.spec_path(container.id), encoding="utf-8") as handle:
            spec = json.load(handle)
        exec_config = {"Cmd": command, "User": container.config.get("User") or "",
                       "WorkingDir": container.config.get("WorkingDir") or ""}
        return speclib.build_exec_process(spec, exec_config,
                                          rootfs=spec.get("root", {}).get("path"))
