"""Storage fencing (issue 12, part 2): fence_rbdvm cuts a node off Ceph, fence_rbdvm_check
ends a fenced node's QEMUs, unfencing lets the node back. The cluster tests take the lab's
power-fence devices out of the way with fencing levels that name only fence_rbdvm."""

import subprocess
import time

import pytest

from labkit import ceph, node, ops, storagefence
from labkit import layout as L
from labkit.procs import run, wait_for
from labkit.storagefence import fenced_hosts, unfence_all
from labkit.testing import agent, exit_reason, history, other, qemu_pids, rbdvm, rbdvm_json, stopped_vm, where

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("agent_installed")]
N1, N2 = L.HYPERVISORS
vm = stopped_vm   # the fixture `vm`: a stopped VM, removed afterwards
LAB = str(L.LAB_SRC / "lab")


def fence(n: str, *args) -> subprocess.CompletedProcess:
    return ops.on(n, "fence_rbdvm", *args, check=False)


@pytest.fixture
def clean_blocklist():
    unfence_all()
    yield
    unfence_all()


def test_pcs_describes_the_installed_fence_agent():
    res = ops.on(N1, "pcs", "stonith", "describe", "fence_rbdvm")
    for option in ("plug", "ceph_id", "pool", "node_addresses"):
        assert option in res.stdout, res.stdout
    meta = ops.on(N1, "stonith_admin", "--metadata", "--agent", "fence_rbdvm").stdout
    assert 'name="on" on_target="1" automatic="1"' in meta, "unfencing is declared"


def test_off_cuts_every_client_of_the_node_and_on_lets_them_back(vm, clean_blocklist):
    assert fence(N1, "-o", "list").stdout.split() == [f"{n}," for n in L.NODES]
    assert fence(N1, "-o", "monitor").returncode == 0
    assert fence(N1, "-o", "status", "-n", N2).returncode == 0, "on"

    off = fence(N1, "-o", "off", "-n", N2)
    assert off.returncode == 0, off.stderr
    # Ceph-aware failover marks a fenced node's OSDs down only when they do not answer: a
    # storage fence leaves the node running, and its OSD serves on
    assert "marked osd" not in off.stderr, off.stderr
    assert ceph.status()["osds_up"] == 2
    assert fence(N1, "-o", "status", "-n", N2).returncode == 2, "off"
    assert fence(N1, "-o", "off", "-n", N2).returncode == 0, "off again: nothing to do, success"
    assert fenced_hosts() == [N2]
    cut = ops.on(N2, *ops.RBD, "ls", L.POOL, check=False)
    assert cut.returncode != 0, "a new client of the fenced node is refused"
    assert ops.on(N2, "fence_rbdvm_check", check=False).returncode == 1
    assert ops.on(N1, "fence_rbdvm_check", check=False).returncode == 0
    assert ops.on(N1, *ops.RBD, "ls", L.POOL, check=False).returncode == 0, "the other node is untouched"
    start = agent(N2, "start", vm=vm)
    assert start.returncode != 0 and "it has been fenced" in exit_reason(start), start.stderr
    assert not qemu_pids(N2, vm)

    back = fence(N2, "-o", "off", "-n", N1)
    assert back.returncode == 1 and "fenced itself" in back.stderr, "a fenced node fences nobody"
    assert fenced_hosts() == [N2]

    on = fence(N2, "-o", "on", "-n", N2)   # unfencing runs on the node itself
    assert on.returncode == 0, on.stderr
    assert fenced_hosts() == []
    assert fence(N1, "-o", "status", "-n", N2).returncode == 0
    assert ops.on(N2, "fence_rbdvm_check", check=False).returncode == 0
    assert ops.on(N2, *ops.RBD, "ls", L.POOL, check=False).returncode == 0


def test_unknown_node_and_bad_options_fail_with_a_reason():
    res = fence(N1, "-o", "off", "-n", "node9")
    assert res.returncode == 1 and "no address known for node 'node9'" in res.stderr
    res = fence(N1, "--bogus")
    assert res.returncode == 1 and "unknown option --bogus" in res.stderr
    assert fenced_hosts() == []


def test_a_fencer_that_died_holding_the_lock_blocks_nobody_for_long(clean_blocklist):
    """A fencer SIGKILLed while it holds the fence lock never unlocks it: the lock's
    duration lets the next fencer through (here 4 s instead of fence_rbdvm's 30 s)."""
    ops.on(N1, "/usr/bin/python3", "-c",
           "import rados; c = rados.Rados(conffile='/etc/ceph/ceph.conf', rados_id='rbdvm-fence'); "
           f"c.connect(); c.open_ioctx('{L.POOL}').lock_exclusive('rbdvm.fence', 'fence', 'dead', duration=4)")
    off = fence(N2, "-o", "off", "-n", N1)
    assert off.returncode == 0, off.stderr
    assert fenced_hosts() == [N1]


def test_two_nodes_fencing_each_other_at_once_leave_exactly_one_fenced(clean_blocklist):
    """The fence race of a partition without a fence delay: each node fences the other at
    the same moment. Both would succeed without the fence lock, and stop every VM."""
    for rnd in range(10):
        procs = {n: subprocess.Popen(node.enter(n) + list(L.CLEAN_ENV) + ["fence_rbdvm", "-o", "off", "-n", other(n)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for n in L.HYPERVISORS}
        out = {n: p.communicate(timeout=60) for n, p in procs.items()}
        rcs = {n: p.returncode for n, p in procs.items()}
        fenced = fenced_hosts()
        assert sorted(rcs.values()) == [0, 1] and len(fenced) == 1, (rnd, rcs, fenced, out)
        winner = next(n for n, rc in rcs.items() if rc == 0)
        assert fenced == [other(winner)], (rnd, rcs, fenced)
        assert "fenced itself" in out[other(winner)][1]
        unfence_all()


def test_paused_ceph_is_not_a_fence_and_fence_rbdvm_answers_in_time(vm, clean_blocklist):
    """With the OSDs paused nobody can say whether a host is fenced: the self-check must not
    end a running guest, and fence_rbdvm must fail within the lab's stonith-timeout (30 s)
    rather than hang pacemaker-fenced."""
    assert agent(N1, "start", vm=vm).returncode == 0
    run([LAB, "ceph", "--", "osd", "pause"])
    try:
        check = ops.on(N1, "fence_rbdvm_check", check=False, timeout=30)
        assert check.returncode == 0 and "unknown" in check.stderr, check
        assert qemu_pids(N1, vm), "a guest is never ended on a guess"
        off = ops.on(N1, "fence_rbdvm", "-o", "off", "-n", N2, check=False, timeout=30)
        assert off.returncode == 1 and "timed out" in off.stderr, off
    finally:
        run([LAB, "ceph", "--", "osd", "unpause"])
    assert fenced_hosts() == []
    assert agent(N1, "stop", vm=vm).returncode == 0


@pytest.fixture
def storage_fencing():
    storagefence.enable()
    yield
    storagefence.disable()


def qemu_io_failures(n: str, vm: str) -> int:
    """How many qemu-io requests QEMU reported failed (HMP's qemu-io prints them to QEMU's
    stderr, which libvirt writes into the domain's log)."""
    path = L.node_dir(n) / "log-libvirt" / "qemu" / f"{vm}.log"
    return path.read_text(errors="replace").count("read failed:") if path.exists() else 0


def move(vm: str, to: str) -> None:
    src = N1 if to == N2 else N2
    ops.on(src, "crm_resource", "--move", "-r", vm, "-N", to)
    assert wait_for(90, lambda: where(vm) == to and (to, "migrate_from", "0") in history(vm)), history(vm)
    ops.on(src, "crm_resource", "--clear", "-r", vm)


def test_crashed_node_is_storage_fenced_the_vm_restarts_and_the_node_rejoins_unfenced(
        storage_fencing, cluster_vm):
    vm = cluster_vm
    x = where(vm)
    y = other(x)
    before = len(ops.fence_events(y, x))
    t0 = time.monotonic()
    run([LAB, "crash", x])
    assert wait_for(60, lambda: len(ops.fence_events(y, x)) > before), f"{y} fenced {x}"
    fenced = time.monotonic() - t0
    assert fenced_hosts() == [x], "fence_rbdvm did it: the crashed node is cut off Ceph"
    assert wait_for(120, lambda: ops.boots(vm) == 2, 0.1), "the VM booted on the survivor"
    ready = time.monotonic() - t0
    assert where(vm) == y and qemu_pids(y, vm)
    print(f"\ncrash of {x} -> storage-fenced after {fenced:.1f}s -> {vm} READY on {y} after {ready:.1f}s")

    run([LAB, "boot", x], timeout=180)
    assert wait_for(60, lambda: fenced_hosts() == []), "unfenced when it rejoined"
    node.start_fence_check(x)
    move(vm, x)
    assert ops.boots(vm) == 2, "the VM went back live, no reboot"
    assert ops.watchers(x, f"system_{vm}") == [L.IP[x]], "the node's clients work again"


def test_partition_loser_is_storage_fenced_its_qemu_cannot_write_and_is_ended(storage_fencing, cluster_vm):
    """node2's corosync is cut off (its Ceph is not): the majority fences it off Ceph while
    it still runs the VM (no-quorum-policy freeze: a node without quorum keeps what it runs),
    its QEMU cannot write, the self-check ends it, the VM runs on node1, and node2, rebooted
    after the heal, is unfenced and runs VMs again."""
    vm = cluster_vm
    if where(vm) != N2:
        move(vm, N2)
    node.stop_fence_check(N2)   # first show that the fenced node's QEMU cannot write
    read = 'qemu-io libvirt-1-format "read 524288 65536"'   # inside the 1 MiB disk
    failed_before = qemu_io_failures(N2, vm)
    ops.virsh(N2, "qemu-monitor-command", "--hmp", vm, read)
    assert qemu_io_failures(N2, vm) == failed_before, "before the fence the same read works"
    ops.on(N1, "crm_attribute", "-t", "crm_config", "-n", "no-quorum-policy", "-v", "freeze")
    run([LAB, "partition", N2, "--cluster-only"])
    try:
        assert wait_for(60, lambda: fenced_hosts() == [N2]), f"{N1} fenced {N2} off Ceph: {fenced_hosts()}"
        assert qemu_pids(N2, vm), "the fenced node's QEMU still runs (no power fence)"
        # an I/O attempt of the running QEMU itself (a read: the guest's device holds the
        # disk's write permission unshared, HMP's qemu-io cannot take it): the OSDs refuse it
        ops.virsh(N2, "qemu-monitor-command", "--hmp", vm, read)
        assert wait_for(5, lambda: qemu_io_failures(N2, vm) == failed_before + 1), "the fenced QEMU's read failed"
        node.start_fence_check(N2)
        assert wait_for(20, lambda: not qemu_pids(N2, vm)), "the self-check ended the fenced node's QEMU"
        check_log = L.node_dir(N2) / "fencecheck.out"
        # it writes its line once the process is gone
        assert wait_for(10, lambda: f"ended the QEMU of {vm}" in check_log.read_text()), check_log.read_text()
        assert wait_for(120, lambda: ops.resource_node(N1, vm) == N1 and qemu_pids(N1, vm)), "the VM runs on node1"
        assert ops.watchers(N1, f"system_{vm}") == [L.IP[N1]], "one writer"
        assert fenced_hosts() == [N2], "node2 never fenced node1"
    finally:
        run([LAB, "heal"])
        ops.on(N1, "crm_attribute", "-t", "crm_config", "-n", "no-quorum-policy", "--delete", check=False)
    # a storage-fenced node is rebooted to rejoin (its Pacemaker learns it was fenced)
    run([LAB, "crash", N2])
    run([LAB, "boot", N2], timeout=180)
    assert wait_for(60, lambda: fenced_hosts() == []), "unfenced when it rejoined"
    assert where(vm) == N1 and not qemu_pids(N2, vm)
    node.start_fence_check(N2)

    def ended_in_history():
        return [e for e in rbdvm_json("events", vm, "--since", "15min")["events"]
                if e["kind"] == "self-check" and e["node"] == N2 and e["ok"]]
    # kept on node2 while it was fenced, added at its first clear look after the reboot
    assert wait_for(20, ended_in_history), rbdvm("events", vm, "--since", "15min").stdout
    move(vm, N2)
    assert ops.watchers(N2, f"system_{vm}") == [L.IP[N2]], "node2 runs VMs again"
