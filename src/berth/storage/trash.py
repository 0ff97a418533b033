"""Deferred deletion of directory trees: a removal renames the tree into a trash directory
(one atomic step, so it is gone from view at once) and a background thread deletes it.

Deleting a layer's or a container's files takes ~1-2 ms even when they are nearly empty,
and it sat on the path of `docker rm` and of `docker run --rm` telling its client the
container is gone. What a killed daemon leaves in the trash is deleted at the next start.

A tree may go into the trash with a filesystem still mounted in it (a container's overlay:
unmounting waits for an RCU grace period, ~1.2 ms here): the owner's ``release`` hook
unmounts it before the tree is deleted; a tree it cannot release stays in the trash.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from typing import Callable

log = logging.getLogger("berth.trash")

# A removal's other steps and its reply run while the GIL is free of rmtree; removals in a
# burst are deleted together.
SETTLE = 0.1


class Trash:
    """A trash directory on the same filesystem as what is thrown into it."""

    def __init__(self, path: str, release: Callable[[str], None] | None = None):
        """``release(tree)`` runs on each tree before it is deleted (unmounting in it)."""
        self.path = path
        self._release = release
        os.makedirs(path, mode=0o700, exist_ok=True)
        self._wake = threading.Condition()
        self._pending = False
        self._busy = False
        self._thread: threading.Thread | None = None
        if os.listdir(path):  # left by a daemon that stopped before deleting it
            self._kick()

    def discard(self, tree: str) -> bool:
        """Move ``tree`` out of the way and delete it soon; False if it did not exist. A tree
        on another filesystem (rename refuses) is deleted here and now."""
        target = os.path.join(self.path, os.urandom(12).hex())
        try:
            os.rename(tree, target)
        except FileNotFoundError:
            return False
        except OSError as exc:
            log.debug("cannot move %s to the trash (%s): deleting it now", tree, exc)
            self._delete(tree)
            return True
        self._kick()
        return True

    def wait_empty(self, timeout: float | None = None) -> bool:
        """Wait until everything discarded so far is deleted (tests, shutdown)."""
        with self._wake:
            return self._wake.wait_for(lambda: not self._pending and not self._busy, timeout)

    def _kick(self) -> None:
        with self._wake:
            self._pending = True
            self._wake.notify_all()
            if self._thread is None:
                self._thread = threading.Thread(target=self._empty_forever, name="berth-trash",
                                                daemon=True)
                self._thread.start()

    def _empty_forever(self) -> None:
        while True:
            with self._wake:
                self._wake.wait_for(lambda: self._pending)
                self._busy = True
            time.sleep(SETTLE)  # let the removal that discarded this finish first
            with self._wake:
                self._pending = False
            try:
                for name in os.listdir(self.path):
                    self._delete(os.path.join(self.path, name))
            except OSError as exc:  # the trash itself went away: nothing left to delete
                log.warning("emptying %s: %s", self.path, exc)
            finally:
                with self._wake:
                    self._busy = False
                    self._wake.notify_all()

    def _delete(self, tree: str) -> None:
        if self._release is not None:
            try:
                self._release(tree)
            except OSError as exc:  # deleting through a mount would delete what it shows
                log.warning("cannot release %s, left in the trash: %s", tree, exc)
                return
        shutil.rmtree(tree, ignore_errors=True)
