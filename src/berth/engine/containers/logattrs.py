"""The extra attributes the json-file driver writes on each line (``"attrs"``), which
``docker logs --details`` shows: moby's ``logger.Info.ExtraAttributes`` (the ``labels``,
``labels-regex``, ``env`` and ``env-regex`` log options pick container labels and environment
variables) plus ``tag``, a Go template over the container (``{{.Name}}``, ``{{.ID}}``...).

Like dockerd, these are worked out when the container starts; a bad regex or template fails
the start. The regexes are Python's, which agree with Go's RE2 on the usual patterns.
"""

from __future__ import annotations

import re
import socket
from typing import TYPE_CHECKING, Any, Mapping

from berth.engine.ids import short_id
from berth.errors import InvalidParameter

if TYPE_CHECKING:
    from berth.engine.containers.record import Container


def log_attributes(container: "Container", log_opts: Mapping[str, str]) -> dict[str, str]:
    labels = dict(container.config.get("Labels") or {})
    env = _env_mapping(container.config.get("Env") or [])
    attrs: dict[str, str] = {}
    attrs.update(_listed(labels, log_opts.get("labels")))
    attrs.update(_matching(labels, log_opts.get("labels-regex")))
    attrs.update(_listed(env, log_opts.get("env")))
    attrs.update(_matching(env, log_opts.get("env-regex")))
    tag = _tag(container, log_opts.get("tag") or "")
    if tag:
        attrs["tag"] = tag
    return attrs


def _env_mapping(env: list[str]) -> dict[str, str]:
    pairs = (item.split("=", 1) for item in env)
    return {pair[0]: pair[1] for pair in pairs if len(pair) == 2}


def _listed(values: dict[str, str], keys: str | None) -> dict[str, str]:
    wanted = keys.split(",") if keys else []
    return {key: values[key] for key in wanted if key in values}


def _matching(values: dict[str, str], pattern: str | None) -> dict[str, str]:
    if not pattern:
        return {}
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise InvalidParameter(f"failed to initialize logging driver: error parsing regexp: "
                               f"{exc.msg}: `{pattern}`") from None
    return {key: value for key, value in values.items() if regex.search(key)}


def _tag(container: "Container", template: str) -> str:
    """moby's loggerutils.ParseLogTag with no default template (json-file's)."""
    if not template:
        return ""
    from berth.gotemplate import TemplateError, render

    try:
        return render(template, _template_data(container))
    except TemplateError as exc:
        raise InvalidParameter(f"failed to initialize logging driver: {exc}") from None


def _template_data(container: "Container") -> dict[str, Any]:
    """What a log tag template sees: moby's logger.Info fields and its methods."""
    image_id = container.image_id or ""
    return {
        "ID": short_id(container.id), "FullID": container.id,
        "Name": container.name, "ContainerName": "/" + container.name,
        "ContainerID": container.id,
        "ImageID": short_id(image_id), "ImageFullID": image_id, "ContainerImageID": image_id,
        "ImageName": container.image, "ContainerImageName": container.image,
        "Command": container.command_line(), "DaemonName": "docker",
        "Hostname": socket.gethostname(),
        "ContainerLabels": dict(container.config.get("Labels") or {}),
        "ContainerEnv": list(container.config.get("Env") or []),
    }
