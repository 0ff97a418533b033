"""``system df``: the summary table (one row per kind) and the verbose per-object tables
(docker's DiskUsageContext)."""

from __future__ import annotations

import time
from typing import TextIO

from berth.cli.format import ListFormatter, Row, compile_template, execute, template_text
from berth.cli.formatters import containers as fc
from berth.cli.formatters import images as fi
from berth.cli.formatters import volumes as fv
from berth.cli.formatters.common import truncate_id
from berth.units import human_duration, human_size

SUMMARY_TABLE = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"
SUMMARY_HEADERS = {"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE", "Reclaimable": "RECLAIMABLE"}
IMAGE_TABLE = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}"
CONTAINER_TABLE = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}"
VOLUME_TABLE = "table {{.Name}}\t{{.Links}}\t{{.Size}}"
BUILD_CACHE_TABLE = "table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}\t{{.UsageCount}}\t{{.Shared}}"
BUILD_CACHE_HEADERS = {
    "ID": "CACHE ID", "CacheType": "CACHE TYPE", "Size": "SIZE", "CreatedAt": "CREATED AT",
    "CreatedSince": "CREATED", "LastUsedAt": "LAST USED AT", "LastUsedSince": "LAST USED",
    "UsageCount": "USAGE", "Shared": "SHARED", "Description": "DESCRIPTION",
}


def _percent(part: int, total: int) -> str:
    if total > 0:
        return f"{human_size(part)} ({part * 100 // total}%)"
    return human_size(part)


class SummaryRow(Row):
    go_type = "formatter.diskUsageContext"


def summary_rows(du: dict) -> list[SummaryRow]:
    images = du.get("Images") or []
    containers = du.get("Containers") or []
    volumes = du.get("Volumes") or []
    cache = du.get("BuildCache") or []
    layers = int(du.get("LayersSize") or 0)

    used = 0
    for i in images:
        if i.get("Containers", 0) != 0 and i.get("Size", -1) != -1 and i.get("SharedSize", -1) != -1:
            used += i["Size"] - i["SharedSize"]
    active_states = ("running", "paused", "restarting")
    c_total = sum(int(c.get("SizeRw") or 0) for c in containers)
    c_reclaim = sum(int(c.get("SizeRw") or 0) for c in containers if c.get("State") not in active_states)
    v_total = v_reclaim = 0
    for v in volumes:
        usage = v.get("UsageData") or {}
        size = int(usage.get("Size", -1))
        if size != -1:
            v_total += size
            if int(usage.get("RefCount", 0)) == 0:
                v_reclaim += size
    builder = sum(int(b.get("Size") or 0) for b in cache if not b.get("Shared"))
    in_use = sum(int(b.get("Size") or 0) for b in cache if b.get("InUse") and not b.get("Shared"))
    return [
        SummaryRow({
            "Type": "Images", "TotalCount": str(len(images)),
            "Active": str(sum(1 for i in images if int(i.get("Containers") or 0) > 0)),
            "Size": human_size(layers), "Reclaimable": _percent(layers - used, layers),
        }),
        SummaryRow({
            "Type": "Containers", "TotalCount": str(len(containers)),
            "Active": str(sum(1 for c in containers if c.get("State") in active_states)),
            "Size": human_size(c_total), "Reclaimable": _percent(c_reclaim, c_total),
        }),
        SummaryRow({
            "Type": "Local Volumes", "TotalCount": str(len(volumes)),
            "Active": str(sum(1 for v in volumes if int((v.get("UsageData") or {}).get("RefCount", 0)) > 0)),
            "Size": human_size(v_total), "Reclaimable": _percent(v_reclaim, v_total),
        }),
        SummaryRow({
            "Type": "Build Cache", "TotalCount": str(len(cache)),
            "Active": str(sum(1 for b in cache if b.get("InUse"))),
            "Size": human_size(builder), "Reclaimable": human_size(builder - in_use),
        }),
    ]


class BuildCacheRow(Row):
    go_type = "formatter.buildCacheContext"

    def __init__(self, b: dict, trunc: bool, now: float):
        from berth.units import parse_rfc3339

        created = parse_rfc3339(b.get("CreatedAt", "")) or 0
        last = parse_rfc3339(b.get("LastUsedAt", "") or "")
        ident = b.get("ID", "")
        desc = b.get("Description", "")
        super().__init__({
            "ID": (truncate_id(ident) if trunc else ident) + ("*" if b.get("InUse") else ""),
            "CacheType": b.get("Type", ""),
            "Description": desc,
            "Size": human_size(int(b.get("Size") or 0)),
            "CreatedAt": b.get("CreatedAt", ""),
            "CreatedSince": human_duration(now - created) + " ago",
            "LastUsedAt": b.get("LastUsedAt") or "",
            "LastUsedSince": "" if last is None else human_duration(now - last) + " ago",
            "UsageCount": str(b.get("UsageCount", 0)),
            "Shared": "true" if b.get("Shared") else "false",
        })


def _verbose_image_rows(du: dict, trunc: bool) -> list[Row]:
    from berth.distribution import reference

    rows: list[Row] = []
    now = time.time()
    for img in du.get("Images") or []:
        repo = tag = "<none>"
        tags = img.get("RepoTags") or []
        if tags and not fi.is_dangling(img):
            try:
                ref = reference.parse_normalized_named(tags[0])
            except Exception:
                continue
            if ref.tag is not None:
                repo, tag = reference.familiar_name(ref), ref.tag
        rows.append(fi.ImageRow(img, repo, tag, "", trunc, now))
    return rows


def _table(out: TextIO, fmt: str, headers: dict, rows: list[Row]) -> None:
    ListFormatter(fmt, default_table=fmt, headers=headers, parse_status=1).write(out, rows)


def write_disk_usage(out: TextIO, du: dict, fmt: str, verbose: bool) -> None:
    if not verbose:
        final = SUMMARY_TABLE if fmt == "table" else fmt
        if fmt == "raw":
            final = "type: {{.Type}}\ntotal: {{.TotalCount}}\nactive: {{.Active}}\nsize: {{.Size}}\nreclaimable: {{.Reclaimable}}\n"
        _table(out, final, SUMMARY_HEADERS, summary_rows(du))
        return
    now = time.time()
    trunc = fmt.startswith("table")
    images = _verbose_image_rows(du, trunc)
    containers = []
    for c in du.get("Containers") or []:
        c = dict(c)
        c["SizeRootFs"] = 0
        containers.append(fc.ContainerRow(c, trunc, now))
    volumes = [fv.VolumeRow(v) for v in du.get("Volumes") or []]
    cache = sorted(du.get("BuildCache") or [], key=lambda b: (b.get("LastUsedAt") or "", b.get("CreatedAt") or ""), reverse=True)
    cache_rows = [BuildCacheRow(b, trunc, now) for b in cache]
    if fmt == "table":
        out.write("Images space usage:\n\n")
        _table(out, IMAGE_TABLE, fi.HEADERS, images)
        out.write("\nContainers space usage:\n\n")
        _table(out, CONTAINER_TABLE, fc.HEADERS, containers)
        out.write("\nLocal Volumes space usage:\n\n")
        _table(out, VOLUME_TABLE, fv.HEADERS, volumes)
        builder = sum(int(b.get("Size") or 0) for b in du.get("BuildCache") or [] if not b.get("Shared"))
        out.write(f"\nBuild cache usage: {human_size(builder)}\n\n")
        _table(out, BUILD_CACHE_TABLE, BUILD_CACHE_HEADERS, cache_rows)
        return
    # a custom template sees {.Images, .Containers, .Volumes, .BuildCache}
    from berth.cli.format import LIST_FUNCS

    tmpl = compile_template(template_text(fmt), LIST_FUNCS)
    data = {"Images": images, "Containers": containers, "Volumes": volumes, "BuildCache": cache_rows}
    out.write(execute(tmpl, data))

