"""``images`` rows: docker's imageContext, one row per repository:tag (and digest)."""

from __future__ import annotations

import time
from typing import Iterator

from berth.cli.format import Row
from berth.cli.formatters.common import truncate_id
from berth.units import go_time_string, human_duration, human_size

DEFAULT_TABLE = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}"
DIGEST_TABLE = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}"
HEADERS = {
    "ID": "IMAGE ID",
    "Repository": "REPOSITORY",
    "Tag": "TAG",
    "Digest": "DIGEST",
    "CreatedSince": "CREATED",
    "CreatedAt": "CREATED AT",
    "Size": "SIZE",
    "Containers": "CONTAINERS",
    "VirtualSize": "SIZE",
    "SharedSize": "SHARED SIZE",
    "UniqueSize": "UNIQUE SIZE",
}


def image_format(source: str, quiet: bool, digest: bool) -> str:
    """docker's NewImageFormat."""
    if source == "table":
        if quiet:
            return "{{.ID}}"
        return DIGEST_TABLE if digest else DEFAULT_TABLE
    if source == "raw":
        if quiet:
            return "image_id: {{.ID}}"
        if digest:
            return ("repository: {{ .Repository }}\ntag: {{.Tag}}\ndigest: {{.Digest}}\nimage_id: {{.ID}}\n"
                    "created_at: {{.CreatedAt}}\nvirtual_size: {{.Size}}\n")
        return "repository: {{ .Repository }}\ntag: {{.Tag}}\nimage_id: {{.ID}}\ncreated_at: {{.CreatedAt}}\nvirtual_size: {{.Size}}\n"
    if source.startswith("table") and digest and "{{.Digest}}" not in source:
        source += "\t{{.Digest}}"
    return source


def is_dangling(img: dict) -> bool:
    tags, digests = img.get("RepoTags") or [], img.get("RepoDigests") or []
    if not tags and not digests:
        return True
    return tags == ["<none>:<none>"] and digests == ["<none>@<none>"]


class ImageRow(Row):
    go_type = "formatter.imageContext"

    def __init__(self, img: dict, repo: str, tag: str, digest: str, trunc: bool, now: float | None = None):
        now = time.time() if now is None else now
        created = int(img.get("Created") or 0)
        size = int(img.get("Size") or 0)
        shared = int(img.get("SharedSize") if img.get("SharedSize") is not None else -1)
        containers = int(img.get("Containers") if img.get("Containers") is not None else -1)
        super().__init__({
            "ID": truncate_id(img.get("Id", "")) if trunc else img.get("Id", ""),
            "Repository": repo,
            "Tag": tag,
            "Digest": digest,
            # Go: time.Unix(0, 0) is not IsZero, so the epoch still shows "N years ago"
            "CreatedSince": human_duration(now - created) + " ago",
            "CreatedAt": go_time_string(created),
            "Size": human_size(size, 3),
            "Containers": "N/A" if containers == -1 else str(containers),
            "VirtualSize": human_size(size),
            "SharedSize": "N/A" if shared == -1 else human_size(shared),
            "UniqueSize": "N/A" if size == -1 or shared == -1 else human_size(size - shared),
        })


def image_rows(images: list[dict], *, trunc: bool, digest: bool, need_digest: bool) -> Iterator[ImageRow]:
    """docker's imageFormat + imageFormatTaggedAndDigest."""
    from berth.distribution import reference

    now = time.time()
    for img in images:
        if is_dangling(img):
            yield ImageRow(img, "<none>", "<none>", "<none>", trunc, now)
            continue
        repo_tags: dict[str, list[str]] = {}
        repo_digests: dict[str, list[str]] = {}
        for text in img.get("RepoTags") or []:
            try:
                ref = reference.parse_normalized_named(text)
            except Exception:
                continue
            if ref.tag is not None:
                repo_tags.setdefault(reference.familiar_name(ref), []).append(ref.tag)
        for text in img.get("RepoDigests") or []:
            try:
                ref = reference.parse_normalized_named(text)
            except Exception:
                continue
            if ref.digest is not None:
                repo_digests.setdefault(reference.familiar_name(ref), []).append(ref.digest)
        for repo, tags in repo_tags.items():
            digests = repo_digests.pop(repo, [])
            if not need_digest:
                digests = []
            for tag in tags:
                if not digests:
                    yield ImageRow(img, repo, tag, "<none>", trunc, now)
                for d in digests:
                    yield ImageRow(img, repo, tag, d, trunc, now)
        for repo, digests in repo_digests.items():
            if digest:
                for d in digests:
                    yield ImageRow(img, repo, "<none>", d, trunc, now)
            else:
                yield ImageRow(img, repo, "<none>", "", trunc, now)

