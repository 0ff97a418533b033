"""Blocking calls awaited from the event loop, each in a daemon thread of its own."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Callable, TypeVar

T = TypeVar("T")


def run_in_own_thread(call: Callable[[], T], name: str = "berth-worker") -> "asyncio.Future[T]":
    """Run ``call`` in a new daemon thread and return a future for its result.

    For calls that block as long as a process lives (waiting on a shim) or that change the
    calling thread's state (entering a network namespace): they must neither fill nor poison
    the loop's reusable executor, and must not keep the daemon from exiting."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def deliver(ok: bool, value: Any) -> None:
        if future.done():
            return
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)

    def body() -> None:
        try:
            value = call()
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task
            loop.call_soon_threadsafe(deliver, False, exc)
        else:
            loop.call_soon_threadsafe(deliver, True, value)

    threading.Thread(target=body, name=name, daemon=True).start()
    return future
