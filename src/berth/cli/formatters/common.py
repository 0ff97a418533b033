"""Helpers shared by the formatter contexts (docker's stringid and displayutils)."""

from __future__ import annotations

from berth.cli.tabwriter import display_width

FORMAT_HELP = (
    "Format output using a custom template:\n"
    "'table':            Print output in table format with column headers (default)\n"
    "'table TEMPLATE':   Print output in table format using the given Go template\n"
    "'json':             Print in JSON format\n"
    "'TEMPLATE':         Print output using the given Go template.\n"
    "Refer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates"
)
INSPECT_FORMAT_HELP = (
    "Format output using a custom template:\n"
    "'json':             Print in JSON format\n"
    "'TEMPLATE':         Print output using the given Go template.\n"
    "Refer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates"
)


def truncate_id(ident: str) -> str:
    """stringid.TruncateID: drop an "algo:" prefix, keep 12 characters."""
    if ":" in ident:
        ident = ident.split(":", 1)[1]
    return ident[:12]


def ellipsis(text: str, width: int) -> str:
    """docker's Ellipsis: cut to ``width`` display cells, the last one being "…"."""
    if width <= 0:
        return ""
    if width == 1:
        return text[:1]
    if text.isascii():
        return text if len(text) <= width else text[: width - 1] + "…"
    if display_width(text) <= width:
        return text
    out = ""
    used = 0
    for ch in text:
        w = display_width(ch)
        if used + w > width - 1:
            break
        out += ch
        used += w
    return out + "…"


def sorted_labels(labels: dict | None) -> str:
    """"k=v,k2=v2" (docker sorts for containers; for other objects Go's map order is
    random, sorted is one of its orders)."""
    if not labels:
        return ""
    return ",".join(sorted(f"{k}={v}" for k, v in labels.items()))
