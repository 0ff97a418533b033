"""Media types of image manifests, indexes, configs and layers (Docker and OCI), and what
each says about a layer's compression and distributability. Pure constants and predicates,
shared by pull, push, ``docker load`` and ``docker save``."""

from __future__ import annotations

# Docker distribution (schema 2)
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
DOCKER_PLUGIN_CONFIG = "application/vnd.docker.plugin.v1+json"

# Docker schema 1 (refused, as Docker >= 28 does)
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"

# OCI image spec
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYER_NONDIST = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_LAYER_NONDIST_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
OCI_LAYER_NONDIST_ZSTD = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"

MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
SCHEMA1_TYPES = frozenset({DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED})
CONFIG_TYPES = frozenset({OCI_CONFIG, DOCKER_CONFIG})
FOREIGN_LAYER_TYPES = frozenset({DOCKER_FOREIGN_LAYER, OCI_LAYER_NONDIST,
                                 OCI_LAYER_NONDIST_GZIP, OCI_LAYER_NONDIST_ZSTD})
LAYER_TYPES = frozenset({DOCKER_LAYER, OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD}) | FOREIGN_LAYER_TYPES

# What a registry is asked for (the Accept header of manifest requests), in moby's order.
MANIFEST_ACCEPT = (DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_MANIFEST, OCI_INDEX)


def is_index(media_type: str) -> bool:
    return media_type in INDEX_TYPES


def is_manifest(media_type: str) -> bool:
    return media_type in MANIFEST_TYPES


def is_layer(media_type: str) -> bool:
    return media_type in LAYER_TYPES


def is_foreign(media_type: str) -> bool:
    """A foreign or non-distributable layer: its blob is not pushed (moby skips it)."""
    return media_type in FOREIGN_LAYER_TYPES


def compression_of(media_type: str) -> str:
    """"gzip", "zstd" or "none" as the media type says (the bytes' magic decides on use)."""
    if media_type.endswith("+zstd"):
        return "zstd"
    if media_type.endswith(".tar") or media_type == OCI_LAYER:
        return "none"
    return "gzip"


def docker_equivalent(media_type: str) -> str:
    """The Docker schema 2 spelling of an OCI layer type, for a Docker manifest (gzip and
    uncompressed tar share Docker's one layer type; zstd has none)."""
    if media_type in (OCI_LAYER_GZIP, OCI_LAYER, DOCKER_LAYER):
        return DOCKER_LAYER
    if media_type in (OCI_LAYER_NONDIST_GZIP, OCI_LAYER_NONDIST, DOCKER_FOREIGN_LAYER):
        return DOCKER_FOREIGN_LAYER
    return media_type


def oci_equivalent(media_type: str) -> str:
    if media_type == DOCKER_LAYER:
        return OCI_LAYER_GZIP
    if media_type == DOCKER_FOREIGN_LAYER:
        return OCI_LAYER_NONDIST_GZIP
    return media_type
