"""rbdvm snapshot create / list / remove / rollback / purge on the lab's Ceph."""

import struct
import subprocess
import time
from datetime import datetime, timedelta

import pytest

from labkit import layout as L
from labkit import node as labnode
from labkit import ops
from labkit.procs import wait_for
from labkit.testing import (
    FILES,
    PYTHON,
    RBDTOOL,
    base_xml,
    boot_disk,
    force_remove,
    qcow2,
    rbdvm,
    rbdvm_error,
    rbdvm_json,
    read_bytes,
    start_vm,
    unique,
    write_bytes,
)

pytestmark = [pytest.mark.lab, pytest.mark.side_by_side]
MiB = 1 << 20
OFF = 256 << 10   # inside the 1 MiB system disk, past its boot sector


@pytest.fixture
def vm():
    """A stopped VM with a system disk and two data disks."""
    name = unique()
    d0 = qcow2(f"{name}-d0.qcow2", "16M")
    d1 = qcow2(f"{name}-d1.qcow2", "16M")
    rbdvm("create", "--disabled", name, "--image", boot_disk(), "--xml", base_xml(name), "-d", d0, "-d", d1)
    yield name
    force_remove(name)


def disks(vm):
    return [f"system_{vm}", f"data_{vm}_0", f"data_{vm}_1"]


def test_create_list_remove(vm):
    made = rbdvm_json("snapshot", "create", vm, "before")
    assert made["disks"] == disks(vm)
    snaps = rbdvm_json("snapshot", "list", vm)
    assert [(s["name"], s["kind"], s["disks"], s["complete"]) for s in snaps] == \
        [("before", "group", disks(vm), True)]
    assert datetime.fromisoformat(snaps[0]["time"]) == datetime.fromisoformat(made["time"])
    assert "Snapshot already exists" in rbdvm_error(4, "snapshot", "create", vm, "before")
    assert "Parameter must not contain spaces or special chars" in rbdvm_error(2, "snapshot", "create", vm, "be-fore")
    rbdvm("snapshot", "remove", vm, "before")
    assert rbdvm_json("snapshot", "list", vm) == []
    assert "Snapshot does not exist on VM" in rbdvm_error(3, "snapshot", "remove", vm, "before")
    assert "Snapshot does not exist on VM" in rbdvm_error(3, "snapshot", "rollback", vm, "before")


def test_rollback_restores_every_disk_and_the_snapshot_stays(vm):
    for i, d in enumerate(disks(vm)):
        write_bytes(d, OFF, 0x10 + i, 4096)
    rbdvm("snapshot", "create", vm, "s1")
    for d in disks(vm):
        write_bytes(d, OFF, 0xEE, 4096)
    for _ in range(2):   # the snapshot stays usable after a rollback
        rbdvm("snapshot", "rollback", vm, "s1")
        assert [read_bytes(d, OFF, 4) for d in disks(vm)] == [bytes([0x10 + i]) * 4 for i in range(3)]
        write_bytes(disks(vm)[1], OFF, 0xEE, 4096)
    assert [s["name"] for s in rbdvm_json("snapshot", "list", vm)] == ["s1"]


def test_snapshot_while_writing_is_consistent_across_disks(vm):
    """A writer stamps counter n on each disk in turn; the group snapshot catches one instant."""
    images = disks(vm)[1:]
    progress, stop = FILES / f"{vm}.progress", FILES / f"{vm}.stop"
    writer = subprocess.Popen(labnode.enter("node2") + [PYTHON, RBDTOOL, "writer", "-", str(progress), str(stop),
                                                        *images])
    try:
        assert wait_for(30, lambda: progress.exists() and int(progress.read_text()) > 20)
        assert ops.watchers("node1", images[0]) == [L.IP["node2"]]
        low = int(progress.read_text())
        rbdvm("snapshot", "create", vm, "live")          # allowed while the disks are written
        high = int(progress.read_text())
        assert wait_for(30, lambda: int(progress.read_text()) > high + 20), "writes go on after the snapshot"
    finally:
        stop.touch()
        writer.wait(timeout=30)
        stop.unlink()
    final = struct.unpack(">Q", read_bytes(images[0], 0, 8))[0]
    rbdvm("snapshot", "rollback", vm, "live")
    c0, c1 = (struct.unpack(">Q", read_bytes(i, 0, 8))[0] for i in images)
    assert low <= c1 <= c0 <= high + 1, (low, c0, c1, high)
    assert c0 - c1 in (0, 1), "both disks from the same instant (disk 0 is written first)"
    assert c0 < final


def test_rollback_refused_while_the_vm_runs_and_says_where(vm):
    rbdvm("snapshot", "create", vm, "s1")
    start_vm(vm, "node2")
    try:
        msg = rbdvm_error(4, "snapshot", "rollback", vm, "s1")
        assert L.IP["node2"] in msg and "node2" in msg and f"system_{vm}" in msg
    finally:
        ops.virsh("node2", "destroy", vm)
    assert wait_for(10, lambda: not ops.watchers("node1", f"system_{vm}"))
    rbdvm("snapshot", "rollback", vm, "s1")


def test_snapshot_of_a_running_vm(vm):
    start_vm(vm)
    try:
        rbdvm("snapshot", "create", vm, "hot")
        assert ops.running("node1") and vm in ops.running("node1")
    finally:
        ops.virsh("node1", "destroy", vm)
    assert [s["name"] for s in rbdvm_json("snapshot", "list", vm)] == ["hot"]


def test_purge_by_count_by_date_and_all(vm):
    names = [f"p{i}" for i in range(5)]
    times = []
    for n in names:
        times.append(rbdvm_json("snapshot", "create", vm, n)["time"])
        time.sleep(1.1)   # distinct creation seconds
    out = rbdvm_json("snapshot", "purge", vm, "--oldest", 2)
    assert out["removed"] == ["p0", "p1"] and out["kept"] == []
    assert [s["name"] for s in rbdvm_json("snapshot", "list", vm)] == ["p2", "p3", "p4"]
    cut = datetime.fromisoformat(times[4]) - timedelta(seconds=0.5)
    out = rbdvm_json("snapshot", "purge", vm, "--before", cut.isoformat())
    assert out["removed"] == ["p2", "p3"]
    assert [s["name"] for s in rbdvm_json("snapshot", "list", vm)] == ["p4"]
    assert rbdvm_json("snapshot", "purge", vm, "--all")["removed"] == ["p4"]
    assert rbdvm_json("snapshot", "list", vm) == []
    assert "exactly one of" in rbdvm_error(2, "snapshot", "purge", vm)
    assert "not a date" in rbdvm_error(2, "snapshot", "purge", vm, "--before", "yesterday")
