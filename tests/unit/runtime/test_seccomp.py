import json

import pytest

from berth.errors import InvalidParameter
from berth.runtime import caps, seccomp

DEFAULT_CAPS = list(caps.DEFAULT_CAPABILITIES)


def names(profile):
    out = set()
    for rule in profile["syscalls"]:
        out.update(rule["names"])
    return out


def rule_for(profile, name):
    return [r for r in profile["syscalls"] if name in r["names"]]


def test_default_profile_for_amd64_default_caps():
    p = seccomp.convert_profile(seccomp.default_profile(), DEFAULT_CAPS, "amd64", (6, 18))
    assert p["defaultAction"] == "SCMP_ACT_ERRNO" and p["defaultErrnoRet"] == 1
    assert p["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    assert "archMap" not in p
    for rule in p["syscalls"]:
        assert not {"includes", "excludes", "comment", "name"} & set(rule)
    got = names(p)
    assert {"read", "write", "clone", "arch_prctl"} <= got        # amd64-only rule kept
    assert "mount" not in got and "bpf" not in got                # CAP_SYS_ADMIN / CAP_BPF rules dropped
    assert "s390_pci_mmio_read" not in got and "sync_file_range2" not in got
    clone = rule_for(p, "clone")
    assert len(clone) == 1 and clone[0]["args"][0]["op"] == "SCMP_CMP_MASKED_EQ"
    assert any(r.get("errnoRet") == 38 and "clone3" in r["names"] for r in p["syscalls"])


def test_subarches_the_kernel_cannot_run_are_left_out():
    p = seccomp.convert_profile(seccomp.default_profile(), DEFAULT_CAPS, "amd64", (6, 18),
                                unavailable={"SCMP_ARCH_X32"})
    assert p["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]
    explicit = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X32"]}
    assert seccomp.convert_profile(explicit, DEFAULT_CAPS, unavailable={"SCMP_ARCH_X32"}) == \
        {**explicit, "syscalls": []}  # a profile's own list is the user's choice


def test_x32_probe_agrees_with_the_kernel_config():
    import gzip, os
    if seccomp.native_arch() != "amd64" or not os.path.exists("/proc/config.gz"):
        pytest.skip("needs an x86_64 kernel exposing /proc/config.gz")
    config = gzip.open("/proc/config.gz").read().decode()
    if "CONFIG_X86_X32_ABI=y" in config:
        pytest.skip("x32 built in; it may still be disabled at boot (syscall.x32=n)")
    assert "SCMP_ARCH_X32" in seccomp.unavailable_subarches()


def test_caps_change_the_rules():
    p = seccomp.convert_profile(seccomp.default_profile(), DEFAULT_CAPS + ["CAP_SYS_ADMIN"], "amd64", (6, 18))
    got = names(p)
    assert {"mount", "umount2", "setns", "unshare"} <= got
    assert rule_for(p, "clone")[0].get("args") is None  # unrestricted clone with CAP_SYS_ADMIN
    assert not any(r.get("errnoRet") == 38 for r in p["syscalls"])  # clone3 ENOSYS rule excluded


def test_arm64_and_min_kernel():
    p = seccomp.convert_profile(seccomp.default_profile(), DEFAULT_CAPS, "arm64", (4, 4))
    assert p["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert "arch_prctl" not in names(p)
    # the minKernel 4.8 rule is left out on 4.4 and kept on 4.8
    mk = [r for r in seccomp.default_profile()["syscalls"] if r.get("includes", {}).get("minKernel")]
    assert mk and not set(mk[0]["names"]) <= names(p)
    p48 = seccomp.convert_profile(seccomp.default_profile(), DEFAULT_CAPS, "arm64", (4, 8))
    assert set(mk[0]["names"]) <= names(p48)


def test_custom_profile_json_and_legacy_name():
    custom = json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                         "syscalls": [{"name": "chmod", "action": "SCMP_ACT_ERRNO"}]})
    p = seccomp.seccomp_for(custom, DEFAULT_CAPS, privileged=False)
    assert p == {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                 "syscalls": [{"action": "SCMP_ACT_ERRNO", "names": ["chmod"]}]}


def test_unconfined_privileged_and_errors():
    assert seccomp.seccomp_for("unconfined", DEFAULT_CAPS, False) is None
    assert seccomp.seccomp_for(None, DEFAULT_CAPS, True) is None
    assert seccomp.seccomp_for(None, DEFAULT_CAPS, False)["defaultAction"] == "SCMP_ACT_ERRNO"
    assert seccomp.convert_profile({}, DEFAULT_CAPS) is None
    with pytest.raises(InvalidParameter, match="Decoding seccomp profile failed"):
        seccomp.seccomp_for("{nope", DEFAULT_CAPS, False)
    with pytest.raises(InvalidParameter, match="both 'architectures' and 'archMap'"):
        seccomp.convert_profile({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["x"],
                                 "archMap": [{"architecture": "x"}]}, DEFAULT_CAPS)
    with pytest.raises(InvalidParameter, match="invalid kernel version"):
        seccomp.convert_profile({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["x"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4"}}]}, DEFAULT_CAPS)


def test_shipped_profile_matches_shared_copy():
    import os
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    shared = os.path.join(repo, "..", "shared", "data", "seccomp-default.json")
    if not os.path.exists(shared):
        pytest.skip("no shared data dir")
    assert seccomp.default_profile() == json.load(open(shared))


def test_daemon_wide_profile(tmp_path):
    assert seccomp.daemon_profile(None) is None and seccomp.daemon_profile("builtin") is None
    assert seccomp.daemon_profile("unconfined") == "unconfined"
    mine = tmp_path / "mine.json"
    mine.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}))
    text = seccomp.daemon_profile(str(mine))
    # containers without a setting of their own get the daemon's; privileged ones none
    own = seccomp.seccomp_for(None, DEFAULT_CAPS, False, daemon_default=text)
    assert own["defaultAction"] == "SCMP_ACT_ALLOW"
    assert seccomp.seccomp_for(None, DEFAULT_CAPS, True, daemon_default=text) is None
    assert seccomp.seccomp_for("", DEFAULT_CAPS, False, daemon_default="unconfined") is None
    explicit = seccomp.seccomp_for("builtin", DEFAULT_CAPS, False, daemon_default=text)
    assert explicit["defaultAction"] == "SCMP_ACT_ERRNO"
    assert seccomp.seccomp_for("unconfined", DEFAULT_CAPS, False, daemon_default=text) is None
    with pytest.raises(OSError):
        seccomp.daemon_profile(str(tmp_path / "missing.json"))
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(InvalidParameter, match="Decoding seccomp profile failed"):
        seccomp.daemon_profile(str(tmp_path / "bad.json"))


def test_builtin_profile_is_converted_once_per_capability_set_and_handed_out_as_copies():
    names = lambda p: {n for rule in p["syscalls"] for n in rule["names"]}  # noqa: E731
    plain = seccomp.seccomp_for(None, DEFAULT_CAPS, False)
    admin = seccomp.seccomp_for(None, DEFAULT_CAPS + ["CAP_SYS_ADMIN"], False)
    assert "mount" in names(admin) and "mount" not in names(plain)
    assert seccomp.seccomp_for(None, list(reversed(DEFAULT_CAPS)), False) == plain  # order-free
    plain["syscalls"].clear()
    plain["defaultAction"] = "SCMP_ACT_ALLOW"
    again = seccomp.seccomp_for(None, DEFAULT_CAPS, False)
    assert again["defaultAction"] == "SCMP_ACT_ERRNO" and names(again) == names(
        seccomp.convert_profile(seccomp.default_profile(), DEFAULT_CAPS))
