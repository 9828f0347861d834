"""rbdvm clone (copy-on-write and --full) and remove on the lab's Ceph."""

import pytest
from lxml import etree

from labkit import ops
from labkit.testing import (
    base_xml,
    boot_disk,
    force_remove,
    force_remove_all,
    handed_out,
    names_since,
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
OFF = 256 << 10


@pytest.fixture
def src():
    mark = handed_out()
    name = unique("src")
    d0 = qcow2(f"{name}-d0.qcow2", "64M", [(0, MiB, 0x21)])
    rbdvm("create", "--disabled", name, "--image", boot_disk(), "--xml", base_xml(name), "-d", d0,
          "-m", "owner=alice", "-m", "tier=gold", "--live-migration", "--stop-timeout", 90)
    yield name
    listed = {v["name"] for v in rbdvm_json("list")}
    force_remove_all(vm for vm in names_since(mark) if vm != name and vm in listed)
    force_remove(name)


def _identity(vm):
    dom = etree.fromstring(rbdvm("metadata", "get", vm, "xml").stdout.encode())
    return dom.findtext("uuid"), [m.get("address") for m in dom.iterfind("devices/interface/mac")]


def test_cow_clone_is_independent_both_ways_and_gets_a_new_identity(src):
    dst = unique("c")
    out = rbdvm_json("clone", "--disabled", src, dst, "-m", "owner=bob")
    assert out["mode"] == "cow" and out["disks"] == [f"system_{dst}", f"data_{dst}_0"]
    info = rbdvm_json("info", dst)
    assert [d["parent"] for d in info["disks"]] == [f"system_{src}@rbdvm-clone-{dst}",
                                                    f"data_{src}_0@rbdvm-clone-{dst}"]
    assert all(d["used"] == 0 for d in info["disks"]), "nothing copied: the clone shares the source's data"
    assert info["metadata"] == {"owner": "bob", "tier": "gold"}
    assert info["settings"]["live_migration"] is True and info["settings"]["stop_timeout"] == 90
    assert (info["cloned_from"]["vm"], info["cloned_from"]["mode"]) == (src, "cow")
    assert info["created"] == info["cloned_from"]["at"]
    (su, smacs), (du, dmacs) = _identity(src), _identity(dst)
    assert su != du and set(smacs).isdisjoint(dmacs) and dmacs
    assert read_bytes(f"data_{dst}_0", 0, 2) == b"\x21\x21"
    write_bytes(f"data_{dst}_0", 0, 0x99, 4096)
    assert read_bytes(f"data_{src}_0", 0, 2) == b"\x21\x21", "writing the clone leaves the source alone"
    write_bytes(f"data_{src}_0", 8192, 0x77, 4096)
    assert read_bytes(f"data_{dst}_0", 8192, 2) == b"\x21\x21", "writing the source leaves the clone alone"
    # the source cannot go while the clone depends on it
    msg = rbdvm_error(4, "remove", src)
    assert "copy-on-write clones" in msg and dst in msg
    assert rbdvm_json("info", src)["clones"] == [dst]
    rbdvm("remove", dst)
    snaps = ops.rbd("node1", "snap", "ls", f"rbd/system_{src}")
    assert f"rbdvm-clone-{dst}" not in snaps, "the clone's base snapshot goes with the clone"
    assert rbdvm_json("info", src)["clones"] == []


def test_full_clone_is_an_independent_copy(src):
    dst = unique("f")
    out = rbdvm_json("clone", "--disabled", src, dst, "--full")
    assert out["mode"] == "full"
    info = rbdvm_json("info", dst)
    assert [d["parent"] for d in info["disks"]] == [None, None]
    assert info["disks"][1]["used"] >= MiB
    assert read_bytes(f"data_{dst}_0", 0, 2) == b"\x21\x21"
    assert ops.rbd("node1", "snap", "ls", f"rbd/data_{src}_0") == "", "no snapshot left on the source"
    rbdvm("remove", src)          # nothing depends on it
    assert read_bytes(f"data_{dst}_0", 0, 2) == b"\x21\x21"
    force_remove(dst)


def test_clone_of_a_running_vm_boots(src):
    start_vm(src)
    dst = unique("c")
    try:
        rbdvm("clone", "--disabled", src, dst, "--xml", base_xml(dst))   # its own serial log
        assert src in ops.running("node1"), "the source keeps running"
        start_vm(dst, "node2")
        assert dst in ops.running("node2")
    finally:
        ops.virsh("node1", "destroy", src, check=False)
        ops.virsh("node2", "destroy", dst, check=False)


def test_clone_errors(src):
    assert "src_name and name cannot be the same" in rbdvm_error(2, "clone", "--disabled", src, src)
    assert "VM does not exist" in rbdvm_error(3, "clone", "--disabled", unique("ghost"), unique("c"))
    other = unique("c")
    rbdvm("clone", "--disabled", src, other)
    assert "VM already exists" in rbdvm_error(4, "clone", "--disabled", src, other)
    assert "Parameter must not contain spaces or special chars" in rbdvm_error(2, "clone", "--disabled", src,
                                                                                 "bad-name")


def test_remove_refused_while_open(src):
    start_vm(src, "node2")
    try:
        msg = rbdvm_error(4, "remove", src)
        assert "node2" in msg
    finally:
        ops.virsh("node2", "destroy", src)
