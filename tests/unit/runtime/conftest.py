"""Fixtures for the runtime tests (helpers live in rt_support, a uniquely named module)."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from rt_support import HAVE_RUNC, Env, make_busybox_rootfs  # noqa: E402


@pytest.fixture(scope="session")
def env():
    if not HAVE_RUNC:
        pytest.skip("needs root and runc")
    base = tempfile.mkdtemp(prefix="brt", dir="/tmp")
    e = Env(base)
    yield e
    e.cleanup()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def rootfs(tmp_path_factory):
    return make_busybox_rootfs(str(tmp_path_factory.mktemp("rootfs")))
