"""``berth builder ...``: build (as ``berth build``) and prune (the build cache)."""

from __future__ import annotations

from typing import Any

from berth.cli.command import NO_ARGS, Group, exactly
from berth.cli.flags import BOOL, LIST, STRING, Flag
from berth.cli.opts.validate import parse_filter

group = Group("builder", "Manage builds")


def _build_flags() -> list[Flag]:
    from berth.cli.commands.image import BUILD_FLAGS

    return BUILD_FLAGS


@group.command(
    "build",
    "Build an image from a Dockerfile",
    "[OPTIONS] PATH | URL | -",
    flags=_build_flags,
    args=exactly(1),
)
def build(cli: Any, opts: Any, args: list[str]) -> int:
    from berth.cli.commands.image import build as image_build

    return image_build(cli, opts, args)


def _keep_storage(value: str) -> int:
    from berth.units import ram_in_bytes

    return ram_in_bytes(value)


@group.command(
    "prune",
    "Remove build cache",
    flags=[
        Flag("all", "a", BOOL, "Remove all unused build cache, not just dangling ones"),
        Flag("filter", kind=LIST, help='Provide filter values (e.g. "until=24h")', metavar="filter", convert=parse_filter),
        Flag("force", "f", BOOL, "Do not prompt for confirmation"),
        Flag("keep-storage", kind=STRING, help="Amount of disk space to keep for cache", metavar="bytes",
             convert=_keep_storage),
    ],
    args=NO_ARGS,
)
def prune(cli: Any, opts: Any, args: list[str]) -> int:
    from berth.cli.prune import Cancelled, confirm, merged_filters, print_report

    warning = ("WARNING! This will remove all build cache. Are you sure you want to continue?" if opts.all
               else "WARNING! This will remove all dangling build cache. Are you sure you want to continue?")
    if not opts.force and not confirm(cli, warning):
        raise Cancelled()
    filters = merged_filters(cli, opts.filter)
    report = cli.client().prune_build_cache(filters or None, all=opts.all,
                                            keep_storage=opts.keep_storage or 0)
    deleted = report.get("CachesDeleted") or []
    output = ""
    if deleted:
        output = "Deleted build cache objects:\n" + "".join(i + "\n" for i in deleted)
    print_report(cli, output, int(report.get("SpaceReclaimed") or 0))
    return 0
