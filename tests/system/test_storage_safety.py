"""Storage safety: nothing lost, nothing foreign deleted, no host secret imported.

Each test attacks one guarantee of docs/storage-model.md ("What rbdvm guarantees about your
data") on the lab's real Ceph, as another tool, a crash or a hostile image would.
"""

import os
import signal
import subprocess
import time

import pytest

from labkit import layout as L
from labkit import node as labnode
from labkit import ops
from labkit.procs import wait_for
from labkit.testing import (
    PYTHON,
    RBDTOOL,
    agent,
    base_xml,
    boot_disk,
    exit_reason,
    files_dir,
    force_remove,
    force_remove_all,
    handed_out,
    names_since,
    qcow2,
    raw_file,
    rbdtool,
    rbdvm,
    rbdvm_error,
    rbdvm_json,
    read_bytes,
    unique,
    write_bytes,
)

pytestmark = [pytest.mark.lab, pytest.mark.side_by_side]
MiB = 1 << 20


@pytest.fixture
def src():
    """A stopped VM with one data disk holding 0x21 bytes; it and every VM its test named
    (its clones) are removed afterwards."""
    mark = handed_out()
    name = unique("src")
    d0 = qcow2(f"{name}-d0.qcow2", "16M", [(0, MiB, 0x21)])
    rbdvm("create", "--disabled", name, "--image", boot_disk(), "--xml", base_xml(name), "-d", d0)
    yield name
    listed = {v["name"] for v in rbdvm_json("list")}
    force_remove_all(vm for vm in names_since(mark) if vm != name and vm in listed)
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


# ------------------------------------------------------------------ R2 other tools' data
@pytest.fixture
def foreign():
    """Cleans up the RBD objects a test made as another tool would."""
    made = []
    yield made
    for kind, name in reversed(made):
        if kind == "group":
            ops.rbd("node1", "group", "remove", f"rbd/{name}", check=False)
        else:
            ops.rbd("node1", "rm", "--no-progress", f"rbd/{name}", check=False)


def _images():
    return set(ops.rbd("node1", "ls", "rbd").split())


def test_another_tools_groups_and_images_are_not_vms(foreign):
    """In the shared pool, another tool's group (letters and digits, like a VM name) and an
    image that only happens to be called system_<x> are not VMs: `list` leaves them out,
    `remove` refuses and deletes nothing, `create`/`clone` never adopt an image they did not
    make."""
    g, s, t, f = unique("grp"), unique("oth"), unique("new"), unique("f")
    for image in (f"{g}disk", f"system_{s}", f"data_{t}_0", f"data_{f}_0"):
        ops.rbd("node1", "create", "--size", "1M", f"rbd/{image}")
        foreign.append(("image", image))
    ops.rbd("node1", "group", "create", f"rbd/{g}")
    foreign.append(("group", g))
    ops.rbd("node1", "group", "image", "add", f"rbd/{g}", f"rbd/{g}disk")
    write_bytes(f"data_{t}_0", 0, 0x44, 4096)
    write_bytes(f"data_{f}_0", 0, 0x44, 4096)
    listed = {v["name"] for v in rbdvm_json("list")}
    assert g not in listed and s not in listed, "another tool's group or image is not a VM"
    for vm in (g, s):
        msg = rbdvm_error(4, "remove", vm)
        assert "not a VM rbdvm manages" in msg, msg
    assert {f"{g}disk", f"system_{s}"} <= _images(), "remove deleted another tool's image"
    # a create whose disk names are taken by another tool's images refuses before writing
    d0 = qcow2(f"{t}-d0.qcow2", "4M", [(0, MiB, 0x21)])
    try:
        msg = rbdvm_error(4, "create", "--disabled", t, "--image", boot_disk(), "--xml", base_xml(t), "-d", d0)
        assert f"data_{t}_0" in msg
        assert read_bytes(f"data_{t}_0", 0, 2) == b"\x44\x44", "create overwrote another tool's image"
    finally:
        force_remove(t)
    assert f"data_{t}_0" in _images()


def test_a_clone_never_replaces_an_image_it_did_not_make(src, foreign):
    f = unique("f")
    ops.rbd("node1", "create", "--size", "1M", f"rbd/data_{f}_0")
    foreign.append(("image", f"data_{f}_0"))
    write_bytes(f"data_{f}_0", 0, 0x44, 4096)
    msg = rbdvm_error(4, "clone", "--disabled", "--full", src, f)
    assert f"data_{f}_0" in msg
    assert read_bytes(f"data_{f}_0", 0, 2) == b"\x44\x44", "the full clone replaced another tool's image"


def test_remove_leaves_an_image_another_tool_added_to_the_vms_group(src, foreign):
    other = unique("x")
    ops.rbd("node1", "create", "--size", "1M", f"rbd/{other}")
    foreign.append(("image", other))
    ops.rbd("node1", "group", "image", "add", f"rbd/{src}", f"rbd/{other}")
    msg = rbdvm_error(4, "remove", src)
    assert other in msg
    assert other in _images()
    ops.rbd("node1", "group", "image", "remove", f"rbd/{src}", f"rbd/{other}")


# ------------------------------------------------------------------ S6 broken images
@pytest.mark.parametrize("disk", ["system", "data"])
def test_an_image_without_its_header_is_listed_as_broken_and_removed(src, disk):
    """A crash inside librbd's remove can leave an image listed whose header object is
    gone: it cannot be opened. `list` still lists the pool and shows the VM broken;
    `remove` deletes what is left."""
    image = f"system_{src}" if disk == "system" else f"data_{src}_0"
    rbdtool("rm-header", image)
    listed = {v["name"]: v for v in rbdvm_json("list")}
    if disk == "system":
        assert listed[src]["state"] == "broken", listed.get(src)
        assert "cannot be opened" in rbdvm("info", src).stdout
    rbdvm("remove", src)
    assert not {i for i in _images() if i.endswith(src) or f"_{src}_" in i}
    assert src not in {v["name"] for v in rbdvm_json("list")}


# ------------------------------------------------------------------ R3 hostile image files
def _secret(name: str, byte: int):
    """A stand-in for a host secret (the node's Ceph keyring): a file only root reads."""
    path = files_dir() / name
    path.write_bytes(bytes([byte]) * MiB)
    path.chmod(0o600)
    return path


def test_a_qcow2_with_an_external_data_file_is_refused(foreign):
    """A qcow2 whose data lives in an external file (data_file_raw: guest offsets = file
    offsets) naming a host file would copy that file into the VM's disk."""
    vm = unique("h")
    image = files_dir() / f"{vm}.qcow2"
    secret = files_dir() / f"{vm}.secret"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-o",
                    f"data_file={secret},data_file_raw=on", str(image), "1M"], check=True)
    _secret(secret.name, 0x99)
    try:
        msg = rbdvm_error(2, "create", "--disabled", vm, "--image", image, "--xml", base_xml(vm))
        assert "data file" in msg, msg
    finally:
        force_remove(vm)
    assert f"system_{vm}" not in _images()


def test_a_relative_path_is_never_read_by_qemu_img_as_a_protocol():
    """qemu-img reads `json:{...}` (or `nbd:...`) as a block-device description, not a
    file name: a file literally called that, given as a relative path, must be imported as
    the file it is, not as the host file its name describes."""
    vm = unique("h")
    _secret(f"{vm}.secret", 0x99)
    name = 'json:{"driver":"raw","file":{"driver":"file","filename":"%s.secret"}}' % vm
    raw_file(name, MiB, [(0, MiB, 0x11)])
    try:
        res = ops.on("node1", "env", f"--chdir={files_dir()}", "rbdvm", "create", "--disabled", vm,
                     "--image", name, "--xml", base_xml(vm), check=False)
        assert res.returncode == 0, res.stderr
        assert read_bytes(f"system_{vm}", 0, 2) == b"\x11\x11", "qemu-img read the file the name describes"
    finally:
        force_remove(vm)


# ------------------------------------------------------------------ R4 names Pacemaker refuses
@pytest.mark.parametrize("args", [["1vm{u}"], ["vm{u}", "--pacemaker-meta", "attributes=1",
                                                 "--pacemaker-params", "a b=1"]],
                         ids=["digit-first-name", "key-with-a-space"])
def test_what_pacemaker_cannot_take_is_refused_before_anything_is_created(args):
    """`create 1vm` used to create the VM, fail to enable it (the CIB schema refused the
    id) and leave it behind; a map key with a space did the same."""
    u = unique("")
    args = [a.format(u=u) for a in args]
    vm = args[0]
    try:
        msg = rbdvm_error(2, "create", *args, "--image", boot_disk(), "--xml", base_xml(vm))
        assert "letter" in msg or "'a b'" in msg, msg
        assert not [i for i in _images() if vm in i], "nothing is created"
    finally:
        force_remove(vm)


# ------------------------------------------------------------------ S1 interrupted rollback
@pytest.mark.usefixtures("agent_installed")
@pytest.mark.parametrize("kind, step", [("per-disk", "rollback:disk"), ("group", "rollback:marked")])
def test_an_interrupted_rollback_leaves_a_vm_nothing_boots_until_it_is_finished(src, kind, step):
    """Killed between two disks of a rollback, a VM is half at the snapshot, half at head:
    it must say so, the agent must refuse to start it, and re-running the rollback finishes
    it."""
    if kind == "group":
        rbdvm("snapshot", "create", src, "p1")
    else:   # vm_manager's per-disk snapshots, one disk after the other
        for image in (f"system_{src}", f"data_{src}_0"):
            ops.rbd("node1", "snap", "create", f"rbd/{image}@p1")
    boot = read_bytes(f"system_{src}", 0, 512)
    write_bytes(f"system_{src}", 0, 0x77, 512)
    write_bytes(f"data_{src}_0", 0, 0x77, 4096)
    res = rbdvm("snapshot", "rollback", src, "p1", env={"RBDVM_LEASE_SECONDS": "2", "RBDVM_FAULT_AT": step},
                check=False)
    assert res.returncode in (-9, 137), res
    assert {v["name"]: v for v in rbdvm_json("list")}[src]["state"] == "rolling-back"
    assert "partly rolled back" in rbdvm_error(4, "enable", src)
    started = agent("node1", "start", vm=src)
    assert started.returncode == 6 and "snapshot rollback" in exit_reason(started), started
    assert "partly rolled back to snapshot p1" in rbdvm_error(4, "snapshot", "rollback", src, "other")
    deadline = time.monotonic() + 20
    while "is busy" in rbdvm("snapshot", "rollback", src, "p1", check=False).stderr:
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert {v["name"]: v for v in rbdvm_json("list")}[src]["state"] == "complete"
    assert read_bytes(f"data_{src}_0", 0, 2) == b"\x21\x21"
    assert read_bytes(f"system_{src}", 0, 512) == boot


# ------------------------------------------------------------------ S5 overwriting open disks
def test_a_resumed_create_never_overwrites_a_disk_someone_has_open():
    """Create killed after making the disks; meanwhile a client opened one and writes to it
    (a mistaken manual start, another tool). Re-running the create would zero and re-import
    that disk under the writer; it refuses, naming the disk and the client."""
    vm = unique("w")
    d0 = qcow2(f"{vm}-d0.qcow2", "8M", [(0, MiB, 0x21)])
    args = ["create", "--disabled", vm, "--image", boot_disk(), "--xml", base_xml(vm), "-d", d0]
    progress, stop = files_dir() / f"{vm}.progress", files_dir() / f"{vm}.stop"
    res = rbdvm(*args, env={"RBDVM_LEASE_SECONDS": "2", "RBDVM_FAULT_AT": "create:images"}, check=False)
    assert res.returncode in (-9, 137), res
    writer = subprocess.Popen(labnode.enter("node2") + [PYTHON, RBDTOOL, "writer", "-", str(progress), str(stop),
                                                        f"data_{vm}_0"])
    try:
        assert wait_for(30, lambda: progress.exists() and int(progress.read_text()) > 5)
        deadline = time.monotonic() + 20
        while True:
            res = rbdvm(*args, check=False)
            if "is busy" not in res.stderr or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert res.returncode == 4 and f"data_{vm}_0" in res.stderr and L.IP["node2"] in res.stderr, res
        assert wait_for(10, lambda: int(progress.read_text()) > 5), "the writer goes on"
        assert read_bytes(f"data_{vm}_0", 0, 8) != bytes(8), "its data was not zeroed"
    finally:
        stop.touch()
        writer.wait(timeout=30)
        stop.unlink()
    rbdvm(*args)                        # once nobody has it open, the re-run finishes
    assert read_bytes(f"data_{vm}_0", 0, 2) == b"\x21\x21"
    force_remove(vm)


# ------------------------------------------------------------------ S4 losing the lease
def _proc_state(pid: int) -> str:
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return "gone"


def test_a_command_that_stalled_past_its_lease_writes_nothing_more():
    """A create and the qemu-img it just started freeze together (SIGSTOP of the process
    group: a frozen host) past the create's lease; another command takes the VM's lease
    meanwhile. When the create wakes it must kill its qemu-img before that writes anything
    more, and stop with a clear error. On the old code the create, having lost its lease,
    waited for its frozen qemu-img, which would then have written under the other command."""
    vm = unique("l")
    d0 = qcow2(f"{vm}-d0.qcow2", "8M", [(0, MiB, 0x21)])
    ready = files_dir() / f"{vm}.held"
    create = subprocess.Popen(labnode.enter("node1") + [
        "env", "RBDVM_LEASE_SECONDS=3", "RBDVM_PAUSE_AT=import:started", "rbdvm", "create", "--disabled", vm,
        "--image", boot_disk(), "--xml", base_xml(vm), "-d", d0], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True)
    holder = None
    try:
        assert wait_for(60, lambda: _proc_state(create.pid) == "T"), "the create freezes at its step"

        def take_over():
            nonlocal holder
            if holder is None or holder.poll() is not None:      # busy until the frozen lease expires
                holder = subprocess.Popen(labnode.enter("node2") + [PYTHON, RBDTOOL, "hold-lease", "-", vm, "3",
                                                                    str(ready)], stderr=subprocess.DEVNULL)
            return ready.exists()
        assert wait_for(30, take_over, interval=0.5), "another command takes the VM's lease"
        create.send_signal(signal.SIGCONT)          # the create only: its qemu-img stays frozen
        try:
            out, err = create.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            raise AssertionError("the create waits for its frozen qemu-img instead of killing it") from None
        assert create.returncode != 0 and "lost the lease" in err, (out, err)
        assert read_bytes(f"system_{vm}", 0, 2) == b"\0\0", "nothing was imported"
    finally:
        for sig in (signal.SIGCONT, signal.SIGKILL):      # whatever of the group is left
            try:
                os.killpg(create.pid, sig)
            except ProcessLookupError:
                pass
        create.wait()
        if holder is not None:
            holder.kill()
            holder.wait()
        ready.unlink(missing_ok=True)
        deadline = time.monotonic() + 20
        while "is busy" in rbdvm("remove", vm, check=False).stderr and time.monotonic() < deadline:
            time.sleep(0.5)
