"""The byte-level pieces of attach/logs/inspect/progress: detach-key escape proxy, stdout/
stderr frame demultiplexing, Go's json.Indent on raw bytes, and jsonmessage rendering."""

import io
import json
import os
import socket
import threading

import pytest

from berth.cli.escape import EscapeError, EscapeProxy, to_bytes
from berth.cli.jsonmessage import JSONMessageError, display_stream
from berth.jsonprogress import progress_string
from berth.cli.jsonraw import compact, indent, join_array
from berth.client.stdcopy import Demuxer, FrameError, StreamSystemError, copy_frames, frame


def test_detach_keys_syntax():
    assert to_bytes("ctrl-p,ctrl-q") == b"\x10\x11"
    assert to_bytes("a,ctrl-@,ctrl-\\,DEL") == b"a\x00\x1c\x7f"
    with pytest.raises(ValueError, match="Unknown character: 'ctrl-1'"):
        to_bytes("ctrl-1")


def test_escape_proxy_holds_partial_sequences():
    proxy = EscapeProxy(b"\x10\x11")
    assert proxy.feed(b"ab\x10") == b"ab"  # ctrl-p held back
    assert proxy.feed(b"c") == b"\x10c"  # not a sequence after all
    with pytest.raises(EscapeError) as e:
        proxy.feed(b"xy\x10\x11zz")
    assert e.value.args[0] == b"xy"  # what came before the sequence is still sent
    proxy = EscapeProxy(b"\x10\x11")
    assert proxy.feed(b"\x10") == b""
    with pytest.raises(EscapeError):
        proxy.feed(b"\x11")
    # as moby/term: the byte that breaks a match does not start a new one
    proxy = EscapeProxy(b"\x10\x11")
    assert proxy.feed(b"\x10\x10\x11") == b"\x10\x10\x11"


def test_demux_frames_split_anywhere():
    data = frame(1, b"out\n") + frame(2, b"err\n") + frame(1, b"") + frame(0, b"in")
    for cut in range(len(data) + 1):
        demux = Demuxer()
        got = list(demux.feed(data[:cut])) + list(demux.feed(data[cut:]))
        assert got == [(1, b"out\n"), (2, b"err\n"), (1, b""), (0, b"in")]


def test_copy_frames_routes_and_fails_on_system_error():
    out, err = [], []
    copy_frames([frame(1, b"a") + frame(2, b"b")], out.append, err.append)
    assert (out, err) == ([b"a"], [b"b"])
    with pytest.raises(StreamSystemError, match="boom"):
        copy_frames([frame(3, b"boom")], out.append, err.append)
    with pytest.raises(FrameError):
        list(Demuxer().feed(b"\x09\x00\x00\x00\x00\x00\x00\x01x"))


GO_INDENTED = """[
    {
        "Id": "abc",
        "Args": [],
        "Config": {
            "Labels": {},
            "Cmd": [
                "sh",
                "-c",
                "echo \\"a,b: {c}\\" \\u003e x"
            ],
            "N": 1e3
        },
        "Z": null
    },
    {
        "Id": "def"
    }
]"""


def test_json_indent_matches_go():
    a = b'{"Id":"abc","Args":[],"Config":{"Labels":{},"Cmd":["sh","-c","echo \\"a,b: {c}\\" \\u003e x"],"N":1e3},"Z":null}\n'
    b = b'{ "Id" : "def" }'
    assert indent(join_array([a, b])).decode() == GO_INDENTED
    assert compact(join_array([a, b])).decode() == "[" + a.decode().strip() + ',{"Id":"def"}]'


def test_progress_bars():
    assert progress_string({"current": 0, "total": 0}, 200) == ""
    assert progress_string({"current": 512}, 200) == "    512B"
    text = progress_string({"current": 50, "total": 100}, 200)
    assert text == "[=========================>                         ]      50B/100B"
    assert progress_string({"current": 50, "total": 100}, 80) == "     50B/100B"
    assert progress_string({"current": 3, "total": 10, "units": "items"}, 80) == "3/10 items"


def test_display_stream_off_terminal():
    out = io.StringIO()
    messages = [
        {"status": "Pulling from library/busybox", "id": "latest"},
        {"status": "Downloading", "id": "abc", "progressDetail": {"current": 1, "total": 10}},
        {"status": "Download complete", "id": "abc", "progressDetail": {}},
        {"stream": "Step 1\n"},
        {"aux": {"ID": "sha256:x"}},
        {"status": "Digest: sha256:123"},
    ]
    seen = []
    display_stream(messages, out, terminal=False, aux=seen.append)
    assert out.getvalue() == "latest: Pulling from library/busybox\nabc: Download complete\nStep 1\nDigest: sha256:123\n"
    assert seen == [{"ID": "sha256:x"}]


def test_display_stream_terminal_moves_cursor():
    out = io.StringIO()
    display_stream(
        [{"status": "Downloading", "id": "a", "progressDetail": {"current": 1, "total": 2}},
         {"status": "Downloading", "id": "b", "progressDetail": {"current": 1, "total": 2}},
         {"status": "Done", "id": "a", "progressDetail": {}}],
        out, terminal=True, width=80,
    )
    text = out.getvalue()
    assert text.count("\x1b[2K") == 3 and "\x1b[2A" in text and "\x1b[2B" in text


def test_display_stream_error():
    out = io.StringIO()
    with pytest.raises(JSONMessageError) as e:
        display_stream([{"status": "x"}, {"errorDetail": {"message": "denied"}, "error": "denied"}], out)
    assert e.value.message == "denied" and e.value.status == 1 and out.getvalue() == "x\n"


def test_io_streamer_copies_and_half_closes():
    """stdin -> connection (then half-close), connection frames -> stdout/stderr."""
    from berth.cli.attachio import IOStreamer

    ours, theirs = socket.socketpair()
    stdin_r, stdin_w = os.pipe()
    os.write(stdin_w, b"typed\n")
    os.close(stdin_w)
    received = []

    def daemon() -> None:
        data = b""
        while True:
            chunk = theirs.recv(100)
            if not chunk:
                break
            data += chunk
        received.append(data)  # EOF seen: the client half-closed
        theirs.sendall(frame(1, b"echo:" + data) + frame(2, b"warn"))
        theirs.close()

    threading.Thread(target=daemon, daemon=True).start()

    class Conn:
        closed = False

        def recv(self, n):
            return ours.recv(n)

        def sendall(self, data):
            ours.sendall(data)

        def shutdown_write(self):
            ours.shutdown(socket.SHUT_WR)

    out, err = io.BytesIO(), io.BytesIO()
    IOStreamer(Conn(), stdin_fd=stdin_r, stdout=out, stderr=err, tty=False).run()
    assert received == [b"typed\n"]
    assert out.getvalue() == b"echo:typed\n" and err.getvalue() == b"warn"
    os.close(stdin_r)
    ours.close()


def test_inspect_write_prints_raw_bytes():
    from berth.cli.format import Raw, inspect_write

    raw = b'{"Id":"x","Weird":1.50,"Html":"<a>"}\n'
    out = io.StringIO()
    errors = inspect_write(out, ["x", "y"], None, lambda ref: Raw(json.loads(raw), raw) if ref == "x" else (_ for _ in ()).throw(LookupError("Error: No such object: y")))
    assert out.getvalue() == '[\n    {\n        "Id": "x",\n        "Weird": 1.50,\n        "Html": "<a>"\n    }\n]\n'
    assert errors == ["Error: No such object: y"]
