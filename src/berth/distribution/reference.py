"""Docker image references: grammar, normalisation and ID helpers (pure functions).

Follows github.com/distribution/reference (the grammar Docker uses), including its error texts,
which clients show verbatim::

    reference    := name [ ":" tag ] [ "@" digest ]
    name         := [domain '/'] remote-name
    domain       := host [':' port-number]
    remote-name  := path-component ['/' path-component]*
    tag          := /[\\w][\\w.-]{0,127}/
    digest       := algorithm ":" hex

``parse_normalized_named("busybox")`` gives ``docker.io/library/busybox``; ``familiar_string``
turns it back into ``busybox``. Errors are :class:`ReferenceError` (an ``InvalidParameter``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase

from berth.errors import InvalidParameter

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPO_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255

# Error texts of distribution/reference and opencontainers/go-digest.
ERR_REFERENCE_INVALID_FORMAT = "invalid reference format"
ERR_TAG_INVALID_FORMAT = "invalid tag format"
ERR_DIGEST_INVALID_FORMAT = "invalid digest format"
ERR_NAME_CONTAINS_UPPERCASE = "repository name must be lowercase"
ERR_NAME_EMPTY = "repository name must have at least one component"
ERR_NAME_TOO_LONG = f"repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters"
ERR_NAME_NOT_CANONICAL = "repository name must be canonical"
ERR_CHECKSUM_FORMAT = "invalid checksum digest format"
ERR_CHECKSUM_LENGTH = "invalid checksum digest length"
ERR_DIGEST_UNSUPPORTED = "unsupported digest algorithm"


class ReferenceError(InvalidParameter):
    """A reference string that does not follow the grammar (HTTP 400)."""


# --- grammar (same productions as distribution/reference regexp.go) ---------------------------

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = _ALNUM + r"(?:" + _SEPARATOR + _ALNUM + r")*"
_REMOTE_NAME = _PATH_COMPONENT + r"(?:/" + _PATH_COMPONENT + r")*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = _DOMAIN_COMPONENT + r"(?:\." + _DOMAIN_COMPONENT + r")*"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_HOST = r"(?:" + _DOMAIN_NAME + r"|" + _IPV6 + r")"
_DOMAIN_AND_PORT = _HOST + r"(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}"
_NAME = r"(?:" + _DOMAIN_AND_PORT + r"/)?" + _REMOTE_NAME

_REFERENCE_RE = re.compile(
    r"^(" + _NAME + r")(?::(" + _TAG + r"))?(?:@(" + _DIGEST + r"))?$", re.ASCII
)
_ANCHORED_NAME_RE = re.compile(
    r"^(?:(" + _DOMAIN_AND_PORT + r")/)?(" + _REMOTE_NAME + r")$", re.ASCII
)
_ANCHORED_TAG_RE = re.compile(r"^" + _TAG + r"$", re.ASCII)
_ANCHORED_DIGEST_RE = re.compile(r"^" + _DIGEST + r"$", re.ASCII)
_IDENTIFIER_RE = re.compile(r"^[a-f0-9]{64}$")
_GO_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
_HEX_LEN = {"sha256": 64, "sha384": 96, "sha512": 128}
_LOWER_HEX_RE = re.compile(r"^[a-f0-9]+$")

# The grammar only grows polynomially in backtracking, but keep pathological inputs cheap.
_MAX_INPUT = 4096


@dataclass(frozen=True)
class Reference:
    """A parsed reference. ``domain`` is "" for names parsed without normalisation."""

    domain: str = ""
    path: str = ""
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        return f"{self.domain}/{self.path}" if self.domain else self.path

    def __str__(self) -> str:
        s = self.name
        if self.tag is not None:
            s += ":" + self.tag
        if self.digest is not None:
            s = (s + "@" if s else "") + self.digest
        return s

    @property
    def is_named(self) -> bool:
        return bool(self.path)

    @property
    def is_name_only(self) -> bool:
        return self.tag is None and self.digest is None

    def familiar(self) -> "Reference":
        return replace(self, domain="", path=_familiar_path(self.domain, self.path))


def _familiar_path(domain: str, path: str) -> str:
    if domain == DEFAULT_DOMAIN and path.startswith(OFFICIAL_REPO_PREFIX):
        rest = path[len(OFFICIAL_REPO_PREFIX):]
        if "/" not in rest:
            return rest
    if domain and domain != DEFAULT_DOMAIN:
        return f"{domain}/{path}"
    return path


# --- digests --------------------------------------------------------------------------------


def validate_digest(digest: str) -> str:
    """Validate like go-digest ``Digest.Validate``; returns the digest unchanged."""
    i = digest.find(":")
    if i <= 0 or i + 1 == len(digest):
        raise ReferenceError(ERR_CHECKSUM_FORMAT)
    algorithm, encoded = digest[:i], digest[i + 1:]
    want = _HEX_LEN.get(algorithm)
    if want is None:
        if not _GO_DIGEST_RE.match(digest):
            raise ReferenceError(ERR_CHECKSUM_FORMAT)
        raise ReferenceError(ERR_DIGEST_UNSUPPORTED)
    if len(encoded) != want:
        raise ReferenceError(ERR_CHECKSUM_LENGTH)
    if not _LOWER_HEX_RE.match(encoded):
        raise ReferenceError(ERR_CHECKSUM_FORMAT)
    return digest


def is_digest(s: str) -> bool:
    try:
        validate_digest(s)
    except ReferenceError:
        return False
    return True


# --- parsing --------------------------------------------------------------------------------


def parse(s: str) -> Reference:
    """Parse without normalisation (distribution/reference ``Parse``)."""
    if s == "":
        raise ReferenceError(ERR_NAME_EMPTY)
    if len(s) > _MAX_INPUT:
        raise ReferenceError(ERR_REFERENCE_INVALID_FORMAT)
    m = _REFERENCE_RE.match(s)
    if m is None:
        lower = s.lower()
        if lower != s and _REFERENCE_RE.match(lower):
            raise ReferenceError(ERR_NAME_CONTAINS_UPPERCASE)
        raise ReferenceError(ERR_REFERENCE_INVALID_FORMAT)
    name, tag, digest = m.group(1), m.group(2), m.group(3)
    nm = _ANCHORED_NAME_RE.match(name)
    if nm is not None:
        domain, path = nm.group(1) or "", nm.group(2)
    else:  # pragma: no cover - the reference regexp already matched a name
        domain, path = "", name
    if len(path) > NAME_TOTAL_LENGTH_MAX:
        raise ReferenceError(ERR_NAME_TOO_LONG)
    if digest is not None:
        validate_digest(digest)
    return Reference(domain, path, tag, digest)


def split_docker_domain(name: str) -> tuple[str, str]:
    """Split a familiar name into (domain, remote name), applying Docker Hub defaults."""
    first, sep, rest = name.partition("/")
    if not sep:
        return DEFAULT_DOMAIN, OFFICIAL_REPO_PREFIX + name
    if first == "localhost":
        domain, remote = first, rest
    elif first == LEGACY_DEFAULT_DOMAIN:
        domain, remote = DEFAULT_DOMAIN, rest
    elif "." in first or ":" in first or first.lower() != first:
        domain, remote = first, rest
    else:
        domain, remote = DEFAULT_DOMAIN, name
    if domain == DEFAULT_DOMAIN and "/" not in remote:
        remote = OFFICIAL_REPO_PREFIX + remote
    return domain, remote


def parse_normalized_named(s: str) -> Reference:
    """Parse a user-supplied name into its fully qualified form (``ParseNormalizedNamed``)."""
    if _IDENTIFIER_RE.match(s):
        raise ReferenceError(
            f"invalid repository name ({s}), cannot specify 64-byte hexadecimal strings"
        )
    domain, remainder = split_docker_domain(s)
    remote = remainder.split(":", 1)[0]
    if remote.lower() != remote:
        raise ReferenceError(
            f"{ERR_REFERENCE_INVALID_FORMAT}: repository name ({remote}) must be lowercase"
        )
    ref = parse(f"{domain}/{remainder}")
    if not ref.is_named:  # pragma: no cover - a domain was always prepended
        raise ReferenceError(f"reference {ref} has no name")
    return ref


def parse_named(s: str) -> Reference:
    """Parse a reference that must already be canonical (``ParseNamed``)."""
    ref = parse_normalized_named(s)
    if str(ref) != s:
        raise ReferenceError(ERR_NAME_NOT_CANONICAL)
    return ref


def parse_any_reference(s: str) -> Reference:
    """Parse an ID (64 hex), a full digest, or a familiar name (``ParseAnyReference``).

    IDs and digests come back as a Reference with only ``digest`` set."""
    if _IDENTIFIER_RE.match(s):
        return Reference(digest="sha256:" + s)
    if is_digest(s):
        return Reference(digest=s)
    return parse_normalized_named(s)


def parse_docker_ref(s: str) -> Reference:
    """Normalise like ``ParseDockerRef``: add ``latest`` to bare names; drop the tag when a
    digest is present."""
    ref = parse_normalized_named(s)
    if ref.tag is not None and ref.digest is not None:
        return replace(ref, tag=None)
    return tag_name_only(ref)


def tag_name_only(ref: Reference) -> Reference:
    return replace(ref, tag=DEFAULT_TAG) if ref.is_name_only else ref


def trim_named(ref: Reference) -> Reference:
    return Reference(ref.domain, ref.path)


def with_name(name: str) -> Reference:
    m = _ANCHORED_NAME_RE.match(name) if len(name) <= _MAX_INPUT else None
    if m is None:
        raise ReferenceError(ERR_REFERENCE_INVALID_FORMAT)
    if len(m.group(2)) > NAME_TOTAL_LENGTH_MAX:
        raise ReferenceError(ERR_NAME_TOO_LONG)
    return Reference(m.group(1) or "", m.group(2))


def with_tag(ref: Reference, tag: str) -> Reference:
    if not _ANCHORED_TAG_RE.match(tag):
        raise ReferenceError(ERR_TAG_INVALID_FORMAT)
    return replace(ref, tag=tag)


def with_digest(ref: Reference, digest: str) -> Reference:
    if not _ANCHORED_DIGEST_RE.match(digest):
        raise ReferenceError(ERR_DIGEST_INVALID_FORMAT)
    return replace(ref, digest=digest)


def is_valid_tag(tag: str) -> bool:
    return bool(_ANCHORED_TAG_RE.match(tag))


def familiar_name(ref: Reference) -> str:
    """``docker.io/library/busybox`` -> ``busybox``; other registries keep their domain."""
    return ref.familiar().name if ref.domain else ref.name


def familiar_string(ref: Reference) -> str:
    """Familiar form with tag/digest, e.g. ``busybox:latest``."""
    return str(ref.familiar()) if ref.domain else str(ref)


def familiar_match(pattern: str, ref: Reference) -> bool:
    """Shell-style match on the familiar string, then on the familiar name (``FamiliarMatch``,
    used by ``docker images --filter reference=``). ``*`` does not cross ``/``."""
    if _path_match(pattern, familiar_string(ref)):
        return True
    return ref.is_named and _path_match(pattern, familiar_name(ref))


def _path_match(pattern: str, name: str) -> bool:
    # Go's path.Match: '*' never matches '/'. Compare component-wise to get that behaviour.
    pparts, nparts = pattern.split("/"), name.split("/")
    return len(pparts) == len(nparts) and all(
        fnmatchcase(n, p) for p, n in zip(pparts, nparts)
    )


def check_taggable(ref: Reference) -> None:
    """The reference store's rules for ``docker tag`` targets (moby reference/store.go)."""
    if ref.digest is not None:
        raise ReferenceError("refusing to create a tag with a digest reference")
    if familiar_name(ref) == "sha256":
        raise ReferenceError(
            "refusing to create an ambiguous tag using digest algorithm as name"
        )


# --- IDs (moby pkg/stringid) -------------------------------------------------------------------

SHORT_ID_LEN = 12


def is_full_id(s: str) -> bool:
    """64 lowercase hex characters, no algorithm prefix."""
    return bool(_IDENTIFIER_RE.match(s))


def is_short_id(s: str) -> bool:
    return len(s) == SHORT_ID_LEN and bool(_LOWER_HEX_RE.match(s))


def strip_algorithm(id_or_digest: str) -> str:
    """``sha256:abc`` -> ``abc``; anything without a colon is returned unchanged."""
    return id_or_digest.split(":", 1)[1] if ":" in id_or_digest else id_or_digest


def truncate_id(id_or_digest: str) -> str:
    """Shorthand for display: algorithm prefix removed, first 12 characters."""
    return strip_algorithm(id_or_digest)[:SHORT_ID_LEN]


def to_digest_id(s: str) -> str:
    """``abc…`` (64 hex) or ``sha256:abc…`` -> ``sha256:abc…``; raises for anything else."""
    hexpart = s[len("sha256:"):] if s.startswith("sha256:") else s
    if not is_full_id(hexpart):
        raise ReferenceError(f"invalid image ID: {s}")
    return "sha256:" + hexpart


def generate_random_id() -> str:
    """64 hex characters whose 12-character prefix is not all digits (it may become a hostname)."""
    while True:
        ident = os.urandom(32).hex()
        if not ident[:SHORT_ID_LEN].isdigit():
            return ident


def looks_like_id_prefix(s: str) -> bool:
    """True if ``s`` (optionally ``sha256:``-prefixed) could be a prefix of an ID."""
    hexpart = s[len("sha256:"):] if s.startswith("sha256:") else s
    return 0 < len(hexpart) <= 64 and bool(_LOWER_HEX_RE.match(hexpart))
