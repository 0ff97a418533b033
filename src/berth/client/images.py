"""Image endpoints of the Engine API (a mixin of ``APIClient``).

References are passed as the daemon wants them (``fromImage=docker.io/library/busybox``,
``tag=latest``); turning user input into those is the caller's job (docker's CLI does it with
the reference library, and so does ``berth``).
"""

from __future__ import annotations

import json as _json
from typing import Any, Iterable, Iterator, Mapping

from berth.client import errors

REGISTRY_AUTH_HEADER = "X-Registry-Auth"


class ImagesAPI:
    """Image endpoints; mixed into ``APIClient``."""

    request: Any
    get: Any
    post: Any
    stream_json_lines: Any

    def images(self, all: bool = False, filters: Mapping[str, Any] | None = None) -> list[dict]:
        params: dict[str, Any] = {"filters": filters or None, "all": "1" if all else None}
        return self.get("/images/json", params=params) or []

    def inspect_image_raw(self, ref: str) -> tuple[dict, bytes]:
        if not ref:
            raise errors.NotFound(404, f"No such image: {ref}")  # docker checks before asking
        resp = self.request("GET", f"/images/{ref}/json")
        raw = resp.read()
        return _json.loads(raw), raw

    def inspect_image(self, ref: str) -> dict:
        return self.inspect_image_raw(ref)[0]

    def tag_image(self, source: str, repo: str, tag: str = "") -> None:
        self.request("POST", f"/images/{source}/tag", params={"repo": repo, "tag": tag or None})

    def remove_image(self, ref: str, force: bool = False, prune: bool = True) -> list[dict]:
        params = {"force": "1" if force else None, "noprune": None if prune else "1"}
        return self.request("DELETE", f"/images/{ref}", params=params).decoded() or []

    def history(self, ref: str) -> list[dict]:
        return self.get(f"/images/{ref}/history") or []

    def prune_images(self, filters: Mapping[str, Any] | None = None) -> dict:
        return self.post("/images/prune", params={"filters": filters or None}) or {}

    # -- streams of progress (JSON lines) ---------------------------------------------------
    def pull_stream(self, from_image: str, tag: str = "", *, platform: str = "", auth: str = "") -> Any:
        """POST /images/create?fromImage=..; the streaming Response of progress lines."""
        params = {"fromImage": from_image, "tag": tag, "platform": platform.lower() or None}
        return self.request(
            "POST", "/images/create", params=params, headers={REGISTRY_AUTH_HEADER: auth}, stream=True
        )

    def push_stream(self, name: str, tag: str = "", *, auth: str = "") -> Any:
        return self.request(
            "POST", f"/images/{name}/push", params={"tag": tag or None}, headers={REGISTRY_AUTH_HEADER: auth}, stream=True
        )

    def import_stream(
        self,
        data: bytes | Iterable[bytes] | None,
        *,
        source: str = "-",
        repo: str = "",
        tag: str = "",
        message: str = "",
        changes: Iterable[str] = (),
        platform: str = "",
    ) -> Any:
        params: dict[str, Any] = {
            "fromSrc": source or None,
            "repo": repo or None,
            "tag": tag or None,
            "message": message or None,
            "platform": platform.lower() or None,
            "changes": list(changes) or None,
        }
        return self.request("POST", "/images/create", params=params, data=data if data is not None else b"", stream=True)

    def load_stream(self, data: bytes | Iterable[bytes], quiet: bool = False) -> Any:
        return self.request(
            "POST",
            "/images/load",
            params={"quiet": "1" if quiet else "0"},
            data=data,
            headers={"Content-Type": "application/x-tar"},
            stream=True,
        )

    def build_stream(self, data: Iterable[bytes] | None, params: Mapping[str, Any], *,
                     registry_config: str = "") -> Any:
        """POST /build: ``data`` the context tar (chunks), or None with ``remote`` in
        ``params``; the streaming Response of JSON lines."""
        headers = {"Content-Type": "application/x-tar"}
        if registry_config:
            headers["X-Registry-Config"] = registry_config
        return self.request("POST", "/build", params=dict(params),
                            data=data if data is not None else b"", headers=headers, stream=True)

    def save_stream(self, names: Iterable[str]) -> Any:
        return self.request("GET", "/images/get", params={"names": list(names)}, stream=True)

    def progress(self, resp: Any) -> Iterator[dict]:
        """Decoded JSON lines of a progress Response (errors left in the stream)."""
        return resp.iter_json(raise_on_error=False)
