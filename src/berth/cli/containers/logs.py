"""``logs``: the container's log stream, split to stdout/stderr unless it has a TTY."""

from __future__ import annotations

from typing import Any

from berth.cli.command import StatusError


def logs_params(opts: Any) -> dict[str, Any]:
    """The query docker's client sends; --since/--until become unix timestamps here."""
    from berth.client.timestamps import get_timestamp

    params: dict[str, Any] = {"stdout": "1", "stderr": "1"}
    for name in ("since", "until"):
        value = getattr(opts, name)
        if value:
            try:
                params[name] = get_timestamp(value)
            except ValueError as e:
                raise StatusError(f'invalid value for "{name}": {e}', 1) from None
    if opts.timestamps:
        params["timestamps"] = "1"
    if opts.details:
        params["details"] = "1"
    if opts.follow:
        params["follow"] = "1"
    params["tail"] = opts.tail
    return params


def run_logs(cli: Any, opts: Any, ref: str) -> int:
    from berth.cli.streams import binary
    from berth.client.stdcopy import StreamSystemError, copy_frames

    client = cli.client()
    container = client.inspect_container(ref)
    resp = client.logs_stream(container["Id"], logs_params(opts))
    out, err = binary(cli.out), binary(cli.err)

    def write_to(stream: Any) -> Any:
        def write(data: bytes) -> None:
            stream.write(data)
            stream.flush()

        return write

    try:
        if (container.get("Config") or {}).get("Tty"):
            for chunk in resp.iter_chunks():
                write_to(out)(chunk)
        else:
            copy_frames(resp.iter_chunks(), write_to(out), write_to(err))
    except StreamSystemError as e:
        raise StatusError(str(e), 1) from None
    finally:
        resp.close()
    return 0
