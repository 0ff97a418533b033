"""The pure parts of berth.distribution: manifests and indexes (limits, schema 1, kinds),
platforms (parsing, normalising, choosing from an index), challenges and token requests."""

import base64
import hashlib
import json
import time

import pytest

from berth.distribution import auth, manifest, mediatypes as mt, platform
from berth.errors import InvalidParameter, NotFound


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


CONFIG = json.dumps({"os": "linux", "architecture": "arm64",
                     "rootfs": {"type": "layers", "diff_ids": [_digest(b"tar")]}}).encode()
LAYER = {"mediaType": mt.DOCKER_LAYER, "digest": _digest(b"gz"), "size": 2}


def _manifest(**extra) -> bytes:
    document = {"schemaVersion": 2, "mediaType": mt.DOCKER_MANIFEST,
                "config": {"mediaType": mt.DOCKER_CONFIG, "digest": _digest(CONFIG), "size": len(CONFIG)},
                "layers": [LAYER]}
    document.update(extra)
    return json.dumps(document).encode()


# -- manifests ------------------------------------------------------------------------------
def test_docker_manifest_parses_with_its_digest():
    data = _manifest()
    parsed = manifest.parse(data)
    assert isinstance(parsed, manifest.ImageManifest)
    assert parsed.media_type == mt.DOCKER_MANIFEST
    assert parsed.digest == _digest(data)
    assert parsed.layers[0].short == _digest(b"gz")[7:19]


def test_kind_from_content_type_then_shape():
    data = json.dumps({"schemaVersion": 2, "manifests": []}).encode()
    assert isinstance(manifest.parse(data), manifest.ImageIndex)
    no_type = json.loads(_manifest())
    del no_type["mediaType"]
    parsed = manifest.parse(json.dumps(no_type).encode(), mt.OCI_MANIFEST + "; charset=utf-8")
    assert parsed.media_type == mt.OCI_MANIFEST


def test_schema1_is_refused_with_dockers_words():
    data = json.dumps({"schemaVersion": 1, "name": "x", "tag": "y", "fsLayers": []}).encode()
    with pytest.raises(manifest.Schema1Error) as caught:
        manifest.parse(data, mt.DOCKER_SCHEMA1_SIGNED, "docker.io/library/old:1")
    assert caught.value.message.startswith(
        "Docker Image Format v1 and Docker Image manifest version 2, schema 1 support has been "
        "removed. Suggest the author of docker.io/library/old:1 to upgrade the image")


def test_limits_and_malformed_documents():
    with pytest.raises(manifest.ManifestError, match="manifest too large"):
        manifest.parse(b" " * (manifest.MAX_MANIFEST_SIZE + 1))
    for bad in (b"[]", b"{not json", json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                                                  "config": {"digest": "sha256:zz", "size": 1}}).encode(),
                _manifest(layers=[{"mediaType": mt.DOCKER_LAYER, "digest": LAYER["digest"], "size": -1}])):
        with pytest.raises(InvalidParameter):
            manifest.parse(bad)


def test_config_is_verified_and_checked():
    document = manifest.parse_config(CONFIG, _digest(CONFIG))
    assert manifest.diff_ids_of(document) == [_digest(b"tar")]
    with pytest.raises(manifest.ManifestError, match="digest mismatch"):
        manifest.parse_config(CONFIG + b" ", _digest(CONFIG))


def test_plugins_and_unknown_layers_are_refused():
    plugin = manifest.parse(_manifest(config={"mediaType": mt.DOCKER_PLUGIN_CONFIG,
                                              "digest": _digest(b"p"), "size": 1}))
    with pytest.raises(manifest.ManifestError, match="plugin"):
        manifest.check_image_manifest(plugin)
    odd = manifest.parse(_manifest(layers=[dict(LAYER, mediaType="application/x-weird")]))
    with pytest.raises(manifest.ManifestError, match="unsupported media type"):
        manifest.check_image_manifest(odd)
    foreign = manifest.parse(_manifest(layers=[dict(LAYER, mediaType=mt.DOCKER_FOREIGN_LAYER,
                                                    urls=["https://example/x"])]))
    manifest.check_image_manifest(foreign)
    assert mt.is_foreign(foreign.layers[0].media_type) and foreign.layers[0].urls


def test_build_manifest_round_trips():
    config = manifest.Descriptor(mt.DOCKER_CONFIG, _digest(CONFIG), len(CONFIG))
    layer = manifest.Descriptor(mt.DOCKER_LAYER, _digest(b"gz"), 2)
    data = manifest.build_manifest(mt.DOCKER_MANIFEST, config, [layer])
    parsed = manifest.parse(data)
    assert parsed.config == config and parsed.layers == (layer,)
    assert list(json.loads(data)) == ["schemaVersion", "mediaType", "config", "layers"]


def test_media_type_equivalents():
    assert mt.docker_equivalent(mt.OCI_LAYER_GZIP) == mt.DOCKER_LAYER
    assert mt.oci_equivalent(mt.DOCKER_LAYER) == mt.OCI_LAYER_GZIP
    assert mt.compression_of(mt.OCI_LAYER_ZSTD) == "zstd"
    assert mt.compression_of(mt.OCI_LAYER) == "none"


# -- platforms ----------------------------------------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ("linux/amd64", "linux/amd64"), ("linux/x86_64", "linux/amd64"), ("linux/aarch64", "linux/arm64"),
    ("linux/arm64/v8", "linux/arm64"), ("linux/arm", "linux/arm/v7"), ("linux/armhf", "linux/arm/v7"),
    ("Linux/ARM64", "linux/arm64"), ("linux/386", "linux/386"), ("arm64", "linux/arm64"),
])
def test_platform_parse_and_normalise(text, expected):
    assert str(platform.parse(text)) == expected


@pytest.mark.parametrize("text", ["linux/", "a/b/c/d", "nonsense", "linux/*"])
def test_platform_parse_refusals(text):
    with pytest.raises(InvalidParameter):
        platform.parse(text)


def _entry(os_, arch, variant=""):
    value = {"os": os_, "architecture": arch}
    if variant:
        value["variant"] = variant
    return {"mediaType": mt.OCI_MANIFEST, "digest": _digest(f"{os_}{arch}{variant}".encode()),
            "size": 1, "platform": value}


def test_choose_prefers_the_exact_variant_and_falls_back_to_compatible_ones():
    entries = [_entry("linux", "arm", "v6"), _entry("linux", "arm", "v7"), _entry("linux", "amd64")]
    assert platform.choose(entries, platform.parse("linux/arm/v7")) is entries[1]
    assert platform.choose(entries[:1], platform.parse("linux/arm/v7")) is entries[0]
    assert platform.choose(entries, platform.parse("linux/amd64")) is entries[2]
    assert platform.choose([_entry("linux", "amd64", "v3")], platform.parse("linux/amd64"))
    with pytest.raises(NotFound) as caught:
        platform.choose(entries[:2], platform.parse("linux/amd64"))
    assert caught.value.message == "no matching manifest for linux/amd64 in the manifest list entries"
    with pytest.raises(NotFound):
        platform.choose([_entry("windows", "amd64")], platform.parse("linux/amd64"))


def test_host_is_linux():
    assert platform.host().os == "linux"


# -- auth ---------------------------------------------------------------------------------------
def test_challenges_with_quotes_commas_and_several_schemes():
    found = auth.parse_challenges([
        'Bearer realm="https://auth.example/token",service="registry.example",'
        'scope="repository:a/b:pull,push",error="insufficient_scope"',
        'Basic realm="Registry \\"Realm\\""'])
    assert [c.scheme for c in found] == ["bearer", "basic"]
    assert found[0].params == {"realm": "https://auth.example/token", "service": "registry.example",
                               "scope": "repository:a/b:pull,push", "error": "insufficient_scope"}
    assert found[1].params["realm"] == 'Registry "Realm"'
    assert auth.parse_challenges(['Basic realm="x", Bearer realm="y"'])[1].params == {"realm": "y"}


def test_token_requests():
    challenge = auth.Challenge("bearer", {"realm": "https://a/token", "service": "reg"})
    anonymous = auth.token_request(challenge, ["repository:x:pull"], auth.AuthConfig())
    assert (anonymous.method, anonymous.headers) == ("GET", {})
    assert anonymous.url == "https://a/token?service=reg&scope=repository%3Ax%3Apull"
    user = auth.token_request(challenge, ["repository:x:pull", "repository:y:pull"],
                              auth.AuthConfig("u", "p"), offline=True)
    assert user.url.startswith("https://a/token?account=u&client_id=docker&offline_token=true")
    assert user.url.count("scope=") == 2
    assert user.headers["Authorization"] == "Basic " + base64.b64encode(b"u:p").decode()
    refresh = auth.token_request(challenge, ["repository:x:pull"], auth.AuthConfig(identity_token="r1"))
    assert refresh.method == "POST" and b"grant_type=refresh_token" in refresh.body


def test_token_responses_and_cache():
    token = auth.parse_token_response(b'{"token": "t", "expires_in": 5}', now=100)
    assert (token.token, token.expires_at) == ("t", 160)
    assert auth.parse_token_response(b'{"access_token": "a", "refresh_token": "r"}').refresh_token == "r"
    with pytest.raises(ValueError):
        auth.parse_token_response(b'{"nothing": 1}')
    cache = auth.TokenCache(margin=0)
    key = ("realm", "svc", "s", "u", "1")
    cache.put(key, auth.Token("t", time.time() + 100))
    assert cache.get(key).token == "t"
    cache.put(key, auth.Token("old", time.time() - 1))
    assert cache.get(key) is None


def test_auth_config_from_json_decodes_auth_field():
    config = auth.AuthConfig.from_json({"auth": base64.b64encode(b"u:p:x").decode(),
                                        "serveraddress": "r"})
    assert (config.username, config.password, config.server_address) == ("u", "p:x", "r")
    assert auth.AuthConfig.from_json(None).empty
