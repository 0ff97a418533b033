"""``berth container ...`` and docker's top-level shortcuts to it (run, ps, exec, logs, ...).

The small commands are here; the long flows live in ``cli/containers/`` (run/create,
attach/start, exec, logs, cp, stats) and are imported only when their command runs.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from berth.cli.command import NO_ARGS, Args, Group, StatusError, at_least, exactly, lazy
from berth.cli.flags import BOOL, INT, LIST, STRING, Flag
from berth.cli.formatters.common import FORMAT_HELP, INSPECT_FORMAT_HELP

# converters imported on use: listing containers must not load run's option parsers
parse_filter = lazy("berth.cli.opts.validate", "parse_filter")
validate_env = lazy("berth.cli.opts.validate", "validate_env")
parse_cpus = lazy("berth.cli.opts.validate", "parse_cpus")
ram_in_bytes = lazy("berth.units", "ram_in_bytes")
mem_swap = lazy("berth.cli.containers.createopts", "mem_swap")
uint16 = lazy("berth.cli.containers.createopts", "uint16")

group = Group("container", "Manage containers")


def joined_error(errors: Sequence[BaseException | str]) -> StatusError:
    """Go's errors.Join as docker prints it: one message per line, status 1."""
    return StatusError("\n".join(str(e) for e in errors), 1)


def parallel(items: Sequence[str], op: Callable[[str], Any]) -> list[BaseException | None]:
    """docker's parallelOperation: up to 50 at once, results in argument order."""
    from concurrent.futures import ThreadPoolExecutor

    from berth.client.errors import ClientError

    def one(item: str) -> BaseException | None:
        try:
            op(item)
            return None
        except (ClientError, StatusError) as e:
            return e

    if len(items) == 1:
        return [one(items[0])]
    with ThreadPoolExecutor(max_workers=min(50, len(items))) as pool:
        return list(pool.map(one, items))


def _msg(e: BaseException) -> str:
    return e.message if isinstance(e, StatusError) else str(e)


def report_each(cli: Any, items: Sequence[str], results: Sequence[BaseException | None]) -> int:
    """Print each name that worked; join the errors of the others."""
    errors = []
    for item, error in zip(items, results):
        if error is None:
            cli.out.write(item + "\n")
        else:
            errors.append(_msg(error))
    cli.out.flush()
    if errors:
        raise joined_error(errors)
    return 0


FILTER_FLAG = Flag("filter", "f", LIST, "Filter output based on conditions provided", metavar="filter", convert=parse_filter)
DETACH_KEYS_FLAG = Flag("detach-keys", kind=STRING, help="Override the key sequence for detaching a container")


# -- run / create ---------------------------------------------------------------------------------

_RUN_ONLY = [
    Flag("detach", "d", BOOL, "Run container in background and print container ID"),
    Flag("sig-proxy", kind=BOOL, help="Proxy received signals to the process", default=True),
    Flag("name", kind=STRING, help="Assign a name to the container"),
    DETACH_KEYS_FLAG,
    Flag("pull", kind=STRING, help='Pull image before running ("always", "missing", "never")', default="missing"),
    Flag("quiet", "q", BOOL, "Suppress the pull output"),
    Flag("platform", kind=STRING, help="Set platform if server is multi-platform capable"),
    Flag("disable-content-trust", kind=BOOL, help="Skip image verification", default=True),
]


def _run_flags() -> list[Flag]:
    from berth.cli.containers.createopts import container_flags

    return _platform_default(_RUN_ONLY + container_flags())


def _create_flags() -> list[Flag]:
    from berth.cli.containers.createopts import container_flags, create_flags

    return _platform_default(create_flags() + container_flags())


def _platform_default(flags: list[Flag]) -> list[Flag]:
    import os

    for f in flags:
        if f.name == "platform":
            f.default = os.environ.get("DOCKER_DEFAULT_PLATFORM", "")
    return flags


@group.command(
    "run",
    "Create and run a new container from an image",
    "[OPTIONS] IMAGE [COMMAND] [ARG...]",
    flags=_run_flags,
    args=at_least(1),
    interspersed=False,
)
def run(cli: Any, opts: Any, args: list[str]) -> int:
    from berth.cli.containers.run import run as run_flow

    return run_flow(cli, opts, args)


@group.command(
    "create",
    "Create a new container",
    "[OPTIONS] IMAGE [COMMAND] [ARG...]",
    flags=_create_flags,
    args=at_least(1),
    interspersed=False,
)
def create(cli: Any, opts: Any, args: list[str]) -> int:
    from berth.cli.containers.run import create_container, parse_request

    request = parse_request(cli, opts, args, "create")
    cid = create_container(cli, request, name=opts.name, pull=opts.pull, quiet=opts.quiet, platform=opts.platform)
    cli.out.write(cid + "\n")
    return 0


# -- start / attach / exec ----------------------------------------------------------------------


@group.command(
    "start",
    "Start one or more stopped containers",
    "[OPTIONS] CONTAINER [CONTAINER...]",
    flags=[
        Flag("attach", "a", BOOL, "Attach STDOUT/STDERR and forward signals"),
        Flag("interactive", "i", BOOL, "Attach container's STDIN"),
        DETACH_KEYS_FLAG,
        Flag("checkpoint", kind=STRING, help="Restore from this checkpoint", hidden=True),
        Flag("checkpoint-dir", kind=STRING, help="Use a custom checkpoint storage directory", hidden=True),
    ],
    args=at_least(1),
)
def start(cli: Any, opts: Any, args: list[str]) -> int:
    if opts.attach or opts.interactive:
        if len(args) > 1:
            raise StatusError("you cannot start and attach multiple containers at once", 1)
        from berth.cli.containers.attach import start_attached

        return start_attached(cli, opts, args[0])
    client = cli.client()
    errors = []
    for name in args:
        try:
            client.start_container(name)
        except Exception as e:
            from berth.client.errors import ClientError

            if not isinstance(e, ClientError):
                raise
            cli.err.write(f"{e}\n")
            errors.append(name)
            continue
        cli.out.write(name + "\n")
    if errors:
        raise StatusError(f"Error: failed to start containers: {', '.join(errors)}", 1)
    return 0


@group.command(
    "attach",
    "Attach local standard input, output, and error streams to a running container",
    "[OPTIONS] CONTAINER",
    flags=[
        Flag("no-stdin", kind=BOOL, help="Do not attach STDIN"),
        Flag("sig-proxy", kind=BOOL, help="Proxy all received signals to the process", default=True),
        DETACH_KEYS_FLAG,
    ],
    args=exactly(1),
)
def attach(cli: Any, opts: Any, args: list[str]) -> int:
    from berth.cli.containers.attach import attach as attach_flow

    return attach_flow(cli, opts, args[0])


@group.command(
    "exec",
    "Execute a command in a running container",
    "[OPTIONS] CONTAINER COMMAND [ARG...]",
    flags=[
        DETACH_KEYS_FLAG,
        Flag("interactive", "i", BOOL, "Keep STDIN open even if not attached"),
        Flag("tty", "t", BOOL, "Allocate a pseudo-TTY"),
        Flag("detach", "d", BOOL, "Detached mode: run command in the background"),
        Flag("user", "u", STRING, 'Username or UID (format: "<name|uid>[:<group|gid>]")'),
        Flag("privileged", kind=BOOL, help="Give extended privileges to the command"),
        Flag("env", "e", LIST, "Set environment variables", convert=validate_env),
        Flag("env-file", kind=LIST, help="Read in a file of environment variables"),
        Flag("workdir", "w", STRING, "Working directory inside the container"),
    ],
    args=at_least(2),
    interspersed=False,
)
def exec_(cli: Any, opts: Any, args: list[str]) -> int:
    from berth.cli.containers.exec import run_exec

    return run_exec(cli, opts, args[0], args[1:])


# -- listing and inspecting -----------------------------------------------------------------------


@group.command(
    "ls",
    "List containers",
    flags=[
        Flag("quiet", "q", BOOL, "Only display container IDs"),
        Flag("size", "s", BOOL, "Display total file sizes"),
        Flag("all", "a", BOOL, "Show all containers (default shows just running)"),
        Flag("no-trunc", kind=BOOL, help="Don't truncate output"),
        Flag("latest", "l", BOOL, "Show the latest created container (includes all states)"),
        Flag("last", "n", INT, "Show n last created containers (includes all states)", default=-1),
        Flag("format", kind=STRING, help=FORMAT_HELP),
        FILTER_FLAG,
    ],
    args=NO_ARGS,
    aliases=("list", "ps"),
)
def ls(cli: Any, opts: Any, args: list[str]) -> int:
    from berth.cli.format import ListFormatter, compile_template, execute, FormatError, template_text
    from berth.cli.formatters.containers import HEADERS, ContainerRow, container_format, empty_row
    from berth.cli.opts.validate import filters_from

    fmt = opts.format
    if not fmt:
        fmt = cli.config_file().data.get("psFormat", "") or ""
    elif opts.quiet:
        cli.err.write("WARNING: Ignoring custom format, because both --format and --quiet are set.\n")
    size = opts.size
    limit = opts.last
    if opts.latest and limit == -1:
        limit = 1
    if opts.format:
        # docker validates the template against an empty row before listing
        try:
            tmpl = compile_template(template_text(opts.format))
        except FormatError as e:
            raise StatusError("failed to parse template: " + e.message.removeprefix("template parsing error: "), 1) from None
        try:
            execute(tmpl, empty_row())
        except FormatError as e:
            raise StatusError("failed to execute template: " + e.message.removeprefix("template parsing error: "), 1) from None
        if not opts.quiet and not size and not opts.changed("size") and ".Size" in opts.format:
            size = True
    containers = cli.client().containers(
        all=opts.all, limit=limit, size=size, filters=filters_from(opts.filter) or None
    )
    formatter = ListFormatter(
        container_format(fmt or "table", opts.quiet, size),
        default_table=container_format("table", False, size),
        headers=HEADERS,
        parse_status=1,
    )
    import time

    now = time.time()
    formatter.write(cli.out, (ContainerRow(c, not opts.no_trunc, now) for c in containers))
    return 0


def inspect_container_getter(cli: Any, size: bool) -> Callable[[str], Any]:
    from berth.cli.format import Raw

    client = cli.client()

    def get(ref: str) -> Any:
        value, raw = client.inspect_container_raw(ref, size)
        return Raw(value, raw)

    return get


def run_inspect(cli: Any, refs: list[str], fmt: str, get: Callable[[str], Any]) -> int:
    from berth.cli.format import FormatError, inspect_write

    try:
        errors = inspect_write(cli.out, refs, fmt, get)
    except FormatError as e:
        raise StatusError(e.message, 64) from None
    if errors:
        raise joined_error(errors)
    return 0


@group.command(
    "inspect",
    "Display detailed information on one or more containers",
    "[OPTIONS] CONTAINER [CONTAINER...]",
    flags=[Flag("format", "f", STRING, INSPECT_FORMAT_HELP), Flag("size", "s", BOOL, "Display total file sizes")],
    args=at_least(1),
)
def inspect(cli: Any, opts: Any, args: list[str]) -> int:
    return run_inspect(cli, args, opts.format, inspect_container_getter(cli, opts.size))


@group.command(
    "logs",
    "Fetch the logs of a container",
    "[OPTIONS] CONTAINER",
    flags=[
        Flag("follow", "f", BOOL, "Follow log output"),
        Flag("since", kind=STRING, help='Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)'),
        Flag("until", kind=STRING, help='Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)'),
        Flag("timestamps", "t", BOOL, "Show timestamps"),
        Flag("details", kind=BOOL, help="Show extra details provided to logs"),
        Flag("tail", "n", STRING, "Number of lines to show from the end of the logs", default="all"),
    ],
    args=exactly(1),
)
def logs(cli: Any, opts: Any, args: list[str]) -> int:
    from berth.cli.containers.logs import run_logs

    return run_logs(cli, opts, args[0])


@group.command(
    "port",
    "List port mappings or a specific mapping for the container",
    "CONTAINER [PRIVATE_PORT[/PROTO]]",
    args=Args(1, 2),
)
def port(cli: Any, opts: Any, args: list[str]) -> int:
    from berth.cli.formatters.portlist import port_lines

    container = cli.client().inspect_container(args[0])
    lines = port_lines(container, args[0], args[1] if len(args) > 1 else "")
    if lines:
        cli.out.write("\n".join(lines) + "\n")
    return 0


@group.command(
    "top",
    "Display the running processes of a container",
    "CONTAINER [ps OPTIONS]",
    args=at_least(1),
    interspersed=False,
)
def top(cli: Any, opts: Any, args: list[str]) -> int:
    from berth.cli.tabwriter import format_table

    procs = cli.client().top(args[0], args[1:])
    lines = ["\t".join(procs.get("Titles") or [])]
    lines += ["\t".join(p) for p in procs.get("Processes") or []]
    cli.out.write(format_table("\n".join(lines) + "\n", minwidth=20, padding=3))
    return 0


@group.command(
    "stats",
    "Display a live stream of container(s) resource usage statistics",
    "[OPTIONS] [CONTAINER...]",
    flags=[
        Flag("all", "a", BOOL, "Show all containers (default shows just running)"),
        Flag("no-stream", kind=BOOL, help="Disable streaming stats and only pull the first result"),
        Flag("no-trunc", kind=BOOL, help="Do not truncate output"),
        Flag("format", kind=STRING, help=FORMAT_HELP),
    ],
)
def stats(cli: Any, opts: Any, args: list[str]) -> int:
    from berth.cli.containers.stats import run_stats

    return run_stats(cli, opts, args)


@group.command(
    "diff",
    "Inspect changes to files or directories on a container's filesystem",
    "CONTAINER",
    args=exactly(1),
)
def diff(cli: Any, opts: Any, args: list[str]) -> int:
    from berth.cli.format import ListFormatter
    from berth.cli.formatters.diff import HEADERS, DiffRow

    if not args[0]:
        raise StatusError("Container name cannot be empty", 1)
    changes = cli.client().container_changes(args[0])
    formatter = ListFormatter("{{.Type}} {{.Path}}", default_table="", headers=HEADERS, parse_status=1)
    formatter.write(cli.out, (DiffRow(c) for c in changes))
    return 0


# -- state changes ----------------------------------------------------------------------------------


def _stop_like(verb: str) -> Callable[[Any, Any, list[str]], int]:
    def runner(cli: Any, opts: Any, args: list[str]) -> int:
        if opts.changed("time"):  # pflag's notice, on stdout, when the flag is parsed
            cli.out.write("Flag --time has been deprecated, use --timeout instead\n")
        if opts.changed("time") and opts.changed("timeout"):
            raise StatusError("conflicting options: cannot specify both --timeout and --time", 1)
        timeout = None
        if opts.changed("timeout"):
            timeout = opts.timeout
        elif opts.changed("time"):
            timeout = opts.time
        client = cli.client()
        if verb == "stop":
            return report_each(cli, args, parallel(args, lambda c: client.stop_container(c, timeout, opts.signal)))
        results = []
        for name in args:  # docker restarts one after another
            try:
                client.restart_container(name, timeout, opts.signal)
                results.append(None)
            except Exception as e:
                from berth.client.errors import ClientError

                if not isinstance(e, ClientError):
                    raise
                results.append(e)
        return report_each(cli, args, results)

    return runner


def _stop_flags() -> list[Flag]:
    return [
        Flag("signal", "s", STRING, "Signal to send to the container"),
        Flag("timeout", "t", INT, "Seconds to wait before killing the container"),
        Flag("time", kind=INT, help="Seconds to wait before killing the container (deprecated: use --timeout)", hidden=True),
    ]


group.command("stop", "Stop one or more running containers", "[OPTIONS] CONTAINER [CONTAINER...]",
              flags=_stop_flags(), args=at_least(1))(_stop_like("stop"))
group.command("restart", "Restart one or more containers", "[OPTIONS] CONTAINER [CONTAINER...]",
              flags=_stop_flags(), args=at_least(1))(_stop_like("restart"))


@group.command(
    "kill",
    "Kill one or more running containers",
    "[OPTIONS] CONTAINER [CONTAINER...]",
    flags=[Flag("signal", "s", STRING, "Signal to send to the container")],
    args=at_least(1),
)
def kill(cli: Any, opts: Any, args: list[str]) -> int:
    client = cli.client()
    return report_each(cli, args, parallel(args, lambda c: client.kill_container(c, opts.signal)))


@group.command(
    "rm",
    "Remove one or more containers",
    "[OPTIONS] CONTAINER [CONTAINER...]",
    flags=[
        Flag("volumes", "v", BOOL, "Remove anonymous volumes associated with the container"),
        Flag("link", "l", BOOL, "Remove the specified link"),
        Flag("force", "f", BOOL, "Force the removal of a running container (uses SIGKILL)"),
    ],
    args=at_least(1),
    aliases=("remove",),
)
def rm(cli: Any, opts: Any, args: list[str]) -> int:
    from berth.client.errors import NotFound

    client = cli.client()

    def remove(ref: str) -> None:
        ref = ref.strip("/")
        if not ref:
            raise StatusError("container name cannot be empty", 1)
        client.remove_container(ref, force=opts.force, volumes=opts.volumes, link=opts.link)

    errors = []
    for name, error in zip(args, parallel(args, remove)):
        if error is None:
            cli.out.write(name + "\n")
        elif opts.force and isinstance(error, NotFound):
            cli.err.write(f"{error}\n")
        else:
            errors.append(_msg(error))
    if errors:
        raise joined_error(errors)
    return 0


@group.command("pause", "Pause all processes within one or more containers", "CONTAINER [CONTAINER...]", args=at_least(1))
def pause(cli: Any, opts: Any, args: list[str]) -> int:
    client = cli.client()
    return report_each(cli, args, parallel(args, client.pause_container))


@group.command("unpause", "Unpause all processes within one or more containers", "CONTAINER [CONTAINER...]", args=at_least(1))
def unpause(cli: Any, opts: Any, args: list[str]) -> int:
    client = cli.client()
    return report_each(cli, args, parallel(args, client.unpause_container))


@group.command("rename", "Rename a container", "CONTAINER NEW_NAME", args=exactly(2))
def rename(cli: Any, opts: Any, args: list[str]) -> int:
    from berth.client.errors import ClientError

    old, new = args[0].strip(), args[1].strip()
    if not old or not new:
        raise StatusError("Error: Neither old nor new names may be empty", 1)
    try:
        cli.client().rename_container(old, new)
    except ClientError as e:
        cli.err.write(f"{e}\n")
        raise StatusError(f"Error: failed to rename container named {old}", 1) from None
    return 0


@group.command(
    "wait",
    "Block until one or more containers stop, then print their exit codes",
    "CONTAINER [CONTAINER...]",
    args=at_least(1),
)
def wait(cli: Any, opts: Any, args: list[str]) -> int:
    from berth.client.errors import ClientError

    client = cli.client()
    errors = []
    for name in args:
        try:
            result = client.wait_container(name)
        except ClientError as e:
            errors.append(str(e))
            continue
        cli.out.write(f"{int(result.get('StatusCode', 0))}\n")
        cli.out.flush()
    if errors:
        raise joined_error(errors)
    return 0


@group.command(
    "update",
    "Update configuration of one or more containers",
    "[OPTIONS] CONTAINER [CONTAINER...]",
    flags=[
        Flag("blkio-weight", kind=INT, help="Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)", metavar="uint16", convert=uint16),
        Flag("cpu-period", kind=INT, help="Limit CPU CFS (Completely Fair Scheduler) period", metavar="int"),
        Flag("cpu-quota", kind=INT, help="Limit CPU CFS (Completely Fair Scheduler) quota", metavar="int"),
        Flag("cpu-rt-period", kind=INT, help="Limit the CPU real-time period in microseconds", metavar="int"),
        Flag("cpu-rt-runtime", kind=INT, help="Limit the CPU real-time runtime in microseconds", metavar="int"),
        Flag("cpuset-cpus", kind=STRING, help="CPUs in which to allow execution (0-3, 0,1)"),
        Flag("cpuset-mems", kind=STRING, help="MEMs in which to allow execution (0-3, 0,1)"),
        Flag("cpu-shares", "c", INT, "CPU shares (relative weight)", metavar="int"),
        Flag("memory", "m", STRING, "Memory limit", metavar="bytes", convert=ram_in_bytes),
        Flag("memory-reservation", kind=STRING, help="Memory soft limit", metavar="bytes", convert=ram_in_bytes),
        Flag("memory-swap", kind=STRING, help="Swap limit equal to memory plus swap: -1 to enable unlimited swap", metavar="bytes", convert=mem_swap),
        Flag("kernel-memory", kind=STRING, help="Kernel memory limit (deprecated)", metavar="bytes", hidden=True, convert=ram_in_bytes),
        Flag("restart", kind=STRING, help="Restart policy to apply when a container exits"),
        Flag("pids-limit", kind=INT, help="Tune container pids limit (set -1 for unlimited)", metavar="int"),
        Flag("cpus", kind=STRING, help="Number of CPUs", metavar="decimal", convert=parse_cpus),
    ],
    args=at_least(1),
)
def update(cli: Any, opts: Any, args: list[str]) -> int:
    from berth.cli.containers.update import update_body

    body = update_body(opts)
    client = cli.client()
    warnings: list[str] = []
    errors: list[str] = []
    from berth.client.errors import ClientError

    for name in args:
        try:
            result = client.update_container(name, body)
        except ClientError as e:
            errors.append(str(e))
            continue
        cli.out.write(name + "\n")
        warnings += list(result.get("Warnings") or [])
    if warnings:
        cli.out.write("\n".join(warnings) + "\n")
    if errors:
        raise joined_error(errors)
    return 0


# -- filesystem ------------------------------------------------------------------------------------


@group.command(
    "cp",
    "Copy files/folders between a container and the local filesystem",
    "[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tberth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
    flags=[
        Flag("follow-link", "L", BOOL, "Always follow symbol link in SRC_PATH"),
        Flag("archive", "a", BOOL, "Archive mode (copy all uid/gid information)"),
        Flag("quiet", "q", BOOL, "Suppress progress output during copy. Progress output is automatically suppressed if no terminal is attached"),
    ],
    args=exactly(2),
    long="Copy files/folders between a container and the local filesystem\n\n"
    "Use '-' as the source to read a tar archive from stdin\n"
    "and extract it to a directory destination in a container.\n"
    "Use '-' as the destination to stream a tar archive of a\n"
    "container source to stdout.",
)
def cp(cli: Any, opts: Any, args: list[str]) -> int:
    from berth.cli.containers.cp import run_copy

    return run_copy(cli, opts, args[0], args[1])


@group.command(
    "export",
    "Export a container's filesystem as a tar archive",
    "[OPTIONS] CONTAINER",
    flags=[Flag("output", "o", STRING, "Write to a file, instead of STDOUT")],
    args=exactly(1),
)
def export(cli: Any, opts: Any, args: list[str]) -> int:
    from berth.cli.archiveout import copy_response_to

    def open_stream() -> Any:
        return cli.client().export_container(args[0])

    return copy_response_to(cli, opts.output, open_stream, "failed to export container")


@group.command(
    "commit",
    "Create a new image from a container's changes",
    "[OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
    flags=[
        Flag("pause", "p", BOOL, "Pause container during commit", default=True),
        Flag("message", "m", STRING, "Commit message"),
        Flag("author", "a", STRING, 'Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")'),
        Flag("change", "c", LIST, "Apply Dockerfile instruction to the created image"),
    ],
    args=Args(1, 2),
    interspersed=False,
)
def commit(cli: Any, opts: Any, args: list[str]) -> int:
    from berth.cli.images.refs import repo_and_tag

    repo, tag = repo_and_tag(args[1]) if len(args) > 1 else ("", "")
    result = cli.client().commit(
        args[0], repo, tag, comment=opts.message, author=opts.author, changes=opts.change, pause=opts.pause
    )
    cli.out.write(result.get("Id", "") + "\n")
    return 0


@group.command(
    "prune",
    "Remove all stopped containers",
    flags=[
        Flag("force", "f", BOOL, "Do not prompt for confirmation"),
        Flag("filter", kind=LIST, help='Provide filter values (e.g. "until=<timestamp>")', metavar="filter", convert=parse_filter),
    ],
    args=NO_ARGS,
)
def prune(cli: Any, opts: Any, args: list[str]) -> int:
    from berth.cli.prune import prune_containers, print_report

    reclaimed, output = prune_containers(cli, opts.filter, force=opts.force)
    print_report(cli, output, reclaimed)
    return 0
