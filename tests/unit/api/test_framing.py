import json

from berth.api.framing import (STDERR, STDOUT, FrameDecoder, ProgressWriter, frame, json_line,
                               message_line)


def test_frame_header_layout():
    assert frame(STDOUT, b"hi\n") == b"\x01\x00\x00\x00\x00\x00\x00\x03hi\n"
    assert frame(STDERR, b"") == b"\x02\x00\x00\x00\x00\x00\x00\x00"


def test_decoder_handles_split_and_joined_frames():
    data = frame(STDOUT, b"abc") + frame(STDERR, b"x" * 300)
    decoder = FrameDecoder()
    out = []
    for i in range(0, len(data), 7):
        out += decoder.feed(data[i:i + 7])
    assert out == [(STDOUT, b"abc"), (STDERR, b"x" * 300)]
    assert decoder.pending == 0


def test_progress_messages_shapes():
    line = ProgressWriter.status("Downloading", id="abc", current=5, total=10)
    assert line.endswith(b"\r\n")
    assert json.loads(line) == {"status": "Downloading", "id": "abc",
                                "progressDetail": {"current": 5, "total": 10},
                                "progress": "[=========================>                         ]"
                                            "       5B/10B"}
    assert json.loads(ProgressWriter.status("Waiting", id="abc")) == {"status": "Waiting", "id": "abc"}
    assert json.loads(ProgressWriter.error("boom")) == {"errorDetail": {"message": "boom"}, "error": "boom"}
    assert json.loads(ProgressWriter.aux({"ID": "sha256:1"})) == {"aux": {"ID": "sha256:1"}}
    assert json.loads(ProgressWriter.stream("Step 1/2\n")) == {"stream": "Step 1/2\n"}


def test_message_line_renders_progress_as_dockerds_streamformatter():
    """dockerd marshals ProgressMessage: JSONProgress.String() (width 200: with the bar box)
    right after progressDetail, in JSONMessage's field order."""
    line = message_line({"status": "Loading layer",
                         "progressDetail": {"current": 1048576, "total": 3400000}, "id": "abc"})
    assert line == (b'{"status":"Loading layer","progressDetail":{"current":1048576,"total":3400000},'
                    b'"progress":"[===============>                                   ]  1.049MB/3.4MB",'
                    b'"id":"abc"}\r\n')
    full = json.loads(message_line({"status": "Loading layer",
                                    "progressDetail": {"current": 3400000, "total": 3400000}}))
    assert full["progress"] == "[" + "=" * 50 + ">]    3.4MB/3.4MB"
    # the text is omitted when empty (omitempty), kept when the sender set one
    assert message_line({"status": "x", "progressDetail": {}}) == \
        b'{"status":"x","progressDetail":{}}\r\n'
    assert json.loads(message_line({"status": "x", "progressDetail": {"current": 1},
                                    "progress": "mine"}))["progress"] == "mine"
    assert message_line({"stream": "hi\n"}) == json_line({"stream": "hi\n"})
