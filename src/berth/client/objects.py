"""Volume, network and system-wide endpoints of the Engine API (mixins of ``APIClient``)."""

from __future__ import annotations

import json as _json
from typing import Any, Iterable, Mapping


class VolumesAPI:
    request: Any
    get: Any
    post: Any

    def volumes(self, filters: Mapping[str, Any] | None = None) -> dict:
        return self.get("/volumes", params={"filters": filters or None}) or {}

    def create_volume(self, body: Mapping[str, Any]) -> dict:
        return self.post("/volumes/create", json=body)

    def inspect_volume_raw(self, name: str) -> tuple[dict, bytes]:
        resp = self.request("GET", f"/volumes/{name}")
        raw = resp.read()
        return _json.loads(raw), raw

    def remove_volume(self, name: str, force: bool = False) -> None:
        self.request("DELETE", f"/volumes/{name}", params={"force": "1" if force else None})

    def prune_volumes(self, filters: Mapping[str, Any] | None = None) -> dict:
        return self.post("/volumes/prune", params={"filters": filters or None}) or {}


class NetworksAPI:
    request: Any
    get: Any
    post: Any

    def networks(self, filters: Mapping[str, Any] | None = None) -> list[dict]:
        return self.get("/networks", params={"filters": filters or None}) or []

    def create_network(self, body: Mapping[str, Any]) -> dict:
        return self.post("/networks/create", json=body)

    def inspect_network_raw(self, ref: str, verbose: bool = False) -> tuple[dict, bytes]:
        resp = self.request("GET", f"/networks/{ref}", params={"verbose": "true" if verbose else None})
        raw = resp.read()
        return _json.loads(raw), raw

    def remove_network(self, ref: str) -> None:
        self.request("DELETE", f"/networks/{ref}")

    def connect_network(self, ref: str, container: str, endpoint: Mapping[str, Any] | None) -> None:
        self.request("POST", f"/networks/{ref}/connect", json={"Container": container, "EndpointConfig": endpoint})

    def disconnect_network(self, ref: str, container: str, force: bool = False) -> None:
        self.request("POST", f"/networks/{ref}/disconnect", json={"Container": container, "Force": force})

    def prune_networks(self, filters: Mapping[str, Any] | None = None) -> dict:
        return self.post("/networks/prune", params={"filters": filters or None}) or {}


class SystemAPI:
    request: Any
    get: Any
    post: Any

    def df(self, types: Iterable[str] = ()) -> dict:
        return self.get("/system/df", params={"type": list(types) or None}) or {}

    def prune_build_cache(self, filters: Mapping[str, Any] | None = None, all: bool = False,
                          keep_storage: int = 0) -> dict:
        params = {"all": "1" if all else None, "filters": filters or None,
                  "keep-storage": str(keep_storage) if keep_storage else None}
        return self.post("/build/prune", params=params) or {}
