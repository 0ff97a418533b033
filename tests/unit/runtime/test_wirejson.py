import json

import pytest

from berth.runtime import wirejson


def test_roundtrip_matches_json():
    obj = {"op": "exec", "n": [1, 2.5, None, True, False], "s": "é\n\"", "d": {}}
    text = wirejson.dumps(obj)
    assert json.loads(text) == obj and wirejson.loads(text) == obj
    assert wirejson.loads(b' {"a": 1}\n') == {"a": 1}


def test_rejects_garbage():
    for bad in ("", "{", '{"a":1} x', "nope"):
        with pytest.raises(ValueError):
            wirejson.loads(bad)
    with pytest.raises(TypeError):
        wirejson.dumps({"a": object()})
