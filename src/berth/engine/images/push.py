"""`docker push` in the engine: which images a reference names, holding their layers while
they are sent, RepoDigests and events around the library's pusher
(``berth.distribution.push``).

Progress is Docker's: ``The push refers to repository [docker.io/library/busybox]``, the
library's per-layer messages, ``latest: digest: sha256:... size: 527`` and the
``{"aux": {"Tag", "Digest", "Size"}}`` message docker-py and the CLI read. A name without
a tag pushes every tag of the repository.
"""

from __future__ import annotations

from typing import Any, Callable

from berth.distribution import reference
from berth.distribution.auth import AuthConfig
from berth.distribution.push import LocalLayer, PushOptions, Pusher
from berth.engine.images.registry import RegistryService
from berth.engine.images.service import Image, ImageService, is_digest_ref
from berth.errors import InvalidParameter, NotFound

Emit = Callable[[dict[str, Any]], None]


def push_reference(name: str, tag: str) -> reference.Reference:
    ref = reference.parse_normalized_named(name)
    if tag:
        ref = reference.with_tag(reference.trim_named(ref) if ref.tag else ref, tag)
    if ref.digest is not None:
        raise InvalidParameter("cannot push a digest reference")
    return ref


class ImagePusher:
    def __init__(self, images: ImageService, registry: RegistryService, config: Any):
        self.images = images
        self.registry = registry
        self._config = config

    def check_push(self, name: str, tag: str) -> None:
        push_reference(name, tag)

    def push(self, name: str, tag: str, auth: AuthConfig, emit: Emit) -> None:
        ref = push_reference(name, tag)
        emit({"status": f"The push refers to repository [{ref.name}]"})
        associations = [(key, image_id) for key, image_id in self.images.references_by_name(ref.name)
                        if not is_digest_ref(key)]
        if not associations:
            raise NotFound(f"An image does not exist locally with the tag: "
                           f"{reference.familiar_name(ref)}")
        if ref.tag is not None:
            image_id = self.images.lookup_tag(str(ref))
            image = self.images.by_id(image_id) if image_id else None
            if image is None:
                raise NotFound(f"tag does not exist: {reference.familiar_string(ref)}")
            targets = [(ref, image)]
        else:
            targets = []
            for key, image_id in associations:
                image = self.images.by_id(image_id)
                if image is not None:
                    targets.append((reference.parse_normalized_named(key), image))
            if not targets:
                raise NotFound(f"no tags to push for {reference.familiar_name(ref)}")
        options = PushOptions(max(1, int(self._config.max_concurrent_uploads or 5)))
        repo = self.registry.repository(ref, auth, push=True)
        pusher = Pusher(repo, self.images.content, self.images.layers, self.images.blobs, emit,
                        options)
        for target, image in targets:
            self._push_one(pusher, target, image, emit)

    def _push_one(self, pusher: Pusher, ref: reference.Reference, image: Image, emit: Emit) -> None:
        top = image.top_layer
        held = None
        if top:
            self.images.layers.get(top)  # the layers stay while they are sent
            held = top
        try:
            layers = []
            for diff_id, cid in zip(image.diff_ids, image.chain):
                layer = self.images.layers.lookup(cid)
                if layer is None:
                    raise NotFound(f"layer {cid} does not exist")
                layers.append(LocalLayer(diff_id, cid, layer.tar_size))
            config = self.images.content.read_bytes(image.id)
            result = pusher.push(ref.tag or "latest", config, image.id, layers)
        finally:
            if held:
                self.images.layers.release(held)
        tag = ref.tag or "latest"
        emit({"status": f"{tag}: digest: {result.digest} size: {result.size}"})
        emit({"progressDetail": {}, "aux": {"Tag": tag, "Digest": result.digest, "Size": result.size}})
        self.images.add_digest_reference(image, f"{ref.name}@{result.digest}")
        self.images.publish("push", reference.familiar_string(ref), reference.familiar_name(ref),
                            labels=image.labels)
