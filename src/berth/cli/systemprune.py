"""``system prune``: one confirmation listing what goes, then containers, networks,
(volumes), images and build cache, each reported as its own prune command would."""

from __future__ import annotations

from typing import Any

from berth.cli.command import StatusError
from berth.units import human_size


def confirmation(opts: Any, filters: dict[str, dict[str, bool]]) -> str:
    warnings = ["all stopped containers", "all networks not used by at least one container"]
    if opts.volumes:
        warnings.append("all anonymous volumes not used by at least one container")
    warnings.append("all images without at least one container associated to them" if opts.all else "all dangling images")
    warnings.append("all build cache" if opts.all else "unused build cache")
    text = "WARNING! This will remove:\n" + "".join(f"  - {w}\n" for w in warnings)
    shown = []
    for name in ("label", "label!", "until"):
        shown += [f"{name}={value}" for value in filters.get(name, {})]
    if shown:
        from berth.cli.formatters.portlist import natural_key

        shown.sort(key=natural_key)
        text += "\n  Items to be pruned will be filtered with:\n" + "".join(f"  - {f}\n" for f in shown)
    return text + "\nAre you sure you want to continue?"


def run_system_prune(cli: Any, opts: Any) -> int:
    from berth.cli import prune

    if opts.volumes and any(p and p[0] == "until" for p in opts.filter):
        raise StatusError('ERROR: The "until" filter is not supported with "--volumes"', 1)
    if not opts.force and not prune.confirm(cli, confirmation(opts, prune.merged_filters(cli, opts.filter))):
        raise prune.Cancelled()
    total = 0
    steps: list[Any] = [
        lambda: prune.prune_containers(cli, opts.filter, force=True),
        lambda: (0, prune.prune_networks(cli, opts.filter, force=True)),
    ]
    if opts.volumes:
        steps.append(lambda: prune.prune_volumes(cli, opts.filter, force=True, all=False))
    steps.append(lambda: prune.prune_images(cli, opts.filter, force=True, all=opts.all))
    steps.append(lambda: prune.prune_build_cache(cli, opts.filter, all=opts.all))
    for step in steps:
        reclaimed, output = step()
        total += reclaimed
        if output:
            cli.out.write(output + "\n")
    cli.out.write(f"Total reclaimed space: {human_size(total)}\n")
    return 0
