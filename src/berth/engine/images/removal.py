"""`docker rmi`: untag or delete, with moby's conflict rules and texts.

Removing by reference untags it; the image itself then goes only if nothing else names or
uses it (quietly kept otherwise). Removing by ID drops all references of a single repository
and then the image. Hard conflicts (child images, running containers) stop even ``force``;
soft ones (other repositories' references, stopped containers) give way to it. With
``prune`` (the default) untagged parents are removed too, quietly.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable

from berth.engine.images.service import Image, familiar, is_digest_ref, normalise, ref_name, short
from berth.errors import Conflict

if TYPE_CHECKING:
    from berth.engine.images.service import ImageService

DEPENDENT_CHILD, RUNNING, ACTIVE_REFERENCE, STOPPED = 1, 2, 4, 8
HARD = DEPENDENT_CHILD | RUNNING
SOFT = ACTIVE_REFERENCE | STOPPED


class DeleteConflict(Conflict):
    def __init__(self, image_id: str, hard: bool, message: str, used: bool = False):
        how = "cannot be forced" if hard else "must be forced"
        super().__init__(f"conflict: unable to delete {short(image_id)} ({how}) - {message}")
        self.used = used


@dataclass
class ContainerView:
    """What removal needs to know of a container."""
    id: str
    image_id: str
    running: bool


def is_id_prefix(image_id: str, candidate: str) -> bool:
    return image_id.startswith(candidate) or image_id.removeprefix("sha256:").startswith(candidate)


def is_single_reference(keys: list[str]) -> bool:
    """At most one tag, and any digest references in that tag's repository only."""
    if len(keys) <= 1:
        return len(keys) == 1
    single = None
    digest_repos = set()
    for key in keys:
        if is_digest_ref(key):
            digest_repos.add(ref_name(key))
        elif single is None:
            single = key
        else:
            return False
    if single is None:
        single = keys[0]
    return len(digest_repos) == 1 and ref_name(single) in digest_repos


class ImageRemover:
    def __init__(self, service: "ImageService", containers: Callable[[], Iterable[ContainerView]]):
        self.service = service
        self.containers = containers
        self.lock = threading.RLock()  # one removal (or prune) changes the graph at a time

    def remove(self, ref: str, force: bool = False, prune: bool = True) -> list[dict[str, Any]]:
        with self.lock:
            return self._remove(ref, force, prune)

    def _remove(self, ref: str, force: bool, prune: bool) -> list[dict[str, Any]]:
        svc = self.service
        image = svc.get(ref)
        records: list[dict[str, Any]] = []
        keys = svc.references(image.id)
        removed_reference = False
        if not is_id_prefix(image.id, ref):
            if not force and is_single_reference(keys):
                user = self._first(lambda c: c.image_id == image.id)
                if user is not None:
                    raise Conflict(f'conflict: unable to remove repository reference "{ref}" '
                                   f"(must force) - container {short(user.id)} is using its "
                                   f"referenced image {short(image.id)}")
            key = normalise(ref)
            svc.remove_reference(key)
            records.append({"Untagged": familiar(key)})
            keys = svc.references(image.id)
            if not is_digest_ref(key):
                # The last tag of a repository takes that repository's digests with it.
                name = ref_name(key)
                if not any(not is_digest_ref(k) and ref_name(k) == name for k in keys):
                    for other in [k for k in keys if is_digest_ref(k) and ref_name(k) == name]:
                        svc.remove_reference(other)
                        records.append({"Untagged": familiar(other)})
                    keys = svc.references(image.id)
            if keys:
                return records
            removed_reference = True
        elif is_single_reference(keys):
            mask = HARD | (0 if force else SOFT & ~ACTIVE_REFERENCE)
            conflict = self._conflict(image, mask)
            if conflict is not None:
                raise conflict
            for key in keys:
                svc.remove_reference(key)
                records.append({"Untagged": familiar(key)})
        self._delete(image, records, force, prune, quiet=removed_reference)
        return records

    def _delete(self, image: Image, records: list[dict[str, Any]], force: bool, prune: bool,
                quiet: bool) -> None:
        svc = self.service
        conflict = self._conflict(image, HARD if force else HARD | SOFT)
        if conflict is not None:
            dangling = not svc.references(image.id) and not svc.children(image.id)
            if quiet and (not dangling or conflict.used):
                return  # a parent (or an untagged image) still needed: keep it, say nothing
            raise conflict
        parent = image.parent
        for key in svc.references(image.id):
            svc.remove_reference(key)
            records.append({"Untagged": familiar(key)})
        removed_layers = svc.delete_record(image)
        records.append({"Deleted": image.id})
        records.extend({"Deleted": cid} for cid in removed_layers)
        if prune and parent:
            parent_image = svc.by_id(parent)
            if parent_image is not None:
                self._delete(parent_image, records, False, True, True)

    def _first(self, predicate: Callable[[ContainerView], bool]) -> ContainerView | None:
        for container in self.containers():
            if predicate(container):
                return container
        return None

    def _conflict(self, image: Image, mask: int) -> DeleteConflict | None:
        if mask & DEPENDENT_CHILD and self.service.children(image.id):
            return DeleteConflict(image.id, True, "image has dependent child images")
        if mask & RUNNING:
            user = self._first(lambda c: c.image_id == image.id and c.running)
            if user is not None:
                return DeleteConflict(image.id, True, "image is being used by running container "
                                      + short(user.id), used=True)
        if mask & ACTIVE_REFERENCE and self.service.references(image.id):
            return DeleteConflict(image.id, False, "image is referenced in multiple repositories")
        if mask & STOPPED:
            user = self._first(lambda c: c.image_id == image.id and not c.running)
            if user is not None:
                return DeleteConflict(image.id, False, "image is being used by stopped container "
                                      + short(user.id), used=True)
        return None
