"""Create-time HostConfig defaults and refusals (engine/containers/config.py)."""

import pytest

from berth.engine.containers import config as cconfig
from berth.errors import InvalidParameter


def test_shm_size_zero_takes_the_daemon_default_and_negative_is_refused():
    assert cconfig.normalise_host_config({"ShmSize": 0}, default_shm_size=1 << 25)["ShmSize"] == 1 << 25
    assert cconfig.normalise_host_config({})["ShmSize"] == 64 << 20
    assert cconfig.normalise_host_config({"ShmSize": 4096})["ShmSize"] == 4096
    with pytest.raises(InvalidParameter, match="SHM size can not be less than 0"):
        cconfig.normalise_host_config({"ShmSize": -1})


def test_storage_opt_is_refused_with_dockerds_text():
    cconfig.check_storage_opt({"StorageOpt": {}}, "overlay2")
    with pytest.raises(InvalidParameter, match="supported only for overlay over xfs with 'pquota'"):
        cconfig.check_storage_opt({"StorageOpt": {"size": "1G"}}, "overlay2")
    with pytest.raises(InvalidParameter, match="not supported by the vfs storage driver"):
        cconfig.check_storage_opt({"StorageOpt": {"size": "1G"}}, "vfs")


@pytest.mark.parametrize("host_config, message", [
    ({"Isolation": "hyperv"}, "Invalid isolation: \"hyperv\" - linux only supports 'default'"),
    ({"DeviceRequests": [{"Driver": "", "Count": -1, "Capabilities": [["gpu"]]}]},
     r'could not select device driver "" with capabilities: \[\[gpu\]\]'),
    ({"DeviceRequests": [{"Driver": "nvidia", "Capabilities": [["utility", "gpu"], ["compute"]]}]},
     r'could not select device driver "nvidia" with capabilities: \[\[utility gpu\] \[compute\]\]'),
])
def test_what_linux_or_this_engine_cannot_give_is_refused(host_config, message):
    with pytest.raises(InvalidParameter, match=message):
        cconfig.check_create({}, host_config)
    cconfig.check_create({}, {"Isolation": "default", "DeviceRequests": []})
