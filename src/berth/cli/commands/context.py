"""``berth context create|ls|use|rm|inspect|show|update``, with docker's flags and texts.

The store is docker's own (``berth.client.contexts``), so contexts made by either CLI are
seen by the other.
"""

from __future__ import annotations

import os
from typing import Any

from berth.cli.command import NO_ARGS, Group, StatusError, at_least, exactly
from berth.cli.flags import BOOL, MAP, STRING, Flag, parse_bool
from berth.client.contexts import (
    DEFAULT_CONTEXT,
    DEFAULT_DESCRIPTION,
    DOCKER_ENDPOINT,
    Context,
    StoreWithDefault,
    validate_name,
)
from berth.client.errors import ContextError

group = Group("context", "Manage contexts")

FORMAT_HELP = (
    "Format output using a custom template:\n"
    "'table':            Print output in table format with column headers (default)\n"
    "'table TEMPLATE':   Print output in table format using the given Go template\n"
    "'json':             Print in JSON format\n"
    "'TEMPLATE':         Print output using the given Go template."
)
INSPECT_FORMAT_HELP = (
    "Format output using a custom template:\n"
    "'json':             Print in JSON format\n"
    "'TEMPLATE':         Print output using the given Go template."
)
DOCKER_KEYS = ("from", "host", "ca", "cert", "key", "skip-tls-verify")
ENDPOINT_HELP = """Docker endpoint config:

NAME                DESCRIPTION
from                Copy named context's Docker endpoint configuration
host                Docker endpoint on which to connect
ca                  Trust certs signed only by this CA
cert                Path to TLS certificate file
key                 Path to TLS key file
skip-tls-verify     Skip TLS certificate validation
"""
TABLE_FORMAT = "table {{.Name}}{{if .Current}} *{{end}}\t{{.Description}}\t{{.DockerEndpoint}}\t{{.Error}}"
HEADERS = {"Name": "NAME", "Description": "DESCRIPTION", "DockerEndpoint": "DOCKER ENDPOINT", "Error": "ERROR"}
MAX_ERROR_WIDTH = 45


def _fail(e: Exception) -> StatusError:
    return StatusError(str(e), 1)


# -- --docker endpoint config -------------------------------------------------------------------


def docker_endpoint(store: StoreWithDefault, config: dict[str, str]) -> tuple[dict[str, Any], dict[str, bytes] | None]:
    """docker's getDockerEndpoint: the endpoint metadata and TLS files for ``--docker``."""
    unknown = sorted(k for k in config if k not in DOCKER_KEYS)
    if unknown:
        raise ContextError("\n".join(f"unrecognized config key: {k}" for k in unknown))
    if "from" in config:
        source = store.get(config["from"])
        ep = source.endpoints.get(DOCKER_ENDPOINT)
        if not isinstance(ep, dict):
            raise ContextError(f'unable to get endpoint from context "{config["from"]}"')
        return {"Host": ep.get("Host", ""), "SkipTLSVerify": bool(ep.get("SkipTLSVerify", False))}, None
    tls: dict[str, bytes] = {}
    for key, filename in (("ca", "ca.pem"), ("cert", "cert.pem"), ("key", "key.pem")):
        path = config.get(key, "")
        if path:
            try:
                with open(path, "rb") as f:
                    tls[filename] = f.read()
            except OSError as e:
                raise ContextError(f"open {path}: {(e.strerror or str(e)).lower()}") from None
    skip = False
    if "skip-tls-verify" in config:
        try:
            skip = parse_bool(config["skip-tls-verify"])
        except ValueError:
            raise ContextError(f'skip-tls-verify: parsing "{config["skip-tls-verify"]}": invalid syntax') from None
    host = config.get("host", "")
    if host and "://" not in host:
        raise ContextError(f"unable to apply docker endpoint options: unable to parse docker host `{host}`")
    if tls and host.partition("://")[0] not in ("unix", "npipe", "fd"):
        _check_tls_material(tls, config)
    return {"Host": host, "SkipTLSVerify": skip}, (tls or None)


def _check_tls_material(tls: dict[str, bytes], config: dict[str, str]) -> None:
    """docker refuses unusable TLS files when the context is created, not when used."""
    import ssl

    prefix = "invalid docker endpoint options: failed to retrieve context tls info: "
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if "ca.pem" in tls:
        try:
            ctx.load_verify_locations(cadata=tls["ca.pem"].decode("ascii", "replace"))
        except (ssl.SSLError, ValueError):
            raise ContextError(prefix + "ca.pem seems invalid") from None
    if "cert.pem" in tls and "key.pem" in tls:
        if b"-----BEGIN" not in tls["key.pem"]:
            raise ContextError("invalid docker endpoint options: no valid private key found")
        try:
            ctx.load_cert_chain(config["cert"], config["key"])
        except (ssl.SSLError, OSError) as e:
            raise ContextError(prefix + str(e)) from None


def _endpoint_or_fail(store: StoreWithDefault, config: dict[str, str]) -> tuple[dict[str, Any], dict[str, bytes] | None]:
    try:
        return docker_endpoint(store, config)
    except ContextError as e:
        raise StatusError(f"unable to create docker endpoint config: {e}", 1) from None


# -- create / update ------------------------------------------------------------------------------


@group.command(
    "create",
    "Create a context",
    "[OPTIONS] CONTEXT",
    flags=[
        Flag("description", kind=STRING, help="Description of the context"),
        Flag("docker", kind=MAP, help="set the docker endpoint", metavar="stringToString"),
        Flag("from", kind=STRING, help="create context from a named context", dest="from_"),
    ],
    args=exactly(1),
    long="Create a context\n\n" + ENDPOINT_HELP,
    examples='$ berth context create my-context --description "some description" '
    '--docker "host=tcp://myserver:2376,ca=~/ca-file,cert=~/cert-file,key=~/key-file"',
)
def create(cli: Any, opts: Any, args: list[str]) -> int:
    name = args[0]
    store = cli.context_store()
    try:
        validate_name(name)
    except ContextError as e:
        raise _fail(e) from None
    if store.store.exists(name):
        raise StatusError(f'context "{name}" already exists', 1)
    docker_given = opts.changed("docker")
    if opts.from_ or not docker_given:
        if docker_given and opts.docker:
            raise StatusError("cannot use --docker flag when --from is set", 1)
        _create_from(cli, store, name, opts.from_ or cli.current_context, opts.description)
    else:
        ep, tls = _endpoint_or_fail(store, opts.docker)
        ctx = Context(name=name, metadata={}, endpoints={DOCKER_ENDPOINT: ep})
        ctx.description = opts.description
        store.store.create_or_update(ctx)
        store.store.reset_tls(name, {DOCKER_ENDPOINT: tls} if tls else None)
    cli.out.write(name + "\n")
    cli.err.write(f'Successfully created context "{name}"\n')
    return 0


def _create_from(cli: Any, store: StoreWithDefault, name: str, source: str, description: str) -> None:
    """docker's createFromExistingContext (export + import): metadata and TLS files."""
    try:
        src = store.get(source)
        tls = {ep: store.get_tls_data(source, ep) for ep in store.list_tls_files(source)}
    except ContextError as e:
        raise _fail(e) from None
    ctx = Context(name=name, metadata=dict(src.metadata), endpoints={k: (dict(v) if isinstance(v, dict) else v) for k, v in src.endpoints.items()})
    if description:
        ctx.description = description
    store.store.create_or_update(ctx)
    store.store.reset_tls(name, {ep: files for ep, files in tls.items() if files})


@group.command(
    "update",
    "Update a context",
    "[OPTIONS] CONTEXT",
    flags=[
        Flag("description", kind=STRING, help="Description of the context"),
        Flag("docker", kind=MAP, help="set the docker endpoint", metavar="stringToString"),
    ],
    args=exactly(1),
    long="Update a context\n\n" + ENDPOINT_HELP,
)
def update(cli: Any, opts: Any, args: list[str]) -> int:
    name = args[0]
    store = cli.context_store()
    try:
        validate_name(name)
        ctx = store.store.get(name)
    except ContextError as e:
        raise _fail(e) from None
    if opts.description:
        ctx.description = opts.description
    tls_reset = None
    if opts.changed("docker"):
        ep, tls = _endpoint_or_fail(store, opts.docker)
        ctx.endpoints[DOCKER_ENDPOINT] = ep
        tls_reset = (tls,)
    store.store.create_or_update(ctx)
    if tls_reset is not None:
        store.store.reset_endpoint_tls(name, DOCKER_ENDPOINT, tls_reset[0])
    cli.out.write(name + "\n")
    cli.err.write(f'Successfully updated context "{name}"\n')
    return 0


# -- use / rm / show ---------------------------------------------------------------------------------


@group.command("use", "Set the current berth context", "CONTEXT", args=exactly(1))
def use(cli: Any, opts: Any, args: list[str]) -> int:
    name = args[0]
    value = ""
    if name != DEFAULT_CONTEXT:
        try:
            validate_name(name)
            cli.context_store().store.get(name)
        except ContextError as e:
            raise _fail(e) from None
        value = name
    config = cli.config_file()
    if config.current_context != value:
        config.current_context = value
        config.save()
    cli.out.write(name + "\n")
    cli.err.write(f'Current context is now "{name}"\n')
    if name != DEFAULT_CONTEXT and os.environ.get("DOCKER_HOST"):
        cli.err.write(
            "Warning: DOCKER_HOST environment variable overrides the active context. "
            f'To use "{name}", either set the global --context flag, or unset DOCKER_HOST environment variable.\n'
        )
    return 0


@group.command(
    "rm",
    "Remove one or more contexts",
    "CONTEXT [CONTEXT...]",
    flags=[Flag("force", "f", BOOL, "Force the removal of a context in use")],
    args=at_least(1),
    aliases=("remove",),
)
def rm(cli: Any, opts: Any, args: list[str]) -> int:
    store = cli.context_store().store
    current = cli.current_context
    failures: list[str] = []
    for name in args:
        if name == DEFAULT_CONTEXT:
            failures.append('context "default" cannot be removed')
            continue
        if name == current:
            if not opts.force:
                failures.append(f'context "{name}" is in use, set -f flag to force remove')
                continue
            config = cli.config_file()
            config.current_context = ""
            config.save()
        if not opts.force and not store.exists(name):
            failures.append(f'context "{name}" does not exist')
            continue
        try:
            store.remove(name)
        except ContextError as e:
            failures.append(str(e))
            continue
        cli.out.write(name + "\n")
    if failures:
        raise StatusError("\n".join(failures), 1)
    return 0


@group.command("show", "Print the name of the current context", "", args=NO_ARGS)
def show(cli: Any, opts: Any, args: list[str]) -> int:
    cli.out.write(cli.current_context + "\n")
    return 0


# -- ls / inspect ----------------------------------------------------------------------------------


def ellipsis(text: str, width: int) -> str:
    """docker's formatter.Ellipsis: cut to a display width, ending in "…"."""
    from berth.cli.tabwriter import display_width

    if width <= 0:
        return ""
    if display_width(text) <= width:
        return text
    out, used = "", 0
    for ch in text:
        w = display_width(ch)
        if used + w > width - 1:
            break
        out += ch
        used += w
    return out + "…"


def context_rows(cli: Any) -> list[dict[str, Any]]:
    store = cli.context_store()
    current = cli.current_context
    rows: list[dict[str, Any]] = []
    found_current = False
    for ctx in store.list():
        is_current = ctx.name == current
        found_current = found_current or is_current
        error = ""
        ep = ctx.endpoints.get(DOCKER_ENDPOINT)
        if not isinstance(ep, dict):
            error = "cannot find docker endpoint in context"
        description = DEFAULT_DESCRIPTION if ctx.name == DEFAULT_CONTEXT else ctx.description
        rows.append(
            {
                "Name": ctx.name,
                "Current": is_current,
                "Description": description,
                "DockerEndpoint": ctx.host,
                "Error": ellipsis(error, MAX_ERROR_WIDTH),
            }
        )
    if not found_current:
        error = ""
        try:
            store.get(current)
        except ContextError as e:
            error = str(e)
        rows.append({"Name": current, "Current": True, "Description": "", "DockerEndpoint": "", "Error": ellipsis(error, MAX_ERROR_WIDTH)})
    from berth.client.contexts import natural_key

    rows.sort(key=lambda r: natural_key(r["Name"]))
    return rows


@group.command(
    "ls",
    "List contexts",
    flags=[
        Flag("format", kind=STRING, help=FORMAT_HELP),
        Flag("quiet", "q", BOOL, "Only show context names"),
    ],
    args=NO_ARGS,
    aliases=("list",),
)
def ls(cli: Any, opts: Any, args: list[str]) -> int:
    from berth.cli.format import ListFormatter

    try:
        rows = context_rows(cli)
    except ContextError as e:
        raise _fail(e) from None
    formatter = ListFormatter(
        opts.format, default_table=TABLE_FORMAT, headers=HEADERS, quiet=opts.quiet, quiet_format="{{.Name}}"
    )
    formatter.write(cli.out, rows)
    if os.environ.get("DOCKER_HOST"):
        cli.err.write(
            "Warning: DOCKER_HOST environment variable overrides the active context. "
            "To use a context, either set the global --context flag, or unset DOCKER_HOST environment variable.\n"
        )
    return 0


def inspect_object(store: StoreWithDefault, name: str) -> dict[str, Any]:
    """docker's contextWithTLSListing: metadata + TLS file listing + storage paths."""
    ctx = store.get(name)
    obj = ctx.to_json()
    obj["TLSMaterial"] = store.list_tls_files(name)
    obj["Storage"] = store.storage_info(name)
    return obj


@group.command(
    "inspect",
    "Display detailed information on one or more contexts",
    "[OPTIONS] [CONTEXT] [CONTEXT...]",
    flags=[Flag("format", "f", STRING, INSPECT_FORMAT_HELP)],
)
def inspect(cli: Any, opts: Any, args: list[str]) -> int:
    from berth.cli.format import FormatError, inspect_write

    refs = args or [cli.current_context]
    store = cli.context_store()
    try:
        failures = inspect_write(cli.out, refs, opts.format, lambda ref: inspect_object(store, ref))
    except FormatError as e:
        raise StatusError(e.message, 64) from None
    if failures:
        raise StatusError("\n".join(failures), 1)
    return 0

