"""The backup and restore operations' decisions over the scripted environment (tests/unit/
scripted.py: an in-memory model of librbd, not Ceph): full then incremental, the snapshot
kept and released, what a restore refuses before writing, and re-runs after a stop at each
checkpoint. The lab runs the same operations on real Ceph, libvirt and Pacemaker
(tests/system/test_backup.py) and stays the proof."""

import json
import os

import pytest
from scripted import BASE_XML, cut

from rbdvm.helpers.core import backupset, vmschema
from rbdvm.helpers.core.errors import RbdvmError
from rbdvm.helpers.ops import backup, creation, restore

pytestmark = [pytest.mark.unit, pytest.mark.requires("python:rados", "python:rbd", "python:libvirt")]


def code_of(fn, *args, **kw) -> str:
    with pytest.raises(RbdvmError) as exc:
        fn(*args, **kw)
    return exc.value.code


def backup_snaps(env):
    return [s.name for s in env.session.store.images["system_vm1"].snaps if s.name.startswith("backup-")]


def later(env, seconds):
    """The clock moved on (backup ids are to the second)."""
    from datetime import timedelta

    now = env.now() + timedelta(seconds=seconds)
    env.now = lambda: now


def test_a_stopped_vm_is_backed_up_full_then_incrementally_keeping_only_the_newest_snapshot(env, vm, tmp_path):
    first = backup.backup(env, vm, str(tmp_path))
    assert (first["kind"], first["consistency"]["level"]) == ("full", backupset.OFFLINE)
    assert first["why_full"] == "the directory holds no whole backup of the VM signed by this cluster"
    env.session.store.images["system_vm1"].content = b"B" * 4096
    later(env, 1)
    second = backup.backup(env, vm, str(tmp_path))
    assert (second["kind"], second["parent"]) == ("incremental", first["id"])
    assert backup_snaps(env) == [second["snapshot"]] and second["released"] == [first["snapshot"]]
    listed = backup.list_backups(env, str(tmp_path))
    assert [(b["id"], b["ok"], b["signed"]) for b in listed["backups"]] == [
        (first["id"], True, "signed"), (second["id"], True, "signed")]
    assert backup.backup(env, vm, str(tmp_path), full=True)["kind"] == "full"


def test_a_backup_stopped_at_each_step_leaves_no_whole_looking_backup_and_a_rerun_converges(
        env, vm, tmp_path, monkeypatch):
    backup.backup(env, vm, str(tmp_path))
    for step in ("backup:snapshot", "backup:disk", "backup:committed"):
        later(env, 5)
        before = len(backup.list_backups(env, str(tmp_path))["backups"])
        cut(monkeypatch, step, backup.backup, env, vm, str(tmp_path))
        listed = backup.list_backups(env, str(tmp_path))
        assert all(b["ok"] for b in listed["backups"])
        assert len(listed["backups"]) == before + (step == "backup:committed")
        later(env, 5)
        done = backup.backup(env, vm, str(tmp_path))
        assert backup_snaps(env) == [done["snapshot"]]
        assert backup.list_backups(env, str(tmp_path))["interrupted"] == {}


def test_a_vm_whose_definition_this_cluster_did_not_sign_is_not_backed_up(env, vm, tmp_path):
    md = env.session.store.images["system_vm1"].metadata
    md[vmschema.XML] = md[vmschema.XML].replace("<vcpu", "<!-- x --><vcpu")
    assert code_of(backup.backup, env, vm, str(tmp_path)) == "UNTRUSTED"
    assert not (tmp_path / "vm1").exists() and backup_snaps(env) == []


def test_restore_as_a_new_vm_rebuilds_the_content_with_a_new_identity_signed_here(env, vm, tmp_path):
    first = backup.backup(env, vm, str(tmp_path))
    env.session.store.images["system_vm1"].content = b"B" * 4096
    later(env, 1)
    backup.backup(env, vm, str(tmp_path))
    r = restore.restore(env, str(tmp_path), vm, as_name="vm2", at=first["id"])
    assert r["chain"] == [first["id"]] and r["new_identity"]
    assert env.session.store.images["system_vm2"].content[:4096] == b"A" * 4096
    md = env.session.store.images["system_vm2"].metadata
    assert vmschema.STATE not in md and json.loads(md[vmschema.RESTORED_FROM])["backup"] == first["id"]
    assert r["uuid"] != backup.list_backups(env, str(tmp_path))["backups"][0]["uuid"]
    r = restore.restore(env, str(tmp_path), vm, as_name="vm3")
    assert env.session.store.images["system_vm3"].content[:4096] == b"B" * 4096


def images(env):
    return set(env.session.store.images)


def test_restore_refuses_before_writing_anything(env, vm, tmp_path):
    first = backup.backup(env, vm, str(tmp_path))
    later(env, 1)
    second = backup.backup(env, vm, str(tmp_path))
    before = images(env)
    assert code_of(restore.restore, env, str(tmp_path), vm) == "VM_EXISTS"
    manifest = tmp_path / "vm1" / first["id"] / "manifest.json"
    m = json.loads(manifest.read_text())
    m["metadata"]["k"] = "v"
    manifest.write_text(json.dumps(m))
    assert code_of(restore.restore, env, str(tmp_path), vm, as_name="vm2") == "BACKUP_BROKEN"  # parent digest
    assert code_of(restore.restore, env, str(tmp_path), vm, as_name="vm2", at=first["id"]) == "UNTRUSTED"
    os.unlink(manifest)
    assert code_of(restore.restore, env, str(tmp_path), vm, as_name="vm2", at=second["id"]) == "BACKUP_BROKEN"
    assert code_of(restore.restore, env, str(tmp_path), vm, as_name="vm2", at="20990101T000000Z") == \
        "BACKUP_NOT_FOUND"
    assert images(env) == before


@pytest.mark.parametrize("step", ["restore:images", "restore:disk", "restore:commit"])
def test_restore_stopped_at_each_step_converges_when_run_again(env, vm, tmp_path, monkeypatch, step):
    backup.backup(env, vm, str(tmp_path))
    cut(monkeypatch, step, restore.restore, env, str(tmp_path), vm, as_name="vm2")
    # what it left is no VM another command may take over
    assert code_of(restore.restore, env, str(tmp_path), vm, as_name="vm2", at="20990101T000000Z") == \
        "BACKUP_NOT_FOUND"
    restore.restore(env, str(tmp_path), vm, as_name="vm2")
    md = env.session.store.images["system_vm2"].metadata
    assert vmschema.STATE not in md and vmschema.RESTORING not in md
    assert env.session.store.images["system_vm2"].content[:4096] == b"A" * 4096


def test_in_place_restore_keeps_the_uuid_and_replaces_a_disabled_vm_only_when_forced(env, vm, tmp_path):
    from rbdvm.helpers.core import domainxml

    uuid = domainxml.stored_uuid(env.session.store.images["system_vm1"].metadata[vmschema.XML])
    backup.backup(env, vm, str(tmp_path))
    env.session.store.images["system_vm1"].content = b"C" * 4096
    r = restore.restore(env, str(tmp_path), vm, force=True)
    assert r["uuid"] == uuid and not r["new_identity"]
    assert env.session.store.images["system_vm1"].content[:4096] == b"A" * 4096


def test_prune_keeps_the_newest_points_and_their_chains(env, vm, tmp_path):
    ids = []
    for i in range(4):
        later(env, 1)
        ids.append(backup.backup(env, vm, str(tmp_path), full=i == 2)["id"])
    assert code_of(backup.prune, env, str(tmp_path), 0) == "INVALID_INPUT"
    r = backup.prune(env, str(tmp_path), 1)
    assert r["removed"] == [f"vm1/{ids[1]}", f"vm1/{ids[0]}"] and r["kept"] == [f"vm1/{ids[2]}", f"vm1/{ids[3]}"]
    assert [b["id"] for b in backup.list_backups(env, str(tmp_path))["backups"]] == ids[2:]


def test_a_snapshot_a_killed_backup_left_under_the_same_name_is_never_exported(env, vm, tmp_path):
    """A backup killed after snapshotting some disks, re-run within the same second: the new
    backup takes a name of its own, never the stale snapshot (of some disks, of an earlier
    instant), and releases it."""
    stale = "backup-" + backupset.new_id(env.now(), [])
    with env.session.rbd.Image(env.session.ioctx, "system_vm1") as img:
        img.create_snap(stale)
    env.session.store.images["system_vm1"].content = b"N" * 4096     # written since
    r = backup.backup(env, vm, str(tmp_path))
    assert r["snapshot"] != stale and backup_snaps(env) == [r["snapshot"]]
    restore.restore(env, str(tmp_path), vm, as_name="vm2")
    assert env.session.store.images["system_vm2"].content[:4096] == b"N" * 4096


def test_a_restore_killed_right_after_claiming_the_name_is_finished_by_the_next(env, vm, tmp_path):
    from rbdvm.helpers.ceph import vmstore

    backup.backup(env, vm, str(tmp_path))
    vmstore.mark_making(env.session, "vm2", True)      # claimed, the system disk made: then killed
    env.session.rbd.RBD().create(env.session.ioctx, "system_vm2", 1 << 20)
    restore.restore(env, str(tmp_path), vm, as_name="vm2")
    assert env.session.store.images["system_vm2"].content[:4096] == b"A" * 4096


def test_a_uefi_vm_is_restored_with_its_variables_in_a_store_of_its_own(env, image, tmp_path):
    from scripted import UEFI_BASE_XML

    from rbdvm.helpers.core import domainxml

    creation.create(env, "vm1", image, UEFI_BASE_XML)
    store = env.session.store
    store.images["nvram_vm1"].content = b"V" * 4096          # the guest wrote its variables
    made = backup.backup(env, "vm1", str(tmp_path))
    assert [d["role"] for d in made["disks"]] == ["system", "nvram"]
    restore.restore(env, str(tmp_path), "vm1", as_name="vm2")
    assert store.images["nvram_vm2"].content[:4096] == b"V" * 4096
    assert vmschema.NVRAM_ORIGIN in store.images["nvram_vm2"].metadata
    root = domainxml.parse(store.images["system_vm2"].metadata[vmschema.XML])
    assert domainxml.nvram_image_of(root) == "rbd/nvram_vm2"


def test_a_vm_running_outside_the_cluster_is_not_backed_up_at_several_instants(env, image, tmp_path):
    creation.create(env, "vm1", image, BASE_XML, data_images=[image])
    env.session.store.images["system_vm1"].watchers.append({"addr": "10.0.0.9:0/1"})
    assert code_of(backup.backup, env, "vm1", str(tmp_path)) == "VM_RUNNING"
    assert backup_snaps(env) == []


def test_a_snapshot_finished_by_a_rerun_says_its_consistency_is_unknown(env, vm, monkeypatch):
    from rbdvm.helpers.ops import snapshots

    assert snapshots.create_snapshot(env, vm, "s0")["consistency"]["level"] == backupset.OFFLINE
    cut(monkeypatch, "snapshot:created", snapshots.create_snapshot, env, vm, "s1")
    assert snapshots.create_snapshot(env, vm, "s1")["consistency"]["level"] == "unknown"
