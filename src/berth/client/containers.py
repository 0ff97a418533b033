"""Container endpoints of the Engine API, shaped as the docker CLI's Go client sends them.

A mixin of ``APIClient``: every method goes through its ``request``/``get``/``post``/
``hijack`` helpers, so errors, versions and tracing are the client's. Query parameters are
the ones docker's client sets (``stream=1``, ``v=1``, ``t=<seconds>``, ...), so daemons see
the same requests from ``berth`` as from ``docker``.
"""

from __future__ import annotations

import base64
import json as _json
from typing import Any, Iterable, Iterator, Mapping

from berth.client import errors


def check_id(kind: str, ref: str) -> str:
    """docker's trimID: an empty reference is an error before any request."""
    ref = (ref or "").strip()
    if not ref:
        raise errors.InvalidArgument(f"invalid {kind} name or ID: value is empty")
    return ref


def _stat_header(headers: Any) -> dict:
    """``X-Docker-Container-Path-Stat``: base64 of the JSON path stat."""
    encoded = headers.get("X-Docker-Container-Path-Stat") or ""
    try:
        return _json.loads(base64.b64decode(encoded))
    except ValueError as e:
        raise errors.ClientError(f"unable to decode container path stat header: {e}") from None


class ContainersAPI:
    """Container endpoints; mixed into ``APIClient``."""

    # provided by APIClient
    request: Any
    get: Any
    post: Any
    delete: Any
    hijack: Any
    stream_json_lines: Any

    # -- lifecycle -----------------------------------------------------------------------------
    def create_container(self, body: Mapping[str, Any], name: str = "", platform: str = "") -> dict:
        params = {"platform": platform or None, "name": name or None}
        return self.post("/containers/create", params=params, json=body)

    def containers(
        self,
        all: bool = False,
        limit: int = -1,
        size: bool = False,
        filters: Mapping[str, Any] | None = None,
    ) -> list[dict]:
        params: dict[str, Any] = {}
        if all:
            params["all"] = "1"
        if limit > 0:
            params["limit"] = str(limit)
        if size:
            params["size"] = "1"
        if filters:
            params["filters"] = filters
        return self.get("/containers/json", params=params) or []

    def inspect_container_raw(self, ref: str, size: bool = False) -> tuple[dict, bytes]:
        """The container's JSON, decoded and as the daemon sent it (for byte-exact output)."""
        ref = check_id("container", ref)
        resp = self.request("GET", f"/containers/{ref}/json", params={"size": "1" if size else None})
        raw = resp.read()
        return _json.loads(raw), raw

    def inspect_container(self, ref: str, size: bool = False) -> dict:
        return self.inspect_container_raw(ref, size)[0]

    def start_container(self, ref: str) -> None:
        self.request("POST", f"/containers/{check_id('container', ref)}/start")

    def stop_container(self, ref: str, timeout: int | None = None, signal: str = "") -> None:
        params = {"t": str(timeout) if timeout is not None else None, "signal": signal or None}
        self.request("POST", f"/containers/{check_id('container', ref)}/stop", params=params)

    def restart_container(self, ref: str, timeout: int | None = None, signal: str = "") -> None:
        params = {"t": str(timeout) if timeout is not None else None, "signal": signal or None}
        self.request("POST", f"/containers/{check_id('container', ref)}/restart", params=params)

    def kill_container(self, ref: str, signal: str = "") -> None:
        self.request("POST", f"/containers/{check_id('container', ref)}/kill", params={"signal": signal or None})

    def remove_container(self, ref: str, force: bool = False, volumes: bool = False, link: bool = False) -> None:
        params = {"v": "1" if volumes else None, "link": "1" if link else None, "force": "1" if force else None}
        self.request("DELETE", f"/containers/{check_id('container', ref)}", params=params)

    def rename_container(self, ref: str, name: str) -> None:
        self.request("POST", f"/containers/{check_id('container', ref)}/rename", params={"name": name})

    def pause_container(self, ref: str) -> None:
        self.request("POST", f"/containers/{check_id('container', ref)}/pause")

    def unpause_container(self, ref: str) -> None:
        self.request("POST", f"/containers/{check_id('container', ref)}/unpause")

    def update_container(self, ref: str, body: Mapping[str, Any]) -> dict:
        return self.post(f"/containers/{check_id('container', ref)}/update", json=body) or {}

    def resize_container(self, ref: str, height: int, width: int) -> None:
        params = {"h": str(height), "w": str(width)}
        self.request("POST", f"/containers/{check_id('container', ref)}/resize", params=params)

    def prune_containers(self, filters: Mapping[str, Any] | None = None) -> dict:
        return self.post("/containers/prune", params={"filters": filters or None}) or {}

    # -- waiting -------------------------------------------------------------------------------
    def wait_container_start(self, ref: str, condition: str = "") -> "WaitHandle":
        """POST /wait; returns once the daemon has answered 200 (so the wait is registered
        before, say, the container is started); ``result()`` blocks until it ends."""
        resp = self.request(
            "POST",
            f"/containers/{check_id('container', ref)}/wait",
            params={"condition": condition or None},
            stream=True,
        )
        return WaitHandle(resp)

    def wait_container(self, ref: str, condition: str = "") -> dict:
        return self.wait_container_start(ref, condition).result()

    # -- streams -------------------------------------------------------------------------------
    def attach_container(
        self,
        ref: str,
        *,
        stdin: bool = False,
        stdout: bool = False,
        stderr: bool = False,
        stream: bool = True,
        logs: bool = False,
        detach_keys: str = "",
    ) -> Any:
        params = {
            "stream": "1" if stream else None,
            "stdin": "1" if stdin else None,
            "stdout": "1" if stdout else None,
            "stderr": "1" if stderr else None,
            "detachKeys": detach_keys or None,
            "logs": "1" if logs else None,
        }
        return self.hijack(
            "POST",
            f"/containers/{check_id('container', ref)}/attach",
            params=params,
            headers={"Content-Type": "text/plain"},
        )

    def logs_stream(self, ref: str, params: Mapping[str, Any]) -> Any:
        """GET /logs as a streaming Response (framed or raw, per the container's TTY)."""
        return self.request("GET", f"/containers/{check_id('container', ref)}/logs", params=params, stream=True)

    def stats_stream(self, ref: str, stream: bool = True, one_shot: bool = False) -> Iterator[dict]:
        params = {"stream": "1" if stream else "0", "one-shot": "1" if one_shot else None}
        return self.stream_json_lines(
            "GET", f"/containers/{check_id('container', ref)}/stats", params=params, raise_on_error=False
        )

    def top(self, ref: str, ps_args: Iterable[str] = ()) -> dict:
        args = " ".join(ps_args)
        return self.get(f"/containers/{check_id('container', ref)}/top", params={"ps_args": args or None})

    def container_changes(self, ref: str) -> list[dict]:
        return self.get(f"/containers/{check_id('container', ref)}/changes") or []

    def export_container(self, ref: str) -> Any:
        return self.request("GET", f"/containers/{check_id('container', ref)}/export", stream=True)

    def commit(
        self,
        ref: str,
        repo: str = "",
        tag: str = "",
        *,
        comment: str = "",
        author: str = "",
        changes: Iterable[str] = (),
        pause: bool = True,
    ) -> dict:
        params: dict[str, Any] = {
            "container": check_id("container", ref),
            "repo": repo,
            "tag": tag,
            "comment": comment,
            "author": author,
            "changes": list(changes) or None,
            "pause": None if pause else "0",
        }
        return self.post("/commit", params=params)

    # -- archives (docker cp) ------------------------------------------------------------------
    def stat_container_path(self, ref: str, path: str) -> dict:
        resp = self.request("HEAD", f"/containers/{check_id('container', ref)}/archive", params={"path": path})
        return _stat_header(resp.headers)

    def get_archive(self, ref: str, path: str) -> tuple[Any, dict]:
        """(streaming Response with a tar of ``path``, its path stat)."""
        resp = self.request(
            "GET", f"/containers/{check_id('container', ref)}/archive", params={"path": path}, stream=True
        )
        try:
            stat = _stat_header(resp.headers)
        except errors.ClientError as e:
            resp.close()
            raise errors.ClientError(f"unable to get resource stat from response: {e}") from None
        return resp, stat

    def put_archive(
        self, ref: str, path: str, data: bytes | Iterable[bytes], *, copy_uid_gid: bool = False, overwrite_dir_with_file: bool = False
    ) -> None:
        params = {
            "path": path,
            "noOverwriteDirNonDir": None if overwrite_dir_with_file else "true",
            "copyUIDGID": "true" if copy_uid_gid else None,
        }
        self.request("PUT", f"/containers/{check_id('container', ref)}/archive", params=params, data=data)

    # -- exec ----------------------------------------------------------------------------------
    def exec_create(self, ref: str, body: Mapping[str, Any]) -> dict:
        return self.post(f"/containers/{check_id('container', ref)}/exec", json=body)

    def exec_start(self, exec_id: str, body: Mapping[str, Any]) -> None:
        self.request("POST", f"/exec/{exec_id}/start", json=body)

    def exec_attach(self, exec_id: str, body: Mapping[str, Any]) -> Any:
        return self.hijack("POST", f"/exec/{exec_id}/start", json=body)

    def exec_inspect(self, exec_id: str) -> dict:
        return self.get(f"/exec/{exec_id}/json")

    def exec_resize(self, exec_id: str, height: int, width: int) -> None:
        params = {"h": str(height), "w": str(width)}
        self.request("POST", f"/exec/{check_id('exec', exec_id)}/resize", params=params)


class WaitHandle:
    """A registered ``/wait``: ``result()`` reads the answer (``{"StatusCode":..,"Error":..}``)."""

    def __init__(self, resp: Any):
        self._resp = resp

    def result(self) -> dict:
        body = self._resp.read()
        try:
            return _json.loads(body)
        except ValueError:
            # a proxy may cut the stream after the 200 and write plain text (docker's note)
            raise errors.ClientError(body.decode("utf-8", "replace").strip() or "unexpected EOF") from None
        finally:
            self._resp.close()

    def close(self) -> None:
        self._resp.close()
