"""Healthcheck rules (pure): probe commands, intervals, results, durations, merge, validation."""

import pytest

from berth.engine.containers import health
from berth.engine.containers.config import merge_healthcheck, merge_image_config
from berth.errors import InvalidParameter
from berth.timeutil import rfc3339_nano
from berth.units import go_duration_string

S = health.SECOND


def test_probe_command_kinds():
    assert health.probe_command({"Healthcheck": {"Test": ["CMD", "true", "x"]}}) == ["true", "x"]
    assert health.probe_command({"Healthcheck": {"Test": ["CMD-SHELL", "exit 1"]}}) == \
        ["/bin/sh", "-c", "exit 1"]
    assert health.probe_command({"Shell": ["/bin/ash", "-e", "-c"],
                                 "Healthcheck": {"Test": ["CMD-SHELL", "x"]}}) == \
        ["/bin/ash", "-e", "-c", "x"]
    assert health.probe_command({"Healthcheck": {"Test": ["NONE"]}}) is None
    assert health.probe_command({"Healthcheck": None}) is None
    assert health.probe_command({}) is None
    assert health.probe_command({"Healthcheck": {"Test": ["CMD"]}}) == []


def test_defaults_and_intervals():
    opts = health.settings({"Healthcheck": {"Test": ["CMD", "true"]}})
    assert opts == {"interval": 30 * S, "timeout": 30 * S, "start_period": 0,
                    "start_interval": 5 * S, "retries": 3}
    opts = health.settings({"Healthcheck": {"Interval": 2 * S, "StartPeriod": 10 * S,
                                            "StartInterval": S // 2, "Retries": 0}})
    assert opts["retries"] == 3
    assert health.next_interval(opts, "starting", 1 * S) == S // 2
    assert health.next_interval(opts, "healthy", 1 * S) == 2 * S
    assert health.next_interval(opts, "starting", 10 * S) == 2 * S


def _result(code, start_ns, output=""):
    return {"Start": rfc3339_nano(start_ns), "End": rfc3339_nano(start_ns + 1000),
            "ExitCode": code, "Output": output}


def test_record_result_streak_status_and_log_of_five():
    started = 1_700_000_000 * S
    opts = {"interval": S, "timeout": S, "start_period": 0, "start_interval": S, "retries": 2}
    h = health.new_health()
    assert health.record_result(h, _result(1, started + S), opts, started) is None
    assert h["FailingStreak"] == 1 and h["Status"] == "starting"
    assert health.record_result(h, _result(1, started + 2 * S), opts, started) == "unhealthy"
    assert health.record_result(h, _result(1, started + 3 * S), opts, started) is None
    assert h["FailingStreak"] == 3
    assert health.record_result(h, _result(0, started + 4 * S), opts, started) == "healthy"
    assert h["FailingStreak"] == 0
    for i in range(5):
        health.record_result(h, _result(0, started + (5 + i) * S, str(i)), opts, started)
    assert len(h["Log"]) == 5 and h["Log"][-1]["Output"] == "4"


def test_failures_in_the_start_period_do_not_count_until_a_success():
    started = 1_700_000_000 * S
    opts = {"interval": S, "timeout": S, "start_period": 10 * S, "start_interval": S, "retries": 1}
    h = health.new_health()
    assert health.record_result(h, _result(1, started + 2 * S), opts, started) is None
    assert h["FailingStreak"] == 0 and h["Status"] == "starting"
    assert health.record_result(h, _result(0, started + 3 * S), opts, started) == "healthy"
    # once healthy, the start period no longer protects
    assert health.record_result(h, _result(1, started + 4 * S), opts, started) == "unhealthy"
    # and after the start period a starting container fails normally
    h2 = health.new_health()
    assert health.record_result(h2, _result(1, started + 11 * S), opts, started) == "unhealthy"


def test_go_duration():
    assert go_duration_string(30 * S) == "30s"
    assert go_duration_string(90 * S) == "1m30s"
    assert go_duration_string(3600 * S) == "1h0m0s"
    assert go_duration_string(1500 * 1_000_000) == "1.5s"
    assert go_duration_string(500 * 1_000_000) == "500ms"
    assert go_duration_string(1_000_000) == "1ms"
    assert go_duration_string(1500) == "1.5µs"
    assert go_duration_string(0) == "0s"


def test_limited_buffer():
    buf = health.LimitedBuffer(5)
    buf.write(b"abc")
    assert buf.text() == "abc"
    buf.write(b"defg")
    assert buf.text() == "abcde..."


def test_validate_texts():
    health.validate({"Test": ["CMD", "x"], "Interval": 0, "Retries": 0})
    with pytest.raises(InvalidParameter, match="^Interval in Healthcheck cannot be less than 1ms$"):
        health.validate({"Interval": 1000})
    with pytest.raises(InvalidParameter, match="^Timeout in Healthcheck"):
        health.validate({"Timeout": 5})
    with pytest.raises(InvalidParameter, match="^StartPeriod in Healthcheck"):
        health.validate({"StartPeriod": 5})
    with pytest.raises(InvalidParameter, match="^StartInterval in Healthcheck"):
        health.validate({"StartInterval": 5})
    with pytest.raises(InvalidParameter, match="^Retries in Healthcheck cannot be negative$"):
        health.validate({"Retries": -1})


def test_merge_with_the_image_field_by_field():
    image = {"Test": ["CMD-SHELL", "check"], "Interval": 5 * S, "Retries": 4}
    assert merge_healthcheck(None, image) == image
    merged = merge_healthcheck({"Interval": 2 * S}, image)
    assert merged == {"Test": ["CMD-SHELL", "check"], "Interval": 2 * S, "Retries": 4}
    assert merge_healthcheck({"Test": ["NONE"]}, image)["Test"] == ["NONE"]
    config = merge_image_config({"Image": "x", "Healthcheck": {"Timeout": 3 * S}},
                                {"Cmd": ["sh"], "Healthcheck": image})
    assert config["Healthcheck"]["Test"] == ["CMD-SHELL", "check"]
    assert config["Healthcheck"]["Timeout"] == 3 * S
