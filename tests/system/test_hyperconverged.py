"""SEAPATH's shape (issue 30): every hypervisor also runs a Ceph monitor and an OSD, the
observer a monitor and no hypervisor. Each test attacks a guarantee with the failure that
matters on such a site, with a guest that writes (labkit.linuxguest's journal mode: ACK n
once n is on its RBD disk):
- "one writer": the guest's disk is never open from two nodes at once;
- "nothing acknowledged lost": after any failover the guest finds on its disk at least the
  last value it acknowledged before the failure.
One VM serves the module's tests in turn (each says where it expects it)."""

import json
import os
import signal
import time

import pytest

from labkit import ceph, node, ops
from labkit import layout as L
from labkit.procs import run, wait_for
from labkit.testing import (
    acked,
    agent,
    exit_reason,
    fail_count,
    force_remove,
    journal_boots,
    journal_vm,
    other,
    pacemaker_log,
    qemu_pids,
    rbdvm,
    rbdvm_json,
    unique,
    where,
)

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("agent_installed")]
LAB = str(L.LAB_SRC / "lab")
N1, N2 = L.HYPERVISORS
OBS = L.OBSERVER


@pytest.fixture(scope="module")
def writer(agent_installed):
    vm = unique("hc")
    journal_vm(vm, N1)
    yield vm
    for n in L.NODES:       # whatever a failed test left down comes back first
        if not node.REG.alive(f"pacemakerd-{n}"):
            run([LAB, "heal"])
            run([LAB, "boot", n], timeout=180)
    ops.on(N1, "crm_resource", "--cleanup", "-r", vm, check=False)
    force_remove(vm)


def image(vm: str) -> str:
    return f"system_{vm}"


def writers(vm: str, seen_from: str) -> list:
    return ops.watchers(seen_from, image(vm))


def writes_on(vm: str, n: str, more: int = 3, timeout: float = 60) -> None:
    """The guest acknowledges `more` new writes while it runs on n, and only n has its disk."""
    start = max(acked(vm) or [0])
    assert wait_for(timeout, lambda: max(acked(vm) or [0]) >= start + more, 0.1), \
        f"the guest acknowledges writes on {n}: stuck at {start}"
    # crm_mon shows a resource in the middle of its migration's last steps nowhere for a moment
    assert wait_for(15, lambda: where(vm) == n), f"{vm} runs on {n}"
    assert writers(vm, n) == [L.IP[n]], "one writer"


def move_to(vm: str, n: str) -> None:
    if where(vm) != n:
        rbdvm("migrate", vm, n)
    assert wait_for(30, lambda: where(vm) == n), f"{vm} runs on {n}"


def mon_leader() -> str:
    return json.loads(ceph.admin("quorum_status", "--format", "json").stdout)["quorum_leader_name"]


def fences_of(n: str, seen_from: str) -> int:
    return len(ops.fence_events(seen_from, n))


def no_vm_action_on_the_observer(vm: str) -> None:
    """The observer only ever answered the probe, "not installed": no start, no failure."""
    assert {(task, rc) for n, task, rc in ops.operations(N1, vm) if n == OBS} <= {("probe", "5")}
    assert fail_count(vm, OBS) == 0
    status = ops.on(N1, "crm_mon", "-1", "--output-as=xml").stdout
    failures = status.split("<failures>", 1)[1].split("</failures>", 1)[0] if "<failures>" in status else ""
    assert f'node="{OBS}"' not in failures, failures


def test_the_observer_never_tries_a_vm_with_or_without_rbdvms_constraints(writer, cluster_vm):
    """rbdvm's VM (enabled by rbdvm) and a resource made by pcs without any constraint: the
    observer answers the probe "not installed, no hypervisor here" and is never tried."""
    for vm in (writer, cluster_vm):
        assert where(vm) in L.HYPERVISORS
        no_vm_action_on_the_observer(vm)
    probe = agent(OBS, "monitor", vm=writer)
    assert probe.returncode == 5 and "this node has no hypervisor" in exit_reason(probe)
    assert agent(OBS, "start", vm=writer).returncode == 5, "nothing can start there"
    assert agent(OBS, "stop", vm=writer).returncode == 0, "nothing runs there: a stop succeeds"


def test_crash_of_the_writers_node_with_its_primary_osd_and_the_mon_leader(writer):
    """1 and 3 of issue 30: the node that runs the writing guest holds the primary OSD of
    its disk and the monitors' leader. Nothing acknowledged is lost, one writer, the guest
    writes again on the survivor; rbdvm marked the dead node's OSD down once its fence was
    confirmed; the node boots, its OSD and monitor come back by themselves, it takes VMs.
    Issue 32: `rbdvm history` shows the failover from the crash (x's last alive stamp, the
    self-check running as a site runs it) to the VM running on y, with phases that add up to
    the measured time within a second; then the migration back with its downtime."""
    vm = writer
    move_to(vm, N1)
    x, y = N1, N2
    node.start_fence_check(x, interval=0.5)
    # every placement group's primary on x's OSD
    ceph.admin("osd", "primary-affinity", f"osd.{L.OSDS[y]}", "0")
    try:
        assert wait_for(30, lambda: _primary(vm) == L.OSDS[x]), "x's OSD is the disk's primary"
        assert mon_leader() == x
        writes_on(vm, x)
        before = max(acked(vm))
        fences = fences_of(x, y)
        boots = len(journal_boots(vm))
        t0, crashed_at = time.monotonic(), time.time()
        run([LAB, "crash", x])
        marks = {}

        def progressed():
            if "running" not in marks and qemu_pids(y, vm):
                marks["running"] = time.monotonic() - t0
            b = journal_boots(vm)
            if len(b) > boots:
                marks.setdefault("booted (FOUND)", time.monotonic() - t0)
                return bool(b[-1][1])
            return False
        assert wait_for(120, progressed, 0.05), "the guest wrote again after the crash"
        first_write = time.monotonic() - t0
        found, _ = journal_boots(vm)[-1]
        last_before = max(v for _, acks in journal_boots(vm)[:-1] for v in acks)
        assert found >= last_before >= before, f"acknowledged {last_before}, found {found}: lost writes"
        assert fences_of(x, y) > fences, f"{x} was fenced"
        writes_on(vm, y)
        log = pacemaker_log(y)
        assert f"marked osd.{L.OSDS[x]} of {x} down" in log, "Ceph-aware failover acted"
        s = ceph.status()
        assert x not in s["quorum"] and s["osds_up"] == 1
        print(f"\ncrash of {x} (primary OSD, mon leader) -> first acknowledged write on {y} "
              f"after {first_write:.1f} s ({marks})")
        _failover_in_history(vm, x, y, crashed_at, marks["running"])
    finally:
        ceph.admin("osd", "primary-affinity", f"osd.{L.OSDS[y]}", "1")
        node.stop_fence_check(x)
    run([LAB, "boot", x], timeout=180)
    assert wait_for(60, lambda: ceph.status()["osds_up"] == 2 and x in ceph.status()["quorum"]), \
        "the node's OSD and monitor came back by themselves"
    move_to(vm, x)
    writes_on(vm, x)
    last = rbdvm_json("history", vm, node=x)["moves"][-1]
    assert (last["kind"], last["source"], last["target"]) == ("migration", y, x), last
    assert last["downtime_ms"] is not None and last["downtime_ms"] < 2000, last


def _failover_in_history(vm: str, x: str, y: str, crashed_at: float, running_after: float) -> None:
    """The history's failover: from x's last sign of life to the VM running on y, in phases
    that add up to what the test measured (crash to QEMU running) within a second."""
    # the alert agent's records may wait for x's OSD to be marked down
    def failover():
        moves = rbdvm_json("history", vm, "--since", "10min", node=y)["moves"]
        return next((m for m in reversed(moves) if m["kind"] == "failover" and m["source"] == x
                     and m["phases"][0]["name"] == "detection" and m["began"] > crashed_at - 5), None)
    assert wait_for(40, failover), f"the failover with its detection: {rbdvm('history', vm, node=y).stdout}"
    m = failover()
    names = [p["name"] for p in m["phases"]]
    assert names[:3] == ["detection", "fence", "recovery scheduled"] and "old writer gone" in names, names
    total = sum(p["seconds"] for p in m["phases"])
    assert abs(total - m["took"]) < 0.01
    assert abs(m["began"] - crashed_at) <= 1.0, f"began {m['began'] - crashed_at:+.2f} s from the crash"
    assert abs(total - running_after) <= 1.0, f"history {total:.2f} s, measured {running_after:.2f} s"
    print(f"history: failover {total:.2f} s (measured {running_after:.2f} s): "
          + ", ".join(f"{p['name']} {p['seconds']:.2f}" for p in m["phases"]))


def _primary(vm: str) -> int:
    """The primary OSD of the object holding the journal (the disk's first 4 MiB)."""
    block = json.loads(ops.rbd(N1, "info", "--format", "json", f"{L.POOL}/{image(vm)}"))["block_name_prefix"]
    out = json.loads(ceph.admin("osd", "map", L.POOL, f"{block}.0000000000000000", "--format", "json").stdout)
    return out["acting_primary"]


def test_a_partition_isolating_a_hypervisor_fences_it_and_the_vm_runs_on_the_majority(writer):
    """4: node2 cut off on the one network (corosync and Ceph): the majority fences it, its
    monitor leaves the quorum, the VM runs on node1 with one writer and nothing acknowledged
    lost. Healed and rebooted, node2 rejoins and takes the VM back."""
    vm = writer
    move_to(vm, N2)
    writes_on(vm, N2)
    fences = fences_of(N2, N1)
    boots = len(journal_boots(vm))
    run([LAB, "partition", N2])
    try:
        assert wait_for(60, lambda: fences_of(N2, N1) > fences), "the majority fenced node2"
        assert wait_for(30, lambda: N2 not in ceph.status()["quorum"])
        assert wait_for(120, lambda: len(journal_boots(vm)) > boots and journal_boots(vm)[-1][1], 0.1)
        found, _ = journal_boots(vm)[-1]
        assert found >= max(v for _, acks in journal_boots(vm)[:-1] for v in acks), "nothing acknowledged lost"
        writes_on(vm, N1)
        assert not qemu_pids(N2, vm), "the fence ended node2's QEMU"
    finally:
        run([LAB, "heal"])
    run([LAB, "boot", N2], timeout=180)
    assert wait_for(60, lambda: ceph.status()["osds_up"] == 2 and N2 in ceph.status()["quorum"])
    move_to(vm, N2)
    writes_on(vm, N2)


def test_the_observer_crashing_moves_nothing_and_fences_no_hypervisor(writer):
    """5: the observer (a monitor and the mgr) crashes: it is fenced, nothing else happens;
    the guest keeps writing where it runs."""
    vm = writer
    x = where(vm)
    boots = len(journal_boots(vm))
    fences = {n: fences_of(n, x) for n in L.HYPERVISORS}
    observer_fences = fences_of(OBS, x)
    run([LAB, "crash", OBS])
    assert wait_for(60, lambda: fences_of(OBS, x) > observer_fences), "the observer was fenced"
    writes_on(vm, x, more=20)
    assert len(journal_boots(vm)) == boots, "the guest never restarted"
    assert {n: fences_of(n, x) for n in L.HYPERVISORS} == fences, "no hypervisor fenced"
    run([LAB, "boot", OBS], timeout=180)
    assert wait_for(60, lambda: OBS in ceph.status()["quorum"] and ceph.status()["mgr"])
    writes_on(vm, x)


def test_an_osd_dying_alone_stalls_nothing_for_long_moves_nothing_and_shows_degraded(writer):
    """2: an OSD process killed on a healthy node: the guest keeps running and writing (with
    the stall Ceph's detection takes), no failed monitor, no migration, no fence; list and
    info say the VM's storage is degraded, and ok once the OSD is back and recovered."""
    vm = writer
    x = where(vm)
    victim = other(x)
    boots = len(journal_boots(vm))
    fences = {n: fences_of(n, x) for n in L.NODES}
    os.kill(node.REG.pid(ceph.reg_name("osd", str(L.OSDS[victim]))), signal.SIGKILL)
    assert wait_for(60, lambda: ceph.status()["osds_up"] == 1)
    writes_on(vm, x, more=20)

    def health(listing=True):
        if listing:
            return next(v for v in rbdvm_json("list") if v["name"] == vm)["storage_health"]
        return rbdvm_json("info", vm)["storage_health"]
    assert wait_for(30, lambda: health() == "degraded" and health(False) == "degraded")
    assert "replicas: degraded" in rbdvm("info", vm).stdout
    ceph.start_daemon(victim, "osd", str(L.OSDS[victim]))
    assert wait_for(60, lambda: health() == "ok" and health(False) == "ok"), "recovered"
    assert len(journal_boots(vm)) == boots and where(vm) == x, "no restart, no migration"
    assert {n: fences_of(n, x) for n in L.NODES} == fences, "no fence"
    assert fail_count(vm, x) == 0
    writes_on(vm, x)


def test_a_live_migration_while_an_osd_restarts_completes_with_one_writer(writer):
    """7: the OSD of the migration's target restarts under the migration: it completes (or
    is cleanly aborted); one writer either way, nothing acknowledged lost."""
    vm = writer
    x = where(vm)
    y = other(x)
    boots = len(journal_boots(vm))
    osd = ceph.reg_name("osd", str(L.OSDS[y]))
    os.kill(node.REG.pid(osd), signal.SIGKILL)
    res = rbdvm("migrate", vm, y, check=False)
    ceph.start_daemon(y, "osd", str(L.OSDS[y]))
    now = where(vm)
    assert now in (x, y) and (res.returncode == 0) == (now == y), res
    writes_on(vm, now)
    assert len(journal_boots(vm)) == boots, "live: the guest never restarted"
    assert wait_for(60, lambda: ceph.status()["health"] == "HEALTH_OK"), "recovered"


def drain_for_maintenance(n: str) -> dict:
    """`node drain N --maintenance`, once Ceph's health as rbdvm reads it is OK too: the
    monitors' health can still flap to a warning a moment after the admin saw HEALTH_OK (the
    suite saw the drain refused once right after such a wait; refusing then is right)."""
    refused, done = [], []

    def drained():
        res = rbdvm("node", "drain", n, "--maintenance", "--json", check=False)
        out = json.loads(res.stdout)
        if res.returncode == 4 and out.get("error", {}).get("code") == "CEPH_UNHEALTHY":
            refused.append(out["error"])
            return False
        assert res.returncode == 0, res.stdout + res.stderr
        done.append(out)
        return True
    assert wait_for(60, drained, 1.0), f"refused for 60 s: {refused[-1:]}"
    return done[0]


def test_maintenance_of_a_hyperconverged_node_keeps_the_other_writing_and_moves_no_data(writer):
    """6: node drain --maintenance of node1, then its OSD and monitor stopped as its reboot
    would stop them: the guest on node2 keeps writing, the OSD stays in (noout: no data
    moves), and node resume, once they are back, clears it all."""
    vm = writer
    move_to(vm, N1)
    # maintenance is refused while Ceph is unhealthy: the OSD the test before restarted has
    # recovered first
    assert wait_for(60, lambda: ceph.status()["health"] == "HEALTH_OK"), ceph.status()
    r = drain_for_maintenance(N1)
    try:
        assert r["ceph"] == {"host": N1, "osds": [L.OSDS[N1]], "noout": True}, r
        assert wait_for(30, lambda: where(vm) == N2)
        osd, mon = ceph.reg_name("osd", str(L.OSDS[N1])), ceph.reg_name("mon", N1)
        for name in (osd, mon):         # SIGTERM, as the node's shutdown stops them
            os.kill(node.REG.pid(name), signal.SIGTERM)
        assert wait_for(30, lambda: not node.REG.alive(osd) and not node.REG.alive(mon))
        assert wait_for(30, lambda: ceph.status()["osds_up"] == 1 and N1 not in ceph.status()["quorum"])
        writes_on(vm, N2, more=20)
        dump = json.loads(ceph.admin("osd", "dump", "--format", "json").stdout)
        assert next(o for o in dump["osds"] if o["osd"] == L.OSDS[N1])["in"] == 1, "noout: the OSD stays in"
        states = ceph.admin("pg", "dump", "pgs_brief", "--format", "json").stdout
        assert not any(word in states for word in ("backfill", "remapped", "recovering")), "no data moves"
        for kind, ident in ceph.daemons(N1):
            ceph.start_daemon(N1, kind, ident)
        assert wait_for(60, lambda: ceph.status()["osds_up"] == 2 and N1 in ceph.status()["quorum"])
    finally:
        back = rbdvm_json("node", "resume", N1, "--maintenance")
    assert back["ceph"]["was_set"] and not json.loads(
        ceph.admin("osd", "dump", "--format", "json").stdout).get("crush_node_flags")
    assert wait_for(60, lambda: ceph.status()["health"] == "HEALTH_OK"), ceph.status()
    writes_on(vm, N2)
