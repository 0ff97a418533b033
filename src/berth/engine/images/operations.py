"""The image operations the API calls (``engine.image_ops``): the parts of the image store
that also need the containers (rmi conflicts, prune, commit) or stream (save, load).

Blocking work (unpacking, hashing, deleting layers) runs in worker threads; the methods here
are either plain (called from a thread by the route) or ``async`` and hop to threads
themselves, as noted on each.
"""

from __future__ import annotations

import asyncio
from typing import Any, BinaryIO, Callable, Iterable, Iterator

from berth.distribution import reference
from berth.engine.images import changes as image_changes
from berth.engine.images import filters as flt
from berth.engine.images import listing, views
from berth.engine.images.commit import Committer
from berth.engine.images.exporter import SaveSession
from berth.engine.images.loader import Emit, ImageLoader
from berth.engine.images.prune import ImagePruner
from berth.engine.images.removal import ContainerView, ImageRemover
from berth.engine.images.service import Image, ImageService, normalise
from berth.errors import InvalidParameter


def repo_tag_reference(repo: str, tag: str) -> str | None:
    """moby's RepoTagReference: the normalised name:tag key for ``repo``/``tag`` (None if
    no repo); digests are refused."""
    if not repo:
        return None
    parsed = reference.parse_normalized_named(repo)
    if parsed.digest is not None:
        raise InvalidParameter("cannot import digest reference")
    if tag:
        parsed = reference.with_tag(parsed, tag)
    return normalise(str(parsed))


class ImageOperations:
    def __init__(self, images: ImageService, containers: Callable[[], Iterable[Any]],
                 committer: Committer):
        """``containers``: every container (``id``, ``image_id``, ``running``), for the
        conflicts of a removal."""
        self.images = images
        self._containers = containers
        self.remover = ImageRemover(self.images, self._container_views)
        self.pruner = ImagePruner(self.images, self.remover)
        self.committer = committer

    def _container_views(self) -> list[ContainerView]:
        return [ContainerView(c.id, c.image_id, c.running) for c in self._containers()]

    # -- import (runs in a worker thread: it reads and unpacks the upload) ------------------
    def check_import(self, repo: str, tag: str, changes: list[str]) -> str | None:
        """What import would refuse, checked before the upload is read (a clean 400)."""
        key = repo_tag_reference(repo, tag)
        if key:
            reference.check_taggable(reference.parse_normalized_named(key))
        image_changes.validate(changes)
        return key

    def import_image(self, stream: BinaryIO, repo: str, tag: str, changes: list[str],
                     message: str, source: str = "-") -> Image:
        key = self.check_import(repo, tag, changes)
        config = image_changes.apply_changes(_empty_container_config(), changes)
        image = self.images.import_layer(stream, config, message or f"Imported from {source}")
        if key:
            self.images.tag(image, key)
        self.images.publish("import", image.id, image.id)
        return image

    # -- views ------------------------------------------------------------------------------
    def list_images(self, all_: bool, filters: flt.Filters, shared_size: bool = False) -> list[dict]:
        return listing.list_images(self.images, filters, all_, shared_size=shared_size)

    def inspect_image(self, ref: str) -> dict:
        return views.inspect(self.images, self.images.get(ref))

    def history(self, ref: str) -> list[dict]:
        return views.history(self.images, self.images.get(ref))

    def tag_image(self, ref: str, repo: str, tag: str) -> None:
        key = repo_tag_reference(repo, tag)
        if key is None:
            raise InvalidParameter("repository name must have at least one component")
        parsed = reference.parse_normalized_named(key)
        if reference.familiar_name(parsed) == "sha256":
            raise InvalidParameter("refusing to create an ambiguous tag using digest algorithm as name")
        self.images.tag(self.images.get(ref), key)

    # -- removal ------------------------------------------------------------------------------
    async def remove_image(self, ref: str, force: bool, noprune: bool) -> list[dict]:
        if not ref.strip():
            raise InvalidParameter("image name cannot be blank")
        return await asyncio.to_thread(self.remover.remove, ref, force, not noprune)

    async def prune(self, filters: flt.Filters) -> dict[str, Any]:
        return await asyncio.to_thread(self.pruner.prune, filters)

    # -- save / load (generator and call run in worker threads) ----------------------------
    def save(self, names: list[str]) -> Iterator[bytes]:
        """Selects the images now (errors before any byte is sent), then streams."""
        if not names:
            raise InvalidParameter("no images specified")
        return SaveSession(self.images, names).stream()

    def load(self, stream: BinaryIO, emit: Emit, quiet: bool) -> None:
        ImageLoader(self.images, emit, quiet).load(stream)

    # -- commit -------------------------------------------------------------------------------
    async def commit(self, container: str, repo: str, tag: str, comment: str, author: str,
                     changes: list[str], pause: bool, config: dict[str, Any] | None) -> str:
        key = repo_tag_reference(repo, tag)
        if key:
            reference.check_taggable(reference.parse_normalized_named(key))
        return await self.committer.commit(container, key, comment=comment, author=author,
                                           changes=changes, pause=pause, config=config)

def _empty_container_config() -> dict[str, Any]:
    """container.Config as moby marshals an empty one into an imported image's config."""
    return {"Hostname": "", "Domainname": "", "User": "", "AttachStdin": False,
            "AttachStdout": False, "AttachStderr": False, "Tty": False, "OpenStdin": False,
            "StdinOnce": False, "Env": None, "Cmd": None, "Image": "", "Volumes": None,
            "WorkingDir": "", "Entrypoint": None, "OnBuild": None, "Labels": None}
