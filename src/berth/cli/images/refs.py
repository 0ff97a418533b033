"""Turning user references into what the API wants (docker's reference handling in the Go
client): ``repo`` + ``tag`` for commit/tag/import, with docker's error texts."""

from __future__ import annotations

from berth.cli.command import StatusError


def repo_and_tag(text: str) -> tuple[str, str]:
    """ParseNormalizedNamed + TagNameOnly -> (full name, tag); digests are refused."""
    from berth.distribution import reference

    try:
        ref = reference.parse_normalized_named(text)
    except reference.ReferenceError as e:
        raise StatusError(str(e), 1) from None
    if ref.digest is not None:
        raise StatusError("refusing to create a tag with a digest reference", 1)
    ref = reference.tag_name_only(ref)
    return ref.name, ref.tag or ""
