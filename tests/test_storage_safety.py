"""Storage safety: nothing lost, nothing foreign deleted, no host secret imported.

Each test attacks one guarantee of docs/storage-model.md ("What rbdvm guarantees about your
data") on the lab's real Ceph, as another tool, a crash or a hostile image would.
"""

import pytest
from lab_helpers import (base_xml, boot_disk, force_remove, qcow2, rbdtool, rbdvm, rbdvm_error,
                         rbdvm_json, read_bytes, unique, write_bytes)
from labkit import ops

pytestmark = pytest.mark.lab
MiB = 1 << 20


@pytest.fixture
def src():
    """A stopped VM with one data disk holding 0x21 bytes; every VM named c*/f* with the
    same length (its clones) is removed afterwards."""
    name = unique("src")
    d0 = qcow2(f"{name}-d0.qcow2", "16M", [(0, MiB, 0x21)])
    rbdvm("create", "--disabled", name, "--image", boot_disk(), "--xml", base_xml(name), "-d", d0)
    yield name
    for vm in [v["name"] for v in rbdvm_json("list")]:
        if vm != name and vm.startswith(("c", "f")) and len(vm) == 9:
            force_remove(vm)
    force_remove(name)


# ------------------------------------------------------------------ R1 clone bases
@pytest.mark.parametrize("full", [False, True], ids=["cow", "full"])
def test_a_clone_never_starts_from_an_older_clones_base_snapshot(src, full):
    """clone b; clone a; remove a; write the source; clone a again: the new a holds the
    source as it is now (the old base snapshot of a must not be reused)."""
    a, b = unique("c"), unique("c")
    mode = ["--full"] if full else []
    rbdvm("clone", "--disabled", src, b)           # the source's disks now have clones
    rbdvm("clone", "--disabled", *mode, src, a)
    rbdvm("remove", a)
    snaps = ops.rbd("node1", "snap", "ls", f"rbd/data_{src}_0")
    assert f"rbdvm-clone-{a}" not in snaps, "the removed clone's base snapshot is gone with it"
    write_bytes(f"data_{src}_0", 0, 0x55, 4096)
    rbdvm("clone", "--disabled", *mode, src, a)
    assert read_bytes(f"data_{a}_0", 0, 2) == b"\x55\x55", "the clone holds the source as it is now"
    assert read_bytes(f"data_{b}_0", 0, 2) == b"\x21\x21", "the other clone is untouched"


# ------------------------------------------------------------------ S2, S3 snapshots
def test_an_interrupted_group_snapshot_is_redone_not_adopted(src):
    """Killed inside librbd's group snapshot create: the group records the snapshot as
    incomplete and rbdvm never noted its time. Re-running the command must not report it
    created as it is; it redoes it, and the result rolls back."""
    rbdvm("snapshot", "create", src, "s1")
    rbdtool("group-snap-incomplete", src, "s1")
    rbdvm("metadata", "get", src, "_snapshot_s1")
    ops.rbd("node1", "image-meta", "remove", f"rbd/system_{src}", "_snapshot_s1")
    listed = {s["name"]: s for s in rbdvm_json("snapshot", "list", src)}
    assert listed["s1"]["complete"] is False
    rbdvm("snapshot", "create", src, "s1")
    listed = {s["name"]: s for s in rbdvm_json("snapshot", "list", src)}
    assert listed["s1"]["complete"] is True, "a re-run leaves a complete snapshot"
    write_bytes(f"data_{src}_0", 0, 0x66, 4096)
    rbdvm("snapshot", "rollback", src, "s1")
    assert read_bytes(f"data_{src}_0", 0, 2) == b"\x21\x21"


def test_a_per_disk_snapshot_missing_on_a_disk_is_incomplete_and_not_rolled_back(src):
    """vm_manager-style per-disk snapshots, made by hand on the system disk only: rollback
    would restore one disk and leave the other at head. It refuses, naming the missing disk."""
    ops.rbd("node1", "snap", "create", f"rbd/system_{src}@half")
    listed = {s["name"]: s for s in rbdvm_json("snapshot", "list", src)}
    assert listed["half"]["complete"] is False and listed["half"]["disks"] == [f"system_{src}"]
    msg = rbdvm_error(4, "snapshot", "rollback", src, "half")
    assert "incomplete" in msg and f"data_{src}_0" in msg
    ops.rbd("node1", "snap", "create", f"rbd/data_{src}_0@half")
    assert {s["name"]: s for s in rbdvm_json("snapshot", "list", src)}["half"]["complete"] is True
    rbdvm("snapshot", "rollback", src, "half")
