"""What each command's arguments and flag values complete to (docker's ValidArgsFunction and
RegisterFlagCompletionFunc, gathered in one table).

``ARGS`` maps (group module, command) to the completer of its positional arguments; a
command not listed completes files when it takes arguments, nothing otherwise (a unit test
keeps every command listed). ``FLAG_VALUES`` gives a flag's values by its name, for every
command that has the flag; ``COMMAND_FLAG_VALUES`` overrides it for one command. A flag
with a value and no completer takes a free value (``--format``, ``--name``): no candidates
and no files.

As docker's: container commands complete container names (``DOCKER_COMPLETION_SHOW_CONTAINER_IDS=yes``
adds IDs; a word that is no name's start but some IDs' completes to those IDs), the ones for
running containers (exec, stop, attach, ...) only those, ``start`` stopped ones, ``unpause``
paused ones, ``rm`` stopped ones unless ``--force`` is given; image commands and ``run`` or
``create`` local image references; network and volume commands their names; context
commands the context names. Names already given are not offered again.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Mapping

from berth.cli.completion.engine import DEFAULT, FILTER_DIRS, NO_FILE, NO_SPACE, Completer, Reply, Request

# -- building blocks ------------------------------------------------------------------------------


def fixed(*values: str, directive: int = NO_FILE) -> Completer:
    return lambda req: Reply(list(values), directive)


def nothing(req: Request) -> Reply:
    return Reply([], NO_FILE)


def files(req: Request) -> Reply:
    return Reply([], DEFAULT)


def dirs(req: Request) -> Reply:
    return Reply([], FILTER_DIRS)


def positional(*completers: Completer, rest: Completer = nothing) -> Completer:
    """The n-th argument completes with the n-th completer; the ones after with ``rest``."""

    def complete(req: Request) -> Reply:
        n = len(req.args)
        return completers[n](req) if n < len(completers) else rest(req)

    return complete


def _unique(req: Request, names: list[str]) -> list[str]:
    given = set(req.args)
    return [n for n in names if n not in given]


def containers(all: bool = False, where: Callable[[Request, dict], bool] | None = None) -> Completer:
    """Container names (running ones unless ``all``), those ``where`` accepts."""

    def complete(req: Request) -> Reply:
        return Reply(_unique(req, container_names(req, all, where)), NO_FILE)

    return complete


def container_names(req: Request, all: bool, where: Callable[[Request, dict], bool] | None = None) -> list[str]:
    show_ids = os.environ.get("DOCKER_COMPLETION_SHOW_CONTAINER_IDS") == "yes"
    out: list[str] = []
    ids: list[str] = []
    for ctr in req.names.containers(all=all):
        if where is not None and not where(req, ctr):
            continue
        cid = ctr.get("Id") or ""
        ids.append(cid)
        if show_ids:
            out.append(cid)
        for name in ctr.get("Names") or []:
            if len(name) <= 1 or "/" in name[1:]:
                continue  # a legacy link name: /other/alias
            out.append(name[1:] if name.startswith("/") else name)
    if req.word and not show_ids and not any(n.startswith(req.word) for n in out):
        return [i for i in ids if i.startswith(req.word)]
    return out


def _state(*states: str) -> Callable[[Request, dict], bool]:
    return lambda req, ctr: ctr.get("State") in states


def _not_paused(req: Request, ctr: dict) -> bool:
    return ctr.get("State") != "paused"


def _removable(req: Request, ctr: dict) -> bool:
    """``rm``: stopped containers, or any with ``--force``."""
    force = (req.flags.get("force") or ["false"])[-1]
    return force in ("1", "t", "T", "true", "TRUE", "True") or ctr.get("State") in ("exited", "created", "dead")


def image_names(req: Request) -> list[str]:
    out = []
    for image in req.names.images():
        out += [t for t in image.get("RepoTags") or [] if not t.startswith("<none>")]
    return out


def images(req: Request) -> Reply:
    return Reply(_unique(req, image_names(req)), NO_FILE)


def network_names(req: Request) -> list[str]:
    return [n.get("Name", "") for n in req.names.networks() if n.get("Name")]


def networks(req: Request) -> Reply:
    return Reply(_unique(req, network_names(req)), NO_FILE)


def volume_names(req: Request) -> list[str]:
    return [v.get("Name", "") for v in req.names.volumes() if v.get("Name")]


def volumes(req: Request) -> Reply:
    return Reply(_unique(req, volume_names(req)), NO_FILE)


def contexts(req: Request) -> Reply:
    names, current = req.names.contexts()
    return Reply([n + "\tcurrent" if n == current else n for n in _unique(req, names)], NO_FILE)


def _connected(network: str, ctr: dict) -> bool:
    return network in ((ctr.get("NetworkSettings") or {}).get("Networks") or {})


def network_containers(connected: bool) -> Completer:
    """``network connect|disconnect NETWORK CONTAINER``: the containers not on (connect) or
    on (disconnect) the network."""
    return containers(all=True, where=lambda req, ctr: _connected(req.args[0], ctr) == connected)


def filters(keys: Mapping[str, Completer | None]) -> Completer:
    """``--filter key=value``: the keys (with ``=``), then a key's values."""

    def complete(req: Request) -> Reply:
        key, eq, value = req.word.partition("=")
        if not eq or key not in keys:
            return Reply([k + "=" for k in keys], NO_SPACE | NO_FILE)
        values = keys[key]
        if values is None:
            return Reply([], NO_FILE)
        reply = values(req._replace(word=value, args=[]))
        return Reply([f"{key}={c}" for c in reply.candidates], NO_FILE)

    return complete


def _prefixed(prefix: str, names: Callable[[Request], list[str]]) -> Completer:
    return lambda req: Reply([prefix + n for n in names(req)], NO_FILE)


def _names(names: Callable[[Request], list[str]]) -> Completer:
    return lambda req: Reply(names(req), NO_FILE)


def _all_containers(req: Request) -> list[str]:
    return container_names(req, True)


# -- closed sets ----------------------------------------------------------------------------------

RESTART_POLICIES = ("no", "always", "on-failure", "unless-stopped")
PULL_POLICIES = ("always", "missing", "never")
LOG_LEVELS = ("debug", "info", "warn", "error", "fatal", "panic")
# moby/sys/capability's known capabilities, as docker completes them
CAPABILITIES = ("ALL",) + tuple(
    "CAP_" + c
    for c in (
        "CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP LINUX_IMMUTABLE "
        "NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE SYS_RAWIO "
        "SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE SYS_RESOURCE SYS_TIME "
        "SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP MAC_OVERRIDE MAC_ADMIN SYSLOG "
        "WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF CHECKPOINT_RESTORE"
    ).split()
)
# moby/sys/signal's names on Linux
SIGNALS = tuple(
    "ABRT ALRM BUS CHLD CLD CONT FPE HUP ILL INT IO IOT KILL PIPE POLL PROF PWR QUIT SEGV STKFLT "
    "STOP SYS TERM TRAP TSTP TTIN TTOU URG USR1 USR2 VTALRM WINCH XCPU XFSZ".split()
) + ("RTMIN",) + tuple(f"RTMIN+{i}" for i in range(1, 16)) + tuple(f"RTMAX-{i}" for i in range(14, 0, -1)) + ("RTMAX",)
PLATFORMS = (
    "linux/386", "linux/amd64", "linux/arm", "linux/arm/v5", "linux/arm/v6", "linux/arm/v7", "linux/arm64",
    "linux/arm64/v8", "linux/ppc64le", "linux/s390x", "linux/riscv64", "windows/amd64", "wasip1/wasm",
)
ULIMITS = (
    "as chroot core cpu data fsize locks maxlogins maxsyslogins memlock msgqueue nice nofile nproc "
    "priority rss rtprio sigpending stack"
).split()
# the log drivers built into dockerd and their options (for a daemon that cannot be asked)
LOG_DRIVER_OPTIONS: dict[str, tuple[str, ...]] = {
    "awslogs": ("max-buffer-size", "mode", "awslogs-create-group", "awslogs-credentials-endpoint",
                "awslogs-datetime-format", "awslogs-group", "awslogs-multiline-pattern", "awslogs-region",
                "awslogs-stream", "tag"),
    "fluentd": ("max-buffer-size", "mode", "env", "env-regex", "labels", "fluentd-address", "fluentd-async",
                "fluentd-buffer-limit", "fluentd-request-ack", "fluentd-retry-wait", "fluentd-max-retries",
                "fluentd-sub-second-precision", "fluentd-write-timeout", "tag"),
    "gcplogs": ("max-buffer-size", "mode", "env", "env-regex", "labels", "gcp-log-cmd", "gcp-meta-id",
                "gcp-meta-name", "gcp-meta-zone", "gcp-project"),
    "gelf": ("max-buffer-size", "mode", "env", "env-regex", "labels", "gelf-address", "gelf-compression-level",
             "gelf-compression-type", "gelf-tcp-max-reconnect", "gelf-tcp-reconnect-delay", "tag"),
    "journald": ("max-buffer-size", "mode", "env", "env-regex", "labels", "tag"),
    "json-file": ("max-buffer-size", "mode", "env", "env-regex", "labels", "compress", "max-file", "max-size"),
    "local": ("max-buffer-size", "mode", "compress", "max-file", "max-size"),
    "none": (),
    "splunk": ("max-buffer-size", "mode", "env", "env-regex", "labels", "splunk-caname", "splunk-capath",
               "splunk-format", "splunk-gzip", "splunk-gzip-level", "splunk-index", "splunk-insecureskipverify",
               "splunk-source", "splunk-sourcetype", "splunk-token", "splunk-url", "splunk-verify-connection", "tag"),
    "syslog": ("max-buffer-size", "mode", "env", "env-regex", "labels", "syslog-address", "syslog-facility",
               "syslog-format", "syslog-tls-ca-cert", "syslog-tls-cert", "syslog-tls-key", "syslog-tls-skip-verify",
               "tag"),
}
EVENT_TYPES = ("builder", "config", "container", "daemon", "image", "network", "node", "plugin", "secret",
               "service", "volume")
EVENT_ACTIONS = (
    "create start restart stop checkpoint pause unpause attach detach resize update rename kill die oom destroy "
    "remove commit top copy archive-path extract-to-dir export import save load tag untag push pull prune delete "
    "enable disable connect disconnect reload mount unmount exec_create exec_start exec_die exec_detach "
    "health_status"
).split()
CONTAINER_STATES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")


# -- flag values ----------------------------------------------------------------------------------


def env_names(req: Request) -> Reply:
    """``--env``: the names of this shell's variables (``-e NAME`` passes its value; the
    values themselves are never shown)."""
    return Reply(sorted(os.environ), NO_FILE)


def _container_or(*modes: str) -> Completer:
    """``--ipc``/``--pid``: the modes, ``container:<name>``."""

    def complete(req: Request) -> Reply:
        if req.word.startswith("container:"):
            names = container_names(req._replace(word=req.word[len("container:") :]), True)
            return Reply(["container:" + n for n in names], NO_FILE)
        if req.word and "container:".startswith(req.word):
            return Reply(["container:"], NO_SPACE)
        return Reply(["container:", *modes], NO_FILE)

    return complete


def security_opts(req: Request) -> Reply:
    """``--security-opt``: docker's partly composite completion."""
    word = req.word
    if word and "apparmor=".startswith(word):
        return Reply(["apparmor="], NO_SPACE)
    if word and "label".startswith(word):
        return Reply(["label="], NO_SPACE)
    if word.startswith("label="):
        if word.startswith("label=d"):
            return Reply(["label=disable"], NO_FILE)
        return Reply(["label=" + v for v in ("disable", "level:", "role:", "type:", "user:")], NO_SPACE | NO_FILE)
    if len(word) > 1 and "seccomp".startswith(word):  # a lone "s" is for systempaths too
        return Reply(["seccomp="], NO_SPACE)
    if word.startswith("seccomp="):
        return Reply(["seccomp=unconfined"], NO_FILE)
    return Reply(["apparmor=", "label=", "no-new-privileges", "seccomp=", "systempaths=unconfined"], NO_FILE)


def log_drivers(req: Request) -> Reply:
    info = req.names.info()
    drivers = ((info or {}).get("Plugins") or {}).get("Log") if info else None
    return Reply(list(drivers or sorted(LOG_DRIVER_OPTIONS)), NO_FILE)


def log_opts(req: Request) -> Reply:
    driver = (req.flags.get("log-driver") or [""])[-1]
    if driver in LOG_DRIVER_OPTIONS:
        return Reply([o + "=" for o in LOG_DRIVER_OPTIONS[driver]], NO_SPACE | NO_FILE)
    every = dict.fromkeys(o for opts in LOG_DRIVER_OPTIONS.values() for o in opts)
    return Reply([o + "=" for o in every], NO_SPACE | NO_FILE)


def volume_drivers(req: Request) -> Reply:
    info = req.names.info()
    drivers = ((info or {}).get("Plugins") or {}).get("Volume") if info else None
    return Reply(list(drivers or ["local"]), NO_FILE)


def links(req: Request) -> Reply:
    """``--link name:alias``: the containers, then free."""
    if ":" in req.word:
        return Reply([], NO_FILE)
    return Reply([n + ":" for n in _all_containers(req)], NO_SPACE | NO_FILE)


def inspect_types(req: Request) -> Reply:
    from berth.cli.commands.system import INSPECT_TYPES

    return Reply(list(INSPECT_TYPES), NO_FILE)


def any_object(req: Request) -> Reply:
    """``berth inspect``: the names of the --type given, else containers and images."""
    kind = (req.flags.get("type") or [""])[-1]
    if kind == "container":
        names = _all_containers(req)
    elif kind == "image":
        names = image_names(req)
    elif kind == "network":
        names = network_names(req)
    elif kind == "volume":
        names = volume_names(req)
    elif kind:
        names = []
    else:
        names = _all_containers(req) + image_names(req)
    return Reply(_unique(req, names), NO_FILE)


def daemon_names(req: Request) -> list[str]:
    info = req.names.info() or {}
    return [v for v in (info.get("Name"), info.get("ID")) if v]


PS_FILTERS = filters({
    "ancestor": _names(image_names),
    "before": _names(_all_containers),
    "expose": None,
    "exited": None,
    "health": fixed("starting", "healthy", "unhealthy", "none"),
    "id": None,
    "isolation": fixed("default", "process", "hyperv"),
    "is-task": fixed("true", "false"),
    "label": None,
    "name": _names(_all_containers),
    "network": _names(network_names),
    "publish": None,
    "since": _names(_all_containers),
    "status": fixed(*CONTAINER_STATES),
    "volume": _names(volume_names),
})
IMAGE_FILTERS = filters({
    "before": _names(image_names),
    "dangling": fixed("true", "false"),
    "label": None,
    "reference": _names(image_names),
    "since": _names(image_names),
    "until": None,
})
NETWORK_FILTERS = filters({
    "driver": fixed("bridge", "host", "null", "macvlan", "ipvlan", "overlay"),
    "id": None,
    "label": None,
    "name": _names(network_names),
    "scope": fixed("local", "swarm", "global"),
    "type": fixed("builtin", "custom"),
})
VOLUME_FILTERS = filters({
    "dangling": fixed("true", "false"),
    "driver": volume_drivers,
    "label": None,
    "name": _names(volume_names),
})
PRUNE_FILTERS = filters({"label": None, "label!": None, "until": None})
EVENT_FILTERS = filters({
    "container": _names(_all_containers),
    "daemon": _names(daemon_names),
    "event": fixed(*EVENT_ACTIONS),
    "image": _names(image_names),
    "label": None,
    "network": _names(network_names),
    "node": None,
    "scope": fixed("local", "swarm"),
    "type": fixed(*EVENT_TYPES),
    "volume": _names(volume_names),
})

# A flag's values wherever it appears (a bool flag never gets here).
FLAG_VALUES: dict[str, Completer] = {
    "attach": fixed("stderr", "stdin", "stdout"),
    "cap-add": fixed(*CAPABILITIES),
    "cap-drop": fixed(*CAPABILITIES),
    "cgroupns": fixed("host", "private"),
    "cidfile": files,
    "detach-keys": fixed("ctrl-", directive=NO_SPACE),
    "device": files,
    "env": env_names,
    "env-file": files,
    "input": files,
    "ipc": _container_or("host", "none", "private", "shareable"),
    "label-file": files,
    "link": links,
    "log-driver": log_drivers,
    "log-opt": log_opts,
    "network": networks,
    "output": files,
    "pid": _container_or("host"),
    "platform": fixed(*PLATFORMS),
    "pull": fixed(*PULL_POLICIES),
    "restart": fixed(*RESTART_POLICIES),
    "security-opt": security_opts,
    "signal": fixed(*SIGNALS),
    "stop-signal": fixed(*SIGNALS),
    "storage-opt": fixed("size=", directive=NO_SPACE),
    "type": inspect_types,
    "ulimit": fixed(*(u + "=" for u in ULIMITS), directive=NO_SPACE),
    "userns": fixed("host"),
    "uts": fixed("host"),
    "volume": files,
    "volume-driver": volume_drivers,
    "volumes-from": containers(all=True),
}

COMMAND_FLAG_VALUES: dict[tuple[str, str], dict[str, Completer]] = {
    ("container", "ls"): {"filter": PS_FILTERS},
    ("image", "ls"): {"filter": IMAGE_FILTERS},
    ("network", "ls"): {"filter": NETWORK_FILTERS},
    ("volume", "ls"): {"filter": VOLUME_FILTERS},
    ("container", "prune"): {"filter": PRUNE_FILTERS},
    ("image", "prune"): {"filter": PRUNE_FILTERS},
    ("network", "prune"): {"filter": PRUNE_FILTERS},
    ("volume", "prune"): {"filter": PRUNE_FILTERS},
    ("system", "prune"): {"filter": PRUNE_FILTERS},
    ("system", "events"): {"filter": EVENT_FILTERS},
    ("volume", "create"): {"driver": volume_drivers},
}

GLOBAL_FLAG_VALUES: dict[str, Completer] = {
    "config": dirs,
    "context": contexts,
    "host": fixed("unix://", "tcp://", "ssh://", directive=NO_SPACE | NO_FILE),
    "log-level": fixed(*LOG_LEVELS),
    "tlscacert": files,
    "tlscert": files,
    "tlskey": files,
}

# -- arguments ------------------------------------------------------------------------------------

RUNNING = containers()
RUNNING_UNPAUSED = containers(where=_not_paused)
ALL = containers(all=True)

ARGS: dict[tuple[str, str], Completer] = {
    ("container", "attach"): positional(RUNNING_UNPAUSED),
    ("container", "commit"): positional(ALL),
    ("container", "cp"): files,
    ("container", "create"): positional(images),
    ("container", "diff"): positional(ALL),
    ("container", "exec"): positional(RUNNING_UNPAUSED),
    ("container", "export"): positional(ALL),
    ("container", "inspect"): ALL,
    ("container", "kill"): RUNNING,
    ("container", "logs"): positional(ALL),
    ("container", "ls"): nothing,
    ("container", "pause"): RUNNING_UNPAUSED,
    ("container", "port"): positional(RUNNING),
    ("container", "prune"): nothing,
    ("container", "rename"): positional(ALL),
    ("container", "restart"): ALL,
    ("container", "rm"): containers(all=True, where=_removable),
    ("container", "run"): positional(images),
    ("container", "start"): containers(all=True, where=_state("exited", "created")),
    ("container", "stats"): RUNNING,
    ("container", "stop"): RUNNING,
    ("container", "top"): positional(RUNNING),
    ("container", "unpause"): containers(where=_state("paused")),
    ("container", "update"): ALL,
    ("container", "wait"): RUNNING,
    ("context", "create"): nothing,
    ("context", "inspect"): contexts,
    ("context", "ls"): nothing,
    ("context", "rm"): contexts,
    ("context", "show"): nothing,
    ("context", "update"): positional(contexts),
    ("context", "use"): positional(contexts),
    ("builder", "build"): positional(dirs),
    ("builder", "prune"): nothing,
    ("image", "build"): positional(dirs),
    ("image", "history"): positional(images),
    ("image", "import"): positional(files),
    ("image", "inspect"): images,
    ("image", "load"): nothing,
    ("image", "ls"): positional(images),
    ("image", "prune"): nothing,
    ("image", "pull"): nothing,
    ("image", "push"): positional(images),
    ("image", "rm"): images,
    ("image", "save"): images,
    ("image", "tag"): positional(images, images),
    ("network", "connect"): positional(networks, network_containers(connected=False)),
    ("network", "create"): nothing,
    ("network", "disconnect"): positional(networks, network_containers(connected=True)),
    ("network", "inspect"): networks,
    ("network", "ls"): nothing,
    ("network", "prune"): nothing,
    ("network", "rm"): networks,
    ("system", "df"): nothing,
    ("system", "dial-stdio"): nothing,
    ("system", "events"): nothing,
    ("system", "info"): nothing,
    ("system", "inspect"): any_object,
    ("system", "prune"): nothing,
    ("system", "version"): nothing,
    ("volume", "create"): nothing,
    ("volume", "inspect"): volumes,
    ("volume", "ls"): nothing,
    ("volume", "prune"): nothing,
    ("volume", "rm"): volumes,
    ("completion", "bash"): nothing,
    ("completion", "fish"): nothing,
    ("completion", "zsh"): nothing,
}


def args_rule(module: str, cmd: Any) -> Completer:
    rule = ARGS.get((module, cmd.name))
    if rule is not None:
        return rule
    return nothing if cmd.args.max == 0 else files


def flag_rule(module: str, command: str, flag: str) -> Completer | None:
    return COMMAND_FLAG_VALUES.get((module, command), {}).get(flag) or FLAG_VALUES.get(flag)


def global_flag_rule(flag: str) -> Completer | None:
    return GLOBAL_FLAG_VALUES.get(flag)
