"""Global flags, command dispatch, and turning errors into docker's stderr text and exit codes.

Exit codes as docker's: 0 ok; 1 errors (daemon, usage of arguments, unknown command); 125 bad
flags; 64 bad ``--format`` templates; 130 on Ctrl-C; a command may return its own status.
"""

from __future__ import annotations

import importlib
import sys
from typing import Sequence, TextIO

from berth.cli.command import PROG, Command, Group, StatusError, UsageError
from berth.cli.commands import INDEX, shortcuts_for
from berth.cli.flags import BOOL, LIST, STRING, Flag, FlagError, FlagSet
from berth.client.contexts import ClientOptions
from berth.client.config import config_dir
from berth.client.tlsconfig import CA_FILE, CERT_FILE, KEY_FILE, default_cert_path

ROOT_USAGE = f"{PROG} [OPTIONS] COMMAND [ARG...]"
LOG_LEVELS = ("panic", "fatal", "error", "warn", "warning", "info", "debug", "trace")


def global_flags() -> FlagSet:
    cfg = config_dir()
    certs = default_cert_path(cfg)
    return FlagSet(
        [
            Flag("config", kind=STRING, help="Location of client config files", default=cfg),
            Flag(
                "context",
                "c",
                STRING,
                'Name of the context to use to connect to the daemon (overrides DOCKER_HOST env var\n'
                'and default context set with "berth context use")',
            ),
            Flag("debug", "D", BOOL, "Enable debug mode (prints each API request and response)"),
            Flag("host", "H", LIST, "Daemon socket to connect to (default unix:///run/berth.sock)", metavar="list"),
            Flag(
                "log-level",
                "l",
                STRING,
                'Set the logging level ("debug", "info", "warn", "error", "fatal")',
                default="info",
            ),
            Flag("tls", kind=BOOL, help="Use TLS; implied by --tlsverify"),
            Flag("tlscacert", kind=STRING, help="Trust certs signed only by this CA", default=f"{certs}/{CA_FILE}"),
            Flag("tlscert", kind=STRING, help="Path to TLS certificate file", default=f"{certs}/{CERT_FILE}"),
            Flag("tlskey", kind=STRING, help="Path to TLS key file", default=f"{certs}/{KEY_FILE}"),
            Flag("tlsverify", kind=BOOL, help="Use TLS and verify the remote"),
            Flag("version", "v", BOOL, "Print version information and quit"),
        ],
        interspersed=False,
    )


def root_help(flags: FlagSet) -> str:
    mgmt = sorted((n, e) for n, e in INDEX.items() if e.management and not e.hidden)
    plain = sorted((n, e) for n, e in INDEX.items() if not e.management and not e.hidden)
    lines = [f"Usage:  {PROG} [OPTIONS] COMMAND", "", "A Docker-compatible container engine client", ""]
    lines += ["Management Commands:"] + [f"  {n:<11} {e.summary}" for n, e in mgmt] + [""]
    lines += ["Commands:"] + [f"  {n:<11} {e.summary}" for n, e in plain] + [""]
    lines += ["Global Options:", flags.usage_text().rstrip("\n"), ""]
    lines += [f"Run '{PROG} COMMAND --help' for more help on a command.", ""]
    return "\n".join(lines)


def client_options(ns: object) -> ClientOptions:
    """Global flag values -> ClientOptions; TLS file flags count only when given."""
    opts = ClientOptions(
        config_dir=getattr(ns, "config") or None,
        context=getattr(ns, "context") or None,
        host=(getattr(ns, "host") or [None])[0],
    )
    changed = ns.changed  # type: ignore[attr-defined]
    if changed("tls"):
        opts.tls = getattr(ns, "tls")
    if changed("tlsverify"):
        opts.tls_verify = getattr(ns, "tlsverify")
    if changed("tlscacert"):
        opts.tls_ca = getattr(ns, "tlscacert")
    if changed("tlscert"):
        opts.tls_cert = getattr(ns, "tlscert")
    if changed("tlskey"):
        opts.tls_key = getattr(ns, "tlskey")
    return opts


def run(argv: Sequence[str], out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    if argv and argv[0] in ("__complete", "__completeNoDesc"):  # what the completion scripts run
        from berth.cli.completion.engine import main as complete

        return complete(list(argv[1:]), out, err, descriptions=argv[0] == "__complete")
    cli = None
    try:
        flags = global_flags()
        try:
            ns, rest, want_help = flags.parse(argv)
        except FlagError as e:
            raise UsageError(str(e), ROOT_USAGE, PROG) from None
        if len(getattr(ns, "host")) > 1:
            raise UsageError(
                f'invalid argument "{ns.host[1]}" for "-H, --host" flag: specify only one -H', ROOT_USAGE, PROG
            )
        if want_help or not rest:
            # docker: explicit --help to stdout; bare "docker" prints help to stderr
            (out if want_help else err).write(root_help(flags))
            return 0
        level = getattr(ns, "log_level")
        if level and level.lower() not in LOG_LEVELS:
            raise StatusError(f"Unable to parse logging level: {level}", 1)

        from berth.cli.state import Cli

        cli = Cli(client_options(ns), debug=getattr(ns, "debug"), out=out, err=err)
        return dispatch(cli, list(rest))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        _silence_stdout()
        return 141
    except Exception as e:  # every error ends as docker prints it
        message, status = describe_error(e)
        if message:
            _print_err(err, message)
        return status
    finally:
        if cli is not None:
            try:
                cli.close()
            except Exception:
                pass


def describe_error(e: BaseException) -> tuple[str, int]:
    from berth.cli.format import FormatError
    from berth.client.errors import ClientError

    if isinstance(e, StatusError):
        return e.message, e.status
    if isinstance(e, FormatError):
        return e.message, e.status
    if isinstance(e, ClientError):
        return str(e), 1
    if isinstance(e, OSError) and e.strerror:
        # Go's *PathError text: the failed operation is nearly always opening the file
        if e.filename:
            return f"open {e.filename}: {e.strerror.lower()}", 1
        return e.strerror.lower(), 1
    raise e  # a bug: let Python show the traceback


def dispatch(cli: object, argv: list[str]) -> int:
    name = argv[0]
    entry = INDEX.get(name)
    if entry is None:
        raise StatusError(f"{PROG}: unknown command: {PROG} {name}\n\nRun '{PROG} --help' for more information", 1)
    module = importlib.import_module(f"berth.cli.commands.{entry.module}")
    group: Group = module.group
    if entry.command is not None:
        cmd = group.lookup(entry.command)
        assert cmd is not None, f"index names a missing command {entry}"
        cli.called_as = name  # type: ignore[attr-defined]  # docker's cmd.CalledAs()
        return run_command(cli, cmd, f"{PROG} {name}", argv[1:], _alias_paths(group, cmd, entry.module))
    gpath = f"{PROG} {group.name}"
    sub = argv[1:]
    if not sub or sub[0] in ("-h", "--help"):
        (cli.out if sub or group.plain else cli.err).write(group.help_text(gpath))  # type: ignore[attr-defined]
        return 0
    if sub[0].startswith("-"):
        error = f"unknown flag: {sub[0]}" if sub[0].startswith("--") else f"unknown shorthand flag: '{sub[0][1:2]}' in {sub[0]}"
        raise UsageError(error, f"{gpath} COMMAND", gpath)
    cmd = group.lookup(sub[0])
    if cmd is None and group.plain:
        cli.out.write(group.help_text(gpath))  # type: ignore[attr-defined]
        return 0
    if cmd is None:
        raise StatusError(
            f"{PROG}: unknown command: {gpath} {sub[0]}\n\nUsage:  {gpath}\n\n"
            f"Run '{gpath} --help' for more information",
            1,
        )
    cli.called_as = sub[0]  # type: ignore[attr-defined]
    return run_command(cli, cmd, f"{gpath} {cmd.name}", sub[1:], _alias_paths(group, cmd, entry.module))


def _alias_paths(group: Group, cmd: Command, module: str) -> list[str]:
    paths = [] if cmd.hidden else [f"{PROG} {group.name} {n}" for n in (cmd.name, *cmd.aliases)]
    paths += [f"{PROG} {s}" for s in shortcuts_for(module, cmd.name)]
    return paths if len(paths) > 1 else []


def run_command(cli: object, cmd: Command, path: str, args: list[str], aliases: list[str]) -> int:
    try:
        opts, positionals, want_help = cmd.flagset().parse(args)
    except FlagError as e:
        raise UsageError(str(e), cmd.usage_line(path), path) from None
    if want_help:
        cli.out.write(cmd.help_text(path, aliases))  # type: ignore[attr-defined]
        return 0
    cmd.args.check(path, cmd.usage_line(path), positionals)
    status = cmd.run(cli, opts, positionals)
    return int(status or 0)


def _print_err(err: TextIO, message: str) -> None:
    try:
        err.write(message.rstrip("\n") + "\n")
        err.flush()
    except (OSError, ValueError):
        pass


def _silence_stdout() -> None:
    """After EPIPE on stdout, make the interpreter's final flush quiet."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
