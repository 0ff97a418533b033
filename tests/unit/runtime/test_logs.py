import gzip
import json
import os

import pytest

from berth.runtime import logs

NS = 1795819402123456789  # 2026-11-27T22:43:22.123456789Z


def test_exact_docker_line():
    assert logs.entry("stdout", b"hi\n", NS) == \
        b'{"log":"hi\\n","stream":"stdout","time":"2026-11-27T22:43:22.123456789Z"}\n'


def test_time_trims_zeros_like_rfc3339nano():
    assert logs.format_time(NS - 789) == "2026-11-27T22:43:22.123456Z"
    assert logs.format_time(1795819402 * 10**9) == "2026-11-27T22:43:22Z"


def test_escaping_matches_moby_jsonlog():
    got = logs.json_string(b'a"b\\c<>&\t\r\n\x00\x1f\xe2\x80\xa8 \xc3\xa9 \xff \xe2\x82X \xef\xbf\xbd')
    assert got == (b'"a\\"b\\\\c\\u003c\\u003e\\u0026\\u0009\\r\\n\\u0000\\u001f\\u2028 '
                   + "é".encode() + b' \\ufffd \\ufffd\\ufffdX ' + "\ufffd".encode() + b'"')
    # still valid JSON that decodes to the intended text
    assert json.loads(got) == 'a"b\\c<>&\t\r\n\x00\x1f\u2028 é \ufffd \ufffd\ufffdX \ufffd'


def test_attrs_and_empty_partial():
    line = logs.entry("stderr", b"x", NS, b'{"tag":"t"}')
    assert line == b'{"log":"x","stream":"stderr","attrs":{"tag":"t"},"time":"2026-11-27T22:43:22.123456789Z"}\n'


def test_line_splitter_partials_like_copier():
    s = logs.LineSplitter()
    assert s.feed(b"a\nb") == [b"a\n"]
    assert s.feed(b"c\n\n") == [b"bc\n", b"\n"]
    big = b"x" * (logs.BUF_SIZE + 10) + b"\n"
    assert s.feed(big) == [b"x" * logs.BUF_SIZE, b"x" * 10 + b"\n"]
    assert s.feed(b"tail") == [] and s.flush() == [b"tail"] and s.flush() == []


def test_parse_size_is_decimal():
    assert logs.parse_size("10m") == 10_000_000
    assert logs.parse_size("1k") == 1000 and logs.parse_size("2KB") == 2000 and logs.parse_size("5") == 5
    with pytest.raises(ValueError):
        logs.parse_size("lots")


def test_validate_log_opts_errors():
    assert logs.validate_log_opts("json-file", {"max-size": "1k", "max-file": "3"}) == (1000, 3, False)
    with pytest.raises(ValueError, match="unknown log opt 'bogus' for json-file log driver"):
        logs.validate_log_opts("json-file", {"bogus": "1"})
    with pytest.raises(ValueError, match="max-file cannot be less than 1"):
        logs.validate_log_opts("json-file", {"max-file": "0"})
    with pytest.raises(ValueError, match="compress cannot be true"):
        logs.validate_log_opts("json-file", {"compress": "true"})
    with pytest.raises(ValueError, match="no log driver named 'syslogx'"):
        logs.validate_log_opts("syslogx", {})


def test_rotation_names_and_order(tmp_path):
    path = str(tmp_path / "c-json.log")
    w = logs.JSONFileWriter(path, max_size=200, max_files=3)
    for i in range(20):
        w.write("stdout", [b"message %02d\n" % i], NS)
    w.close()
    assert sorted(os.listdir(tmp_path)) == ["c-json.log", "c-json.log.1", "c-json.log.2"]
    for name in os.listdir(tmp_path):  # each file reached max-size by at most one entry
        size = os.path.getsize(tmp_path / name)
        assert size < 200 + 100
    got = [data for _, data, _, _ in logs.read_entries(path, 3)]
    assert got == [b"message %02d\n" % i for i in range(20 - len(got), 20)]
    assert len(got) < 20


def test_rotation_single_file_truncates(tmp_path):
    path = str(tmp_path / "c-json.log")
    w = logs.JSONFileWriter(path, max_size=100, max_files=1)
    for i in range(10):
        w.write("stdout", [b"m%d\n" % i], NS)
    w.close()
    assert os.listdir(tmp_path) == ["c-json.log"]
    assert [d for _, d, _, _ in logs.read_entries(path)] == [b"m8\n", b"m9\n"]  # rotated when >= max-size


def test_rotation_with_compress(tmp_path):
    path = str(tmp_path / "c-json.log")
    w = logs.JSONFileWriter(path, max_size=150, max_files=3, compress=True)
    for i in range(12):
        w.write("stderr", [b"line %d\n" % i], NS)
    w.close()
    assert sorted(os.listdir(tmp_path)) == ["c-json.log", "c-json.log.1.gz", "c-json.log.2.gz"]
    with gzip.open(path + ".1.gz") as f:
        assert b'"stream":"stderr"' in f.read()
    streams = {s for s, _, _, _ in logs.read_entries(path, 3)}
    assert streams == {"stderr"}


def test_attrs_object_is_encoded_like_a_go_map():
    encoded = logs.attrs_object({"tag": "a/b", "b": "x<y>&z", "a": "é"})
    assert encoded == '{"a":"é","b":"x\\u003cy\\u003e\\u0026z","tag":"a/b"}'.encode()
    line = logs.entry("stdout", b"hi\n", 1_000_000_000, encoded)
    assert line.startswith(b'{"log":"hi\\n","stream":"stdout","attrs":{"a":')
