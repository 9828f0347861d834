"""The storage operations' decisions over a scripted environment (tests/unit/scripted.py: an
in-memory model of librbd/librados, not Ceph): what each refuses, and that re-running it
after a stop at each of its checkpoints converges. The lab tests run the same operations
on real Ceph (tests/system/test_storage_*.py) and stay the proof."""

import pytest
from scripted import BASE_XML, cut, disk_file

from rbdvm.helpers.core import names
from rbdvm.helpers.core.errors import Conflict, NotFound, RbdvmError, Untrusted, UsageError
from rbdvm.helpers.core.vmschema import VmState
from rbdvm.helpers.ops import cloning, creation, disks, inventory, removal, snapshots

pytestmark = [pytest.mark.unit, pytest.mark.requires("python:rados", "python:rbd", "python:libvirt")]


def make(env, image, vm="vm1", **kw):
    return creation.create(env, vm, image, BASE_XML, **kw)


def code_of(fn, *args, **kw) -> str:
    with pytest.raises(RbdvmError) as exc:
        fn(*args, **kw)
    return exc.value.code


# ------------------------------------------------------------------ create
def test_create_makes_a_complete_signed_vm_with_its_disks_in_its_group(env, image, tmp_path):
    data = disk_file(tmp_path, "data.raw", 2 << 20)
    made = make(env, image, data_images=[data])
    assert made["disks"] == ["system_vm1", "data_vm1_0"]
    info = inventory.info(env, "vm1")
    assert (info["state"], info["trust"]) == (VmState.COMPLETE, "signed")
    assert sorted(env.session.store.groups["vm1"]["images"]) == ["data_vm1_0", "system_vm1"]
    assert [d["size"] for d in info["disks"]] == [1 << 20, 2 << 20]


def test_create_refuses_an_existing_vm_unless_forced(env, image):
    make(env, image)
    assert code_of(make, env, image) == "VM_EXISTS"
    before = inventory.info(env, "vm1")["uuid"]
    make(env, image, force=True)
    assert inventory.info(env, "vm1")["uuid"] != before, "replaced"


def test_create_refuses_bad_names_and_reports_every_bad_metadata_key(env, image):
    assert code_of(make, env, image, vm="1vm") == "INVALID_NAME"
    assert code_of(make, env, image, vm="vm-1") == "INVALID_NAME"
    with pytest.raises(UsageError) as exc:
        make(env, image, metadata={"xml": "1", "a b": "2", "ok": "3"})
    assert [p.code for p in exc.value.problems] == ["RESERVED_KEY", "INVALID_NAME"]
    assert env.session.store.images == {}, "nothing made"


def test_create_never_takes_over_an_image_it_did_not_make(env, image, tmp_path):
    rbd_ = env.session.rbd.RBD()
    rbd_.create(env.session.ioctx, "data_vm1_0", 1 << 20)      # another tool's, with a disk's name
    assert code_of(make, env, image, data_images=[disk_file(tmp_path, "d.raw")]) == "IMAGE_TAKEN"
    rbd_.create(env.session.ioctx, "system_vm2", 1 << 20)      # a system disk's name, no rbdvm marker
    assert code_of(make, env, image, vm="vm2") == "NOT_RBDVM"
    assert env.session.store.groups == {} and env.session.store.images["system_vm2"].metadata == {}


def test_create_refuses_a_uuid_another_vm_has(env, image):
    make(env, image)
    uuid = inventory.info(env, "vm1")["uuid"]
    with_uuid = BASE_XML.replace("<name>x</name>", f"<name>x</name><uuid>{uuid}</uuid>")
    with pytest.raises(Conflict, match="already used by VM vm1"):
        creation.create(env, "vm2", image, with_uuid)


@pytest.mark.parametrize("step", ["create:images", "create:group", "create:imported", "create:commit"])
def test_create_stopped_at_any_step_is_finished_by_running_it_again(env, image, monkeypatch, step):
    cut(monkeypatch, step, make, env, image)
    assert inventory.info(env, "vm1")["state"] == VmState.CREATING
    assert code_of(snapshots.create_snapshot, env, "vm1", "s1") == "VM_INCOMPLETE", "an unfinished VM is refused"
    make(env, image)
    assert inventory.info(env, "vm1")["state"] == VmState.COMPLETE
    imported = [i for _, i in env.import_disk.done]
    assert imported == ["system_vm1"], "a disk imported before the stop is not imported again"


# ------------------------------------------------------------------ clone
def test_a_clone_is_copy_on_write_with_a_new_identity(env, image):
    make(env, image, metadata={"owner": "alice"})
    made = cloning.clone(env, "vm1", "vm2")
    assert made["uuid"] != inventory.info(env, "vm1")["uuid"]
    info = inventory.info(env, "vm2")
    assert info["disks"][0]["parent"] == f"system_vm1@{names.clone_base_snapshot('vm2')}"
    assert info["metadata"] == {"owner": "alice"} and info["cloned_from"]["vm"] == "vm1"


def test_clone_refusals(env, image):
    make(env, image)
    make(env, image, vm="vm2")
    assert code_of(cloning.clone, env, "vm1", "vm1") == "INVALID_INPUT"
    assert code_of(cloning.clone, env, "vm1", "vm2") == "VM_EXISTS"
    assert code_of(cloning.clone, env, "nosuch", "vm3") == "VM_NOT_FOUND"


def test_a_source_whose_definition_was_tampered_with_is_not_cloned(env, image):
    make(env, image)
    env.session.store.images["system_vm1"].metadata["xml"] += "<!-- changed -->"
    with pytest.raises(Untrusted):
        cloning.clone(env, "vm1", "vm2")
    assert "vm2" not in env.session.store.groups


@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("step", ["clone:snapshots", "clone:disk", "clone:group", "clone:commit"])
def test_clone_stopped_at_any_step_is_finished_by_running_it_again(env, image, monkeypatch, step, full):
    make(env, image)
    cut(monkeypatch, step, cloning.clone, env, "vm1", "vm2", full=full)
    cloning.clone(env, "vm1", "vm2", full=full)
    info = inventory.info(env, "vm2")
    assert info["state"] == VmState.COMPLETE and info["cloned_from"]["mode"] == ("full" if full else "cow")
    assert (info["disks"][0]["parent"] is None) == full
    assert inventory.info(env, "vm1")["state"] == VmState.COMPLETE, "the source is untouched"


# ------------------------------------------------------------------ remove
def test_remove_takes_every_disk_snapshot_the_group_and_the_lease(env, image, tmp_path):
    make(env, image, data_images=[disk_file(tmp_path, "d.raw")])
    snapshots.create_snapshot(env, "vm1", "s1")
    assert removal.remove(env, "vm1")["removed_disks"] == ["system_vm1", "data_vm1_0"]
    store = env.session.store
    assert (store.images, store.groups, store.objects) == ({}, {}, {})


def test_remove_refusals(env, image):
    make(env, image)
    env.session.open_by("system_vm1")
    assert code_of(removal.remove, env, "vm1") == "VM_RUNNING"
    env.session.store.images["system_vm1"].watchers.clear()
    cloning.clone(env, "vm1", "vm2")
    assert code_of(removal.remove, env, "vm1") == "HAS_CLONES"
    assert code_of(removal.remove, env, "nosuch") == "VM_NOT_FOUND"
    env.session.rbd.RBD().create(env.session.ioctx, "theirs", 1 << 20)
    env.session.rbd.Group(env.session.ioctx, "vm2").add_image(env.session.ioctx, "theirs")
    assert code_of(removal.remove, env, "vm2") == "NOT_RBDVM"
    assert "theirs" in env.session.store.images, "another tool's image is never deleted"


def test_an_enabled_vm_is_not_removed(env, image):
    make(env, image)
    from rbdvm.helpers.ops import lifecycle

    lifecycle.enable(env, "vm1", start=False)
    assert code_of(removal.remove, env, "vm1") == "VM_ENABLED"


@pytest.mark.parametrize("step", ["remove:marked", "remove:disk"])
def test_remove_stopped_at_any_step_is_finished_by_running_it_again(env, image, tmp_path, monkeypatch, step):
    make(env, image, data_images=[disk_file(tmp_path, "d.raw")])
    cut(monkeypatch, step, removal.remove, env, "vm1")
    assert code_of(snapshots.create_snapshot, env, "vm1", "s1") == "VM_INCOMPLETE"
    removal.remove(env, "vm1")
    assert env.session.store.images == {} and env.session.store.groups == {}


# ------------------------------------------------------------------ snapshots
def test_snapshot_create_remove_and_refusals(env, image):
    make(env, image)
    snapshots.create_snapshot(env, "vm1", "s1")
    assert code_of(snapshots.create_snapshot, env, "vm1", "s1") == "SNAPSHOT_EXISTS"
    assert code_of(snapshots.create_snapshot, env, "vm1", "s-1") == "INVALID_NAME"
    assert [s["name"] for s in snapshots.list_snapshots(env, "vm1")] == ["s1"]
    assert code_of(snapshots.remove_snapshot, env, "vm1", "s2") == "SNAPSHOT_NOT_FOUND"
    snapshots.remove_snapshot(env, "vm1", "s1")
    assert snapshots.list_snapshots(env, "vm1") == []


def test_a_snapshot_stopped_after_it_was_taken_is_recorded_by_running_it_again(env, image, monkeypatch):
    make(env, image)
    cut(monkeypatch, "snapshot:created", snapshots.create_snapshot, env, "vm1", "s1")
    assert snapshots.create_snapshot(env, "vm1", "s1")["name"] == "s1", "finished, not refused as existing"
    assert "_snapshot_s1" in env.session.store.images["system_vm1"].metadata


def test_rollback_restores_the_disks_and_the_definition_and_is_refused_while_open(env, image):
    make(env, image)
    snapshots.create_snapshot(env, "vm1", "s1")
    system = env.session.store.images["system_vm1"]
    system.content = "written after s1"
    env.session.open_by("system_vm1")
    assert code_of(snapshots.rollback, env, "vm1", "s1") == "VM_RUNNING"
    system.watchers.clear()
    snapshots.rollback(env, "vm1", "s1")
    assert system.content != "written after s1"


@pytest.mark.parametrize("step", ["rollback:marked"])
def test_a_rollback_stopped_half_way_blocks_the_vm_until_it_is_finished(env, image, monkeypatch, step):
    make(env, image)
    snapshots.create_snapshot(env, "vm1", "s1")
    snapshots.create_snapshot(env, "vm1", "s2")
    cut(monkeypatch, step, snapshots.rollback, env, "vm1", "s1")
    assert code_of(snapshots.create_snapshot, env, "vm1", "s3") == "VM_INCOMPLETE"
    assert code_of(snapshots.rollback, env, "vm1", "s2") == "VM_INCOMPLETE", "only the pending rollback"
    snapshots.rollback(env, "vm1", "s1")
    assert inventory.info(env, "vm1")["state"] == VmState.COMPLETE


def test_purge_keeps_what_clones_hang_on_and_refuses_unclear_choices(env, image):
    make(env, image)
    for s in ("a", "b", "c"):
        snapshots.create_snapshot(env, "vm1", s)
    assert code_of(snapshots.purge, env, "vm1") == "INVALID_INPUT"
    assert code_of(snapshots.purge, env, "vm1", oldest=-1) == "INVALID_INPUT"
    assert snapshots.purge(env, "vm1", oldest=2, dry_run=True)["removed"] == ["a", "b"]
    assert [s["name"] for s in snapshots.list_snapshots(env, "vm1")] == ["a", "b", "c"], "a dry run removes nothing"
    assert snapshots.purge(env, "vm1", oldest=2)["removed"] == ["a", "b"]
    assert [s["name"] for s in snapshots.list_snapshots(env, "vm1")] == ["c"]


# ------------------------------------------------------------------ disks
def test_disks_add_resize_remove_and_their_refusals(env, image):
    make(env, image)
    assert disks.add(env, "vm1", size=4 << 20)["disk"] == "data_vm1_0"
    assert code_of(disks.resize, env, "vm1", "data_vm1_0", 1 << 20) == "SHRINK_REFUSED"
    assert disks.resize(env, "vm1", "data_vm1_0", 8 << 20)["changed"] is True
    assert code_of(disks.resize, env, "vm1", "data_vm1_9", 8 << 20) == "DISK_NOT_FOUND"
    assert code_of(disks.remove, env, "vm1", "system_vm1") == "CONFLICT"
    env.session.open_by("system_vm1")
    env.session.open_by("data_vm1_0")      # a QEMU run by hand holds every disk of its VM open
    assert code_of(disks.remove, env, "vm1", "data_vm1_0") == "VM_RUNNING"
    for d in ("system_vm1", "data_vm1_0"):
        env.session.store.images[d].watchers.clear()
    disks.remove(env, "vm1", "data_vm1_0")
    assert "data_vm1_0" not in env.session.store.images
    assert "data_vm1_0" not in env.session.store.images["system_vm1"].metadata["xml"]


@pytest.mark.parametrize("step", ["disk:image", "disk:group"])
def test_a_disk_add_stopped_at_any_step_finishes_the_same_disk(env, image, monkeypatch, step):
    make(env, image)
    cut(monkeypatch, step, disks.add, env, "vm1", size=4 << 20)
    assert disks.add(env, "vm1", size=4 << 20)["disk"] == "data_vm1_0", "the same disk, not a second one"
    assert sorted(env.session.store.images) == ["data_vm1_0", "system_vm1"]


def test_a_disk_removal_stopped_after_the_definition_forgets_it_is_finished(env, image, monkeypatch):
    make(env, image)
    disks.add(env, "vm1", size=4 << 20)
    cut(monkeypatch, "disk:unreferenced", disks.remove, env, "vm1", "data_vm1_0")
    assert "data_vm1_0" not in env.session.store.images["system_vm1"].metadata["xml"]
    disks.remove(env, "vm1", "data_vm1_0")
    assert "data_vm1_0" not in env.session.store.images


def test_info_of_nothing_and_of_another_tools_image(env):
    assert code_of(inventory.info, env, "vm1") == "VM_NOT_FOUND"
    env.session.rbd.RBD().create(env.session.ioctx, "system_vm1", 1 << 20)
    with pytest.raises(Conflict) as exc:
        inventory.info(env, "vm1")
    assert exc.value.code == "NOT_RBDVM"
    with pytest.raises(NotFound):
        snapshots.list_snapshots(env, "vm2")
