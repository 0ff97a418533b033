"""Registry credentials as the docker CLI keeps them: config.json's ``auths`` (base64
``user:password``, identity tokens) and ``docker-credential-*`` helpers (store, get, erase
over stdin/stdout), and the X-Registry-Auth header made from them."""

import base64
import json
import os
import stat
import sys

import pytest

from berth.client import credentials as creds
from berth.cli.registryauth import encode_auth

HELPER = '''#!{python}
import json, os, sys
path = os.environ["FAKE_HELPER_STORE"]
data = json.load(open(path)) if os.path.exists(path) else {{}}
action, payload = sys.argv[1], sys.stdin.read()
if action == "store":
    entry = json.loads(payload)
    data[entry["ServerURL"]] = entry
elif action == "get":
    if payload.strip() not in data:
        print("credentials not found in native keychain"); sys.exit(1)
    print(json.dumps(data[payload.strip()]))
elif action == "erase":
    data.pop(payload.strip(), None)
json.dump(data, open(path, "w"))
'''


@pytest.fixture
def helper(tmp_path, monkeypatch):
    program = tmp_path / "docker-credential-fake"
    program.write_text(HELPER.format(python=sys.executable))
    program.chmod(program.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_HELPER_STORE", str(tmp_path / "store.json"))
    return tmp_path / "store.json"


def test_file_store_round_trip():
    config = {}
    assert creds.store(config, "127.0.0.1:5000", creds.Credentials("u", "p", "127.0.0.1:5000"))
    assert config["auths"]["127.0.0.1:5000"] == {"auth": base64.b64encode(b"u:p").decode()}
    got = creds.get(config, "127.0.0.1:5000")
    assert (got.username, got.password) == ("u", "p")
    header = json.loads(base64.urlsafe_b64decode(encode_auth(config, "127.0.0.1:5000")))
    assert header == {"username": "u", "password": "p", "serveraddress": "127.0.0.1:5000"}
    creds.store(config, "reg", creds.Credentials("u", "p", "reg", identity_token="refresh"))
    assert config["auths"]["reg"] == {"auth": base64.b64encode(b"u:").decode(), "identitytoken": "refresh"}
    creds.erase(config, "127.0.0.1:5000")
    assert "127.0.0.1:5000" not in config["auths"]
    assert encode_auth(config, "127.0.0.1:5000") == base64.urlsafe_b64encode(b"{}").decode()


def test_keys_and_legacy_entries():
    assert creds.registry_key("docker.io") == creds.INDEX_SERVER
    assert creds.registry_key("https://127.0.0.1:5000/v2/") == "127.0.0.1:5000"
    config = {"auths": {"https://127.0.0.1:5000": {"auth": base64.b64encode(b"a:b").decode()}}}
    assert creds.get(config, "127.0.0.1:5000").username == "a"


def test_helper_store_get_erase(helper):
    config = {"credsStore": "fake"}
    assert not creds.store(config, "127.0.0.1:5000", creds.Credentials("u", "p", "127.0.0.1:5000"))
    assert json.loads(helper.read_text())["127.0.0.1:5000"] == {
        "ServerURL": "127.0.0.1:5000", "Username": "u", "Secret": "p"}
    assert config["auths"] == {"127.0.0.1:5000": {}}  # docker keeps an empty entry
    got = creds.get(config, "127.0.0.1:5000")
    assert (got.username, got.password) == ("u", "p")
    creds.store(config, "tok", creds.Credentials("u", "", "tok", identity_token="r"))
    assert creds.get(config, "tok").identity_token == "r"
    assert creds.get(config, "elsewhere").username == ""  # "credentials not found"
    creds.erase(config, "127.0.0.1:5000")
    assert "127.0.0.1:5000" not in json.loads(helper.read_text())


def test_cred_helpers_per_registry(helper):
    config = {"credHelpers": {"127.0.0.1:5000": "fake"}}
    creds.store(config, "127.0.0.1:5000", creds.Credentials("u", "p", "127.0.0.1:5000"))
    assert "127.0.0.1:5000" in json.loads(helper.read_text())
    assert creds.helper_for(config, "other") == ""


def test_missing_helper_is_an_error(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(creds.CredentialsError, match='exec: "docker-credential-gone"'):
        creds.store({"credsStore": "gone"}, "r", creds.Credentials("u", "p", "r"))
