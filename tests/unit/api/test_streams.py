"""The thread<->event-loop bridges of ``berth.api.streams``: worker threads producing a
response body (tars, JSON-lines progress) and reading an upload, including failures midway
and consumers that go away early."""

import asyncio
import json
import threading
import time

import pytest

from route_helpers import make_request

from berth.api.streams import BodyPipe, iterate_in_thread, progress_stream, raw_stream
from berth.errors import InvalidParameter, NotFound


class Producer:
    """A blocking iterator that records where its ``finally`` ran."""

    def __init__(self, count, fail_at=None, error=None, delay=0.0):
        self.count, self.fail_at, self.error, self.delay = count, fail_at, error, delay
        self.produced = 0
        self.finally_thread = None

    def __iter__(self):
        try:
            for n in range(self.count):
                if n == self.fail_at:
                    raise self.error
                time.sleep(self.delay)
                self.produced += 1
                yield b"chunk%d" % n
        finally:
            self.finally_thread = threading.current_thread()


async def collect(stream):
    out = []
    async for chunk in stream:
        out.append(chunk)
    return out


# -- iterate_in_thread / raw_stream --------------------------------------------------------
def test_iterate_in_thread_yields_everything_in_order():
    producer = Producer(50)
    assert asyncio.run(collect(iterate_in_thread(iter(producer), depth=2))) == \
        [b"chunk%d" % n for n in range(50)]
    assert producer.finally_thread is not threading.main_thread()


def test_producer_failing_midway_reaches_the_consumer_after_its_chunks():
    producer = Producer(10, fail_at=3, error=NotFound("gone"))

    async def scenario():
        got = []
        with pytest.raises(NotFound):
            async for chunk in iterate_in_thread(iter(producer)):
                got.append(chunk)
        return got

    assert asyncio.run(scenario()) == [b"chunk0", b"chunk1", b"chunk2"]
    assert producer.finally_thread is not None


def test_consumer_going_away_ends_the_worker_and_runs_the_iterators_finally():
    producer = Producer(10_000, delay=0.001)

    async def scenario():
        stream = iterate_in_thread(iter(producer), depth=2)
        assert await stream.__anext__() == b"chunk0"
        await stream.aclose()  # the client went away
        return producer.finally_thread  # already ran: aclose waits for the worker

    finally_thread = asyncio.run(scenario())
    assert finally_thread is not None and finally_thread is not threading.main_thread()
    assert producer.produced < 100  # the worker stopped; it did not run to the end


def test_raw_stream_drops_the_connection_on_a_failure_after_the_200():
    producer = Producer(5, fail_at=2, error=InvalidParameter("layer vanished"))

    async def scenario():
        got = []
        with pytest.raises(ConnectionAbortedError, match="layer vanished"):
            async for chunk in raw_stream(iter(producer)):
                got.append(chunk)
        return got

    assert asyncio.run(scenario()) == [b"chunk0", b"chunk1"]

    plain = Producer(5, fail_at=1, error=RuntimeError("disk on fire"))
    with pytest.raises(ConnectionAbortedError, match="disk on fire"):
        asyncio.run(collect(raw_stream(iter(plain))))


# -- progress_stream -----------------------------------------------------------------------
def test_progress_stream_lines_and_rendered_progress():
    def job(emit):
        emit({"status": "Loading layer", "progressDetail": {"current": 512, "total": 1024},
              "id": "abc"})
        emit({"stream": "Loaded image: x:y\n"})

    lines = asyncio.run(collect(progress_stream(job)))
    assert lines == [
        b'{"status":"Loading layer","progressDetail":{"current":512,"total":1024},'
        b'"progress":"[=========================>                         ]     512B/1.024kB",'
        b'"id":"abc"}\r\n',
        b'{"stream":"Loaded image: x:y\\n"}\r\n']


@pytest.mark.parametrize("error, message", [(InvalidParameter("invalid archive"), "invalid archive"),
                                            (RuntimeError("boom"), "boom"),
                                            (KeyError, "KeyError")])
def test_progress_stream_failure_midway_is_the_last_line(error, message):
    def job(emit):
        emit({"status": "step 1"})
        raise error

    lines = [json.loads(line) for line in asyncio.run(collect(progress_stream(job)))]
    assert lines == [{"status": "step 1"},
                     {"errorDetail": {"message": message}, "error": message}]


def test_progress_stream_consumer_going_away_lets_the_job_finish():
    finished = threading.Event()

    def job(emit):
        for n in range(20):
            emit({"status": f"step {n}"})
            time.sleep(0.005)
        finished.set()

    async def scenario():
        stream = progress_stream(job)
        await stream.__anext__()
        await stream.aclose()
        return finished.is_set()

    assert asyncio.run(scenario())  # aclose waited for the worker: no thread left behind


def test_progress_stream_with_an_upload():
    def job(emit, reader):
        emit({"status": reader.read().decode()})

    async def scenario():
        request = make_request("POST", "/images/load", chunks=[b"up", b"load"])
        return await collect(progress_stream(job, BodyPipe(request)))

    assert asyncio.run(scenario()) == [b'{"status":"upload"}\r\n']


# -- BodyPipe --------------------------------------------------------------------------------
def test_upload_read_slower_than_it_arrives_is_whole_and_bounded():
    chunks = [bytes([n]) * 1000 for n in range(64)]
    pulled = []

    async def scenario():
        request = make_request("PUT", "/x", chunks=list(chunks))
        original = request._read_chunk

        async def counting():
            chunk = await original()
            if chunk:
                pulled.append(len(chunk))
            return chunk
        request._read_chunk = counting
        read_ahead = []

        def slow_reader(reader):
            data = bytearray()
            while True:
                piece = reader.read(700)
                if not piece:
                    return bytes(data)
                read_ahead.append(len(pulled) * 1000 - len(data) - len(piece))
                data += piece
                time.sleep(0.001)

        pipe = BodyPipe(request, depth=4)
        data = await pipe.run(slow_reader)
        return data, max(read_ahead)

    data, ahead = asyncio.run(scenario())
    assert data == b"".join(chunks)
    # the pump stays a few chunks ahead (queue depth + in-flight), not the whole body
    assert 0 < ahead <= (4 + 3) * 1000, ahead


def test_upload_reader_that_stops_early_drains_the_rest():
    chunks = [b"x" * 100] * 50

    async def scenario():
        request = make_request("PUT", "/x", chunks=list(chunks))
        first = await BodyPipe(request, depth=2).run(lambda reader: reader.read(10))
        return first, request.body_consumed

    first, consumed = asyncio.run(scenario())
    assert first == b"x" * 10 and consumed  # the rest was read and dropped; no deadlock


def test_upload_reader_failure_propagates():
    def reader_fails(reader):
        reader.read(1)
        raise InvalidParameter("unexpected EOF")

    async def scenario():
        request = make_request("PUT", "/x", chunks=[b"abc"] * 20)
        with pytest.raises(InvalidParameter, match="unexpected EOF"):
            await BodyPipe(request, depth=1).run(reader_fails)
        return request.body_consumed

    assert asyncio.run(scenario())
