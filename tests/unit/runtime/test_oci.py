import pytest

from berth.errors import InvalidParameter, NotFound
from berth.runtime import oci
from rt_support import needs_runc


def test_runc_error_message_picks_last_error():
    out = (b'{"level":"warning","msg":"w","time":"t"}\n'
           b'{"level":"error","msg":"runc create failed: boom","time":"t"}\n'
           b'runc create failed: boom\n')
    assert oci.runc_error_message(out) == "runc create failed: boom"
    assert oci.runc_error_message("plain failure\n") == "plain failure"


@pytest.mark.parametrize("msg, code, status, tail", [
    ('runc create failed: unable to start container process: exec: "nope": executable file not found in $PATH',
     127, 400, 'exec: "nope": executable file not found in $PATH: unknown'),
    ('runc create failed: unable to start container process: exec: "/etc/x": permission denied', 126, 400,
     "permission denied: unknown"),
    ('exec: "/etc": is a directory', 126, 400, "is a directory: unknown: permission denied"),
    ("error mounting: not a directory", 127, 400, "Check if the specified host path exists and is the expected type"),
    ("something else broke", 128, 500, "something else broke: unknown"),
])
def test_start_errors_map_to_docker(msg, code, status, tail):
    err = oci.make_start_error(msg)
    assert err.exit_code == code and err.status == status and err.message.endswith(tail)
    assert err.message.startswith("failed to create task for container: failed to create shim task: "
                                  "OCI runtime create failed: ")
    assert isinstance(err, InvalidParameter)


def test_exec_error_prefix():
    err = oci.make_start_error('exec failed: unable to start container process: exec: "x": executable file '
                               'not found in $PATH', "exec")
    assert err.message.startswith("OCI runtime exec failed: exec failed:") and err.exit_code == 127


@needs_runc
def test_runtime_errors_carry_runc_message(tmp_path):
    rt = oci.Runtime(root=str(tmp_path / "runc"))
    with pytest.raises(NotFound, match="container does not exist"):
        rt.state("nope")
    assert rt.list() == []
    bad = oci.Runtime(binary="/nonexistent/runc", root=str(tmp_path / "r2"))
    with pytest.raises(oci.OCIRuntimeError, match="not found"):
        bad.list()


@needs_runc
def test_runtime_drives_a_container_directly(env):
    import os
    import signal
    import time

    from berth.runtime import spec as specmod
    cid = env.new_id()
    bundle = os.path.join(env.base, "direct-" + cid[:8])
    sp = specmod.build_spec({"Cmd": ["sh", "-c", "echo direct; sleep 30"]}, {}, container_id=cid,
                            rootfs=env.rootfs, cgroup_parent=env.cgroup_parent)
    oci.write_bundle(bundle, sp)
    r, w = os.pipe()
    try:
        env.runtime.create(cid, bundle, os.path.join(bundle, "init.pid"), stdio=(0, w, w))
        os.close(w)
        assert env.runtime.state(cid)["status"] == "created"
        env.runtime.start(cid)
        assert os.read(r, 100) == b"direct\n"
        proc = specmod.build_exec_process(sp, {"Cmd": ["nope"]})
        with open(os.path.join(bundle, "p.json"), "w") as f:
            import json
            json.dump(proc, f)
        with pytest.raises(oci.StartError) as e:
            env.runtime.exec(cid, os.path.join(bundle, "p.json"), os.path.join(bundle, "p.pid"))
        assert e.value.exit_code == 127
        env.runtime.kill(cid, signal.SIGKILL)
        for _ in range(100):
            if env.runtime.state(cid)["status"] == "stopped":
                break
            time.sleep(0.05)
        env.runtime.delete(cid)
        with pytest.raises(NotFound):
            env.runtime.delete(cid)
    finally:
        os.close(r)
        try:
            env.runtime.delete(cid, force=True)
        except NotFound:
            pass
