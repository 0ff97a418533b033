"""The HTTP server primitives against raw sockets: keep-alive, chunking, hijack, bad input."""

import asyncio
import json
import os
import socket
import tempfile
import threading
import time

import pytest

from berth.api.http import HijackResponse, StreamResponse, json_response
from berth.api.router import Router
from berth.api.server import ApiServer
from berth.errors import Conflict


class ServerThread:
    def __init__(self, router):
        self.dir = tempfile.mkdtemp()
        self.path = os.path.join(self.dir, "api.sock")
        self.loop = asyncio.new_event_loop()
        self.server = ApiServer(router)
        ready = threading.Event()

        def run():
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(self.server.listen_unix(self.path, 0o600))
            ready.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        ready.wait(5)

    def connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX)
        sock.settimeout(5)
        sock.connect(self.path)
        return sock

    def stop(self):
        asyncio.run_coroutine_threadsafe(self.server.shutdown(1), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        os.unlink(self.path) if os.path.exists(self.path) else None
        os.rmdir(self.dir)


def read_response(sock: socket.socket) -> tuple[bytes, dict, bytes]:
    """Reads one response with Content-Length or chunked body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        headers[k.strip().lower().decode()] = v.strip().decode()
    if "content-length" in headers:
        size = int(headers["content-length"])
        while len(rest) < size:
            rest += sock.recv(65536)
        return lines[0], headers, rest[:size]
    if headers.get("transfer-encoding") == "chunked":
        body = b""
        while True:
            while b"\r\n" not in rest:
                rest += sock.recv(65536)
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line, 16)
            while len(rest) < size + 2:
                rest += sock.recv(65536)
            body += rest[:size]
            rest = rest[size + 2:]
            if size == 0:
                return lines[0], headers, body
    return lines[0], headers, rest


@pytest.fixture
def server():
    router = Router()

    async def echo_json(request):
        body = await request.json()
        return json_response({"got": body, "version": list(request.api_version)})

    async def conflict(request):
        raise Conflict("conflict: thing is in use")

    async def counting_stream(request):
        async def chunks():
            for i in range(3):
                yield f'{{"n":{i}}}\n'.encode()
        return StreamResponse(chunks())

    async def endless_stream(request):
        async def chunks():
            while True:
                await asyncio.sleep(0.01)
                yield b"tick\n"
        return StreamResponse(chunks())

    async def hijack_echo(request):
        async def handler(stream):
            received = b""
            while True:
                data = await stream.read()
                if not data:
                    break
                received += data
                await stream.write(data.upper())
            # After the client half-closed, we can still answer, then close.
            await stream.write(b"BYTES=" + str(len(received)).encode())
        return HijackResponse(handler)

    router.add("POST", "/echo", echo_json)
    router.add("DELETE", "/things/{name:path}", conflict)
    router.add("GET", "/stream", counting_stream)
    router.add("GET", "/endless", endless_stream)
    router.add("POST", "/hijack", hijack_echo)
    thread = ServerThread(router)
    yield thread
    thread.stop()


def test_keep_alive_serves_several_requests_on_one_connection(server):
    sock = server.connect()
    for i in range(3):
        body = json.dumps({"i": i}).encode()
        sock.sendall(b"POST /v1.30/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        status, headers, payload = read_response(sock)
        assert status == b"HTTP/1.1 200 OK"
        assert headers["api-version"] == "1.47" and headers["ostype"] == "linux"
        assert json.loads(payload) == {"got": {"i": i}, "version": [1, 30]}
    sock.close()


def test_chunked_request_body_is_accepted(server):
    sock = server.connect()
    sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n")
    _, _, payload = read_response(sock)
    assert json.loads(payload)["got"] == {"a": 1}
    sock.close()


@pytest.mark.parametrize("path,status,message", [
    ("/v1.48/echo", 400, "client version 1.48 is too new. Maximum supported API version is 1.47"),
    ("/v1.12/echo", 400, "client version 1.12 is too old. Minimum supported API version is 1.24"),
    ("/nope", 404, "page not found"),
])
def test_version_and_routing_errors(server, path, status, message):
    sock = server.connect()
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{{}}".encode())
    line, _, payload = read_response(sock)
    assert line.startswith(f"HTTP/1.1 {status}".encode())
    assert message in json.loads(payload)["message"]
    sock.close()


def test_malformed_json_is_400_and_connection_survives(server):
    sock = server.connect()
    sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n{nope")
    line, _, payload = read_response(sock)
    assert line.startswith(b"HTTP/1.1 400") and "invalid JSON" in json.loads(payload)["message"]
    sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
    assert read_response(sock)[0] == b"HTTP/1.1 200 OK"
    sock.close()


def test_engine_errors_map_to_status_and_path_params_keep_slashes(server):
    sock = server.connect()
    sock.sendall(b"DELETE /things/localhost:5000/a/b HTTP/1.1\r\nHost: x\r\n\r\n")
    line, _, payload = read_response(sock)
    assert line.startswith(b"HTTP/1.1 409")
    assert json.loads(payload) == {"message": "conflict: thing is in use"}
    sock.close()


def test_huge_headers_get_431_not_a_crash(server):
    sock = server.connect()

    def send():
        try:
            sock.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (2 * 1024 * 1024) + b"\r\n\r\n")
        except OSError:
            pass

    sender = threading.Thread(target=send)
    sender.start()
    line = sock.recv(100)
    sender.join(5)
    assert line.startswith(b"HTTP/1.1 431")
    sock.close()
    ok = server.connect()
    ok.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
    assert read_response(ok)[0] == b"HTTP/1.1 200 OK"
    ok.close()


def test_streaming_response_is_chunked_json_lines(server):
    sock = server.connect()
    sock.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
    _, headers, body = read_response(sock)
    assert headers["transfer-encoding"] == "chunked"
    assert [json.loads(l) for l in body.splitlines()] == [{"n": 0}, {"n": 1}, {"n": 2}]
    sock.close()


def test_vanished_stream_client_does_not_block_others(server):
    streams = []
    for _ in range(5):
        sock = server.connect()
        sock.sendall(b"GET /endless HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b"200 OK" in sock.recv(1000)
        streams.append(sock)
    for sock in streams:
        sock.close()  # gone without a word
    time.sleep(0.2)
    other = server.connect()
    other.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
    assert read_response(other)[0] == b"HTTP/1.1 200 OK"
    other.close()
    deadline = time.time() + 5
    while time.time() < deadline and len(server.server._connections) > 0:
        time.sleep(0.05)
    assert len(server.server._connections) == 0


@pytest.mark.parametrize("upgrade", [True, False])
def test_hijack_raw_stream_with_half_close(server, upgrade):
    sock = server.connect()
    headers = b"Connection: Upgrade\r\nUpgrade: tcp\r\n" if upgrade else b""
    # Bytes sent right behind the headers must reach the handler too.
    sock.sendall(b"POST /hijack HTTP/1.1\r\nHost: x\r\n" + headers + b"Content-Length: 0\r\n\r\nhello")
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101 UPGRADED" if upgrade else b"HTTP/1.1 200 OK")
    assert b"Content-Type: application/vnd.docker.raw-stream" in head
    sock.sendall(b" world")
    sock.shutdown(socket.SHUT_WR)
    received = b""
    while True:
        data = sock.recv(1000)
        if not data:
            break
        received += data
    assert received == b"HELLO WORLDBYTES=11"
    sock.close()
