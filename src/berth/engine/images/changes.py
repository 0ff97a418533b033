"""`--change` instructions of import and commit ("CMD [...]", "ENV a=b", ...). Pure.

moby runs the changes through its Dockerfile parser (BuildFromConfig): the lines are joined
with newlines, so continuations and comments work; each instruction must be one of the
commit commands; words are split and unquoted like the Dockerfile shell lexer, with
``$VAR``/``${VAR}`` expanded from the config's Env for the instructions Docker expands.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from berth.errors import InvalidParameter
from berth.timeutil import parse_duration_ns

ALLOWED = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "HEALTHCHECK", "LABEL", "ONBUILD",
           "STOPSIGNAL", "USER", "VOLUME", "WORKDIR")
_FLAG = re.compile(r"^--([a-zA-Z][a-zA-Z0-9-]*)(?:=(\S*))?(?:\s+|$)")
_HEALTH_FLAGS = ("interval", "timeout", "start-period", "start-interval", "retries")


# --- lines and words --------------------------------------------------------------------

def logical_lines(changes: list[str]) -> list[str]:
    """Join continuation lines (trailing backslash) and drop comments and blank lines."""
    lines: list[str] = []
    pending = ""
    for raw in "\n".join(changes).split("\n"):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append((pending + stripped).strip())
        pending = ""
    if pending.strip():
        lines.append(pending.strip())
    return lines


def split_words(text: str) -> list[str]:
    """Whitespace-separated words; quotes and escapes are kept (``_process`` removes them)."""
    words: list[str] = []
    word, quote, in_word, i = "", "", False, 0
    while i < len(text):
        ch = text[i]
        if quote:
            word += ch
            if ch == "\\" and quote == '"' and i + 1 < len(text):
                word += text[i + 1]
                i += 1
            elif ch == quote:
                quote = ""
        elif ch.isspace():
            if in_word:
                words.append(word)
                word, in_word = "", False
        else:
            in_word = True
            word += ch
            if ch in "'\"":
                quote = ch
            elif ch == "\\" and i + 1 < len(text):
                word += text[i + 1]
                i += 1
        i += 1
    if in_word:
        words.append(word)
    return words


def _lookup(env: dict[str, str], name: str) -> str | None:
    return env.get(name)


def process_word(word: str, env: dict[str, str]) -> str:
    """Remove quotes and escapes and expand variables (Dockerfile shell-lexer rules:
    nothing inside single quotes is special; ``\\$`` keeps a literal dollar)."""
    out: list[str] = []
    i, quote = 0, ""
    while i < len(word):
        ch = word[i]
        if quote == "'":
            if ch == "'":
                quote = ""
            else:
                out.append(ch)
            i += 1
            continue
        if ch == "\\" and i + 1 < len(word):
            nxt = word[i + 1]
            if quote == '"' and nxt not in '"\\$':
                out.append(ch)
            out.append(nxt)
            i += 2
            continue
        if ch in "'\"" and not quote:
            quote = ch
            i += 1
            continue
        if ch == '"' and quote == '"':
            quote = ""
            i += 1
            continue
        if ch == "$":
            value, i = _expand(word, i, env)
            out.append(value)
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _expand(word: str, i: int, env: dict[str, str]) -> tuple[str, int]:
    """``$NAME``, ``${NAME}``, ``${NAME:-default}``, ``${NAME:+alt}`` at ``word[i]``."""
    if i + 1 < len(word) and word[i + 1] == "{":
        end = word.find("}", i + 2)
        if end < 0:
            raise InvalidParameter(f"missing '}}' in '{word}'")
        body = word[i + 2:end]
        name, op, arg = body, "", ""
        for candidate in (":-", ":+", "-", "+"):
            pos = body.find(candidate)
            if pos > 0:
                name, op, arg = body[:pos], candidate, body[pos + len(candidate):]
                break
        value = _lookup(env, name)
        if op in (":-", "-"):
            use_default = value is None or (op == ":-" and value == "")
            return (process_word(arg, env) if use_default else value or ""), end + 1
        if op in (":+", "+"):
            use_alt = value is not None and (op == "+" or value != "")
            return (process_word(arg, env) if use_alt else ""), end + 1
        return value or "", end + 1
    match = re.match(r"[A-Za-z_][A-Za-z0-9_]*", word[i + 1:])
    if not match:
        return "$", i + 1
    return _lookup(env, match.group(0)) or "", i + 1 + match.end()


def _env_map(config: dict[str, Any]) -> dict[str, str]:
    env: dict[str, str] = {}
    for entry in config.get("Env") or []:
        key, _, value = entry.partition("=")
        env[key] = value
    return env


# --- argument shapes --------------------------------------------------------------------

def _json_array(rest: str) -> list[str] | None:
    text = rest.strip()
    if not text.startswith("["):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


def _command_line(rest: str) -> list[str]:
    """CMD/ENTRYPOINT: the JSON form as given, else the shell form through /bin/sh -c."""
    as_json = _json_array(rest)
    if as_json is not None:
        return as_json
    return ["/bin/sh", "-c", rest.strip()]


def _key_values(rest: str, instruction: str, env: dict[str, str]) -> list[tuple[str, str]]:
    """ENV/LABEL: ``name=value ...`` or the legacy ``name value with spaces``."""
    words = split_words(rest)
    if not words:
        raise InvalidParameter(f"{instruction} requires at least one argument")
    if "=" not in words[0]:
        parts = rest.strip().split(None, 1)
        if len(parts) < 2:
            raise InvalidParameter(f"{instruction} must have two arguments")
        name = process_word(parts[0], env)
        if not name:
            raise InvalidParameter(f"{instruction} names can not be blank")
        return [(name, process_word(parts[1], env))]
    pairs = []
    for word in words:
        if "=" not in word:
            raise InvalidParameter(f"Syntax error - can't find = in \"{word}\". "
                                   "Must be of the form: name=value")
        name, _, value = word.partition("=")
        name = process_word(name, env)
        if not name:
            raise InvalidParameter(f"{instruction} names can not be blank")
        pairs.append((name, process_word(value, env)))
    return pairs


def _single(rest: str, instruction: str, env: dict[str, str]) -> str:
    text = rest.strip()
    if not text:
        raise InvalidParameter(f"{instruction} requires exactly one argument")
    return process_word(text, env)


def _flags(rest: str, allowed: tuple[str, ...]) -> tuple[dict[str, str], str]:
    found: dict[str, str] = {}
    text = rest.strip()
    while text.startswith("--"):
        match = _FLAG.match(text)
        if not match:
            break
        name = match.group(1)
        if name not in allowed:
            raise InvalidParameter(f"Unknown flag: {name}")
        found[name] = match.group(2) or ""
        text = text[match.end():]
    return found, text


def _port_specs(words: list[str]) -> list[str]:
    ports: list[str] = []
    for word in words:
        port, _, proto = word.partition("/")
        proto = (proto or "tcp").lower()
        if proto not in ("tcp", "udp", "sctp"):
            raise InvalidParameter(f"invalid proto: {proto}")
        if ":" in port:
            port = port.rsplit(":", 1)[1]
        start, dash, end = port.partition("-")
        if not start.isdigit() or (dash and not end.isdigit()):
            raise InvalidParameter(f"invalid containerPort: {port}")
        first, last = int(start), int(end) if dash else int(start)
        if last < first or last > 65535:
            raise InvalidParameter(f"invalid range specified for container port: {port}")
        ports.extend(f"{p}/{proto}" for p in range(first, last + 1))
    return ports


def _duration(flags: dict[str, str], name: str) -> int:
    value = flags.get(name, "")
    if not value:
        return 0
    ns = parse_duration_ns(value)
    if ns is None:
        raise InvalidParameter(f'time: invalid duration "{value}"')
    if 0 < ns < 1_000_000:
        raise InvalidParameter(f'Interval "{name}" cannot be less than 1ms')
    return ns


def _healthcheck(rest: str) -> dict[str, Any]:
    flags, text = _flags(rest, _HEALTH_FLAGS)
    if not text:
        raise InvalidParameter("HEALTHCHECK requires at least one argument")
    kind, _, args = text.partition(" ")
    kind = kind.upper()
    if kind == "NONE":
        if args.strip():
            raise InvalidParameter("HEALTHCHECK NONE takes no arguments")
        return {"Test": ["NONE"]}
    if kind != "CMD":
        raise InvalidParameter(f'Unknown type "{kind}" in HEALTHCHECK (try CMD)')
    as_json = _json_array(args)
    if as_json is not None:
        test = ["CMD"] + as_json
    else:
        test = ["CMD-SHELL", args.strip()] if args.strip() else ["CMD-SHELL"]
    if len(test) == 1:
        raise InvalidParameter("Missing command after HEALTHCHECK CMD")
    health: dict[str, Any] = {"Test": test}
    for flag, key in (("interval", "Interval"), ("timeout", "Timeout"),
                      ("start-period", "StartPeriod"), ("start-interval", "StartInterval")):
        value = _duration(flags, flag)
        if value:
            health[key] = value
    if flags.get("retries"):
        try:
            retries = int(flags["retries"])
        except ValueError:
            raise InvalidParameter(f'strconv.ParseInt: parsing "{flags["retries"]}": invalid syntax') from None
        if retries < 0:
            raise InvalidParameter(f"--retries cannot be negative ({retries})")
        if retries:
            health["Retries"] = retries
    return health


def _workdir(current: str, requested: str) -> str:
    if not requested:
        raise InvalidParameter("cannot normalize nothing")
    if requested.startswith("/"):
        return requested
    parts: list[str] = []
    for comp in f"{current}/{requested}".split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            if parts:
                parts.pop()
            continue
        parts.append(comp)
    return "/" + "/".join(parts)


# --- applying ----------------------------------------------------------------------------

def validate(changes: list[str]) -> None:
    """Raise the error applying would raise, without a config (import checks early)."""
    apply_changes({}, changes)


def apply_changes(config: dict[str, Any], changes: list[str]) -> dict[str, Any]:
    """A copy of ``config`` with the instructions applied in order."""
    config = copy.deepcopy(config)
    cmd_set = False
    for line in logical_lines(changes):
        instruction, _, rest = line.partition(" ")
        upper = instruction.upper()
        if upper not in ALLOWED:
            raise InvalidParameter(f"{instruction.lower()} is not a valid change command")
        if rest.lstrip().startswith("--") and upper != "HEALTHCHECK":
            flag = rest.strip().split("=", 1)[0].split()[0][2:]
            raise InvalidParameter(f"Unknown flag: {flag}")
        env = _env_map(config)
        if upper == "CMD":
            if not rest.strip():
                raise InvalidParameter("CMD requires at least one argument")
            config["Cmd"] = _command_line(rest)
            cmd_set = True
        elif upper == "ENTRYPOINT":
            if not rest.strip():
                raise InvalidParameter("ENTRYPOINT requires at least one argument")
            config["Entrypoint"] = _command_line(rest)
            if not cmd_set:
                config["Cmd"] = None  # a new entrypoint drops the inherited command
        elif upper == "ENV":
            current = list(config.get("Env") or [])
            for key, value in _key_values(rest, "ENV", env):
                entry = f"{key}={value}"
                for index, existing in enumerate(current):
                    if existing.partition("=")[0] == key:
                        current[index] = entry
                        break
                else:
                    current.append(entry)
            config["Env"] = current
        elif upper == "LABEL":
            labels = dict(config.get("Labels") or {})
            labels.update(_key_values(rest, "LABEL", env))
            config["Labels"] = labels
        elif upper == "EXPOSE":
            words = [process_word(w, env) for w in split_words(rest)]
            if not words:
                raise InvalidParameter("EXPOSE requires at least one argument")
            ports = dict(config.get("ExposedPorts") or {})
            for port in _port_specs(words):
                ports[port] = {}
            config["ExposedPorts"] = ports
        elif upper == "VOLUME":
            listed = _json_array(rest)
            paths = listed if listed is not None else [process_word(w, env) for w in split_words(rest)]
            if not paths:
                raise InvalidParameter("VOLUME requires at least one argument")
            volumes = dict(config.get("Volumes") or {})
            for path in paths:
                if not path.strip():
                    raise InvalidParameter("VOLUME specified can not be an empty string")
                volumes[path.strip()] = {}
            config["Volumes"] = volumes
        elif upper == "WORKDIR":
            config["WorkingDir"] = _workdir(config.get("WorkingDir") or "", _single(rest, "WORKDIR", env))
        elif upper == "USER":
            config["User"] = _single(rest, "USER", env)
        elif upper == "STOPSIGNAL":
            config["StopSignal"] = _signal(_single(rest, "STOPSIGNAL", env))
        elif upper == "ONBUILD":
            config["OnBuild"] = list(config.get("OnBuild") or []) + [_onbuild(rest)]
        elif upper == "HEALTHCHECK":
            config["Healthcheck"] = _healthcheck(rest)
    return config


def _onbuild(rest: str) -> str:
    text = rest.strip()
    if not text:
        raise InvalidParameter("ONBUILD requires at least one argument")
    trigger = text.split(None, 1)[0].upper()
    if trigger == "ONBUILD":
        raise InvalidParameter("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if trigger in ("MAINTAINER", "FROM"):
        raise InvalidParameter(f"{trigger} isn't allowed as an ONBUILD trigger")
    return text


def _signal(value: str) -> str:
    from berth.runtime.spec import stop_signal
    stop_signal({"StopSignal": value})  # raises Docker's "Invalid signal: X"
    return value
