"""rbdvm adopt on the lab: a two-disk domain defined by hand with virsh on node1 (its system
disk a qcow2 file of the lab's guest, a raw data file) becomes an rbdvm VM, killed at each
step and resumed, runs under Pacemaker and migrates live; the domain and its files are left
as they were. A hostile file (a qcow2 naming a backing file) is refused before anything is
written."""

import hashlib
import subprocess

import pytest

from labkit import guest, ops
from labkit import layout as L
from labkit.procs import wait_for
from labkit.testing import (
    files_dir,
    force_remove,
    killed_at,
    other,
    qcow2,
    raw_file,
    rbdvm_error_json,
    rbdvm_json,
    rerun,
    unique,
    where,
)

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("agent_installed"), pytest.mark.side_by_side]
N1 = L.NODES[0]


def define(name: str, disks) -> None:
    """A domain on node1 as an operator defines one: the lab's guest with file disks."""
    from lxml import etree

    dom = etree.fromstring(guest.base_xml(name, str(ops.serial_path(name)), interface=True))
    devices = dom.find("devices")
    for i, (path, fmt) in enumerate(disks):
        disk = etree.SubElement(devices, "disk", type="file", device="disk")
        etree.SubElement(disk, "driver", name="qemu", type=fmt)
        etree.SubElement(disk, "source", file=path)
        etree.SubElement(disk, "target", dev=f"vd{'ab'[i]}", bus="virtio")
    path = files_dir() / f"{name}.domain.xml"
    path.write_bytes(etree.tostring(dom))
    ops.virsh(N1, "define", str(path))


def digest(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.fixture
def domain():
    name = unique("adopt")
    raw = files_dir() / f"{name}.boot.raw"
    raw.write_bytes(guest.disk_image())
    system = str(files_dir() / f"{name}.system.qcow2")
    subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", str(raw), system], check=True)
    data = raw_file(f"{name}.data.raw", 4 << 20, writes=[(0, 4096, 0x5A)])
    define(name, [(system, "qcow2"), (data, "raw")])
    yield name, system, data
    force_remove(name)
    ops.virsh(N1, "undefine", name, check=False)


def test_a_two_disk_domain_is_adopted_through_kills_at_each_step_and_runs_under_pacemaker(domain):
    name, system, data = domain
    before = {p: digest(p) for p in (system, data)}
    uuid = ops.virsh(N1, "domuuid", name).strip()
    adopt = ("adopt", name, "--live-migration", "--pacemaker-params", "migration_transport=tcp")
    # running: refused, unless adopt may shut it down (the lab's guest powers off on ACPI)
    ops.virsh(N1, "start", name)
    ops.wait_serial(name, "READY")
    assert rbdvm_error_json(4, *adopt)["code"] == "VM_RUNNING"
    first = True
    for step in ("create:images", "create:group", "create:imported", "create:commit"):
        killed_at(step, *adopt, *(["--stop"] if first else []))
        first = False
    assert name not in ops.virsh(N1, "list", "--name"), "shut down by the first run"
    rerun(*adopt, "--enable")
    info = rbdvm_json("info", name)
    assert info["uuid"] == uuid and [d["name"] for d in info["disks"]] == [f"system_{name}", f"data_{name}_0"]
    assert wait_for(60, lambda: ops.boots(name) == 2), "the adopted guest boots under Pacemaker"
    again = rbdvm_json(*adopt)
    assert again["changed"] is False, "done: a re-run says so"
    x = where(name)
    moved = rbdvm_json("migrate", name, other(x))
    assert moved["how"] == "live" and wait_for(30, lambda: where(name) == other(x)) and ops.boots(name) == 2
    assert {p: digest(p) for p in (system, data)} == before, "the original files are untouched"
    assert name in ops.virsh(N1, "list", "--all", "--name"), "the original domain is still defined"


def test_a_domain_whose_disk_names_a_backing_file_is_refused_before_anything_is_written():
    name = unique("hostile")
    backing = qcow2(f"{name}.secret.qcow2", "1M")
    hostile = str(files_dir() / f"{name}.qcow2")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", backing, "-F", "qcow2", hostile], check=True)
    define(name, [(hostile, "qcow2")])
    try:
        err = rbdvm_error_json(2, "adopt", name)
        assert err["code"] == "INVALID_DISK_IMAGE" and "backing" in err["message"]
        assert not [i for i in ops.rbd(N1, "ls").split() if name in i], "nothing written"
    finally:
        ops.virsh(N1, "undefine", name, check=False)
