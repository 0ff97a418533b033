"""``berth volume ...``: create, ls, inspect, rm, prune."""

from __future__ import annotations

from typing import Any

from berth.cli.command import NO_ARGS, Args, Group, StatusError, at_least
from berth.cli.flags import BOOL, LIST, STRING, Flag
from berth.cli.formatters.common import FORMAT_HELP, INSPECT_FORMAT_HELP
from berth.cli.opts.validate import kv_map, parse_filter, validate_label

group = Group("volume", "Manage volumes")


@group.command(
    "create",
    "Create a volume",
    "[OPTIONS] [VOLUME]",
    flags=[
        Flag("driver", "d", STRING, "Specify volume driver name", default="local"),
        Flag("name", kind=STRING, help="Specify volume name", hidden=True),
        Flag("opt", "o", LIST, "Set driver specific options (default map[])", metavar="map"),
        Flag("label", kind=LIST, help="Set metadata for a volume", convert=validate_label),
    ],
    args=Args(0, 1),
)
def create(cli: Any, opts: Any, args: list[str]) -> int:
    name = opts.name
    if args:
        if name:
            raise StatusError(
                "conflicting options: cannot specify a volume-name through both --name and as a positional arg", 1
            )
        name = args[0]
    body = {
        "Driver": opts.driver,
        "DriverOpts": kv_map(opts.opt),
        "Labels": kv_map(opts.label),
        "Name": name,
    }
    volume = cli.client().create_volume(body)
    cli.out.write(volume.get("Name", "") + "\n")
    return 0


@group.command(
    "ls",
    "List volumes",
    flags=[
        Flag("quiet", "q", BOOL, "Only display volume names"),
        Flag("format", kind=STRING, help=FORMAT_HELP),
        Flag("filter", "f", LIST, 'Provide filter values (e.g. "dangling=true")', metavar="filter", convert=parse_filter),
        Flag("cluster", kind=BOOL, help="Display only cluster volumes, and use cluster volume list formatting", hidden=True),
    ],
    args=NO_ARGS,
    aliases=("list",),
)
def ls(cli: Any, opts: Any, args: list[str]) -> int:
    from berth.cli.format import ListFormatter
    from berth.cli.formatters.portlist import natural_key
    from berth.cli.formatters.volumes import HEADERS, VolumeRow, volume_format
    from berth.cli.opts.validate import filters_from

    listing = cli.client().volumes(filters_from(opts.filter) or None)
    volumes = list(listing.get("Volumes") or [])
    fmt = opts.format
    if opts.cluster:
        volumes = [v for v in volumes if v.get("ClusterVolume")]
        fmt = "table" if opts.quiet else "table {{.Name}}\t{{.Group}}\t{{.Driver}}\t{{.Availability}}\t{{.Status}}"
    elif not fmt:
        configured = cli.config_file().data.get("volumesFormat") or ""
        fmt = configured if configured and not opts.quiet else "table"
    volumes.sort(key=lambda v: natural_key(v.get("Name", "")))
    final = volume_format(fmt, opts.quiet)
    formatter = ListFormatter(final, default_table=final, headers=HEADERS, parse_status=1)
    formatter.write(cli.out, (VolumeRow(v) for v in volumes))
    for warning in listing.get("Warnings") or []:
        cli.err.write(warning + "\n")
    return 0


@group.command(
    "inspect",
    "Display detailed information on one or more volumes",
    "[OPTIONS] VOLUME [VOLUME...]",
    flags=[Flag("format", "f", STRING, INSPECT_FORMAT_HELP)],
    args=at_least(1),
)
def inspect(cli: Any, opts: Any, args: list[str]) -> int:
    from berth.cli.commands.container import run_inspect
    from berth.cli.formatters.volumes import volume_struct

    client = cli.client()
    return run_inspect(cli, args, opts.format, lambda name: volume_struct(client.inspect_volume_raw(name)[0]))


@group.command(
    "rm",
    "Remove one or more volumes",
    "[OPTIONS] VOLUME [VOLUME...]",
    flags=[Flag("force", "f", BOOL, "Force the removal of one or more volumes")],
    args=at_least(1),
    aliases=("remove",),
    long="Remove one or more volumes. You cannot remove a volume that is in use by a container.",
)
def rm(cli: Any, opts: Any, args: list[str]) -> int:
    from berth.cli.commands.container import joined_error
    from berth.client.errors import ClientError

    client = cli.client()
    errors = []
    for name in args:
        try:
            client.remove_volume(name, force=opts.force)
        except ClientError as e:
            errors.append(e)
            continue
        cli.out.write(name + "\n")
    if errors:
        raise joined_error(errors)
    return 0


@group.command(
    "prune",
    "Remove unused local volumes",
    flags=[
        Flag("all", "a", BOOL, "Remove all unused volumes, not just anonymous ones"),
        Flag("force", "f", BOOL, "Do not prompt for confirmation"),
        Flag("filter", kind=LIST, help='Provide filter values (e.g. "label=<label>")', metavar="filter", convert=parse_filter),
    ],
    args=NO_ARGS,
)
def prune(cli: Any, opts: Any, args: list[str]) -> int:
    from berth.cli.prune import print_report, prune_volumes

    reclaimed, output = prune_volumes(cli, opts.filter, force=opts.force, all=opts.all)
    print_report(cli, output, reclaimed)
    return 0
