"""``berth login``, ``berth logout`` and ``berth search``: the docker CLI's registry commands.

login checks the credentials through the daemon (``POST /auth``), then keeps them where
docker does (``config.json`` or a ``docker-credential-*`` helper); logout forgets them;
search asks the daemon (``GET /images/search``) and prints docker's table.
"""

from __future__ import annotations

from typing import Any

from berth.cli.command import Args, Group, StatusError, exactly
from berth.cli.flags import BOOL, INT, LIST, STRING, Flag
from berth.cli.opts.validate import parse_filter

group = Group("registry", "Registry commands")

UNENCRYPTED_WARNING = ("WARNING! Your credentials are stored unencrypted in '{path}'.\n"
                       "Configure a credential helper to remove this warning. See\n"
                       "https://docs.docker.com/go/credential-store/\n\n")


def _read_line(cli: Any, prompt: str, echo: bool = True) -> str:
    from berth.cli.terminal import is_terminal

    inp = cli.inp
    if not is_terminal(inp):
        raise StatusError("Error: Cannot perform an interactive login from a non TTY device", 1)
    if echo:
        cli.out.write(prompt)
        cli.out.flush()
        return inp.readline().rstrip("\n")
    import getpass

    return getpass.getpass(prompt)


@group.command(
    "login",
    "Authenticate to a registry",
    "[OPTIONS] [SERVER]",
    flags=[
        Flag("username", "u", STRING, "Username"),
        Flag("password", "p", STRING, "Password or Personal Access Token (PAT)"),
        Flag("password-stdin", kind=BOOL, help="Take the Password or Personal Access Token (PAT) from stdin"),
    ],
    args=Args(0, 1),
)
def login(cli: Any, opts: Any, args: list[str]) -> int:
    from berth.client import credentials as creds
    from berth.client.errors import APIError

    if opts.password and opts.password_stdin:
        raise StatusError("--password and --password-stdin are mutually exclusive", 1)
    password = opts.password or ""
    if opts.password:
        cli.err.write("WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n")
    if opts.password_stdin:
        if not opts.username:
            raise StatusError("Must provide --username with --password-stdin", 1)
        password = cli.inp.read().rstrip("\r\n")
    server = args[0] if args else creds.INDEX_SERVER
    key = creds.registry_key(server)
    config = cli.config_file()
    username = opts.username or ""
    identity = ""
    if not username and not password:
        stored = creds.get(config.data, key)
        if stored.username or stored.identity_token:
            try:
                answer = cli.client().post("/auth", json=creds.Credentials(
                    stored.username, stored.password, key, stored.identity_token).auth_config())
                cli.out.write(f"Authenticating with existing credentials... [Username: {stored.username}]\n")
                _stored_and_done(cli, config, key, stored, answer)
                return 0
            except APIError:
                pass
    if not username:
        username = _read_line(cli, "Username: ").strip()
    if not username:
        raise StatusError("Error: Non-null Username Required", 1)
    if not password:
        password = _read_line(cli, "Password: ", echo=False)
    if not password:
        raise StatusError("Error: Password Required", 1)
    entered = creds.Credentials(username, password, key, identity)
    try:
        answer = cli.client().post("/auth", json=entered.auth_config())
    except APIError as exc:
        raise StatusError(f"Error response from daemon: {exc.explanation if hasattr(exc, 'explanation') else exc}", 1) from None
    _stored_and_done(cli, config, key, entered, answer)
    return 0


def _stored_and_done(cli: Any, config: Any, key: str, entered: Any, answer: Any) -> None:
    from berth.client import credentials as creds

    token = (answer or {}).get("IdentityToken") or ""
    keep = creds.Credentials(entered.username, "" if token else entered.password, key,
                             token or entered.identity_token)
    try:
        in_file = creds.store(config.data, key, keep)
    except creds.CredentialsError as exc:
        raise StatusError(f"Error saving credentials: {exc}", 1) from None
    config.save()
    if in_file:
        cli.err.write(UNENCRYPTED_WARNING.format(path=config.path))
    cli.out.write(f"{(answer or {}).get('Status') or 'Login Succeeded'}\n")


@group.command(
    "logout",
    "Log out from a registry",
    "[SERVER]",
    args=Args(0, 1),
)
def logout(cli: Any, opts: Any, args: list[str]) -> int:
    from berth.client import credentials as creds

    server = args[0] if args else creds.INDEX_SERVER
    key = creds.registry_key(server)
    keys = [key]
    if key != creds.INDEX_SERVER:
        keys += [f"http://{key}", f"https://{key}"]
    cli.out.write(f"Removing login credentials for {key if key != creds.INDEX_SERVER else server}\n")
    config = cli.config_file()
    failures = {}
    for candidate in keys:
        try:
            creds.erase(config.data, candidate)
        except creds.CredentialsError as exc:
            failures[candidate] = exc
    if len(failures) == len(keys):
        cli.err.write("WARNING: could not erase credentials:\n")
        for name, exc in failures.items():
            cli.err.write(f"{name}: {exc}\n")
    config.save()
    return 0


@group.command(
    "search",
    "Search Docker Hub for images",
    "[OPTIONS] TERM",
    flags=[
        Flag("filter", "f", LIST, "Filter output based on conditions provided", metavar="filter",
             convert=parse_filter),
        Flag("format", kind=STRING, help="Pretty-print search using a Go template"),
        Flag("limit", kind=INT, help="Max number of search results", default=0),
        Flag("no-trunc", kind=BOOL, help="Don't truncate output"),
    ],
    args=exactly(1),
)
def search(cli: Any, opts: Any, args: list[str]) -> int:
    from berth.cli.opts.validate import filters_from
    from berth.cli.registryauth import encode_auth
    term = args[0]
    first, sep, _ = term.partition("/")
    domain = first if sep and ("." in first or ":" in first or first == "localhost") else "docker.io"
    params: dict[str, Any] = {"term": term, "limit": str(opts.limit) if opts.limit else None,
                              "filters": filters_from(opts.filter) or None}
    results = cli.client().get("/images/search", params=params,
                               headers={"X-Registry-Auth": encode_auth(cli.config_file().data, domain)}) or []
    rows = []
    for result in results:
        description = str(result.get("description") or "").replace("\n", " ")
        if not opts.no_trunc:
            description = _ellipsis(description, 45)
        rows.append({"Name": result.get("name", ""), "Description": description,
                     "StarCount": str(result.get("star_count", 0)),
                     "IsOfficial": "[OK]" if result.get("is_official") else "",
                     "IsAutomated": "[OK]" if result.get("is_automated") else ""})
    from berth.cli.format import ListFormatter

    formatter = ListFormatter(opts.format, default_table=SEARCH_TABLE, headers=SEARCH_HEADERS)
    formatter.write(cli.out, rows)
    return 0


SEARCH_TABLE = "table {{.Name}}\t{{.Description}}\t{{.StarCount}}\t{{.IsOfficial}}"
SEARCH_HEADERS = {"Name": "NAME", "Description": "DESCRIPTION", "StarCount": "STARS",
                  "IsOfficial": "OFFICIAL", "IsAutomated": "AUTOMATED"}


def _ellipsis(text: str, width: int) -> str:
    if len(text) <= width:
        return text
    return text[:width - 1] + "…"

