"""The daemon's registry client (``RegistryService``): one ``distribution.registry.Registry``
(connection pool, token cache, the endpoint each host answered on) shared by pulls, pushes,
``docker login`` (``POST /auth``), ``GET /distribution/{name}/json`` and ``docker search``.

Its options come from the daemon's configuration at each use, so a SIGHUP reload of
``insecure-registries`` or ``registry-mirrors`` applies to the next request. The roots of
``certs.d`` are ``/etc/docker/certs.d`` and ``/etc/berth/certs.d``, or the colon-separated
list in ``BERTH_CERTS_DIRS`` (tests point it at their own).
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import urlencode

from berth.distribution import reference
from berth.distribution.auth import AuthConfig, basic_header
from berth.distribution.manifest import ImageIndex, ImageManifest, parse, parse_config
from berth.distribution.platform import from_json
from berth.distribution.registry import (DEFAULT_CERTS_DIRS, Registry, RegistryOptions,
                                         Repository, TransportError, login)
from berth.errors import BerthError, InvalidParameter, SystemError_

SEARCH_FILTERS = ("is-automated", "is-official", "stars")
DEFAULT_SEARCH_LIMIT = 25
INDEX_NAME = "docker.io"


def certs_dirs() -> tuple[str, ...]:
    value = os.environ.get("BERTH_CERTS_DIRS", "")
    return tuple(p for p in value.split(":") if p) or DEFAULT_CERTS_DIRS


class RegistryService:
    def __init__(self, config: Any):
        self._config = config
        self.registry = Registry(self.options())

    def options(self) -> RegistryOptions:
        config = self._config
        return RegistryOptions(list(config.insecure_registries), list(config.registry_mirrors),
                               certs_dirs(), int(config.max_download_attempts or 5))

    def repository(self, name: reference.Reference, auth: AuthConfig, push: bool = False) -> Repository:
        self.registry.configure(self.options())
        return self.registry.repository(name.domain, name.path, auth, push)

    def close(self) -> None:
        self.registry.close()

    # -- POST /auth --------------------------------------------------------------------------
    def login(self, auth: AuthConfig) -> dict[str, str]:
        self.registry.configure(self.options())
        status, token = login(self.registry, auth.server_address, auth)
        answer = {"Status": status}
        if token:
            answer["IdentityToken"] = token
        return answer

    # -- GET /distribution/{name}/json ---------------------------------------------------------
    def registry_data(self, name: str, auth: AuthConfig) -> dict[str, Any]:
        ref = reference.parse_normalized_named(name)
        if ref.digest is None:
            ref = reference.tag_name_only(ref)
        repo = self.repository(ref, auth)
        wanted = ref.digest or ref.tag or reference.DEFAULT_TAG

        def fetch() -> tuple[bytes, str, str]:
            if ref.digest is not None:
                return repo.get_manifest(wanted)
            descriptor = repo.resolve(wanted)
            data, media_type, digest = repo.get_manifest(descriptor.digest)
            return data, media_type or descriptor.media_type, digest

        data, media_type, digest = repo.with_fallback(fetch)
        document = parse(data, media_type, str(ref))
        platforms: list[dict[str, Any]] = []
        if isinstance(document, ImageIndex):
            for entry in document.manifests:
                if entry.platform is not None:
                    platforms.append(entry.platform.to_json())
        elif isinstance(document, ImageManifest):
            try:
                config = parse_config(repo.read_blob(document.config.digest, 8 << 20),
                                      document.config.digest)
                found = from_json(config)
                if found is not None:
                    platforms.append(found.to_json())
            except BerthError:
                pass
        return {"Descriptor": {"mediaType": document.media_type or media_type, "digest": digest,
                               "size": len(data)},
                "Platforms": platforms}

    # -- GET /images/search -------------------------------------------------------------------
    def search(self, term: str, limit: int, filters: dict[str, list[str]],
               auth: AuthConfig) -> list[dict[str, Any]]:
        for key in filters:
            if key not in SEARCH_FILTERS:
                raise InvalidParameter(f"invalid filter '{key}'")
        automated = _bool_filter(filters, "is-automated")
        official = _bool_filter(filters, "is-official")
        stars = 0
        for value in filters.get("stars", []):
            try:
                stars = max(stars, int(value))
            except ValueError:
                raise InvalidParameter(f"invalid filter 'stars={value}'") from None
        if limit == 0:
            limit = DEFAULT_SEARCH_LIMIT
        if limit < 1 or limit > 100:
            raise InvalidParameter(f"limit {limit} is outside the range of [1, 100]")
        index, remote = _split_search_term(term)
        if index == INDEX_NAME:
            remote = remote.removeprefix("library/")
        results = self._query_index(index, remote, limit, auth)
        out = []
        for result in results:
            if not isinstance(result, dict):
                continue
            if automated is not None and bool(result.get("is_automated")) != automated:
                continue
            if official is not None and bool(result.get("is_official")) != official:
                continue
            if stars and int(result.get("star_count") or 0) < stars:
                continue
            out.append({"star_count": int(result.get("star_count") or 0),
                        "is_official": bool(result.get("is_official")),
                        "name": str(result.get("name") or ""),
                        "is_automated": bool(result.get("is_automated")),
                        "description": str(result.get("description") or "")})
        return out

    def _query_index(self, index: str, remote: str, limit: int, auth: AuthConfig) -> list[Any]:
        """Docker Hub's search API (``GET /v1/search?q=&n=``) on the index's endpoints: HTTPS,
        then plain HTTP for an insecure index, as moby's v1 endpoint."""
        self.registry.configure(self.options())
        host = "index.docker.io" if index == INDEX_NAME else index
        endpoints = self.registry.endpoints.for_host(host)
        headers: dict[str, str] = {}
        if auth.username and index == INDEX_NAME:
            headers["Authorization"] = basic_header(auth.username, auth.password)
        query = urlencode({"q": remote, "n": str(limit)})
        last: BaseException | None = None
        for endpoint in endpoints:
            url = f"{endpoint.base}/v1/search?{query}"
            try:
                response = self.registry.transport.request(endpoint, "GET", url, headers)
            except TransportError as exc:
                last = exc
                continue
            body = response.read_limited(16 << 20)
            if response.status != 200:
                raise SystemError_(f"Unexpected status code {response.status}")
            try:
                document = json.loads(body)
            except ValueError as exc:
                raise SystemError_(f"error decoding search results: {exc}") from None
            results = document.get("results") if isinstance(document, dict) else None
            return results if isinstance(results, list) else []
        assert last is not None
        raise last


def _bool_filter(filters: dict[str, list[str]], key: str) -> bool | None:
    values = filters.get(key)
    if not values:
        return None
    result = None
    for value in values:
        lowered = value.lower()
        if lowered in ("1", "t", "true"):
            result = True
        elif lowered in ("0", "f", "false"):
            result = False
        else:
            raise InvalidParameter(f"invalid filter '{key}={value}'")
    return result


def _split_search_term(term: str) -> tuple[str, str]:
    """moby's splitReposSearchTerm: a first component with a dot, a colon or ``localhost``
    names the index; anything else searches Docker Hub."""
    first, sep, rest = term.partition("/")
    if not sep or ("." not in first and ":" not in first and first != "localhost"):
        return INDEX_NAME, term
    return first, rest
