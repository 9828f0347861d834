"""Interrupted commands converge when re-run; one command at a time per VM (the lease)."""

import subprocess
import time

import pytest

from labkit import node as labnode
from labkit import ops
from labkit.procs import wait_for
from labkit.testing import (
    FILES,
    PYTHON,
    RBDTOOL,
    SHORT_LEASE,
    base_xml,
    boot_disk,
    force_remove,
    killed_at,
    qcow2,
    rbdvm,
    rbdvm_error,
    rbdvm_json,
    read_bytes,
    rerun,
    unique,
)

pytestmark = [pytest.mark.lab, pytest.mark.side_by_side]
MiB = 1 << 20
def state(vm):
    """The VM's state as `list` reports it (bulk reads of the headers), checked against
    `info` (librbd, one image at a time)."""
    row = {v["name"]: v for v in rbdvm_json("list")}.get(vm)
    if row is None:
        return "absent"
    info = rbdvm_json("info", vm)
    assert (row["state"], row["disks"], row["uuid"]) == (info["state"], len(info["disks"]), info["uuid"])
    return row["state"]


@pytest.mark.parametrize("step", ["create:images", "create:group", "create:imported", "create:commit"])
def test_create_killed_at_any_step_completes_when_rerun(step):
    vm = unique()
    d0 = qcow2(f"{vm}-d0.qcow2", "32M", [(0, MiB, 0x5A)])
    args = ["create", "--disabled", vm, "--image", boot_disk(), "--xml", base_xml(vm), "-d", d0, "-m", "owner=alice"]
    try:
        killed_at(step, *args)
        assert state(vm) == "creating", "a half-created VM is shown as such"
        assert "only partly created" in rbdvm_error(4, "snapshot", "list", vm)
        rerun(*args)                                   # the same command, no --force
        assert state(vm) == "complete"
        assert read_bytes(f"data_{vm}_0", 0, 2) == b"\x5a\x5a"
        assert rbdvm("metadata", "get", vm, "owner").stdout.strip() == "alice"
        assert "_imported" not in rbdvm_json("metadata", "list", vm, "--all")
    finally:
        force_remove(vm)


def test_create_killed_during_the_import_itself():
    """Killed while its import holds the system disk open: the killed client's watch lingers
    in Ceph (its watch timeout, 30 s), and the same command run again waits for it to go
    instead of refusing as if the VM ran."""
    vm = unique()
    img = qcow2(f"{vm}.qcow2", "256M", [(0, 96 * MiB, 0x6B)])
    args = ["create", "--disabled", vm, "--image", img, "--xml", base_xml(vm)]
    proc = subprocess.Popen(labnode.enter("node1") + ["env", *[f"{k}={v}" for k, v in SHORT_LEASE.items()],
                                                      "rbdvm", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # killed only once the import has the disk open (killed any earlier, nothing lingers)
        assert wait_for(30, lambda: ops.watchers("node1", f"system_{vm}"), 0.02)
        proc.kill()
        proc.wait()
        rerun(*args)
        assert read_bytes(f"system_{vm}", 96 * MiB - 2, 4) == b"\x6b\x6b\x00\x00"
    finally:
        force_remove(vm)


@pytest.fixture
def src():
    vm = unique("src")
    rbdvm("create", "--disabled", vm, "--image", boot_disk(), "--xml", base_xml(vm),
          "-d", qcow2(f"{vm}-d0.qcow2", "16M", [(0, MiB, 0x3C)]))
    yield vm
    force_remove(vm)


@pytest.mark.parametrize("full", [False, True], ids=["cow", "full"])
@pytest.mark.parametrize("step", ["clone:snapshots", "clone:disk", "clone:group", "clone:commit"])
def test_clone_killed_at_any_step_completes_and_the_source_is_intact(src, step, full):
    dst = unique("c")
    args = ["clone", "--disabled", src, dst] + (["--full"] if full else [])
    try:
        killed_at(step, *args)
        assert state(src) == "complete"
        rerun(*args)
        assert state(dst) == "complete"
        assert read_bytes(f"data_{dst}_0", 0, 2) == b"\x3c\x3c"
        assert read_bytes(f"data_{src}_0", 0, 2) == b"\x3c\x3c"
        snaps = ops.rbd("node1", "snap", "ls", f"rbd/data_{src}_0")
        assert (f"rbdvm-clone-{dst}" in snaps) == (not full)
    finally:
        force_remove(dst)


@pytest.mark.parametrize("step", ["remove:marked", "remove:disk"])
def test_remove_killed_then_rerun_cleans_up(src, step):
    rbdvm("snapshot", "create", src, "s1")
    killed_at(step, "remove", src)
    assert state(src) in ("removing", "creating")
    assert "being removed" in rbdvm_error(4, "snapshot", "list", src) or state(src) == "creating"
    rerun("remove", src)
    assert state(src) == "absent"
    assert not [i for i in ops.rbd("node1", "ls").split() if src in i]


def test_snapshot_killed_after_the_group_snapshot_completes_when_rerun(src):
    killed_at("snapshot:created", "snapshot", "create", src, "s1")
    rerun("snapshot", "create", src, "s1")
    snaps = rbdvm_json("snapshot", "list", src)
    assert [s["name"] for s in snaps] == ["s1"] and snaps[0]["time"]
    assert "Snapshot already exists" in rbdvm_error(4, "snapshot", "create", src, "s1")


def test_second_command_on_a_busy_vm_fails_at_once_and_a_dead_holder_expires(src):
    ready = FILES / f"{src}.lease"
    holder = subprocess.Popen(labnode.enter("node2") + [PYTHON, RBDTOOL, "hold-lease", "-", src, "3", str(ready)])
    try:
        assert wait_for(20, ready.exists)
        t0 = time.monotonic()
        msg = rbdvm_error(4, "snapshot", "create", src, "s1")
        assert time.monotonic() - t0 < 10, "busy is said at once, not waited out"
        assert f"VM {src} is busy: test hold by node2 since " in msg
    finally:
        holder.kill()
        holder.wait()
        ready.unlink(missing_ok=True)
    rerun("snapshot", "create", src, "s1")      # the dead holder's lease expired and is taken over
