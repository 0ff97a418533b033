"""Reference grammar and normalisation, checked against distribution/reference's own cases."""

import time

import pytest

from berth.distribution import reference as r
from berth.errors import InvalidParameter

FF64 = "f" * 64
DIGEST = "sha256:" + FF64


@pytest.mark.parametrize(
    "text,name,domain,tag,digest",
    [
        ("test_com", "test_com", "", None, None),
        ("test.com:tag", "test.com", "", "tag", None),
        ("test.com:5000", "test.com", "", "5000", None),
        ("test.com/repo:tag", "test.com/repo", "test.com", "tag", None),
        ("test:5000/repo", "test:5000/repo", "test:5000", None, None),
        ("test:5000/repo@" + DIGEST, "test:5000/repo", "test:5000", None, DIGEST),
        ("test:5000/repo:tag@" + DIGEST, "test:5000/repo", "test:5000", "tag", DIGEST),
        ("lowercase:Uppercase", "lowercase", "", "Uppercase", None),
        ("a/" * 127 + "a:tag-puts-this-over-max", "a/" * 127 + "a", "a", "tag-puts-this-over-max", None),
        ("sub-dom1.foo.com/bar/baz/quux:some-long-tag", "sub-dom1.foo.com/bar/baz/quux", "sub-dom1.foo.com", "some-long-tag", None),
        ("b.gcr.io/test.example.com/my-app:test.example.com", "b.gcr.io/test.example.com/my-app", "b.gcr.io", "test.example.com", None),
        ("foo_bar.com:8080", "foo_bar.com", "", "8080", None),
        ("foo/foo_bar.com:8080", "foo/foo_bar.com", "foo", "8080", None),
        ("192.168.1.1:5000/repo:5050", "192.168.1.1:5000/repo", "192.168.1.1:5000", "5050", None),
        ("[2001:db8::1]/repo", "[2001:db8::1]/repo", "[2001:db8::1]", None, None),
        ("[2001:db8::1]:5000/repo:tag@" + DIGEST, "[2001:db8::1]:5000/repo", "[2001:db8::1]:5000", "tag", DIGEST),
        ("[::1]:5000/repo", "[::1]:5000/repo", "[::1]:5000", None, None),
        ("example.com/" + "a" * 255 + ":tag", "example.com/" + "a" * 255, "example.com", "tag", None),
    ],
)
def test_parse_valid(text, name, domain, tag, digest):
    ref = r.parse(text)
    assert str(ref) == text
    assert ref.name == name
    assert ref.domain == domain
    assert ref.tag == tag
    assert ref.digest == digest


@pytest.mark.parametrize(
    "text,message",
    [
        ("", "repository name must have at least one component"),
        (":justtag", "invalid reference format"),
        ("@" + DIGEST, "invalid reference format"),
        ("repo@sha256:" + "f" * 34, "invalid checksum digest length"),
        ("validname@invaliddigest:" + FF64, "unsupported digest algorithm"),
        ("repo@sha256:" + "F" * 64, "invalid checksum digest format"),
        ("Uppercase:tag", "repository name must be lowercase"),
        ("test:5000/Uppercase/lowercase:tag", "repository name must be lowercase"),
        ("domain/" + "a" * 256 + ":tag", "repository name must not be more than 255 characters"),
        ("aa/asdf$$^/aa", "invalid reference format"),
        ("[2001:db8::1]", "invalid reference format"),
        ("[2001:db8::1]:5000", "invalid reference format"),
        ("[fe80::1%eth0]:5000/repo", "invalid reference format"),
    ],
)
def test_parse_errors(text, message):
    with pytest.raises(r.ReferenceError) as exc:
        r.parse(text)
    assert exc.value.message == message
    assert isinstance(exc.value, InvalidParameter) and exc.value.status == 400


@pytest.mark.parametrize(
    "inputs,familiar,full,domain,path",
    [
        (["localhost/fooo"], "localhost/fooo", "localhost/fooo", "localhost", "fooo"),
        (["LOCALDOMAIN/fooo/bar"], "LOCALDOMAIN/fooo/bar", "LOCALDOMAIN/fooo/bar", "LOCALDOMAIN", "fooo/bar"),
        (["fooo/bar", "docker.io/fooo/bar", "index.docker.io/fooo/bar"], "fooo/bar", "docker.io/fooo/bar", "docker.io", "fooo/bar"),
        (["ubuntu", "docker.io/library/ubuntu", "library/ubuntu"], "ubuntu", "docker.io/library/ubuntu", "docker.io", "library/ubuntu"),
        (["docker.io/foo"], "foo", "docker.io/library/foo", "docker.io", "library/foo"),
        (["library/foo/bar"], "library/foo/bar", "docker.io/library/foo/bar", "docker.io", "library/foo/bar"),
        (["127.0.0.1:8000/private/moonbase"], "127.0.0.1:8000/private/moonbase", "127.0.0.1:8000/private/moonbase", "127.0.0.1:8000", "private/moonbase"),
        (["example.com:8000/privatebasee"], "example.com:8000/privatebasee", "example.com:8000/privatebasee", "example.com:8000", "privatebasee"),
        (["localhost:5000/x"], "localhost:5000/x", "localhost:5000/x", "localhost:5000", "x"),
        (["Foo/bar"], "Foo/bar", "Foo/bar", "Foo", "bar"),
    ],
)
def test_normalized_names(inputs, familiar, full, domain, path):
    for text in inputs:
        ref = r.parse_normalized_named(text)
        assert str(ref) == full
        assert r.familiar_name(ref) == familiar
        assert ref.domain == domain and ref.path == path


def test_normalized_invalid_names():
    for bad in [
        "https://github.com/docker/docker", "docker/Docker", "-docker", "-docker/docker",
        "docker///docker", "docker.io/docker/Docker", "[fc00::1]:5000", "fc00::1:5000/debian",
        "docker-/docker", "____/____", "dock..er/docker", "dock_.er/docker", "docker/",
        "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
    ]:
        with pytest.raises(r.ReferenceError):
            r.parse_normalized_named(bad)
    for good in ["docker-rules/docker", "docker---rules/docker", "d/docker", "jess/t",
                 "dock__er/docker", "192.168.0.1", "[fc00::1]:5000/docker",
                 "docker.io/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a"]:
        r.parse_normalized_named(good)


def test_docker_error_wording():
    with pytest.raises(r.ReferenceError) as exc:
        r.parse_normalized_named("Busybox")
    assert exc.value.message == "invalid reference format: repository name (library/Busybox) must be lowercase"
    with pytest.raises(r.ReferenceError) as exc:
        r.parse_normalized_named("busybox:bad tag")
    assert exc.value.message == "invalid reference format"
    hexid = "a" * 64
    with pytest.raises(r.ReferenceError) as exc:
        r.parse_normalized_named(hexid)
    assert exc.value.message == f"invalid repository name ({hexid}), cannot specify 64-byte hexadecimal strings"


def test_tag_and_digest_together():
    short = "busybox:latest@sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa"
    ref = r.parse_normalized_named(short)
    assert str(ref) == "docker.io/library/" + short
    assert r.familiar_string(ref) == short
    docker_ref = r.parse_docker_ref(short)
    assert docker_ref.tag is None and docker_ref.digest == ref.digest
    assert str(r.parse_docker_ref("busybox")) == "docker.io/library/busybox:latest"
    assert str(r.parse_docker_ref("busybox:1.36")) == "docker.io/library/busybox:1.36"


def test_parse_any_reference():
    hexid = "b" * 64
    assert r.parse_any_reference(hexid).digest == "sha256:" + hexid
    assert not r.parse_any_reference(hexid).is_named
    assert r.parse_any_reference(DIGEST).digest == DIGEST
    assert str(r.parse_any_reference("redis:latest")) == "docker.io/library/redis:latest"
    # A short "sha256:abc" is a name with a tag, as in Go.
    assert str(r.parse_any_reference("sha256:abc")) == "docker.io/library/sha256:abc"


def test_parse_named_requires_canonical():
    assert str(r.parse_named("docker.io/library/busybox")) == "docker.io/library/busybox"
    with pytest.raises(r.ReferenceError, match="repository name must be canonical"):
        r.parse_named("busybox")


def test_with_helpers():
    ref = r.parse_normalized_named("busybox")
    assert ref.is_name_only
    assert str(r.with_tag(ref, "v1")) == "docker.io/library/busybox:v1"
    with pytest.raises(r.ReferenceError, match="invalid tag format"):
        r.with_tag(ref, "-foo")
    with pytest.raises(r.ReferenceError, match="invalid digest format"):
        r.with_digest(ref, "foo")
    both = r.with_digest(r.with_tag(ref, "v1"), DIGEST)
    assert str(both) == f"docker.io/library/busybox:v1@{DIGEST}"
    assert str(r.trim_named(both)) == "docker.io/library/busybox"
    assert str(r.tag_name_only(ref)) == "docker.io/library/busybox:latest"
    assert str(r.with_name("localhost:5000/x")) == "localhost:5000/x"
    with pytest.raises(r.ReferenceError):
        r.with_name("UPPER/Case")


def test_familiar_match():
    ref = r.parse_normalized_named("busybox:latest")
    assert r.familiar_match("busy*", ref)
    assert r.familiar_match("busybox:*", ref)
    assert not r.familiar_match("*/busybox", ref)
    other = r.parse_normalized_named("localhost:5000/team/app:1")
    assert r.familiar_match("localhost:5000/*/app", other)
    assert not r.familiar_match("localhost:5000/*", other)


def test_check_taggable():
    with pytest.raises(r.ReferenceError, match="refusing to create a tag with a digest reference"):
        r.check_taggable(r.parse_normalized_named("busybox@" + DIGEST))
    with pytest.raises(r.ReferenceError, match="ambiguous tag using digest algorithm as name"):
        r.check_taggable(r.parse_normalized_named("sha256:sometag"))
    r.check_taggable(r.parse_normalized_named("fooo/bar:t"))


def test_ids():
    hexid = "0123456789ab" + "c" * 52
    assert r.is_full_id(hexid) and not r.is_full_id("sha256:" + hexid)
    assert r.truncate_id("sha256:" + hexid) == "0123456789ab"
    assert r.truncate_id("abc") == "abc"
    assert r.is_short_id("0123456789ab") and not r.is_short_id("0123456789aB")
    assert r.to_digest_id(hexid) == "sha256:" + hexid
    assert r.to_digest_id("sha256:" + hexid) == "sha256:" + hexid
    with pytest.raises(r.ReferenceError):
        r.to_digest_id("sha256:xyz")
    assert r.strip_algorithm("sha256:" + hexid) == hexid
    for _ in range(50):
        new = r.generate_random_id()
        assert r.is_full_id(new) and not new[:12].isdigit()
    assert r.looks_like_id_prefix("sha256:0123") and not r.looks_like_id_prefix("xyz")


def test_digest_validation():
    assert r.is_digest(DIGEST)
    assert r.is_digest("sha512:" + "a" * 128)
    assert not r.is_digest("sha256:" + "a" * 63)
    assert not r.is_digest("sha256")


def test_pathological_input_is_fast():
    start = time.monotonic()
    for text in ["a" + "-" * 3000 + "!", "a." * 2000 + "!", "a/" * 2000 + "A", "x" * 10000]:
        with pytest.raises(r.ReferenceError):
            r.parse(text)
    assert time.monotonic() - start < 2
