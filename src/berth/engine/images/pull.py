"""`docker pull` in the engine: references, tags, RepoDigests and events around the
library's puller (``berth.distribution.pull``), which fetches and verifies everything and
registers the layers; this module makes the image visible (``ImageService.create_image``,
the commit point) and names it.

Progress is Docker's: ``latest: Pulling from library/busybox``, the per-layer messages of
the library, ``Digest: sha256:...`` and ``Status: Downloaded newer image for busybox:latest``
(or ``Image is up to date``). Errors found before the first message (an unknown image, bad
credentials, an unreachable registry) are raised before any output, so the API answers
them with a status, as dockerd does before its response is flushed.
"""

from __future__ import annotations

from typing import Any, Callable

from berth.distribution import platform as platforms
from berth.distribution import reference
from berth.distribution.auth import AuthConfig
from berth.distribution.pull import PullOptions, Puller, Transfers, not_found
from berth.distribution.registry import RegistryError, server_host
from berth.engine.images.registry import RegistryService
from berth.engine.images.service import Image, ImageService
from berth.errors import Unauthorized

Emit = Callable[[dict[str, Any]], None]


def pull_reference(from_image: str, tag: str) -> reference.Reference:
    """moby's postImagesCreate: ``fromImage`` (a trailing ``:`` dropped, as ``pull -a`` may
    send) with ``tag``, which may be a digest."""
    image = from_image.removesuffix(":")
    ref = reference.parse_normalized_named(image)
    if tag:
        if reference.is_digest(tag):
            ref = reference.with_digest(reference.trim_named(ref), tag)
        else:
            ref = reference.with_tag(ref, tag)
    return ref


class ImagePuller:
    def __init__(self, images: ImageService, registry: RegistryService, config: Any):
        self.images = images
        self.registry = registry
        self._config = config
        self.transfers = Transfers()  # shared by concurrent pulls

    def check_pull(self, from_image: str, tag: str, platform: str) -> None:
        """What a pull refuses before it starts (400s)."""
        pull_reference(from_image, tag)
        if platform:
            platforms.parse(platform)

    def pull(self, from_image: str, tag: str, platform: str, auth: AuthConfig, emit: Emit) -> None:
        ref = pull_reference(from_image, tag)
        want = platforms.parse(platform) if platform else None
        options = PullOptions(want, bool(platform), max(1, int(self._config.max_concurrent_downloads or 3)),
                              max(1, int(self._config.max_download_attempts or 5)))
        repo = self.registry.repository(ref, auth)
        puller = Puller(repo, self.images.content, self.images.layers, self.images.blobs,
                        self.transfers, emit, options)
        if ref.is_name_only:
            self._pull_all(ref, puller, emit)
            return
        updated = self._pull_one(ref, puller, emit)
        _status(emit, reference.familiar_string(ref), updated)

    def pull_for_build(self, ref: str, platform: str, emit: Emit,
                       auth: dict[str, dict[str, str]]) -> Image:
        """A build's FROM (or ``--pull``): the image ``ref`` names, pulled with the
        credentials the client sent for its registry (``X-Registry-Config``: server address
        to auth config) and its progress in the build's output, as dockerd's classic
        builder does."""
        parsed = reference.parse_normalized_named(ref)
        if parsed.is_name_only:
            parsed = reference.tag_name_only(parsed)
        self.pull(str(parsed), "", platform, _auth_for(parsed.domain, auth), emit)
        return self.images.get(str(parsed))

    def _pull_all(self, ref: reference.Reference, puller: Puller, emit: Emit) -> None:
        try:
            tags = puller.repo.with_fallback(puller.repo.tags)
        except (RegistryError, Unauthorized) as exc:
            raise not_found(exc, reference.familiar_name(ref), reference.familiar_string(ref)) from None
        updated = False
        for tag in sorted(set(tags)):
            updated = self._pull_one(reference.with_tag(ref, tag), puller, emit) or updated
        _status(emit, reference.familiar_string(ref), updated)

    def _pull_one(self, ref: reference.Reference, puller: Puller, emit: Emit) -> bool:
        shown = str(ref)
        try:
            data, media_type, digest = puller.fetch(ref.digest or ref.tag or "latest")
        except (RegistryError, Unauthorized) as exc:
            raise not_found(exc, reference.familiar_name(ref), reference.familiar_string(ref)) from None
        emit({"status": f"Pulling from {ref.path}", "id": ref.digest and str(ref) or ref.tag})
        try:
            manifest = puller.select(data, media_type, shown)
            pulled = puller.pull(manifest, digest, media_type)
        except RegistryError as exc:
            raise not_found(exc, reference.familiar_name(ref), reference.familiar_string(ref)) from None
        try:
            key = str(ref)
            previous = self.images.lookup_tag(key)
            image = self.images.create_image(pulled.document, config_bytes=pulled.config)
            if ref.digest is None:
                self.images.tag(image, key, event=False)
            self.images.add_digest_reference(image, f"{ref.name}@{pulled.digest}")
        finally:
            pulled.release()
        emit({"status": f"Digest: {pulled.digest}"})
        self.images.publish("pull", reference.familiar_string(ref), reference.familiar_name(ref),
                            labels=image.labels)
        return previous != image.id


def _auth_for(domain: str, auth: dict[str, dict[str, str]]) -> AuthConfig:
    """The auth config among a build's that is for ``domain``'s registry."""
    for address, config in auth.items():
        if server_host(address) == domain or server_host(config.get("serveraddress", "")) == domain:
            return AuthConfig.from_json(config)
    return AuthConfig()


def _status(emit: Emit, shown: str, updated: bool) -> None:
    if updated:
        emit({"status": f"Status: Downloaded newer image for {shown}"})
    else:
        emit({"status": f"Status: Image is up to date for {shown}"})

