"""rbdvm backup / restore on the lab's Ceph, libvirt and Pacemaker: a running two-disk VM
backed up full then incrementally and restored at each point; backups damaged, cut and
spliced, refused before anything is written; kills at every step of both, then re-runs;
the guest held still for the snapshot and let go even when the command dies there."""

import json
import shutil
import subprocess
import time

import pytest

from labkit import linuxguest, ops
from labkit.procs import wait_for
from labkit.testing import (
    base_xml,
    boot_disk,
    files_dir,
    force_remove,
    force_remove_all,
    killed_at,
    make_vm,
    other,
    qcow2,
    raw_file,
    rbdtool,
    rbdvm,
    rbdvm_error_json,
    rbdvm_json,
    read_bytes,
    rerun,
    unique,
    where,
    write_bytes,
)

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("agent_installed"), pytest.mark.side_by_side]
# a backup reaches the running guest's libvirtd as its migration does: plain TCP in the lab
# (and a guest that ignores the power button is destroyed when stopped)
LIBVIRT_TCP = ("--pacemaker-params", "migration_transport=tcp", "--pacemaker-params", "force_stop=true")


def digest(image, snap=None):
    return rbdtool("digest", image, *([snap] if snap else []))


def counters(vm, snap=None):
    if snap:
        s, d = (bytes.fromhex(rbdtool("read-at", i, snap, 0, 1024)) for i in (f"system_{vm}", f"data_{vm}_0"))
    else:
        s, d = read_bytes(f"system_{vm}", 0, 1024), read_bytes(f"data_{vm}_0", 0, 1024)
    return linuxguest.twin_counters(s, d)


def images():
    return ops.rbd("node1", "ls").split()


def backup_dir(name):
    path = files_dir() / f"backups-{name}"
    shutil.rmtree(path, ignore_errors=True)
    return str(path)


def backup_snaps(vm):
    return [s["name"] for s in rbdvm_json("snapshot", "list", vm) if s["name"].startswith("backup-")]


def test_a_running_two_disk_vm_backed_up_full_then_incrementally_restores_at_each_point():
    vm = unique("bk")
    d = backup_dir(vm)
    restored = []
    try:
        linux_vm(vm, twin=True)
        points, last = [], 0
        for i in range(3):
            assert wait_for(30, lambda last=last: counters(vm)[0] > last + 5, 0.2), "the guest stopped writing"
            r = rbdvm_json("backup", vm, "--to", d)
            assert r["kind"] == ("full" if i == 0 else "incremental")
            assert r["parent"] == (points[-1]["id"] if points else None)
            assert r["consistency"]["level"] == "crash-consistent" and r["consistency"]["paused_ms"] is not None
            at = counters(vm, r["snapshot"])
            assert at[0] - at[1] in (0, 1), f"the disks were snapshotted at two instants: {at}"
            assert at[0] > last
            last = at[0]
            points.append({"id": r["id"], "counters": at, "digests": [
                digest(f"system_{vm}", r["snapshot"]), digest(f"data_{vm}_0", r["snapshot"])]})
            assert backup_snaps(vm) == [r["snapshot"]], "an older backup snapshot was not released"
            if i:   # an incremental holds what changed: the counter sectors, not the disks
                assert r["bytes"] < 64 << 10, r
        listed = rbdvm_json("backup", "list", d, vm)["backups"]
        assert [(b["id"], b["kind"], b["ok"], b["signed"]) for b in listed] == [
            (p["id"], k, True, "signed") for p, k in zip(points, ("full", "incremental", "incremental"))]
        for i, p in enumerate(points):
            new = f"{vm}r{i}"
            restored.append(new)
            r = rbdvm_json("restore", d, vm, "--as", new, "--at", p["id"], "--disabled")
            assert r["chain"] == [q["id"] for q in points[:i + 1]] and r["new_identity"]
            assert [digest(f"system_{new}"), digest(f"data_{new}_0")] == p["digests"]
            assert counters(new) == p["counters"]
        # the last restore point runs under Pacemaker: its guest writes on from where it was
        rbdvm("enable", restored[-1])
        assert wait_for(60, lambda: where(restored[-1]) is not None
                        and counters(restored[-1])[0] > points[-1]["counters"][0], 0.5)
        assert rbdvm_json("info", restored[-1])["uuid"] != rbdvm_json("info", vm)["uuid"]
    finally:
        force_remove_all(restored + [vm])


@pytest.fixture
def stopped_chain():
    """A stopped VM with a data disk and a backup chain: full, then two incrementals, each
    after a write; yields (vm, dir, ids)."""
    vm = unique("bc")
    d = backup_dir(vm)
    rbdvm("create", "--disabled", vm, "--image", boot_disk(), "--xml", base_xml(vm),
          "-d", qcow2(f"{vm}-d0.qcow2", "16M", [(0, 1 << 20, 0x11)]))
    ids = []
    for byte in (0x21, 0x22, 0x23):
        write_bytes(f"data_{vm}_0", 4 << 20, byte, 4096)
        ids.append(rbdvm_json("backup", vm, "--to", d)["id"])
    yield vm, d, ids
    force_remove(vm)
    shutil.rmtree(d, ignore_errors=True)


def restored_data(d, vm, new, offset):
    """Two bytes at `offset` of the data disk of VM `vm` restored from `d` as `new` (the
    newest point; removed again)."""
    try:
        rbdvm("restore", d, vm, "--as", new, "--disabled")
        return read_bytes(f"data_{new}_0", offset, 2)
    finally:
        force_remove(new)


def refused_untouched(code, target, *args):
    """The restore is refused with `code`, and nothing of `target` was made (only images
    naming it are compared: tests beside this one make and remove theirs meanwhile)."""
    def of_target():
        return {i for i in images() if target in i}
    before = of_target()
    err = rbdvm_error_json(6 if code == "UNTRUSTED" else 4, "restore", *args, "--as", target, "--disabled")
    assert err["code"] == code, err
    assert of_target() == before
    return err


def test_a_vm_on_this_node_is_reached_through_the_local_libvirtd_and_another_node_as_migrations_do():
    """A VM with the default migration settings (no transport: qemu://NODE/system means TLS,
    which the lab does not set up). On the node that runs it, backup and console reach it
    through qemu:///system; from the other node, the failure names the URI the migrations use."""
    vm = unique("loc")
    d = backup_dir(vm)
    try:
        make_vm(vm)
        rbdvm("enable", vm)
        here = where(vm)
        assert rbdvm_json("console", vm, node=here)["uri"] == "qemu:///system"
        assert rbdvm_json("backup", vm, "--to", d, node=here)["kind"] == "full"
        assert rbdvm_json("console", vm, node=other(here))["uri"] == f"qemu://{here}/system"
        err = rbdvm_error_json(5, "backup", vm, "--to", d, node=other(here))
        assert f"qemu://{here}/system" in err["message"] and "migrations" in err["message"], err
    finally:
        force_remove(vm)


def test_a_damaged_cut_or_spliced_backup_is_refused_before_anything_is_written(stopped_chain):
    vm, d, ids = stopped_chain
    base = files_dir() / f"backups-{vm}"
    work = files_dir() / f"backups-{vm}-work"

    def fresh_copy():
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(base, work)
        return work / vm
    # one byte of the middle incremental's data disk stream flipped
    mine = fresh_copy()
    stream = mine / ids[1] / f"data_{vm}_0.rbdiff"
    raw = bytearray(stream.read_bytes())
    raw[-100] ^= 0xFF
    stream.write_bytes(bytes(raw))
    err = refused_untouched("BACKUP_BROKEN", f"{vm}x", str(work), vm, "--at", ids[2])
    assert f"data_{vm}_0.rbdiff" in err["message"] and "SHA-256" in err["message"]
    listed = rbdvm("backup", "verify", str(work), check=False)
    assert listed.returncode == 1 and "SHA-256" in listed.stdout
    # the middle incremental gone
    mine = fresh_copy()
    shutil.rmtree(mine / ids[1])
    err = refused_untouched("BACKUP_BROKEN", f"{vm}x", str(work), vm, "--at", ids[2])
    assert "missing" in err["message"]
    assert {b["id"]: b["ok"] for b in rbdvm_json("backup", "list", str(work))["backups"]} == {ids[0]: True,
                                                                                              ids[2]: False}
    # the middle incremental replaced by another VM's backup (a manifest from another VM)
    other = unique("bo")
    try:
        rbdvm("create", "--disabled", other, "--image", boot_disk(), "--xml", base_xml(other),
              "-d", qcow2(f"{other}-d0.qcow2", "16M"))
        odir = backup_dir(other)
        oid = rbdvm_json("backup", other, "--to", odir)["id"]
        mine = fresh_copy()
        shutil.rmtree(mine / ids[1])
        shutil.copytree(f"{odir}/{other}/{oid}", mine / ids[1])
        err = refused_untouched("BACKUP_BROKEN", f"{vm}x", str(work), vm, "--at", ids[2])
        assert f"VM {other}" in err["message"]
    finally:
        force_remove(other)
    # a manifest edited by hand (its definition): its signature no longer verifies
    mine = fresh_copy()
    manifest = mine / ids[0] / "manifest.json"
    m = json.loads(manifest.read_text())
    m["definition"]["xml"] = m["definition"]["xml"].replace("<memory", "<!-- x --><memory")
    manifest.write_text(json.dumps(m))
    refused_untouched("UNTRUSTED", f"{vm}x", str(work), vm, "--at", ids[0])
    # without rbdvm: `rbd import-diff` of the full backup, then of each incremental, is the disk
    manual = f"{vm}manual"
    chain = [f"{d}/{vm}/{bid}/data_{vm}_0.rbdiff" for bid in ids]
    ops.rbd("node1", "create", "--size", "16M", manual)
    try:
        for stream_file in chain:
            ops.rbd("node1", "import-diff", "--no-progress", stream_file, manual)
        assert digest(manual) == digest(f"data_{vm}_0")
    finally:
        ops.rbd("node1", "snap", "purge", "--no-progress", manual)
        ops.rbd("node1", "rm", "--no-progress", manual)
    # the intact directory restores each point
    for i, bid in enumerate(ids):
        new = f"{vm}r{i}"
        try:
            rbdvm("restore", d, vm, "--as", new, "--at", bid, "--disabled")
            assert read_bytes(f"data_{new}_0", 4 << 20, 2) == bytes([0x21 + i]) * 2
            assert read_bytes(f"data_{new}_0", 0, 2) == b"\x11\x11"
        finally:
            force_remove(new)
    shutil.rmtree(work, ignore_errors=True)


def test_a_hostile_backup_directory_hangs_nothing_and_prune_and_restore_trust_only_what_they_verified(
        stopped_chain):
    """The directory is a NAS others write: a FIFO as a manifest, a hard link to a file
    elsewhere, an unsigned "backup" dated 2099 copied from a genuine one, and the VM's
    directory locked by another command. list, backup and prune finish; prune --keep 1 keeps
    the genuine newest chain and leaves the forged one (it counts only what this cluster
    signed); a restore of the newest genuine point gives the disk as it was."""
    vm, d, ids = stopped_chain
    root = files_dir() / f"backups-{vm}"
    fifo_dir = root / vm / "20980101T000000Z"
    fifo_dir.mkdir()
    subprocess.run(["mkfifo", str(fifo_dir / "manifest.json")], check=True)
    forged = root / vm / "20990101T000000Z"
    shutil.copytree(root / vm / ids[0], forged)
    m = json.loads((forged / "manifest.json").read_text())
    m.update(id=forged.name, snapshot=f"backup-{forged.name}", time="2099-01-01T00:00:00+00:00", signature="")
    (forged / "manifest.json").write_text(json.dumps(m))
    linked = root / vm / "20970101T000000Z"
    shutil.copytree(root / vm / ids[0], linked)
    m.update(id=linked.name, snapshot=f"backup-{linked.name}", time="2097-01-01T00:00:00+00:00")
    (linked / "manifest.json").write_text(json.dumps(m))
    (linked / f"system_{vm}.rbdiff").unlink()
    (linked / f"system_{vm}.rbdiff").hardlink_to(root / vm / ids[0] / f"system_{vm}.rbdiff")
    listed = {b["id"]: b for b in rbdvm_json("backup", "list", d)["backups"]}
    assert "regular file" in listed[fifo_dir.name]["problem"]
    assert "links" in listed[linked.name]["problem"] or "links" in listed[ids[0]]["problem"]
    assert listed[forged.name]["signed"] != "signed"
    # another command holds the VM's backup directory: prune and backup say so, at once
    holder = subprocess.Popen(["flock", "--exclusive", "--no-fork", str(root / vm), "sleep", "30"])
    try:
        assert wait_for(10, lambda: rbdvm("backup", "prune", d, "--keep", "1", check=False).returncode == 4, 0.2)
        assert "BACKUP_DIR_BUSY" in json.dumps(rbdvm_error_json(4, "backup", vm, "--to", d))
    finally:
        holder.kill()
        holder.wait()
    (linked / f"system_{vm}.rbdiff").unlink()     # (the genuine full counts again: one link)
    write_bytes(f"data_{vm}_0", 4 << 20, 0x24, 4096)
    newest = rbdvm_json("backup", vm, "--to", d)
    assert newest["kind"] == "incremental" and newest["parent"] == ids[2], newest
    r = rbdvm_json("backup", "prune", d, "--keep", "1")
    left = {p.name for p in (root / vm).iterdir()}
    assert {forged.name, fifo_dir.name, *ids, newest["id"]} <= left, (r, left)
    assert f"{vm}/{forged.name}" in r["left"], r
    assert restored_data(d, vm, f"{vm}h", 4 << 20) == b"\x24\x24"


def test_in_place_restore_keeps_the_identity_and_replaces_only_a_disabled_vm_when_asked(stopped_chain):
    vm, d, ids = stopped_chain
    uuid = rbdvm_json("info", vm)["uuid"]
    # into another namespace (a pool or cluster is the same path): its definition points there
    rbdvm("restore", d, vm, "--as", f"{vm}n", "--disabled", "--namespace", "restored")
    try:
        moved = rbdvm_json("info", f"{vm}n", "--namespace", "restored")
        assert moved["namespace"] == "restored" and moved["trust"] == "signed", moved
        assert read_bytes(f"data_{vm}n_0", 4 << 20, 2, ns="restored") == b"\x23\x23"
    finally:
        force_remove(f"{vm}n", ns="restored")
    assert rbdvm_error_json(4, "restore", d, vm, "--at", ids[0], "--disabled")["code"] == "VM_EXISTS"
    rbdvm("restore", d, vm, "--at", ids[0], "--disabled", "--force")
    assert rbdvm_json("info", vm)["uuid"] == uuid
    assert read_bytes(f"data_{vm}_0", 4 << 20, 2) == b"\x21\x21"


def test_a_backup_killed_at_each_step_leaves_no_chain_that_looks_whole_and_a_rerun_converges(stopped_chain):
    vm, d, ids = stopped_chain
    for i, step in enumerate(("backup:snapshot", "backup:disk", "backup:committed")):
        write_bytes(f"data_{vm}_0", 8 << 20, 0x31 + i, 4096)
        before = len(rbdvm_json("backup", "list", d, vm)["backups"])
        killed_at(step, "backup", vm, "--to", d)
        listed = rbdvm_json("backup", "list", d, vm)
        assert all(b["ok"] for b in listed["backups"]), step
        assert len(listed["backups"]) == before + (step == "backup:committed"), step
        newest = json.loads(rerun("backup", vm, "--to", d, "--json").stdout)
        assert newest["kind"] == "incremental", step
        listed = rbdvm_json("backup", "list", d, vm)
        assert listed["interrupted"] == {} and all(b["ok"] for b in listed["backups"]), step
        assert backup_snaps(vm) == [newest["snapshot"]], f"{step}: a snapshot was left behind"
    assert restored_data(d, vm, f"{vm}r", 8 << 20) == b"\x33\x33"


def test_a_restore_killed_at_each_step_converges_when_run_again(stopped_chain):
    vm, d, ids = stopped_chain
    for i, step in enumerate(("restore:images", "restore:disk", "restore:commit")):
        new = f"{vm}k{i}"
        try:
            killed_at(step, "restore", d, vm, "--as", new, "--disabled")
            rerun("restore", d, vm, "--as", new, "--disabled")
            assert digest(f"data_{new}_0") == digest(f"data_{vm}_0"), step
            assert rbdvm_json("info", new)["state"] == "complete", step
        finally:
            force_remove(new)


def agent_xml(vm):
    """The lab's base XML with a QEMU guest agent channel (no agent runs in the guest)."""
    from lxml import etree

    path = base_xml(vm)
    root = etree.fromstring(open(path, "rb").read())
    channel = etree.SubElement(root.find("devices"), "channel", type="unix")
    etree.SubElement(channel, "target", type="virtio", name="org.qemu.guest_agent.0")
    with open(path, "wb") as f:
        f.write(etree.tostring(root))
    return path


def domain_state(vm):
    n = where(vm)
    return ops.virsh(n, "domstate", vm).strip() if n else None


def test_the_guest_is_held_still_for_the_snapshot_and_let_go_even_when_the_command_dies_there():
    vm = unique("bq")
    d = backup_dir(vm)
    try:
        rbdvm("create", vm, "--image", boot_disk(), "--xml", agent_xml(vm), *LIBVIRT_TCP)
        assert wait_for(60, lambda: domain_state(vm) == "running", 0.5)
        r = rbdvm_json("backup", vm, "--to", d)
        # a channel but no agent answering: crash-consistent, said so, in bounded time
        assert r["consistency"]["level"] == "crash-consistent"
        assert "guest agent" in r["consistency"]["why"]
        assert r["seconds"] < 30
        # killed while the guest is paused and a freeze was asked for: the watcher lets it go
        killed_at("backup:held", "backup", vm, "--to", d)
        assert wait_for(20, lambda: domain_state(vm) == "running", 0.2), domain_state(vm)
        rerun("backup", vm, "--to", d)
        assert all(b["ok"] for b in rbdvm_json("backup", "list", d, vm)["backups"])
    finally:
        force_remove(vm)


def linux_vm(vm, agent=True, twin=False):
    """A Linux guest (labkit.linuxguest) created and started under Pacemaker: writing files
    to its ext4 disk, its agent running when `agent`; or (`twin`) a counter to two raw disks.
    Returns once it writes."""
    kernel, initrd = linuxguest.build()
    xml = files_dir() / f"{vm}.base.xml"
    xml.write_text(linuxguest.domain_xml("ignored", str(ops.serial_path(vm)), kernel, initrd, agent=agent,
                                         twin=twin))
    ops.serial_path(vm).unlink(missing_ok=True)
    if twin:
        disks = ["--image", raw_file(f"{vm}.raw", 1 << 20), "-d", qcow2(f"{vm}-d0.qcow2", "16M")]
    else:
        disk = files_dir() / f"{vm}.ext4"
        linuxguest.disk_image(str(disk))
        disks = ["--image", str(disk)]
    rbdvm("create", vm, *disks, "--xml", str(xml), *LIBVIRT_TCP)
    if twin:
        assert wait_for(90, lambda: counters(vm)[1] > 0, 0.5), "the guest does not write its disks"
    else:
        ops.wait_serial(vm, "AGENT" if agent else "MOUNTED", timeout=90)
        time.sleep(1)      # it writes files meanwhile


def needs_recovery(image):
    """Whether the ext4 filesystem on `image` needs its journal replayed (it was snapshotted
    mounted and busy, not frozen)."""
    path = files_dir() / f"{image}.export"
    path.unlink(missing_ok=True)
    ops.rbd("node1", "export", image, str(path))
    try:
        header = subprocess.run(["dumpe2fs", "-h", str(path)], capture_output=True, text=True, check=True).stdout
        return "needs_recovery" in next(line for line in header.splitlines() if line.startswith("Filesystem features"))
    finally:
        path.unlink(missing_ok=True)


@pytest.mark.requires("dumpe2fs", "mkfs.ext4")
def test_a_linux_guest_with_its_agent_is_backed_up_application_consistent_and_without_it_crash_consistent():
    frozen, crashed = unique("lx"), unique("lc")
    d = backup_dir(frozen)
    made = []
    try:
        made.append(frozen)
        linux_vm(frozen)
        r = rbdvm_json("backup", frozen, "--to", d)
        assert r["consistency"]["level"] == "application-consistent" and r["consistency"]["frozen"] >= 1, r
        assert wait_for(10, lambda: "FSFREEZE thaw" in ops.serial_text(frozen), 0.2)
        log = ops.serial_text(frozen)
        assert log.index("FSFREEZE freeze") < log.index("FSFREEZE thaw")
        made.append(f"{frozen}r")
        rbdvm("restore", d, frozen, "--as", f"{frozen}r", "--disabled")
        assert not needs_recovery(f"system_{frozen}r")
        # a snapshot of it is frozen the same way (its group snapshot is one instant: no pause)
        snap = rbdvm_json("snapshot", "create", frozen, "s1")
        assert snap["consistency"]["level"] == "application-consistent", snap
        assert wait_for(10, lambda: ops.serial_text(frozen).count("FSFREEZE thaw") == 2, 0.2)
        # killed while the guest is frozen and paused: the watcher thaws and resumes it
        killed_at("backup:held", "backup", frozen, "--to", d)
        assert wait_for(20, lambda: ops.serial_text(frozen).count("FSFREEZE thaw") == 3, 0.2), \
            ops.serial_text(frozen)[-500:]
        assert domain_state(frozen) == "running"
        rerun("backup", frozen, "--to", d)
        # the same guest with no agent running: crash-consistent, and said so
        made.append(crashed)
        linux_vm(crashed, agent=False)
        r = rbdvm_json("backup", crashed, "--to", d)
        assert r["consistency"]["level"] == "crash-consistent" and "guest agent" in r["consistency"]["why"], r
        made.append(f"{crashed}r")
        rbdvm("restore", d, crashed, "--as", f"{crashed}r", "--disabled")
        assert needs_recovery(f"system_{crashed}r")
    finally:
        force_remove_all(made)
