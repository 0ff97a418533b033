"""``kill -USR1 <berthd>``: write every thread's and every asyncio task's stack to a file in
the exec-root, as dockerd writes its goroutine stacks, to see what a stuck daemon waits on."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
import traceback


def dump_stacks(directory: str) -> str:
    """Write the dump and return its path (``berthd-stacks-<UTC time>.log``)."""
    stamp = time.strftime("%Y-%m-%dT%H%M%SZ", time.gmtime())
    path = os.path.join(directory, f"berthd-stacks-{stamp}.log")
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    with open(path, "w", encoding="utf-8") as out:
        for ident, frame in sys._current_frames().items():
            out.write(f"=== thread {names.get(ident, ident)}\n")
            traceback.print_stack(frame, file=out)
        try:
            tasks = asyncio.all_tasks()
        except RuntimeError:  # no running loop in this thread
            tasks = set()
        for task in sorted(tasks, key=lambda t: t.get_name()):
            out.write(f"=== task {task.get_name()}: {task.get_coro()!r}\n")
            task.print_stack(file=out)
    return path
