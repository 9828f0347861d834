"""A VM as a Pacemaker guest node on the lab (vm_manager's and cluster_vm's
add_pacemaker_remote): the lab's Linux guest on the hypervisors' bridge, running Debian's
pacemaker-remoted with the cluster's authkey, made a guest node by rbdvm's remote_* settings.
A resource Pacemaker runs inside it (ocf:rbdvmlab:Marker) says on the guest's serial port,
every second, that it is active, with the guest's boot id: which instance of the guest ran
it, and when (linuxguest.markers).

The tests: the resource runs inside the VM and keeps running through a live migration, and
removing the guest node leaves the VM running; with storage fencing only, a partition never
has it active in two guests at once, and a host crash restarts the VM on the survivor where
the resource runs again. They run alone: a transition Pacemaker aborts while it migrates or
disconnects a guest node's VM (any other test's CIB change) makes it restart the VM."""

import time

import pytest

from labkit import layout as L
from labkit import linuxguest, node, ops, storagefence
from labkit.procs import run, wait_for
from labkit.storagefence import fenced_hosts
from labkit.testing import LIBVIRT_TCP, files_dir, force_remove, other, qemu_pids, rbdvm, rbdvm_json, unique, where

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("agent_installed")]
N1, N2 = L.HYPERVISORS
LAB = str(L.LAB_SRC / "lab")


def serial(vm) -> str:
    return ops.serial_text(vm)


def boot_ids(vm) -> list:
    """The guest's boot ids in the order it booted (pacemaker-remoted started with each)."""
    return [line.split()[1] for line in serial(vm).splitlines() if line.startswith("REMOTED ")]


def marker_node(rsc) -> str | None:
    return ops.resource_node(N1 if node.REG.alive(f"pacemakerd-{N1}") else N2, rsc)


def marking(vm, boot) -> bool:
    """The marker says it is active in the guest's boot `boot` (two lines of it, a second apart)."""
    return sum(1 for b, _ in linuxguest.markers(serial(vm)) if b == boot) >= 2


def pcs(*args, check=True):
    return ops.on(N1 if node.REG.alive(f"pacemakerd-{N1}") else N2, "pcs", *args, check=check)


@pytest.fixture
def guest_node():
    """(vm, guest node name, marker resource): a guest node VM running the marker, started on
    either hypervisor; removed afterwards."""
    vm = unique("gn")
    guest, marker = f"g{vm}", f"m{vm}"
    address = L.GUEST_IPS[0]
    kernel, initrd = linuxguest.build(guest_node=True)
    xml = files_dir() / f"{vm}.base.xml"
    xml.write_text(linuxguest.domain_xml("ignored", str(ops.serial_path(vm)), kernel, initrd,
                                         address=f"{address}/24", memory_mib=320))
    disk = files_dir() / f"{vm}.ext4"
    linuxguest.disk_image(str(disk))
    ops.serial_path(vm).unlink(missing_ok=True)
    try:
        rbdvm("create", vm, "--image", disk, "--xml", xml, *LIBVIRT_TCP, "--live-migration",
              "--remote-node", guest, "--remote-addr", address)
        # pcs cannot read the agent's meta-data on a cluster node (it is in the guest only).
        # requires=fencing: with fence_rbdvm (provides=unfencing) Pacemaker would otherwise wait
        # to unfence the guest node first, which no fence device can (docs/guest-nodes.md)
        pcs("resource", "create", marker, "ocf:rbdvmlab:Marker", "op", "monitor", "interval=5s",
            "meta", "target-role=Stopped", "requires=fencing", "--force")
        for n in L.NODES:
            pcs("constraint", "location", marker, "avoids", n)
        pcs("resource", "enable", marker)
        assert wait_for(120, lambda: marker_node(marker) == guest and boot_ids(vm) and marking(vm, boot_ids(vm)[-1]),
                        0.5), serial(vm)[-2000:]
        yield vm, guest, marker
    finally:
        pcs("resource", "delete", marker, "--force", check=False)
        # from a hypervisor that is up and not fenced off the storage (a failed storage
        # fencing test leaves one so until the fixture below reboots it)
        force_remove(vm, node=next(n for n in L.HYPERVISORS if node.REG.alive(f"pacemakerd-{n}")
                                   and n not in fenced_hosts()))


def test_a_resource_on_the_guest_node_runs_in_the_vm_through_a_live_migration_and_removal_leaves_the_vm_running(
        guest_node):
    """Alone: a transition Pacemaker aborts while it migrates a guest node's VM (any CIB
    change of another test) makes it restart the VM instead (docs/guest-nodes.md)."""
    vm, guest, marker = guest_node
    info = rbdvm_json("info", vm)["settings"]
    assert (info["remote_node"], info["remote_addr"]) == (guest, L.GUEST_IPS[0])
    (boot,) = boot_ids(vm)
    assert serial(vm).count("MARKERSTART") == 1
    x = where(vm)
    moved = rbdvm_json("migrate", vm, other(x))
    assert moved["how"] == "live" and where(vm) == other(x)
    assert wait_for(60, lambda: marker_node(marker) == guest), "the guest node is back, its resource with it"
    seen = len(linuxguest.markers(serial(vm)))
    assert wait_for(10, lambda: len(linuxguest.markers(serial(vm))) > seen + 2)
    assert boot_ids(vm) == [boot], "the guest did not reboot"
    assert serial(vm).count("MARKERSTART") == 1 and "MARKERSTOP" not in serial(vm), \
        "Pacemaker neither stopped nor restarted the resource: it ran on through the migration"
    clock = [t for b, t in linuxguest.markers(serial(vm)) if b == boot]
    gaps = [b - a for a, b in zip(clock, clock[1:])]
    print(f"\nguest node {guest}: live migration downtime {moved['migration']['downtime_ms']} ms, "
          f"longest pause of the in-guest resource's marks {max(gaps)} s")

    # removing the guest node leaves the VM running
    x = where(vm)
    pids = qemu_pids(x, vm)
    boots = boot_ids(vm)
    done = rbdvm_json("set", vm, "--remote-node", "")
    assert "_remote_node" in done["changed"] and done["restarted"] is False
    assert wait_for(60, lambda: guest not in ops.on(N1, "crm_mon", "-1").stdout), "the guest node is gone"
    time.sleep(2)
    assert where(vm) == x and qemu_pids(x, vm) == pids and boot_ids(vm) == boots, "the VM ran on, untouched"
    assert "remote_node" not in rbdvm_json("info", vm)["settings"]
    assert marker_node(marker) is None, "its resource has nowhere to run"


@pytest.fixture
def storage_fencing():
    storagefence.enable()
    yield
    # a test that failed midway leaves a node fenced off the storage: it is rebooted to rejoin
    # (docs/fencing.md), as the test itself does when it passes
    for n in fenced_hosts():
        run([LAB, "crash", n])
        run([LAB, "boot", n], timeout=180)
    storagefence.disable()


def test_a_partition_never_has_the_guests_resource_active_twice_and_after_a_host_crash_it_runs_again(
        storage_fencing, guest_node):
    """With storage fencing only. First the node running the guest node loses the cluster
    network (its Ceph and the guests' network stay): the majority fences it off Ceph, its
    self-check ends its QEMU, the VM boots on the survivor and the resource runs in that new
    guest; no-quorum-policy freeze (the cut-off node keeps what it runs: the worst case).
    Every mark of the old guest comes before the first of the new one. Then, with the fenced
    node rebooted, the node now running the VM crashes: the VM boots on the other, the guest
    node reconnects, the resource runs again."""
    vm, guest, marker = guest_node
    x = where(vm)
    y = other(x)
    (first,) = boot_ids(vm)
    ops.on(y, "crm_attribute", "-t", "crm_config", "-n", "no-quorum-policy", "-v", "freeze")
    run([LAB, "partition", x, "--cluster-only"])
    try:
        assert wait_for(60, lambda: fenced_hosts() == [x]), f"{y} fenced {x} off Ceph: {fenced_hosts()}"
        assert wait_for(30, lambda: not qemu_pids(x, vm)), "the self-check ended the fenced node's QEMU"
        assert wait_for(180, lambda: len(boot_ids(vm)) == 2, 0.5), "the VM booted on the survivor"
        second = boot_ids(vm)[1]
        assert wait_for(120, lambda: marking(vm, second), 0.5), "the resource runs in the new guest"
        assert ops.resource_node(y, vm) == y
    finally:
        run([LAB, "heal"])
        ops.on(y, "crm_attribute", "-t", "crm_config", "-n", "no-quorum-policy", "--delete", check=False)
    old = [t for b, t in linuxguest.markers(serial(vm)) if b == first]
    new = [t for b, t in linuxguest.markers(serial(vm)) if b == second]
    assert max(old) < min(new), f"active in two guests at once: old until {max(old)}, new from {min(new)}"
    print(f"\npartition of {x}: the old guest's resource last marked at {max(old)}, the new one first at "
          f"{min(new)} ({min(new) - max(old)} s later)")
    # a storage-fenced node is rebooted to rejoin (docs/fencing.md)
    run([LAB, "crash", x])
    run([LAB, "boot", x], timeout=180)
    assert wait_for(60, lambda: fenced_hosts() == []), "unfenced when it rejoined"
    node.start_fence_check(x)

    # the host running the guest node now crashes
    run([LAB, "crash", y])
    try:
        assert wait_for(180, lambda: len(boot_ids(vm)) == 3, 0.5), "the VM booted again"
        assert where(vm) == x and qemu_pids(x, vm)
        third = boot_ids(vm)[2]
        assert wait_for(120, lambda: marker_node(marker) == guest and marking(vm, third), 0.5), \
            "the guest node reconnected and its resource runs again"
        assert max(t for b, t in linuxguest.markers(serial(vm)) if b == second) < \
            min(t for b, t in linuxguest.markers(serial(vm)) if b == third)
    finally:
        run([LAB, "boot", y], timeout=180)
        assert wait_for(60, lambda: fenced_hosts() == []), "unfenced when it rejoined"
        node.start_fence_check(y)
