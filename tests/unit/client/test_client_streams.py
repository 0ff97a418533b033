"""JSON stream splitting, stream errors, --since/--until values, host parsing."""

import pytest

from berth.client.errors import InvalidHost, StreamError
from berth.client.hosts import DEFAULT_HOST, parse_host, parse_host_url
from berth.client.response import iter_json_values
from berth.client.timestamps import get_timestamp


def test_json_values_split_across_chunks():
    chunks = [b'{"a":', b'1}\n{"b"', b':"x"}', b'{"c":[1,2]}\n', b"\n"]
    assert list(iter_json_values(iter(chunks))) == [{"a": 1}, {"b": "x"}, {"c": [1, 2]}]


def test_multibyte_character_split_between_chunks():
    data = '{"status":"héllo ✓"}\n'.encode()
    cut = data.index("✓".encode()) + 1  # inside the 3-byte character
    assert list(iter_json_values(iter([data[:cut], data[cut:]]))) == [{"status": "héllo ✓"}]


def test_error_line_raises_only_when_asked():
    chunks = [b'{"status":"Pulling"}\n{"errorDetail":{"message":"boom"},"error":"boom"}\n']
    assert len(list(iter_json_values(iter(chunks)))) == 2
    with pytest.raises(StreamError) as e:
        list(iter_json_values(iter(chunks), raise_on_error=True))
    assert e.value.message == "boom"


def test_truncated_stream_raises():
    with pytest.raises(ValueError):
        list(iter_json_values(iter([b'{"a":1}{"b":'])))


NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    "value, expected",
    [
        ("10m", str(int(NOW - 600))),
        ("1h30m", str(int(NOW - 5400))),
        ("1700000123", "1700000123"),
        ("1700000123.5", "1700000123.5"),
        ("2023-11-14T22:13:20Z", "1700000000.000000000"),
        ("2023-11-14T22:13:20.25Z", "1700000000.250000000"),
        ("2023-11-14T23:13:20+01:00", "1700000000.000000000"),
        ("2023-11-14Z", "1699920000.000000000"),
    ],
)
def test_get_timestamp_like_dockers_client(value, expected):
    assert get_timestamp(value, now=NOW) == expected


def test_get_timestamp_local_time_without_zone(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    import time

    time.tzset()
    try:
        assert get_timestamp("2023-11-14T22:13:20", now=NOW) == "1700000000.000000000"
        assert get_timestamp("2023-11-14", now=NOW) == "1699920000.000000000"
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


@pytest.mark.parametrize("bad", ["yesterday", "2023-13-45", "10x"])
def test_get_timestamp_rejects(bad):
    with pytest.raises(ValueError):
        get_timestamp(bad, now=NOW)


@pytest.mark.parametrize(
    "value, expected",
    [
        ("", DEFAULT_HOST),
        (None, DEFAULT_HOST),
        ("unix://", "unix:///run/berth.sock"),
        ("unix:///tmp/x.sock", "unix:///tmp/x.sock"),
        ("tcp://1.2.3.4", "tcp://1.2.3.4:2375"),
        ("1.2.3.4:99", "tcp://1.2.3.4:99"),
        ("tcp://:2376", "tcp://localhost:2376"),
        ("tcp://[::1]:80", "tcp://[::1]:80"),
        ("ssh://me@host:2222", "ssh://me@host:2222"),
    ],
)
def test_parse_host(value, expected):
    assert parse_host(value) == expected


def test_default_host_with_tls_is_dockers_tls_port():
    assert parse_host("", default_to_tls=True) == "tcp://localhost:2376"


@pytest.mark.parametrize("bad", ["udp://x", "tcp://a://b", "tcp://host:port"])
def test_parse_host_rejects(bad):
    with pytest.raises(InvalidHost):
        parse_host(bad)


def test_parse_host_url_parts():
    u = parse_host_url("ssh://alice@example.com:2222/run/berth.sock")
    assert (u.scheme, u.user, u.address, u.port, u.path) == ("ssh", "alice", "example.com", 2222, "/run/berth.sock")
    t = parse_host_url("tcp://10.0.0.1:2376/prefix")
    assert (t.scheme, t.address, t.port, t.path) == ("tcp", "10.0.0.1", 2376, "/prefix")
    with pytest.raises(InvalidHost):
        parse_host_url("ssh://user:pw@host")
    with pytest.raises(InvalidHost):
        parse_host_url("x")
