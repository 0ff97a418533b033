"""Pulling and pushing: the daemon does the registry work; the CLI sends the reference and
credentials and renders the progress stream (docker's jsonmessage)."""

from __future__ import annotations

from typing import Any, TextIO

from berth.cli.command import StatusError


def _ref_parts(image: str) -> tuple[Any, str, str]:
    """(parsed reference, fromImage name, tag-or-digest), as the Go client computes them."""
    from berth.distribution import reference

    try:
        ref = reference.parse_normalized_named(image)
    except reference.ReferenceError as e:
        raise StatusError(str(e), 1) from None
    if ref.digest is not None:
        tag = ref.digest
    else:
        tag = reference.tag_name_only(ref).tag or ""
    return ref, ref.name, tag


def auth_for(cli: Any, ref: Any) -> str:
    from berth.cli.registryauth import encode_auth

    return encode_auth(cli.config_file().data, ref.domain)


def render_progress(cli: Any, resp: Any, out: TextIO | None, aux: Any = None) -> None:
    """Show a progress stream on ``out`` (None: consume it silently; errors still count)."""
    from berth.cli.jsonmessage import display_stream
    from berth.cli.terminal import is_terminal, winsize

    sink: Any = out
    if out is None:
        import io

        sink = io.StringIO()
    terminal = out is not None and is_terminal(out)
    width = winsize(out)[1] if terminal else 200
    try:
        display_stream(resp.iter_json(raise_on_error=False), sink, terminal=terminal, width=width or 200, aux=aux)
    finally:
        resp.close()


def pull_reference(cli: Any, image: str, *, platform: str = "", out: TextIO | None, all_tags: bool = False) -> None:
    ref, name, tag = _ref_parts(image)
    client = cli.client()
    resp = client.pull_stream(name, "" if all_tags else tag, platform=platform, auth=auth_for(cli, ref))
    render_progress(cli, resp, out)
