"""The prune commands' shared parts: the confirmation prompt, config-file prune filters, and
each object kind's prune with docker's report text. ``system prune`` chains them."""

from __future__ import annotations

from typing import Any

from berth.cli.command import StatusError
from berth.units import human_size


class Cancelled(StatusError):
    """The user said no: docker prints nothing and exits 0."""

    def __init__(self) -> None:
        super().__init__("", 0)


def confirm(cli: Any, message: str) -> bool:
    """docker's prompt.Confirm: "<message> [y/N] ", one line of input, "y" (any case) is yes."""
    cli.out.write(message + " [y/N] ")
    cli.out.flush()
    try:
        line = cli.inp.readline()
    except (OSError, ValueError):
        line = ""
    return line.strip().lower() == "y"


def merged_filters(cli: Any, pairs: list, extra: dict[str, list[str]] | None = None) -> dict[str, dict[str, bool]]:
    """--filter values + config.json ``pruneFilters`` (docker's command.PruneFilters)."""
    from berth.cli.opts.validate import filters_from

    filters = filters_from(pairs, extra)
    for item in cli.config_file().data.get("pruneFilters") or []:
        key, sep, value = item.partition("=")
        if not sep:
            continue
        if key == "label" and value in filters.get("label!", {}):
            continue
        if key == "label!" and value in filters.get("label", {}):
            continue
        filters.setdefault(key, {})[value] = True
    return filters


def print_report(cli: Any, output: str, reclaimed: int | None) -> None:
    if output:
        cli.out.write(output + "\n")
    if reclaimed is not None:
        cli.out.write(f"Total reclaimed space: {human_size(reclaimed)}\n")


def _ask(cli: Any, force: bool, warning: str) -> None:
    if not force and not confirm(cli, warning):
        raise Cancelled()


def prune_containers(cli: Any, pairs: list, force: bool) -> tuple[int, str]:
    filters = merged_filters(cli, pairs)
    _ask(cli, force, "WARNING! This will remove all stopped containers.\nAre you sure you want to continue?")
    report = cli.client().prune_containers(filters or None)
    deleted = report.get("ContainersDeleted") or []
    if not deleted:
        return 0, ""
    return int(report.get("SpaceReclaimed") or 0), "Deleted Containers:\n" + "".join(i + "\n" for i in deleted)


def prune_images(cli: Any, pairs: list, force: bool, all: bool) -> tuple[int, str]:
    filters = merged_filters(cli, pairs, {"dangling": ["false" if all else "true"]})
    if all:
        warning = "WARNING! This will remove all images without at least one container associated to them."
    else:
        warning = "WARNING! This will remove all dangling images."
    _ask(cli, force, warning + "\nAre you sure you want to continue?")
    report = cli.client().prune_images(filters)
    deleted = report.get("ImagesDeleted") or []
    if not deleted:
        return 0, ""
    lines = ["Deleted Images:"]
    for item in deleted:
        if item.get("Untagged"):
            lines.append(f"untagged: {item['Untagged']}")
        else:
            lines.append(f"deleted: {item.get('Deleted', '')}")
    return int(report.get("SpaceReclaimed") or 0), "\n".join(lines) + "\n"


def prune_volumes(cli: Any, pairs: list, force: bool, all: bool) -> tuple[int, str]:
    filters = merged_filters(cli, pairs)
    warning = "WARNING! This will remove anonymous local volumes not used by at least one container."
    if all:
        if "all" in filters:
            raise StatusError("conflicting options: cannot specify both --all and --filter all=1", 1)
        filters.setdefault("all", {})["true"] = True
        warning = "WARNING! This will remove all local volumes not used by at least one container."
    _ask(cli, force, warning + "\nAre you sure you want to continue?")
    report = cli.client().prune_volumes(filters or None)
    deleted = report.get("VolumesDeleted") or []
    if not deleted:
        return 0, ""
    return int(report.get("SpaceReclaimed") or 0), "Deleted Volumes:\n" + "".join(i + "\n" for i in deleted)


def prune_networks(cli: Any, pairs: list, force: bool) -> str:
    filters = merged_filters(cli, pairs)
    _ask(
        cli,
        force,
        "WARNING! This will remove all custom networks not used by at least one container.\n"
        "Are you sure you want to continue?",
    )
    report = cli.client().prune_networks(filters or None)
    deleted = report.get("NetworksDeleted") or []
    if not deleted:
        return ""
    return "Deleted Networks:\n" + "".join(i + "\n" for i in deleted)


def prune_build_cache(cli: Any, pairs: list, all: bool) -> tuple[int, str]:
    filters = merged_filters(cli, pairs)
    report = cli.client().prune_build_cache(filters or None, all=all)
    deleted = report.get("CachesDeleted") or []
    output = ""
    if deleted:
        output = "Deleted build cache objects:\n" + "".join(i + "\n" for i in deleted)
    return int(report.get("SpaceReclaimed") or 0), output
