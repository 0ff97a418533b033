"""``.dockerignore`` applied to a build context the daemon received. Pure.

The rules are Docker's (``berth.patternmatcher``, shared with the CLI, which applies them
before sending, as the docker CLI does). On the daemon side, as dockerd's
``removeDockerfile``: the Dockerfile and ``.dockerignore`` are read even when excluded (a
client keeps them in the upload with ``!`` exceptions), then left out of what COPY and ADD
see if the patterns exclude them. Berth also leaves out every other excluded path, which
changes nothing for a client that filtered already, and gives the same result for one that
did not (curl, a ``remote=`` context).
"""

from __future__ import annotations

from typing import Iterable

from berth.patternmatcher import PatternError, PatternMatcher, read_patterns
from berth.errors import InvalidParameter

__all__ = ["read_patterns", "Matcher", "excluded_paths"]


class Matcher:
    def __init__(self, patterns: list[str]):
        try:
            self.matcher = PatternMatcher(patterns)
        except PatternError as exc:
            raise InvalidParameter(f"failed to parse .dockerignore: {exc}") from None

    def excluded(self, path: str) -> bool:
        return self.matcher.matches(path)


def excluded_paths(paths: Iterable[str], patterns: list[str]) -> set[str]:
    """Which of ``paths`` (relative, slash-separated) the patterns exclude."""
    if not patterns:
        return set()
    matcher = Matcher(patterns)
    return {path for path in paths if matcher.excluded(path)}
