"""rbdvm create / list / info on the lab's Ceph, as client.rbdvm."""

import json
import uuid

import pytest
from lxml import etree

from labkit import ops
from labkit.testing import (
    base_xml,
    boot_disk,
    force_remove,
    qcow2,
    raw_file,
    rbdtool,
    rbdvm,
    rbdvm_error,
    rbdvm_json,
    read_bytes,
    start_vm,
    unique,
)

pytestmark = [pytest.mark.lab, pytest.mark.side_by_side]
MiB = 1 << 20


@pytest.fixture
def vm():
    name = unique()
    yield name
    force_remove(name)


def test_create_with_two_data_disks_layout_metadata_and_xml(vm):
    d0 = qcow2(f"{vm}-d0.qcow2", "64M", [(0, MiB, 0x11)])
    d1 = raw_file(f"{vm}-d1.img", 32 * MiB, [(MiB, 4096, 0x22)])
    out = rbdvm_json("create", "--disabled", vm, "--image", boot_disk(), "--xml", base_xml(vm), "-d", d0, "-d", d1,
                     "-m", "owner=alice", "-m", "site=north", "--live-migration", "--priority", 5)
    assert out["disks"] == [f"system_{vm}", f"data_{vm}_0", f"data_{vm}_1"]
    assert out["formats"] == ["raw", "qcow2", "raw"]
    # the RBD layout vm_manager writes: one group holding every disk
    members = json.loads(ops.rbd("node1", "group", "image", "list", f"rbd/{vm}", "--format", "json"))
    assert sorted(m["image"] for m in members) == sorted(out["disks"])
    md = rbdvm_json("metadata", "list", vm, "--all")
    assert md["vm_name"] == vm and md["owner"] == "alice" and md["site"] == "north"
    assert md["_additional_disks"] == "2" and md["_disk_bus"] == "virtio"
    assert md["_live_migration"] == "true" and md["_priority"] == "5"
    assert "_state" not in md and "_imported" not in md
    assert etree.fromstring(md["_base_xml"].encode()).findtext("name") == "ignored"
    dom = etree.fromstring(md["xml"].encode())
    assert dom.findtext("name") == vm
    assert str(uuid.UUID(dom.findtext("uuid"))) == out["uuid"]
    assert dom.find("devices/interface/mac").get("address").startswith("52:54:00:")
    disks = dom.findall("devices/disk")
    assert [d.find("source").get("name") for d in disks] == [f"rbd/{n}" for n in out["disks"]]
    assert [d.find("target").get("dev") for d in disks] == ["vda", "vdb", "vdc"]
    assert {d.find("target").get("bus") for d in disks} == {"virtio"}
    assert {d.find("auth/secret").get("usage") for d in disks} == {"client.rbdvm"}
    assert read_bytes(f"data_{vm}_0", 0, 4) == b"\x11" * 4
    assert read_bytes(f"data_{vm}_1", MiB, 4) == b"\x22" * 4
    listed = {v["name"]: v for v in rbdvm_json("list")}
    assert {k: listed[vm][k] for k in ("name", "state", "disks", "uuid")} == \
        {"name": vm, "state": "complete", "disks": 3, "uuid": out["uuid"]}
    assert listed[vm]["status"] == "Disabled", "made, not yet under the cluster"


def test_created_vm_boots_from_its_stored_xml(vm):
    rbdvm("create", "--disabled", vm, "--image", boot_disk(), "--xml", base_xml(vm))
    start_vm(vm)
    info = rbdvm_json("info", vm)
    assert info["disks"][0]["open_by"], "QEMU holds the system disk open"
    ops.virsh("node1", "destroy", vm)


def test_import_writes_no_zero_blocks(vm):
    # 1 GiB virtual, 10 MiB of data (+1 MiB elsewhere): stored ~ data, never the zeros
    img = qcow2(f"{vm}.qcow2", "1G", [(0, 10 * MiB, 0xAB), (512 * MiB, MiB, 0xCD)])
    rbdvm("create", "--disabled", vm, "--image", img, "--xml", base_xml(vm))
    disk = rbdvm_json("info", vm)["disks"][0]
    assert disk["size"] == 1 << 30
    assert disk["used"] <= 16 * MiB, f"{disk['used']} bytes stored for 11 MiB of data"
    assert read_bytes(f"system_{vm}", 512 * MiB, 2) == b"\xcd\xcd"


def test_format_comes_from_content_not_extension(vm):
    liar = qcow2(f"{vm}-really-qcow2.raw", "8M", [(0, 4096, 0x33)])
    rbdvm("create", "--disabled", vm, "--image", liar, "--xml", base_xml(vm))
    assert read_bytes(f"system_{vm}", 0, 2) == b"\x33\x33", "a qcow2 file imported as qcow2"
    other = unique()
    try:
        raw_named_qcow = raw_file(f"{other}.qcow2", 4 * MiB, [(0, 4096, 0x44)])
        made = rbdvm_json("create", "--disabled", other, "--image", raw_named_qcow, "--xml", base_xml(other))
        assert made["formats"] == ["raw"]
    finally:
        force_remove(other)


def test_existing_vm_refused_unless_force(vm):
    rbdvm("create", "--disabled", vm, "--image", boot_disk(), "--xml", base_xml(vm))
    assert "VM already exists" in rbdvm_error(4, "create", "--disabled", vm, "--image", boot_disk(),
                                              "--xml", base_xml(vm))
    marked = raw_file(f"{vm}-new.raw", MiB, [(0, 512, 0x55)])
    rbdvm("create", "--disabled", vm, "--image", marked, "--xml", base_xml(vm), "--force")
    assert read_bytes(f"system_{vm}", 0, 2) == b"\x55\x55"


@pytest.mark.parametrize("bad", ["my-vm", "my vm", "vm_1", "é"])
def test_bad_names_refused(bad):
    msg = rbdvm_error(2, "create", "--disabled", bad, "--image", boot_disk(), "--xml", base_xml("x"))
    assert "Parameter must not contain spaces or special chars" in msg


def test_missing_files_named_with_their_path(vm):
    assert "/nonexistent/disk.qcow2" in rbdvm_error(2, "create", "--disabled", vm, "--image", "/nonexistent/disk.qcow2",
                                                    "--xml", base_xml(vm))
    assert "/nonexistent/base.xml" in rbdvm_error(2, "create", "--disabled", vm, "--image", boot_disk(),
                                                  "--xml", "/nonexistent/base.xml")
    assert "/nonexistent/d0" in rbdvm_error(2, "create", "--disabled", vm, "--image", boot_disk(),
                                            "--xml", base_xml(vm), "-d", "/nonexistent/d0")


def test_unsupported_format_and_invalid_xml_refused(vm):
    vmdk = raw_file(f"{vm}.vmdk", 4096, [(0, 1, ord("K"))])
    with open(vmdk, "r+b") as f:
        f.write(b"KDMV")
    assert "vmdk" in rbdvm_error(2, "create", "--disabled", vm, "--image", vmdk, "--xml", base_xml(vm))
    bad = raw_file(f"{vm}.xml", 0)
    with open(bad, "w") as f:
        f.write("<domain><name>x</name>")
    assert "not valid XML" in rbdvm_error(2, "create", "--disabled", vm, "--image", boot_disk(), "--xml", bad)
    evil = raw_file(f"{vm}-evil.xml", 0)
    with open(evil, "w") as f:
        f.write('<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/ceph/ceph.client.rbdvm.keyring">]>'
                "<domain type='qemu'><name>&x;</name><memory>65536</memory></domain>")
    msg = rbdvm_error(2, "create", "--disabled", vm, "--image", boot_disk(), "--xml", evil)
    assert "the base XML" in msg and "key =" not in msg, "external entities are never resolved"


def test_uuid_already_used_by_another_vm_refused(vm):
    fixed = str(uuid.uuid4())
    rbdvm("create", "--disabled", vm, "--image", boot_disk(), "--xml", base_xml(vm, fixed))
    other = unique()
    try:
        msg = rbdvm_error(4, "create", "--disabled", other, "--image", boot_disk(), "--xml", base_xml(other, fixed))
        assert fixed in msg and vm in msg
        assert other not in [v["name"] for v in rbdvm_json("list")], "nothing created"
    finally:
        force_remove(other)


def test_uuid_check_sees_a_vm_with_more_than_a_page_of_metadata(vm):
    """A system disk with 1,200 metadata keys (sorted before `xml`): the bulk header read
    must page through them, or the UUID check misses the VM's definition."""
    fixed = str(uuid.uuid4())
    rbdvm("create", "--disabled", vm, "--image", boot_disk(), "--xml", base_xml(vm, fixed))
    rbdtool("meta-many", f"system_{vm}", 1200)
    other = unique()
    try:
        msg = rbdvm_error(4, "create", "--disabled", other, "--image", boot_disk(), "--xml", base_xml(other, fixed))
        assert fixed in msg and vm in msg
        row = {v["name"]: v for v in rbdvm_json("list")}[vm]
        assert (row["state"], row["uuid"]) == ("complete", fixed)
    finally:
        force_remove(other)


def test_missing_vm_errors():
    ghost = unique("ghost")
    assert "VM does not exist" in rbdvm_error(3, "remove", ghost)
    assert "VM does not exist" in rbdvm_error(3, "info", ghost)
    assert "VM does not exist" in rbdvm_error(3, "snapshot", "list", ghost)
    assert "VM does not exist" in rbdvm_error(3, "metadata", "get", ghost, "owner")
