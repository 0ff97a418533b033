"""An engine that answers `docker run --rm` at once, with no container: what the docker CLI
costs on its own (its start-up, its requests, its exit). Used by run_latency.py.

Built on the client tests' fake daemon (tests/unit/client/fakedaemon.py), with the routes of
that flow for one container: create, attach (a stream that ends once the container
"started"), wait?condition=removed (answered just after) and start. Runs one at a time.
"""

from __future__ import annotations

import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "unit", "client"))
from fakedaemon import FakeDaemon  # noqa: E402

CONTAINER_ID = "b" * 64


def stub_engine(socket_path: str) -> FakeDaemon:
    fake = FakeDaemon(unix_path=socket_path)
    fake.server.handle_error = lambda request, address: None  # the CLI hangs up as it exits
    started = threading.Event()

    def create(h, req) -> None:
        started.clear()  # a new run
        h.send_json(201, {"Id": CONTAINER_ID, "Warnings": []})

    def attach(h, req) -> None:
        h.wfile.write(b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream"
                      b"\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
        h.wfile.flush()
        started.wait()
        h.close_connection = True  # the container's output ends

    def wait(h, req) -> None:
        h.start_chunked()
        started.wait()
        time.sleep(0.001)  # as with an engine: the output ends, then the removal
        h.chunk(b'{"StatusCode":0}\n')
        h.end_chunked()  # the CLI may be gone already: it exits on the status

    def start(h, req) -> None:
        h.send_response(204)
        h.common_headers()
        h.end_headers()
        started.set()

    base = f"/containers/{CONTAINER_ID}"
    fake.routes.update({
        ("POST", "/containers/create"): create,
        ("POST", f"{base}/attach"): attach,
        ("POST", f"{base}/wait"): wait,
        ("POST", f"{base}/start"): start,
    })
    return fake
