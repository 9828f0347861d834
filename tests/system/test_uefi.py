"""SEAPATH's UEFI guest under rbdvm, on the lab's real Ceph, libvirt, OVMF and Pacemaker:
its firmware variables live in Ceph (nvram_<vm>, in the VM's group), so what the guest
wrote on one node is there on the next, whichever way it got there, and snapshots,
rollbacks and clones carry them with the disks.

The guest (labkit/guest.py) is OVMF's own UEFI Shell running startup.nsh from a FAT disk:
each boot prints the non-volatile Shell variable it finds (RBDVM-VARS [xx]) and adds an x.
Where libvirt kept the store in a host file on each node, the crash failover and the cold
move printed a fresh store ([]) instead."""

import re
import time

import pytest

from labkit import guest, node, once, ops
from labkit import layout as L
from labkit.procs import run, wait_for
from labkit.testing import (
    blocklisted,
    console_exchange,
    files_dir,
    force_remove,
    other,
    pacemaker_log,
    qemu_pids,
    rbdtool,
    rbdvm,
    rbdvm_error,
    rbdvm_json,
    unique,
    where,
)

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("agent_installed"),
              pytest.mark.requires("/usr/share/OVMF/OVMF_VARS_4M.fd", "mformat")]
LAB = str(L.LAB_SRC / "lab")
N1 = L.NODES[0]
BOOT = 90       # seconds an OVMF boot may take under TCG here (measured ~9 s; the suite's two cores are busy)


def uefi_disk() -> str:
    return str(once.made_once(files_dir() / "uefi-shell.raw", lambda tmp: guest.uefi_disk_image(str(tmp))))


def make_uefi_vm(vm: str, *extra) -> None:
    xml = files_dir() / f"{vm}.uefi.xml"
    xml.write_text(guest.seapath_uefi_xml("ignored", str(ops.serial_path(vm))))
    rbdvm("create", vm, "--image", uefi_disk(), "--xml", str(xml), "--live-migration",
          "--pacemaker-params", "force_stop=true", "--pacemaker-params", "migration_transport=tcp", *extra)


def seen(vm: str) -> list:
    """What each boot found in the variable store, in order."""
    return re.findall(r"RBDVM-VARS \[(x*)\]", ops.serial_text(vm))


def wait_seen(vm: str, expected: list, node: str | None = None) -> None:
    """Until the boots saw `expected`. The UEFI Shell counts 5 s down before it runs
    startup.nsh ("Press ESC ... any other key to continue"): each countdown is cut short with
    a key press on the guest's keyboard (seconds saved per boot, and the suite boots ~10),
    on `node`, or where Pacemaker runs it."""
    pressed = [0]

    def done():
        text = ops.serial_text(vm)
        countdowns = text.count("any other key to continue")
        if countdowns > pressed[0]:
            n = node or where(vm)
            if n is not None:
                ops.virsh(n, "send-key", vm, "KEY_ENTER", check=False)
            pressed[0] = countdowns
        return seen(vm) == expected
    assert wait_for(BOOT, done, 0.2), f"boots saw {seen(vm)}, expected {expected}"


def rbd_images() -> list:
    return ops.on("node1", "rbd", "--id", L.CEPH_USER, "ls", L.POOL).stdout.split()


@pytest.fixture
def uefi_vm():
    vm = unique("uefi")
    make_uefi_vm(vm)
    assert wait_for(60, lambda: where(vm) is not None), "Pacemaker started the VM"
    wait_seen(vm, [""])
    yield vm
    force_remove(vm)


def test_the_variables_follow_the_vm_through_crash_failover_cold_move_live_migration_and_rollback(uefi_vm):
    """Also the crash failover's proof (issue 12): once Pacemaker has fenced the crashed
    node, the survivor's guard blocklists exactly that node's disk clients instead of
    waiting ~30 s for their watch to expire; the crashed node, booted again, runs the VM
    with new clients (new nonces: the blocklist does not touch them). Then, on the same VM,
    the console from the other node and a clone with its own store."""
    vm = uefi_vm
    info = rbdvm_json("info", vm)
    assert info["nvram"] == f"nvram_{vm}"
    x = where(vm)
    y = other(x)
    on_x = ops.on(x, "virsh", "dumpxml", vm).stdout
    assert f"name='{L.POOL}/nvram_{vm}'" in on_x and "type='network'" in on_x, "the store is the RBD image"

    # crash failover: node x loses power; y fences it and boots the VM from the same store
    fences = len(ops.fence_events(y, x))
    old_clients = ops.watchers(x, f"system_{vm}", entities=True)
    listed_before = set(blocklisted())
    t0 = time.monotonic()
    run([LAB, "crash", x])
    assert wait_for(60, lambda: len(ops.fence_events(y, x)) > fences), f"{y} fenced {x}"
    fenced = time.monotonic() - t0
    wait_seen(vm, ["", "x"])
    print(f"\ncrash of {x} -> fenced after {fenced:.1f}s -> UEFI guest booted on {y} after "
          f"{time.monotonic() - t0:.1f}s")
    assert where(vm) == y and qemu_pids(y, vm)
    assert "blocklisted that client" in pacemaker_log(y), "the guard released the fenced node's client"
    added = set(blocklisted()) - listed_before
    assert set(old_clients) <= added, "the crashed QEMU's client was blocklisted"
    assert all(a.startswith(L.IP[x] + ":") for a in added), f"only clients of {x}: {added}"
    run([LAB, "boot", x], timeout=180)
    assert node.online_nodes(y) == sorted(L.NODES)

    # x, booted again, takes the VM back live: its new clients work. The migration's
    # downtime and total time are reported, and logged by the agent on the destination
    moved = rbdvm_json("migrate", vm, x)
    # rbdvm migrate returns once the VM runs on x; Pacemaker's stop of the source follows,
    # and crm_mon shows the VM on both nodes until it is done
    assert wait_for(30, lambda: where(vm) == x) and seen(vm) == ["", "x"], "live: no reboot"
    assert ops.watchers(x, f"system_{vm}") == [L.IP[x]], "the rebooted node's new client works"
    m = moved["migration"]
    assert 0 <= m["downtime_ms"] <= m["total_ms"] and m["transferred_bytes"] > 0, m
    assert f"domain {vm} runs here after migration: guest downtime {m['downtime_ms']} ms" in pacemaker_log(x)

    # cold move to y: stopped on x, booted on y
    rbdvm("migrate", vm, y, "--cold")
    wait_seen(vm, ["", "x", "xx"])
    assert wait_for(30, lambda: where(vm) == y)
    # a snapshot holds the store as it is now (xxx, written by that boot)
    rbdvm("snapshot", "create", vm, "s1")

    # live migration to x, then a reset there: the guest's next boot reads the store on x
    # (and writes xxxx)
    rbdvm("migrate", vm, x)
    ops.on(x, "virsh", "reset", vm)
    wait_seen(vm, ["", "x", "xx", "xxx"])

    # a rollback brings back the variables of the snapshot's instant
    rbdvm("snapshot", "rollback", vm, "s1")
    wait_seen(vm, ["", "x", "xx", "xxx", "xxx"])
    _console_from_the_other_node(vm)
    _a_clone_gets_its_own_store(vm)


def _console_from_the_other_node(vm):
    """`rbdvm console` on the node that does not run the VM attaches to the guest's serial
    console there: typed into the UEFI Shell, `echo %rbdvmgen%-console` answers with the
    guest's own variable (xxxx: written by the boot after the rollback)."""
    x = where(vm)
    wanted = r"\n\s*xxxx-console"
    out = console_exchange(other(x), vm, "echo %rbdvmgen%-console", lambda text: re.search(wanted, text) is not None)
    assert re.search(wanted, out.split("Escape character", 1)[-1]), out[-1500:]
    assert f"runs on {x}" in out
    assert rbdvm_json("console", vm, node=other(x))["node"] == x


def _a_clone_gets_its_own_store(src):
    """A clone of the running VM: its own store, a copy-on-write child of the source's at
    the clone's instant, in its group and named by its definition (the store's content as
    the source's guest wrote it); remove takes it."""
    dst = unique("uefic")
    rbdvm("clone", src, dst, "--disabled")
    try:
        assert rbdvm_json("info", dst)["nvram"] == f"nvram_{dst}"
        assert "runs nowhere" in rbdvm_error(3, "console", dst)
        parent = ops.on(N1, "rbd", "--id", L.CEPH_USER, "info", f"{L.POOL}/nvram_{dst}").stdout
        assert f"parent: {L.POOL}/nvram_{src}@rbdvm-clone-{dst}" in parent
        xml = ops.on(N1, "rbd", "--id", L.CEPH_USER, "image-meta", "get", f"{L.POOL}/system_{dst}", "xml").stdout
        assert f"name='{L.POOL}/nvram_{dst}'" in xml or f'name="{L.POOL}/nvram_{dst}"' in xml
        assert rbdtool("read", f"nvram_{dst}", 0, 540672) == rbdtool("read", f"nvram_{src}", 0, 540672)
    finally:
        force_remove(dst)
    assert f"nvram_{dst}" not in rbd_images(), "remove took the clone's store"


@pytest.mark.side_by_side
def test_a_vm_whose_variables_are_in_a_host_file_gets_them_moved_into_ceph_at_its_next_start():
    """A VM made before rbdvm kept variables in Ceph (or by vm_manager): its signed
    definition names no store, and node1 holds the variables in libvirt's host file. Its
    next start, on node1, moves them into nvram_<vm>: the guest finds what it wrote (that
    every node then boots from that store is the first test's proof); node1's file is left
    as it was."""
    vm = unique("uefil")
    make_uefi_vm(vm, "--disabled", "--preferred-host", "node1")
    try:
        # as an rbdvm from before this change left it: no store, a definition without <nvram>
        rbd = lambda *a: ops.rbd("node1", *a)  # noqa: E731
        rbd("group", "image", "remove", f"{L.POOL}/{vm}", f"{L.POOL}/nvram_{vm}")
        rbd("rm", "--no-progress", f"{L.POOL}/nvram_{vm}")
        xml = ops.on("node1", "rbd", "--id", L.CEPH_USER, "image-meta", "get", f"{L.POOL}/system_{vm}", "xml").stdout
        old = re.sub(r"<nvram type=.network.>.*?</nvram>\s*", "", xml, flags=re.S)
        assert "<nvram" not in old
        stored = files_dir() / f"{vm}.old.xml"
        stored.write_text(old)
        ops.on("node1", "sh", "-c", f'rbd --id {L.CEPH_USER} image-meta set {L.POOL}/system_{vm} xml "$(cat {stored})"')
        rbdvm("trust", vm, "--yes")
        # node1's libvirt keeps the variables in its host file: one boot there writes [x]
        ops.on("node1", "virsh", "create", str(stored))
        wait_seen(vm, [""], node="node1")
        ops.on("node1", "virsh", "destroy", vm)
        host_file = f"/var/lib/libvirt/qemu/nvram/{vm}_VARS.fd"
        before = ops.on("node1", "sha256sum", host_file).stdout

        rbdvm("enable", vm)
        wait_seen(vm, ["", "x"])
        assert where(vm) == "node1"
        origin = ops.on("node1", "rbd", "--id", L.CEPH_USER, "image-meta", "get", f"{L.POOL}/nvram_{vm}",
                        "_nvram_origin").stdout.strip()
        assert origin == f"file {host_file}"
        assert rbdvm_json("info", vm)["nvram"] == f"nvram_{vm}", "the store joined the VM's group"
        assert ops.on("node1", "sha256sum", host_file).stdout == before, "the host file is untouched"
        assert "UEFI variables moved into Ceph" in pacemaker_log("node1")
    finally:
        force_remove(vm)


@pytest.mark.side_by_side
def test_a_secure_boot_guest_gets_the_enrolled_keys_template_and_boots_with_secure_boot_enforced():
    """Secure boot on: the store starts from the template with Microsoft's keys enrolled
    (libvirt's pick), so OVMF enforces secure boot from the first boot: it refuses the
    unsigned UEFI Shell ("Security Violation"). A store without enrolled keys would have
    run it."""
    vm = unique("uefis")
    xml = files_dir() / f"{vm}.uefi.xml"
    xml.write_text(guest.seapath_uefi_xml("ignored", str(ops.serial_path(vm)), secure_boot=True))
    rbdvm("create", vm, "--image", uefi_disk(), "--xml", str(xml), "--pacemaker-params", "force_stop=true")
    try:
        origin = ops.on("node1", "rbd", "--id", L.CEPH_USER, "image-meta", "get", f"{L.POOL}/nvram_{vm}",
                        "_nvram_origin").stdout.strip()
        assert origin == "template /usr/share/OVMF/OVMF_VARS_4M.ms.fd", "libvirt's pick for secure boot"
        assert wait_for(BOOT, lambda: "Security Violation" in ops.serial_text(vm), 0.2), ops.serial_text(vm)[-2000:]
        assert seen(vm) == [], "the unsigned Shell never ran"
        running = ops.on(where(vm), "virsh", "dumpxml", vm).stdout
        assert "secure='yes'" in running and "<smm state='on'/>" in running
    finally:
        force_remove(vm)
