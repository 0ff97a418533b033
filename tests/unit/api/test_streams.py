import json

from berth.api.streams import STDERR, STDOUT, FrameDecoder, ProgressWriter, frame


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
                                "progressDetail": {"current": 5, "total": 10}}
    assert json.loads(ProgressWriter.error("boom")) == {"errorDetail": {"message": "boom"}, "error": "boom"}
    assert json.loads(ProgressWriter.aux({"ID": "sha256:1"})) == {"aux": {"ID": "sha256:1"}}
    assert json.loads(ProgressWriter.stream("Step 1/2\n")) == {"stream": "Step 1/2\n"}
