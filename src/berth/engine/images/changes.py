"""`--change` instructions of import and commit ("CMD [...]", "ENV a=b", ...). Pure."""

from __future__ import annotations

import json
import shlex
from typing import Any

from berth.errors import InvalidParameter

ALLOWED = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "HEALTHCHECK", "LABEL", "ONBUILD",
           "STOPSIGNAL", "USER", "VOLUME", "WORKDIR")


def _json_or_shell(rest: str) -> list[str]:
    text = rest.strip()
    if text.startswith("["):
        try:
            value = json.loads(text)
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return value
        except ValueError:
            pass
    return ["/bin/sh", "-c", text]


def _pairs(rest: str, instruction: str) -> dict[str, str]:
    words = shlex.split(rest)
    if len(words) >= 1 and "=" not in words[0]:
        # Legacy form: ENV key value with spaces
        if len(words) < 2 and instruction == "ENV":
            raise InvalidParameter(f"{instruction} must have two arguments")
        key, _, value = rest.strip().partition(" ")
        return {key: value.strip()}
    result = {}
    for word in words:
        key, eq, value = word.partition("=")
        if not eq:
            raise InvalidParameter(f"{instruction} names can not be blank")
        result[key] = value
    return result


def apply_changes(config: dict[str, Any], changes: list[str]) -> dict[str, Any]:
    config = dict(config)
    for change in changes:
        change = change.strip()
        if not change:
            continue
        instruction, _, rest = change.partition(" ")
        instruction = instruction.upper()
        if instruction not in ALLOWED:
            raise InvalidParameter(f"{instruction.lower()} is not a valid change command")
        if instruction in ("CMD", "ENTRYPOINT"):
            config["Cmd" if instruction == "CMD" else "Entrypoint"] = _json_or_shell(rest)
        elif instruction == "ENV":
            env = list(config.get("Env") or [])
            for key, value in _pairs(rest, "ENV").items():
                env = [e for e in env if e.split("=", 1)[0] != key] + [f"{key}={value}"]
            config["Env"] = env
        elif instruction == "LABEL":
            labels = dict(config.get("Labels") or {})
            labels.update(_pairs(rest, "LABEL"))
            config["Labels"] = labels
        elif instruction == "EXPOSE":
            ports = dict(config.get("ExposedPorts") or {})
            for port in rest.split():
                ports[port if "/" in port else port + "/tcp"] = {}
            config["ExposedPorts"] = ports
        elif instruction == "VOLUME":
            volumes = dict(config.get("Volumes") or {})
            for path in _json_or_list(rest):
                volumes[path] = {}
            config["Volumes"] = volumes
        elif instruction == "WORKDIR":
            config["WorkingDir"] = rest.strip()
        elif instruction == "USER":
            config["User"] = rest.strip()
        elif instruction == "STOPSIGNAL":
            config["StopSignal"] = rest.strip()
        elif instruction == "ONBUILD":
            config["OnBuild"] = list(config.get("OnBuild") or []) + [rest.strip()]
        elif instruction == "HEALTHCHECK":
            config["Healthcheck"] = _healthcheck(rest)
    return config


def _json_or_list(rest: str) -> list[str]:
    text = rest.strip()
    if text.startswith("["):
        try:
            return list(json.loads(text))
        except ValueError:
            pass
    return text.split()


def _healthcheck(rest: str) -> dict[str, Any]:
    text = rest.strip()
    if text.upper() == "NONE":
        return {"Test": ["NONE"]}
    words = text.split(None, 1)
    if not words or words[0].upper() != "CMD":
        raise InvalidParameter("Unknown type in HEALTHCHECK (try CMD)")
    command = _json_or_shell(words[1] if len(words) > 1 else "")
    test = ["CMD"] + command if text.split(None, 1)[1].lstrip().startswith("[") \
        else ["CMD-SHELL", " ".join(command[2:])]
    return {"Test": test}
