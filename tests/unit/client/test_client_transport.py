"""berth.client against a fake Engine API server: unix, tcp, TLS, streams, hijack, errors."""

import io
import json
import os
import socket
import threading

import pytest
from fakedaemon import EVENTS, FakeDaemon

from berth.client import errors
from berth.client.api import APIClient, encode_filters, encode_query
from berth.client.tlsconfig import TLSConfig


def test_unix_requests_are_versioned_and_reuse_one_connection(fake):
    with APIClient(fake.url) as c:
        assert c.ping() == "OK"
        assert c.version()["Version"] == "27.0.0-fake"
        assert c.info()["Containers"] == 3
    paths = [r["path"] for r in fake.requests]
    assert paths == ["/_ping", "/v1.47/version", "/v1.47/info"]
    assert fake.connections == 1  # keep-alive: one socket for three exchanges
    hdrs = fake.requests[1]["headers"]
    assert hdrs["Host"] == "api.moby.localhost"
    assert hdrs["User-Agent"].startswith("Berth-Client/")


def test_reconnects_when_the_server_closed_an_idle_connection(fake):
    with APIClient(fake.url) as c:
        c.ping()
        conn = c.transport._idle[0]
        conn.sock.shutdown(socket.SHUT_RDWR)  # as if the daemon dropped it
        assert c.version()["ApiVersion"] == "1.47"
    assert fake.connections == 2


def test_events_stream_decodes_chunked_json_lines(fake):
    with APIClient(fake.url) as c:
        got = list(c.events(since="1795819400", until="1795819500", filters={"type": ["container", "network"]}))
    assert got == EVENTS
    req = fake.api_requests("/events")[0]
    assert "since=1795819400" in req["query"] and "until=1795819500" in req["query"]
    from urllib.parse import parse_qs

    assert json.loads(parse_qs(req["query"])["filters"][0]) == {"type": ["container", "network"]}


def test_events_arrive_as_they_are_sent(fake):
    fake.event_delay = 0.5
    with APIClient(fake.url) as c:
        stream = c.events()
        import time

        t0 = time.monotonic()
        first = next(stream)
        assert first["Action"] == "start"
        assert time.monotonic() - t0 < 0.45  # not buffered until the end of the stream
        assert [e["Action"] for e in stream] == ["connect"]


def test_api_errors_carry_status_and_daemon_message(fake):
    with APIClient(fake.url) as c:
        with pytest.raises(errors.NotFound) as e:
            c.get("/containers/missing/json")
        assert e.value.status == 404
        assert str(e.value) == "Error response from daemon: No such container: missing"
        with pytest.raises(errors.Conflict) as e2:
            c.post("/containers/web/start")
        assert e2.value.message == "container already started"
        # the connection survives error answers
        assert c.ping() == "OK"
    assert fake.connections == 1


def test_error_without_body_names_the_route(fake):
    fake.routes[("GET", "/empty")] = lambda h, r: h.send_text(500, "")
    with APIClient(fake.url) as c:
        with pytest.raises(errors.APIError) as e:
            c.get("/empty")
    assert "request returned 500 Internal Server Error for API route and version" in str(e.value)
    assert "/v1.47/empty" in str(e.value)


def test_json_body_query_and_chunked_upload(fake):
    with APIClient(fake.url) as c:
        got = c.post("/echo", params={"all": True, "n": 3, "skip": None}, json={"a": 1})
        assert json.loads(got["body"]) == {"a": 1}
        assert got["query"] == "all=1&n=3"
        streamed = c.request("POST", "/echo", data=iter([b"part1-", b"part2"])).json()
        assert streamed["body"] == "part1-part2"
    assert fake.requests[-1]["headers"].get("Transfer-Encoding") == "chunked"


def test_encode_filters_accepts_docker_shapes():
    assert json.loads(encode_filters({"type": "container"})) == {"type": ["container"]}
    assert json.loads(encode_filters({"label": {"a=b": True}})) == {"label": {"a=b": True}}
    assert encode_filters({}) is None
    assert encode_query({"filters": {"name": ["web"]}}) == "filters=%7B%22name%22%3A%5B%22web%22%5D%7D"


def test_missing_socket_is_dockers_connection_error(short_tmp):
    url = f"unix://{short_tmp}/nothing.sock"
    with APIClient(url) as c:
        with pytest.raises(errors.DaemonConnectionError) as e:
            c.version()
    assert str(e.value) == f"Cannot connect to the Docker daemon at {url}. Is the docker daemon running?"


def test_refused_tcp_is_dockers_connection_error():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with APIClient(f"tcp://127.0.0.1:{port}") as c:
        with pytest.raises(errors.DaemonConnectionError) as e:
            c.ping()
    assert str(e.value) == f"Cannot connect to the Docker daemon at tcp://127.0.0.1:{port}. Is the docker daemon running?"


def test_plain_tcp():
    with FakeDaemon() as d, APIClient(d.url) as c:
        assert c.version()["Os"] == "linux"
        assert d.requests[-1]["headers"]["Host"] == f"127.0.0.1:{d.port}"


def test_wire_trace_prints_request_and_status_lines(fake):
    out = io.StringIO()
    with APIClient(fake.url, debug=True, trace_out=out) as c:
        c.version()
    text = out.getvalue()
    assert "> GET /_ping HTTP/1.1" in text
    assert "> GET /v1.47/version HTTP/1.1" in text
    assert "> Host: api.moby.localhost" in text
    assert "< HTTP/1.1 200 OK" in text
    assert "< Api-Version: 1.47" in text


def test_docker_debug_env_turns_trace_on(fake, monkeypatch, capfd):
    monkeypatch.setenv("DOCKER_DEBUG", "1")
    with APIClient(fake.url) as c:
        c.ping()
    assert "> GET /_ping HTTP/1.1" in capfd.readouterr().err


# -- hijack -------------------------------------------------------------------------------------


def _exercise_hijack(c: APIClient) -> bytes:
    sock = c.hijack("POST", "/containers/web/attach", params={"stream": 1, "stdin": 1})
    with sock:
        assert sock.status == 101
        assert sock.multiplexed is False
        sock.sendall(b"ping one ")
        sock.sendall(b"ping two")
        sock.shutdown_write()  # stdin EOF: the daemon answers after it
        data = b""
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    return data


def test_hijack_unix_half_close(fake):
    with APIClient(fake.url) as c:
        assert _exercise_hijack(c) == b"hello from daemon\necho:ping one ping two"
    req = fake.api_requests("/containers/web/attach")[0]
    assert req["headers"]["Connection"] == "Upgrade"
    assert req["headers"]["Upgrade"] == "tcp"


def test_hijack_refused_is_an_api_error(fake):
    with APIClient(fake.url) as c:
        with pytest.raises(errors.NotFound):
            c.hijack("POST", "/containers/nope/attach")


# -- TLS ----------------------------------------------------------------------------------------


def test_tls_verified_with_client_cert(certs):
    ctx = certs["server_context"](require_client_cert=True)
    tls = TLSConfig(ca_file=certs["ca"], cert_file=certs["cert"], key_file=certs["key"], verify=True)
    with FakeDaemon(ssl_context=ctx) as d, APIClient(d.url, tls=tls) as c:
        assert c.version()["Version"] == "27.0.0-fake"
        assert c.info()["Images"] == 5
        assert d.connections == 1


def test_tls_client_without_cert_is_refused_with_a_tls_error(certs):
    ctx = certs["server_context"](require_client_cert=True)
    tls = TLSConfig(ca_file=certs["ca"], verify=True)
    with FakeDaemon(ssl_context=ctx) as d, APIClient(d.url, tls=tls) as c:
        with pytest.raises(errors.TLSError) as e:
            c.version()
    assert "TLS" in str(e.value)
    assert "client authentication" in str(e.value)
    assert d.tls_errors  # the server did refuse the handshake


def test_tls_unknown_ca_is_a_tls_error(certs):
    tls = TLSConfig(ca_file=certs["other_ca"], verify=True)
    with FakeDaemon(ssl_context=certs["server_context"]()) as d, APIClient(d.url, tls=tls) as c:
        with pytest.raises(errors.TLSError) as e:
            c.ping()
    assert "TLS handshake" in str(e.value) and "CERTIFICATE_VERIFY_FAILED" in str(e.value)


def test_tls_without_verify_accepts_any_server(certs):
    tls = TLSConfig(verify=False)  # docker --tls without --tlsverify
    with FakeDaemon(ssl_context=certs["server_context"]()) as d, APIClient(d.url, tls=tls) as c:
        assert c.ping() == "OK"


def test_plain_http_to_tls_daemon_fails_clearly(certs):
    with FakeDaemon(ssl_context=certs["server_context"]()) as d, APIClient(d.url, timeout=5) as c:
        with pytest.raises(errors.DaemonConnectionError) as e:
            c.ping()
    assert str(e.value).startswith("error during connect")


def test_hijack_over_tls_half_close(certs):
    ctx = certs["server_context"](require_client_cert=True)
    tls = TLSConfig(ca_file=certs["ca"], cert_file=certs["cert"], key_file=certs["key"], verify=True)
    with FakeDaemon(ssl_context=ctx) as d, APIClient(d.url, tls=tls) as c:
        assert _exercise_hijack(c) == b"hello from daemon\necho:ping one ping two"


def test_tls_config_errors_name_the_files(tmp_path):
    with pytest.raises(errors.TLSError) as e:
        TLSConfig(ca_file=str(tmp_path / "missing.pem")).ssl_context()
    assert "missing.pem" in str(e.value)


def test_from_env_uses_docker_host_and_tls_env(certs, monkeypatch):
    ctx = certs["server_context"](require_client_cert=True)
    cert_dir = os.path.dirname(certs["ca"])
    with FakeDaemon(ssl_context=ctx) as d:
        monkeypatch.setenv("DOCKER_HOST", d.url)
        monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
        monkeypatch.setenv("DOCKER_CERT_PATH", cert_dir)  # ca.pem, cert.pem, key.pem
        with APIClient.from_env() as c:
            assert c.ping() == "OK"
            assert c.transport.scheme == "https"


def test_threads_share_a_client(fake):
    results = []
    with APIClient(fake.url) as c:

        def work():
            for _ in range(5):
                results.append(c.version()["Version"])

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert results == ["27.0.0-fake"] * 20
    assert len(fake.api_requests("/_ping")) == 1  # negotiated once
