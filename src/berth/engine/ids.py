"""IDs, names and prefix lookups shared by every object kind. Pure functions."""

from __future__ import annotations

import re
import secrets
from typing import Iterable

from berth.errors import InvalidParameter

FULL_ID = re.compile(r"^[0-9a-f]{64}$")
VALID_NAME = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")

# Our own word lists for generated container names (adjective_scientist, like Docker's style).
ADJECTIVES = (
    "agile", "amber", "ancient", "ardent", "bold", "brave", "bright", "brisk", "calm", "candid",
    "careful", "cheerful", "clever", "cosmic", "crisp", "curious", "daring", "deft", "eager",
    "earnest", "electric", "elegant", "epic", "fearless", "fervent", "festive", "fluent",
    "focused", "frosty", "gallant", "gentle", "gifted", "glowing", "graceful", "happy", "hardy",
    "honest", "humble", "jolly", "keen", "kind", "lively", "lucid", "lucky", "mellow", "merry",
    "mighty", "modest", "nimble", "noble", "patient", "peaceful", "plucky", "polite", "proud",
    "quick", "quiet", "radiant", "rapid", "serene", "sharp", "shiny", "silent", "sincere",
    "smart", "snappy", "solid", "steady", "stoic", "sturdy", "sunny", "swift", "tender",
    "tidy", "trusty", "upbeat", "valiant", "vivid", "warm", "wise", "witty", "zealous",
)
SCIENTISTS = (
    "agnesi", "archimedes", "babbage", "banach", "bardeen", "bell", "bohr", "boole", "bose",
    "cantor", "carson", "cerf", "chandrasekhar", "curie", "darwin", "dijkstra", "dirac",
    "einstein", "euclid", "euler", "faraday", "fermat", "fermi", "feynman", "franklin",
    "galileo", "gauss", "germain", "goldberg", "goodall", "hamilton", "hawking", "heisenberg",
    "hertz", "hilbert", "hopper", "hypatia", "johnson", "joliot", "kepler", "knuth",
    "kovalevskaya", "lamarr", "laplace", "leakey", "lovelace", "maxwell", "meitner", "mendel",
    "minsky", "newton", "nobel", "noether", "pascal", "pasteur", "planck", "poincare", "ramanujan",
    "riemann", "ritchie", "sammet", "shannon", "somerville", "tesla", "thompson", "torvalds",
    "turing", "volta", "wiles", "wozniak", "wright", "yalow",
)


def new_id() -> str:
    return secrets.token_hex(32)


def short_id(full: str) -> str:
    return full.removeprefix("sha256:")[:12]


def generated_name(taken: Iterable[str]) -> str:
    used = set(taken)
    for attempt in range(100):
        name = f"{secrets.choice(ADJECTIVES)}_{secrets.choice(SCIENTISTS)}"
        if attempt > 10:
            name += str(secrets.randbelow(10))
        if name not in used:
            return name
    return f"berth_{secrets.token_hex(4)}"


def check_container_name(name: str) -> str:
    """The name without its leading slash; Docker's error for anything invalid."""
    if not VALID_NAME.match(name):
        raise InvalidParameter(
            f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    return name.lstrip("/")


def match_prefix(prefix: str, ids: Iterable[str]) -> list[str]:
    """IDs that start with ``prefix`` (``sha256:`` tolerated); an exact match wins alone."""
    wanted = prefix.removeprefix("sha256:").lower()
    if not wanted or not re.fullmatch(r"[0-9a-f]+", wanted):
        return []
    found = []
    for candidate in ids:
        bare = candidate.removeprefix("sha256:")
        if bare == wanted:
            return [candidate]
        if bare.startswith(wanted):
            found.append(candidate)
    return found
