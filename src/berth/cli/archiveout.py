"""Writing an archive stream (export, save) to ``-o FILE`` or to stdout -- never to a
terminal -- as docker does: the file is written under a temporary name and renamed at the
end (atomicwriter), so a failure leaves no partial file."""

from __future__ import annotations

import os
import tempfile
from typing import Any, Callable

from berth.cli.command import StatusError

REFUSE_TTY = "cowardly refusing to save to a terminal. Use the -o flag or redirect"


def copy_response_to(cli: Any, output: str, open_stream: Callable[[], Any], what: str) -> int:
    from berth.cli.streams import binary
    from berth.cli.terminal import is_terminal

    if not output:
        if is_terminal(cli.out):
            raise StatusError(REFUSE_TTY, 1)
        resp = open_stream()
        out = binary(cli.out)
        for chunk in resp.iter_chunks():
            out.write(chunk)
        out.flush()
        return 0
    try:
        _validate_destination(output)
    except StatusError as e:
        raise StatusError(f"{what}: {e.message}", 1) from None
    directory = os.path.dirname(os.path.abspath(output))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-" + os.path.basename(output), dir=directory)
    failed = False
    try:
        with os.fdopen(fd, "wb") as f:
            try:
                resp = open_stream()
                for chunk in resp.iter_chunks():
                    f.write(chunk)
            except OSError:
                failed = True  # a write error: docker's atomic writer keeps the old file
                raise
            f.flush()
            os.fsync(f.fileno())
    finally:
        # as docker's deferred Close: unless writing failed, the file is put in place, even
        # when the request itself failed (an empty file then)
        if failed:
            os.unlink(tmp)
        else:
            os.chmod(tmp, 0o600)
            os.replace(tmp, output)
    return 0


def _validate_destination(name: str) -> None:
    """moby/sys atomicwriter's validateDestination."""
    import stat as st

    directory = os.path.dirname(name)
    if directory not in ("", ".", ".."):
        try:
            info = os.stat(directory)
        except OSError as e:
            raise StatusError(f"invalid output path: stat {directory}: {(e.strerror or '').lower()}", 1) from None
        if not st.S_ISDIR(info.st_mode):
            raise StatusError(f"invalid output path: stat {directory}: not a directory", 1)
    try:
        mode = os.lstat(name).st_mode
    except FileNotFoundError:
        return
    except OSError as e:
        raise StatusError(f"failed to stat output path: lstat {name}: {(e.strerror or '').lower()}", 1) from None
    if st.S_ISREG(mode):
        return
    for test, text in ((st.S_ISDIR, "cannot write to a directory"), (st.S_ISLNK, "cannot write to a symbolic link directly"),
                       (st.S_ISFIFO, "cannot write to a named pipe (FIFO)"), (st.S_ISSOCK, "cannot write to a socket"),
                       (st.S_ISCHR, "cannot write to a character device file"), (st.S_ISBLK, "cannot write to a block device file")):
        if test(mode):
            raise StatusError(text, 1)
