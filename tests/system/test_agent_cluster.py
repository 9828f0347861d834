"""ocf:rbdvm:VirtualDomain under the lab's real two-node Pacemaker cluster (fencing on)."""

import time

import pytest

from labkit import layout as L
from labkit import node, ops
from labkit.procs import run, wait_for
from labkit.testing import (
    blocklisted,
    fail_count,
    history,
    other,
    qemu_pids,
    where,
)

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("agent_installed")]
N1, N2 = L.HYPERVISORS
LAB = str(L.LAB_SRC / "lab")


@pytest.mark.side_by_side
def test_started_recovered_after_qemu_dies_and_live_migrated_without_reboot(cluster_vm):
    vm = cluster_vm
    x = where(vm)
    assert qemu_pids(x, vm) and not qemu_pids(other(x), vm)
    util = ops.on(N1, "crm_resource", "-r", vm, "--utilization", "-g", "cpu", check=False).stdout.strip()
    assert util == "1", "cpu utilization set from the definition"

    # the guest's QEMU dies: Pacemaker's monitor notices, and recovers it
    for pid in qemu_pids(x, vm):
        import os
        import signal

        os.kill(pid, signal.SIGKILL)
    assert wait_for(60, lambda: fail_count(vm, x) == 1), f"fail-count on {x}: {fail_count(vm, x)}"
    assert wait_for(60, lambda: where(vm) is not None and ops.boots(vm) == 2), "recovered and booted again"
    x = where(vm)

    # a move is a live migration: migrate_to + migrate_from, no stop/start, no reboot
    y = other(x)
    ops.on(N1, "crm_resource", "--move", "-r", vm, "-N", y)
    # crm_mon names y as soon as migrate_to moved the domain, before migrate_from is recorded
    assert wait_for(60, lambda: where(vm) == y and (y, "migrate_from", "0") in history(vm)), history(vm)
    ops.on(N1, "crm_resource", "--clear", "-r", vm)
    assert (x, "migrate_to", "0") in history(vm)
    assert ops.boots(vm) == 2, "the guest did not reboot"
    assert qemu_pids(y, vm) and not qemu_pids(x, vm)
    assert ops.watchers(y, f"system_{vm}") == [L.IP[y]], "only the new node has the disk open"


def test_partition_without_fencing_never_runs_two_writers(cluster_vm):
    vm = cluster_vm
    x = where(vm)
    y = other(x)
    ops.on(N1, "crm_attribute", "-t", "crm_config", "-n", "stonith-enabled", "-v", "false")
    # the cut-off node keeps its VM (the default, stop, would stop it at once): both sides
    # then want the VM running, the case the guard exists for
    ops.on(N1, "crm_attribute", "-t", "crm_config", "-n", "no-quorum-policy", "-v", "ignore")
    # the guard gives up when its start budget is nearly spent: keep the test short
    ops.on(N1, "pcs", "resource", "update", vm, "op", "start", "timeout=30s")
    writers = set()
    try:
        run([LAB, "partition", x, "--cluster-only"])
        t0 = time.monotonic()
        refused = None
        while time.monotonic() - t0 < 150:
            w = ops.watchers(y, f"system_{vm}")   # both nodes still reach Ceph
            writers.add(tuple(w))
            assert len(w) <= 1, f"two clients have the disk open: {w}"
            assert len(qemu_pids(y, vm)) == 0, f"a second QEMU runs on {y}"
            failed = ops.on(y, "crm_mon", "-1", "--output-as=xml", timeout=10, check=False).stdout
            if "split-brain guard" in failed:
                refused = failed
                break
            time.sleep(0.5)
        assert refused, f"{y} never reported a refused start"
        assert "second writer" in refused and L.IP[x] in refused
        running_there = ops.watchers(x, f"system_{vm}", entities=True)
        assert not set(running_there) & set(blocklisted()), "the live node's client was not blocklisted"
        assert qemu_pids(x, vm), f"the VM still runs on {x}"
    finally:
        run([LAB, "heal"])
        assert wait_for(60, lambda: node.online_nodes(N1) == sorted(L.NODES)
                        and node.online_nodes(N2) == sorted(L.NODES)), "the partition healed"
        ops.on(N1, "crm_attribute", "-t", "crm_config", "-n", "stonith-enabled", "-v", "true")
        ops.on(N1, "crm_attribute", "-t", "crm_config", "-n", "no-quorum-policy", "--delete")
        ops.on(N1, "crm_resource", "--cleanup", "-r", vm, check=False)
    assert wait_for(60, lambda: where(vm) == x), f"{vm} runs on {x} alone after the heal"
    assert not qemu_pids(y, vm)
