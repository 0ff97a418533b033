"""Sealed in-memory copies of runtime binaries (berth.runtime.sealedexe)."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess

from berth.runtime import sealedexe

TRUE = shutil.which("true")
FALSE = shutil.which("false")


def read_all(fd: int) -> bytes:
    return os.pread(fd, os.fstat(fd).st_size + 1, 0)


def test_copy_is_sealed_identical_close_on_exec_and_runs():
    fd = sealedexe.seal_copy(TRUE)
    assert fd is not None
    try:
        assert sealedexe.is_sealed(fd)
        assert fcntl.fcntl(fd, fcntl.F_GET_SEALS) == sealedexe.SEALS == 15  # exactly what runc checks for
        assert not os.get_inheritable(fd)
        with open(TRUE, "rb") as f:
            assert read_all(fd) == f.read()
        assert os.readlink(f"/proc/self/fd/{fd}").startswith("/memfd:true")
        try:
            os.pwrite(fd, b"x", 0)
            raise AssertionError("a sealed copy was writable")
        except PermissionError:
            pass
        proc = subprocess.run([sealedexe.exec_path(fd)], pass_fds=(fd,))
        assert proc.returncode == 0
    finally:
        os.close(fd)


def test_scripts_and_missing_files_get_no_copy(tmp_path):
    script = tmp_path / "runtime.sh"
    script.write_text("#!/bin/sh\nexec runc \"$@\"\n")
    script.chmod(0o755)
    assert sealedexe.seal_copy(str(script)) is None
    assert sealedexe.seal_copy(str(tmp_path / "missing")) is None
    assert sealedexe.SealedRuntimes([str(script), str(tmp_path / "missing")]).fds() == {}


def test_a_changed_binary_is_copied_again(tmp_path):
    binary = tmp_path / "rt"
    shutil.copy(TRUE, binary)
    sealed = sealedexe.SealedRuntimes([str(binary)])
    first = sealed.fds()[str(binary)]
    sealed.refresh()
    assert sealed.fds() == {str(binary): first}  # unchanged: the same copy
    shutil.copy(FALSE, tmp_path / "new")
    os.replace(tmp_path / "new", binary)  # as a package upgrade replaces it
    sealed.refresh()
    fd = sealed.fds()[str(binary)]
    with open(FALSE, "rb") as f:
        assert read_all(fd) == f.read()
    binary.unlink()
    sealed.refresh()
    assert sealed.fds() == {}
