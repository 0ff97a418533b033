"""Build routes: ``POST /build`` (the classic protocol: a context tar in the body, JSON lines
out) and ``POST /build/prune``.

The query is decoded here into ``BuildOptions``; the engine checks the values. The upload
is read by the build's worker thread through ``BodyPipe``; its messages stream through
``progress_response``, whose headers wait for the first line, so what fails before the
first step (a Dockerfile that does not parse, a missing target) is a plain HTTP error, as
with dockerd. A client that goes away stops the build (``cancel``).
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from typing import Any, BinaryIO, Protocol

from berth.api.http import Request, Response, json_response
from berth.api.router import Router
from berth.api.streams import BodyPipe, Emit, progress_response
from berth.builder.executor import BuildOptions
from berth.errors import InvalidParameter


class BuildBackend(Protocol):
    """What these routes need from the engine (``engine.builds``)."""

    def check(self, options: BuildOptions, squash: bool = False, isolation: str = "",
              version: str = "") -> None: ...
    def build(self, options: BuildOptions, stream: BinaryIO | None, remote_url: str,
              emit: Emit, cancel: threading.Event) -> str: ...
    async def prune(self, all_: bool, filters: dict[str, list[str]],
                    keep_storage: int) -> dict: ...


def _int(request: Request, name: str) -> int:
    value = request.arg(name)
    if not value:
        return 0
    try:
        return int(value)
    except ValueError:
        raise InvalidParameter(f"strconv.ParseInt: parsing \"{value}\": invalid syntax") from None


def _json(request: Request, name: str, kind: type, default: Any) -> Any:
    value = request.json_arg(name, default)
    if value is None:
        return default
    if not isinstance(value, kind):
        raise InvalidParameter(f"invalid {name} parameter: expected a JSON {kind.__name__}")
    return value


def registry_config(request: Request) -> dict[str, dict[str, str]]:
    """``X-Registry-Config``: base64url JSON (padding optional) of server address to auth
    config. Unreadable, it counts as none (as dockerd)."""
    raw = request.headers.get("x-registry-config", "")
    if not raw:
        return {}
    try:
        value = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (ValueError, binascii.Error):
        return {}
    if not isinstance(value, dict):
        return {}
    return {str(k): {str(a): str(b) for a, b in v.items()} for k, v in value.items() if isinstance(v, dict)}


def options_from(request: Request) -> BuildOptions:
    """moby's newImageBuildOptions: the query as build options."""
    build_args = _json(request, "buildargs", dict, {})
    for key, value in build_args.items():
        if value is not None and not isinstance(value, str):
            raise InvalidParameter(f"invalid buildargs parameter: {key} is not a string")
    labels = _json(request, "labels", dict, {})
    ulimits = _json(request, "ulimits", list, [])
    cache_from = _json(request, "cachefrom", list, [])
    hosts: list[str] = []
    for value in request.query.get("extrahosts", []):
        hosts.extend(part for part in value.split(",") if part)
    resources: dict[str, Any] = {}
    for query, key in (("memory", "Memory"), ("memswap", "MemorySwap"), ("cpushares", "CpuShares"),
                       ("cpuperiod", "CpuPeriod"), ("cpuquota", "CpuQuota")):
        number = _int(request, query)
        if number:
            resources[key] = number
    for query, key in (("cpusetcpus", "CpusetCpus"), ("cpusetmems", "CpusetMems"),
                       ("cgroupparent", "CgroupParent")):
        text = request.arg(query)
        if text:
            resources[key] = text
    return BuildOptions(
        tags=[t for t in request.query.get("t", []) if t],
        dockerfile=request.arg("dockerfile") or "Dockerfile",
        build_args={str(k): v for k, v in build_args.items()},
        target=request.arg("target") or "",
        no_cache=request.flag("nocache"),
        pull=request.flag("pull"),
        rm=request.flag("rm", True),
        force_rm=request.flag("forcerm"),
        quiet=request.flag("q"),
        labels={str(k): str(v) for k, v in labels.items()},
        network_mode=request.arg("networkmode") or "",
        extra_hosts=hosts,
        shm_size=_int(request, "shmsize"),
        ulimits=[u for u in ulimits if isinstance(u, dict)],
        resources=resources,
        cache_from=[str(c) for c in cache_from],
        platform=request.arg("platform") or "",
        registry_auth=registry_config(request),
    )


def register(router: Router, builds: BuildBackend) -> None:
    async def build(request: Request) -> Any:
        options = options_from(request)
        builds.check(options, request.flag("squash"), request.arg("isolation") or "",
                     request.arg("version") or "")
        cancel = threading.Event()
        remote = request.arg("remote") or ""
        if remote:
            def remote_job(emit: Emit) -> None:
                builds.build(options, None, remote, emit, cancel)
            return await progress_response(remote_job, None, cancel.set)
        pipe = BodyPipe(request)

        def job(emit: Emit, reader: BinaryIO) -> None:
            builds.build(options, reader, "", emit, cancel)

        return await progress_response(job, pipe, cancel.set)

    async def prune(request: Request) -> Response:
        filters = request.filters()
        keep = request.arg("keep-storage") or request.arg("reserved-space") or "0"
        try:
            keep_storage = int(keep)
        except ValueError:
            raise InvalidParameter(f"keep-storage is in bytes and expects an integer, got {keep}: "
                                   f"strconv.Atoi: parsing \"{keep}\": invalid syntax") from None
        return json_response(await builds.prune(request.flag("all"), filters, keep_storage))

    router.add("POST", "/build", build)
    router.add("POST", "/build/prune", prune)
