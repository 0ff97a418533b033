"""The image store without a daemon: import, tag, rmi rules, prune, save/load round trips
and hostile or broken archives, on the vfs driver."""

import io
import json
import os
import tarfile

import pytest

from berth.errors import Conflict, InvalidParameter, NotFound
from images_unit_helpers import (FakeContainer, docker_archive, image_config, make_tar,
                                 oci_archive, sha, simple_layer)


def load(engine, data, quiet=True):
    messages = []
    engine.image_ops.load(io.BytesIO(data), messages.append, quiet)
    return messages


def streams(messages):
    return [m["stream"] for m in messages if "stream" in m]


def import_one(engine, tag="test:1", layer=None, changes=()):
    return engine.image_ops.import_image(io.BytesIO(layer or simple_layer()), *tag.split(":"),
                                         list(changes), "")


def leftovers(engine):
    """Layers, driver dirs and load temp dirs that exist now."""
    images = engine.images
    return (sorted(l.chain_id for l in images.layers.layers()), sorted(images.driver.list()),
            os.listdir(images.tmp_root))


def test_import_tags_and_events(engine):
    image = import_one(engine, changes=['CMD ["sh"]', "LABEL k=v"])
    assert image.config["Cmd"] == ["sh"] and image.config["Labels"] == {"k": "v"}
    assert engine.images.get("test:1").id == image.id
    assert engine.images.get(image.id[7:19]).id == image.id
    actions = [(t, a) for t, a, _ in engine.actions()]
    assert actions == [("image", "tag"), ("image", "import")]
    assert engine.actions()[1][2] == {"k": "v", "name": image.id}  # labels + name, as moby
    with pytest.raises(InvalidParameter, match="must be lowercase"):
        engine.images.get("UPPER")
    with pytest.raises(NotFound, match="No such image: nope:latest"):
        engine.images.get("nope")


def test_rmi_untag_delete_and_conflicts(engine):
    image = import_one(engine)
    engine.image_ops.tag_image("test:1", "other", "2")
    # Two repositories: by ID needs force; by tag just untags.
    with pytest.raises(Conflict, match=f"unable to delete {image.id[7:19]} \\(must be forced\\) - "
                                       "image is referenced in multiple repositories"):
        engine.image_ops.remover.remove(image.id[7:19])
    assert engine.image_ops.remover.remove("other:2") == [{"Untagged": "other:2"}]
    # A container on it: the last tag is protected, a running one blocks even force.
    engine.containers.items.append(FakeContainer("c" * 64, image.id, running=True))
    with pytest.raises(Conflict, match='unable to remove repository reference "test:1" \\(must '
                                       f"force\\) - container cccccccccccc is using its referenced "
                                       f"image {image.id[7:19]}"):
        engine.image_ops.remover.remove("test:1")
    with pytest.raises(Conflict, match="\\(cannot be forced\\) - image is being used by running "
                                       "container cccccccccccc"):
        engine.image_ops.remover.remove(image.id, force=True)
    engine.containers.items[0].running = False
    with pytest.raises(Conflict, match="\\(must be forced\\) - image is being used by stopped"):
        engine.image_ops.remover.remove(image.id)
    engine.containers.items.clear()
    records = engine.image_ops.remover.remove("test:1")
    assert records[:2] == [{"Untagged": "test:1"}, {"Deleted": image.id}]
    assert records[2]["Deleted"] == image.diff_ids[0]  # the layer went too
    assert leftovers(engine) == ([], [], [])


def test_parent_with_children_is_kept_quietly(engine):
    base = import_one(engine, "base:1")
    child_doc = dict(base.document)
    layer = engine.images.layers.register(io.BytesIO(simple_layer("child")), base.top_layer)
    child_doc["rootfs"] = {"type": "layers", "diff_ids": base.diff_ids + [layer.diff_id]}
    child = engine.images.create_image(child_doc, parent=base.id)
    engine.images.layers.release(layer.chain_id)
    engine.images.tag(child, "child:1")
    assert engine.image_ops.remover.remove("base:1") == [{"Untagged": "base:1"}]
    assert engine.images.exists(base.id)  # now intermediate: hidden, not deleted
    listed = engine.image_ops.list_images(False, {})
    assert [i["Id"] for i in listed] == [child.id]
    assert {i["Id"] for i in engine.image_ops.list_images(True, {})} == {base.id, child.id}
    with pytest.raises(Conflict, match="image has dependent child images"):
        engine.image_ops.remover.remove(base.id, force=True)
    records = engine.image_ops.remover.remove("child:1")  # prune takes the parent along
    assert {"Deleted": base.id} in records and {"Deleted": child.id} in records
    assert leftovers(engine) == ([], [], [])


def test_list_filters(engine):
    first = import_one(engine, "a:1", changes=["LABEL tier=web"])
    second = import_one(engine, "b:1", simple_layer("other"))
    dangling = import_one(engine, "c:1", simple_layer("third"))
    engine.images.untag("c:1")
    ids = lambda **f: [i["Id"] for i in engine.image_ops.list_images(False, {k: v for k, v in f.items()})]
    assert ids(dangling=["true"]) == [dangling.id]
    assert set(ids(dangling=["false"])) == {first.id, second.id}
    assert ids(label=["tier=web"]) == [first.id]
    assert ids(reference=["a*"]) == [first.id]
    assert ids(since=["a:1"]) == [dangling.id, second.id]
    assert ids(before=["b:1"]) == [first.id]
    summary = engine.image_ops.list_images(False, {"reference": ["a:1"]})[0]
    assert summary["RepoTags"] == ["a:1"] and summary["Containers"] == -1
    assert summary["Size"] == engine.images.size_of(first.id) > 0


def test_prune_dangling_then_all(engine):
    kept = import_one(engine, "keep:1")
    dangling = import_one(engine, "gone:1", simple_layer("other"))
    engine.images.untag("gone:1")
    report = engine.image_ops.pruner.prune({})
    assert {"Deleted": dangling.id} in report["ImagesDeleted"]
    assert report["SpaceReclaimed"] > 0
    assert engine.images.exists(kept.id)
    engine.containers.items.append(FakeContainer("d" * 64, kept.id))
    assert engine.image_ops.pruner.prune({"dangling": ["false"]}) == {"ImagesDeleted": None,
                                                                      "SpaceReclaimed": 0}
    engine.containers.items.clear()
    report = engine.image_ops.pruner.prune({"dangling": ["false"], "label!": ["nothing"]})
    assert {"Untagged": "keep:1"} in report["ImagesDeleted"]
    assert leftovers(engine) == ([], [], [])
    assert engine.actions()[-1][:2] == ("image", "prune")


def test_save_load_round_trip_keeps_ids(engine):
    base = import_one(engine, "rt:1")
    engine.image_ops.tag_image("rt:1", "rt", "2")
    data = b"".join(engine.image_ops.save(["rt"]))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = set(tar.getnames())
        manifest = json.load(tar.extractfile("manifest.json"))
        index = json.load(tar.extractfile("index.json"))
        layer = tar.extractfile(f"blobs/sha256/{base.diff_ids[0][7:]}").read()
    assert {"manifest.json", "index.json", "oci-layout", "repositories"} <= names
    assert sha(layer) == base.diff_ids[0]  # the original tar, byte for byte
    assert manifest[0]["Config"] == f"blobs/sha256/{base.id[7:]}"
    assert sorted(manifest[0]["RepoTags"]) == ["rt:1", "rt:2"]
    assert {m["annotations"]["io.containerd.image.name"] for m in index["manifests"]} == \
        {"docker.io/library/rt:1", "docker.io/library/rt:2"}
    engine.image_ops.remover.remove(base.id, force=True)
    assert leftovers(engine) == ([], [], [])
    out = streams(load(engine, data))
    assert sorted(out) == ["Loaded image: rt:1\n", "Loaded image: rt:2\n"]
    assert engine.images.get("rt:1").id == base.id


def test_load_gzip_docker_archive_and_untagged(engine):
    data = docker_archive([simple_layer(), simple_layer("b")], [], compress=True)
    out = streams(load(engine, data, quiet=False))
    image_id = engine.images.all()[0].id
    assert out == [f"Loaded image ID: {image_id}\n"]
    assert len(engine.images.layers.layers()) == 2


def test_load_progress_when_not_quiet(engine):
    messages = load(engine, docker_archive([simple_layer()], ["p:1"]), quiet=False)
    progress = [m for m in messages if m.get("status") == "Loading layer"]
    assert progress and progress[-1]["progressDetail"]["current"] == progress[-1]["progressDetail"]["total"]
    # structured progress only: the API's writer renders the "progress" text (api.framing)
    assert all(list(m) == ["status", "progressDetail", "id"] and len(m["id"]) == 12 for m in progress)


def test_load_oci_layout_nested_index(engine):
    data, config_id = oci_archive([simple_layer()], "localhost:5000/app:v1", nested_index=True)
    assert streams(load(engine, data)) == ["Loaded image: localhost:5000/app:v1\n"]
    assert engine.images.get("localhost:5000/app:v1").id == config_id
    data, config_id = oci_archive([simple_layer("z")], "v1")  # a bare tag names nothing
    assert streams(load(engine, data)) == [f"Loaded image ID: {config_id}\n"]


def test_load_retag_message(engine):
    load(engine, docker_archive([simple_layer()], ["same:1"]))
    old = engine.images.get("same:1").id
    out = streams(load(engine, docker_archive([simple_layer("x")], ["same:1"])))
    assert out[0] == f"The image same:1 already exists, renaming the old one with ID {old} to empty string\n"


@pytest.mark.parametrize("name,archive,message", [
    ("no manifest", make_tar([("x", b"1")]), "does not contain a manifest.json"),
    ("null manifest", make_tar([("manifest.json", b"null")]), "manifest cannot be null"),
    ("escaping entry", make_tar([("../../evil", b"x")]), "is outside of the archive"),
    ("wrong diff id", docker_archive([simple_layer()], ["bad:1"],
                                     config=image_config(["sha256:" + "1" * 64])), "diff ID mismatch"),
    ("layer count", docker_archive([simple_layer()], ["bad:1"],
                                   config=image_config([])), "layers length mismatch"),
    ("hostile layer", docker_archive([make_tar([("../../../escaped", b"x")])], ["bad:1"]),
     "invalid entry name"),
    ("windows", docker_archive([simple_layer()], ["bad:1"],
                               config=image_config([sha(simple_layer())], os="windows")),
     "cannot load windows image on linux"),
])
def test_bad_archives_fail_cleanly(engine, name, archive, message):
    with pytest.raises(InvalidParameter) as info:
        load(engine, archive)
    assert message in info.value.message, name
    assert engine.images.all() == [] and engine.images.lookup_tag("docker.io/library/bad:1") is None
    assert leftovers(engine) == ([], [], [])


def test_hostile_layer_writes_nothing_outside(engine, tmp_path):
    target = tmp_path / "escaped"
    layer = make_tar([("link", str(tmp_path), "sym"), ("link/escaped", b"x"),
                      ("/" + str(target).lstrip("/") + "2", b"y")])
    load(engine, docker_archive([layer], ["hostile:1"]))  # absolute names are root-relative
    assert not target.exists() and not (tmp_path / "escaped2").exists()
    image = engine.images.get("hostile:1")
    root = engine.images.driver.data_dir(engine.images.layers.lookup(image.top_layer).cache_id)
    assert os.path.isfile(os.path.join(root, str(tmp_path).lstrip("/"), "escaped"))


def test_restart_drops_orphans(engine):
    """What a crash between layer commit and image record leaves is gone after restart."""
    images = engine.images
    layer = images.layers.register(io.BytesIO(simple_layer()))  # no image references it
    orphan_config = images.content.put_bytes(image_config([layer.diff_id]))
    os.makedirs(os.path.join(images.tmp_root, "load-crashed"))
    kept = import_one(engine, "kept:1", simple_layer("kept"))
    again = engine.restart()
    engine.holder.append(again)
    assert [l.chain_id for l in again.images.layers.layers()] == kept.chain
    assert not again.images.content.exists(orphan_config)
    assert again.images.content.exists(kept.id)
    assert os.listdir(again.images.tmp_root) == []
    assert again.images.get("kept:1").id == kept.id
