import pytest

from berth.errors import InvalidParameter
from berth.runtime import caps

HOST = caps.caps_from_mask(0x1FFFEFFFFFF)  # this host's CapBnd: all but CAP_SYS_RESOURCE


def test_default_set_is_dockers_mask():
    assert caps.mask_from_caps(caps.DEFAULT_CAPABILITIES) == 0xA80425FB


def test_host_bounding_set_excludes_sys_resource():
    assert "CAP_SYS_RESOURCE" not in HOST
    assert "CAP_CHECKPOINT_RESTORE" in HOST
    assert caps.mask_from_caps(HOST) == 0x1FFFEFFFFFF


def test_read_bounding_mask(tmp_path):
    status = tmp_path / "status"
    status.write_text("Name:\tx\nCapBnd:\t00000000a80425fb\n")
    assert caps.read_bounding_mask(str(status)) == 0xA80425FB


def test_privileged_is_host_set_not_all():
    assert caps.effective_capabilities(None, None, True, HOST) == HOST


def test_add_and_drop_normalize_names():
    got = caps.effective_capabilities(["net_admin", "CAP_SYS_PTRACE"], ["chown", "Kill"], False, HOST)
    assert "CAP_NET_ADMIN" in got and "CAP_SYS_PTRACE" in got
    assert "CAP_CHOWN" not in got and "CAP_KILL" not in got
    assert "CAP_SETUID" in got


def test_drop_all_keeps_only_adds():
    assert caps.effective_capabilities(["NET_BIND_SERVICE"], ["ALL"], False, HOST) == ["CAP_NET_BIND_SERVICE"]


def test_add_all_minus_drops():
    got = caps.effective_capabilities(["ALL"], ["MKNOD"], False, HOST)
    assert "CAP_MKNOD" not in got and "CAP_SYS_ADMIN" in got and "CAP_SYS_RESOURCE" not in got


def test_unknown_and_unavailable_capability_errors():
    with pytest.raises(InvalidParameter, match='unknown capability: "CAP_BOGUS"'):
        caps.effective_capabilities(["bogus"], None, False, HOST)
    with pytest.raises(InvalidParameter, match="not available in the current environment"):
        caps.effective_capabilities(["SYS_RESOURCE"], None, False, HOST)
