"""``berth image ...`` and its top-level shortcuts (images, rmi, pull, push, save, load, ...)."""

from __future__ import annotations

import os
from typing import Any

from berth.cli.command import NO_ARGS, Args, Group, StatusError, at_least, exactly
from berth.cli.flags import BOOL, INT, LIST, STRING, Flag
from berth.cli.formatters.common import FORMAT_HELP, INSPECT_FORMAT_HELP
from berth.cli.opts.validate import parse_filter

group = Group("image", "Manage images")

FILTER_FLAG = Flag("filter", "f", LIST, "Filter output based on conditions provided", metavar="filter", convert=parse_filter)
PLATFORM_HELP = 'Set platform if server is multi-platform capable'


def _default_platform() -> str:
    return os.environ.get("DOCKER_DEFAULT_PLATFORM", "")


@group.command(
    "ls",
    "List images",
    "[OPTIONS] [REPOSITORY[:TAG]]",
    flags=[
        Flag("quiet", "q", BOOL, "Only show image IDs"),
        Flag("all", "a", BOOL, "Show all images (default hides intermediate images)"),
        Flag("no-trunc", kind=BOOL, help="Don't truncate output"),
        Flag("digests", kind=BOOL, help="Show digests"),
        Flag("format", kind=STRING, help=FORMAT_HELP),
        FILTER_FLAG,
        Flag("tree", kind=BOOL, help="List multi-platform images as a tree (EXPERIMENTAL)"),
    ],
    args=Args(0, 1),
    aliases=("list",),
)
def ls(cli: Any, opts: Any, args: list[str]) -> int:
    from berth.cli.format import ListFormatter
    from berth.cli.formatters.images import HEADERS, image_format, image_rows
    from berth.cli.opts.validate import filters_from

    match = args[0] if args else ""
    filters = filters_from(opts.filter, {"reference": [match]} if match else None)
    if opts.tree:
        raise StatusError("--tree is not supported by berth", 1)
    images = cli.client().images(all=opts.all, filters=filters or None)
    fmt = opts.format
    if not fmt:
        configured = cli.config_file().data.get("imagesFormat") or ""
        fmt = configured if configured and not opts.quiet else "table"
    final = image_format(fmt, opts.quiet, opts.digests)
    formatter = ListFormatter(final, default_table=final, headers=HEADERS, parse_status=1)
    need_digest = opts.digests or "{{.Digest}}" in final
    formatter.write(cli.out, image_rows(images, trunc=not opts.no_trunc, digest=opts.digests, need_digest=need_digest))
    if match and not images and getattr(cli, "called_as", "") == "images":
        if match in ("build", "history", "import", "inspect", "list", "load", "ls", "prune", "pull", "push", "rm", "save", "tag"):
            cli.err.write(f'\nNo images found matching "{match}": did you mean "berth image {match}"?\n')
    return 0


def _validate_tag(value: str) -> str:
    from berth.distribution import reference

    try:
        reference.parse_normalized_named(value)
    except reference.ReferenceError as e:
        raise ValueError(str(e)) from None
    return value


def _bytes(value: str) -> int:
    from berth.units import ram_in_bytes

    return -1 if value == "-1" else ram_in_bytes(value)


BUILD_FLAGS = [
    Flag("add-host", kind=LIST, help='Add a custom host-to-IP mapping ("host:ip")'),
    Flag("build-arg", kind=LIST, help="Set build-time variables"),
    Flag("cache-from", kind=LIST, help="Images to consider as cache sources", metavar="strings"),
    Flag("cgroup-parent", kind=STRING, help='Set the parent cgroup for the "RUN" instructions during build'),
    Flag("compress", kind=BOOL, help="Compress the build context using gzip"),
    Flag("cpu-period", kind=INT, help="Limit the CPU CFS (Completely Fair Scheduler) period"),
    Flag("cpu-quota", kind=INT, help="Limit the CPU CFS (Completely Fair Scheduler) quota"),
    Flag("cpu-shares", "c", INT, "CPU shares (relative weight)"),
    Flag("cpuset-cpus", kind=STRING, help="CPUs in which to allow execution (0-3, 0,1)"),
    Flag("cpuset-mems", kind=STRING, help="MEMs in which to allow execution (0-3, 0,1)"),
    Flag("disable-content-trust", kind=BOOL, help="Skip image verification (default true)", default=True),
    Flag("file", "f", STRING, 'Name of the Dockerfile (Default is "PATH/Dockerfile")'),
    Flag("force-rm", kind=BOOL, help="Always remove intermediate containers"),
    Flag("iidfile", kind=STRING, help="Write the image ID to the file"),
    Flag("isolation", kind=STRING, help="Container isolation technology"),
    Flag("label", kind=LIST, help="Set metadata for an image"),
    Flag("memory", "m", STRING, "Memory limit", metavar="bytes", convert=_bytes),
    Flag("memory-swap", kind=STRING, help="Swap limit equal to memory plus swap: -1 to enable unlimited swap",
         metavar="bytes", convert=_bytes),
    Flag("network", kind=STRING, help='Set the networking mode for the RUN instructions during build (default "default")'),
    Flag("no-cache", kind=BOOL, help="Do not use cache when building the image"),
    Flag("platform", kind=STRING, help=PLATFORM_HELP),
    Flag("pull", kind=BOOL, help="Always attempt to pull a newer version of the image"),
    Flag("quiet", "q", BOOL, "Suppress the build output and print image ID on success"),
    Flag("rm", kind=BOOL, help="Remove intermediate containers after a successful build (default true)", default=True),
    Flag("security-opt", kind=LIST, help="Security options", metavar="strings"),
    Flag("shm-size", kind=STRING, help='Size of "/dev/shm"', metavar="bytes", convert=_bytes),
    Flag("squash", kind=BOOL, help="Squash newly built layers into a single new layer"),
    Flag("tag", "t", LIST, 'Name and optionally a tag in the "name:tag" format', convert=_validate_tag),
    Flag("target", kind=STRING, help="Set the target build stage to build."),
    Flag("ulimit", kind=LIST, help="Ulimit options (default [])", metavar="ulimit"),
]


@group.command(
    "build",
    "Build an image from a Dockerfile",
    "[OPTIONS] PATH | URL | -",
    flags=BUILD_FLAGS,
    args=exactly(1),
)
def build(cli: Any, opts: Any, args: list[str]) -> int:
    from berth.cli.images.build import run_build
    from berth.cli.opts.ulimit import parse_ulimit

    opts.ulimit = [parse_ulimit(u) for u in opts.ulimit]
    opts.cache_from = [c for value in opts.cache_from for c in value.split(",") if c]
    return run_build(cli, opts, args)


@group.command(
    "inspect",
    "Display detailed information on one or more images",
    "[OPTIONS] IMAGE [IMAGE...]",
    flags=[
        Flag("format", "f", STRING, INSPECT_FORMAT_HELP),
        Flag("platform", kind=STRING, help="Inspect a specific platform of the multi-platform image."),
    ],
    args=at_least(1),
)
def inspect(cli: Any, opts: Any, args: list[str]) -> int:
    from berth.cli.commands.container import run_inspect
    from berth.cli.format import Raw

    client = cli.client()
    return run_inspect(cli, args, opts.format, lambda ref: Raw(*client.inspect_image_raw(ref)))


@group.command(
    "history",
    "Show the history of an image",
    "[OPTIONS] IMAGE",
    flags=[
        Flag("human", "H", BOOL, "Print sizes and dates in human readable format", default=True),
        Flag("quiet", "q", BOOL, "Only show image IDs"),
        Flag("no-trunc", kind=BOOL, help="Don't truncate output"),
        Flag("format", kind=STRING, help=FORMAT_HELP),
        Flag("platform", kind=STRING, help='Show history for the given platform. Formatted as "os[/arch[/variant]]" (e.g., "linux/amd64")'),
    ],
    args=exactly(1),
)
def history(cli: Any, opts: Any, args: list[str]) -> int:
    import time

    from berth.cli.format import ListFormatter
    from berth.cli.formatters.history import HEADERS, HistoryRow, history_format

    items = cli.client().history(args[0])
    final = history_format(opts.format or "table", opts.quiet, opts.human)
    formatter = ListFormatter(final, default_table=final, headers=HEADERS, parse_status=1)
    now = time.time()
    formatter.write(cli.out, (HistoryRow(i, trunc=not opts.no_trunc, human=opts.human, now=now) for i in items))
    return 0


@group.command(
    "tag",
    "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
    "SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
    args=exactly(2),
    interspersed=False,
)
def tag(cli: Any, opts: Any, args: list[str]) -> int:
    from berth.distribution import reference

    source, target = args
    try:
        reference.parse_any_reference(source)
    except reference.ReferenceError as e:
        raise StatusError(f'Error parsing reference: "{source}" is not a valid repository/tag: {e}', 1) from None
    try:
        ref = reference.parse_normalized_named(target)
    except reference.ReferenceError as e:
        raise StatusError(f'Error parsing reference: "{target}" is not a valid repository/tag: {e}', 1) from None
    if ref.digest is not None:
        raise StatusError("refusing to create a tag with a digest reference", 1)
    ref = reference.tag_name_only(ref)
    cli.client().tag_image(source, ref.name, ref.tag or "")
    return 0


@group.command(
    "rm",
    "Remove one or more images",
    "[OPTIONS] IMAGE [IMAGE...]",
    flags=[
        Flag("force", "f", BOOL, "Force removal of the image"),
        Flag("no-prune", kind=BOOL, help="Do not delete untagged parents"),
        Flag("platform", kind=LIST, help='Remove only the given platform variant. Formatted as "os[/arch[/variant]]" (e.g., "linux/amd64")', metavar="strings"),
    ],
    args=at_least(1),
    aliases=("rmi", "remove"),
)
def rm(cli: Any, opts: Any, args: list[str]) -> int:
    from berth.client.errors import ClientError, NotFound

    client = cli.client()
    fatal = False
    errors: list[str] = []
    for image in args:
        try:
            deleted = client.remove_image(image, force=opts.force, prune=not opts.no_prune)
        except ClientError as e:
            if not isinstance(e, NotFound):
                fatal = True
            errors.append(str(e))
            continue
        for item in deleted:
            if item.get("Deleted"):
                cli.out.write(f"Deleted: {item['Deleted']}\n")
            else:
                cli.out.write(f"Untagged: {item.get('Untagged', '')}\n")
    if errors:
        text = "\n".join(errors)
        if not opts.force or fatal:
            raise StatusError(text, 1)
        cli.err.write(text + "\n")
    return 0


@group.command(
    "prune",
    "Remove unused images",
    flags=[
        Flag("force", "f", BOOL, "Do not prompt for confirmation"),
        Flag("all", "a", BOOL, "Remove all unused images, not just dangling ones"),
        Flag("filter", kind=LIST, help='Provide filter values (e.g. "until=<timestamp>")', metavar="filter", convert=parse_filter),
    ],
    args=NO_ARGS,
)
def prune(cli: Any, opts: Any, args: list[str]) -> int:
    from berth.cli.prune import print_report, prune_images

    reclaimed, output = prune_images(cli, opts.filter, force=opts.force, all=opts.all)
    print_report(cli, output, reclaimed)
    return 0


# -- moving images in and out ----------------------------------------------------------------------


def _file_chunks(f: Any, size: int = 1 << 20) -> Any:
    while True:
        data = f.read(size)
        if not data:
            return
        yield data


@group.command(
    "import",
    "Import the contents from a tarball to create a filesystem image",
    "[OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
    flags=[
        Flag("change", "c", LIST, "Apply Dockerfile instruction to the created image"),
        Flag("message", "m", STRING, "Set commit message for imported image"),
        Flag("platform", kind=STRING, help=PLATFORM_HELP, default=_default_platform()),
    ],
    args=at_least(1),
)
def import_(cli: Any, opts: Any, args: list[str]) -> int:
    from berth.cli.images.pull import render_progress

    source = args[0]
    repo = args[1] if len(args) > 1 else ""
    if repo:
        from berth.distribution import reference

        try:
            reference.parse_normalized_named(repo)
        except reference.ReferenceError as e:
            raise StatusError(str(e), 1) from None
    client = cli.client()
    kwargs = dict(repo=repo, message=opts.message, changes=opts.change, platform=opts.platform)
    if source == "-":
        stdin = getattr(cli.inp, "buffer", cli.inp)
        resp = client.import_stream(_file_chunks(stdin), source="-", **kwargs)
    elif source.startswith(("http://", "https://")):
        resp = client.import_stream(None, source=source, **kwargs)
    else:
        with open(source, "rb") as f:
            resp = client.import_stream(_file_chunks(f), source="-", **kwargs)
    render_progress(cli, resp, cli.out)
    return 0


@group.command(
    "load",
    "Load an image from a tar archive or STDIN",
    flags=[
        Flag("input", "i", STRING, "Read from tar archive file, instead of STDIN"),
        Flag("quiet", "q", BOOL, "Suppress the load output"),
        Flag("platform", kind=STRING, help='Load only the given platform variant. Formatted as "os[/arch[/variant]]" (e.g., "linux/amd64")'),
    ],
    args=NO_ARGS,
)
def load(cli: Any, opts: Any, args: list[str]) -> int:
    from berth.cli.images.pull import render_progress
    from berth.cli.terminal import is_terminal

    quiet = opts.quiet or not is_terminal(cli.out)
    client = cli.client()
    if not opts.input:
        if is_terminal(cli.inp):
            raise StatusError("requested load from stdin, but stdin is empty", 1)
        stdin = getattr(cli.inp, "buffer", cli.inp)
        resp = client.load_stream(_file_chunks(stdin), quiet=quiet)
    else:
        with open(opts.input, "rb") as f:
            resp = client.load_stream(_file_chunks(f), quiet=quiet)
    if resp.content_type == "application/json":
        render_progress(cli, resp, cli.out)
    else:
        from berth.cli.streams import binary

        out = binary(cli.out)
        for chunk in resp.iter_chunks():
            out.write(chunk)
        out.flush()
    return 0


@group.command(
    "save",
    "Save one or more images to a tar archive (streamed to STDOUT by default)",
    "[OPTIONS] IMAGE [IMAGE...]",
    flags=[
        Flag("output", "o", STRING, "Write to a file, instead of STDOUT"),
        Flag("platform", kind=STRING, help='Save only the given platform variant. Formatted as "os[/arch[/variant]]" (e.g., "linux/amd64")'),
    ],
    args=at_least(1),
)
def save(cli: Any, opts: Any, args: list[str]) -> int:
    from berth.cli.archiveout import copy_response_to

    return copy_response_to(cli, opts.output, lambda: cli.client().save_stream(args), "failed to save image")


def _transfer_reference(cli: Any, opts: Any, text: str, allow_digest: bool) -> Any:
    """The reference of pull/push, with docker's checks and its default-tag notice."""
    from berth.distribution import reference

    try:
        ref = reference.parse_normalized_named(text)
    except reference.ReferenceError as e:
        raise StatusError(str(e), 1) from None
    if ref.digest is not None and not allow_digest:
        raise StatusError("cannot push a digest reference", 1)
    if opts.all_tags and not ref.is_name_only:
        raise StatusError("tag can't be used with --all-tags/-a", 1)
    if not opts.all_tags and ref.is_name_only:
        ref = reference.tag_name_only(ref)
        if not opts.quiet:
            cli.out.write(f"Using default tag: {ref.tag}\n")
            cli.out.flush()
    return ref


@group.command(
    "pull",
    "Download an image from a registry",
    "[OPTIONS] NAME[:TAG|@DIGEST]",
    flags=[
        Flag("all-tags", "a", BOOL, "Download all tagged images in the repository"),
        Flag("quiet", "q", BOOL, "Suppress verbose output"),
        Flag("platform", kind=STRING, help=PLATFORM_HELP, default=_default_platform()),
        Flag("disable-content-trust", kind=BOOL, help="Skip image verification", default=True),
    ],
    args=exactly(1),
)
def pull(cli: Any, opts: Any, args: list[str]) -> int:
    from berth.cli.images.pull import auth_for, render_progress

    ref = _transfer_reference(cli, opts, args[0], allow_digest=True)
    tag = ref.digest if ref.digest is not None else (ref.tag or "")
    resp = cli.client().pull_stream(ref.name, "" if opts.all_tags else tag, platform=opts.platform, auth=auth_for(cli, ref))
    render_progress(cli, resp, None if opts.quiet else cli.out)
    cli.out.write(str(ref) + "\n")
    return 0


@group.command(
    "push",
    "Upload an image to a registry",
    "[OPTIONS] NAME[:TAG]",
    flags=[
        Flag("all-tags", "a", BOOL, "Push all tags of an image to the repository"),
        Flag("quiet", "q", BOOL, "Suppress verbose output"),
        Flag("disable-content-trust", kind=BOOL, help="Skip image signing", default=True),
        Flag("platform", kind=STRING, help="Push a platform-specific manifest as a single-platform image to the registry."),
    ],
    args=exactly(1),
)
def push(cli: Any, opts: Any, args: list[str]) -> int:
    from berth.cli.images.pull import auth_for, render_progress

    ref = _transfer_reference(cli, opts, args[0], allow_digest=False)
    tag = "" if opts.all_tags else (ref.tag or "")
    resp = cli.client().push_stream(ref.name, tag, auth=auth_for(cli, ref))
    render_progress(cli, resp, None if opts.quiet else cli.out)
    if opts.quiet:
        cli.out.write(str(ref) + "\n")
    return 0
