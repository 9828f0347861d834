"""Issue 32 on the lab: a real Prometheus scrapes `rbdvm exporter` on every node, with rbdvm's
alerting rules loaded (labkit.prometheus). One VM lives through a live migration, a backup,
a tampered setting and a crash of its node; after each, `rbdvm history` / `rbdvm events` and
Prometheus say the same thing; a silenced self-check and an untrusted VM fire their alerts;
every panel of the shipped dashboard returns what its title claims."""

import time

import pytest

from labkit import layout as L
from labkit import node, ops, prometheus
from labkit.procs import run, wait_for
from labkit.testing import files_dir, force_remove, make_vm, other, rbdvm, rbdvm_json, unique, where
from rbdvm.helpers.core import monitoring

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("agent_installed"),
              pytest.mark.requires("prometheus", "promtool")]
LAB = str(L.LAB_SRC / "lab")


@pytest.fixture(scope="module")
def prom(agent_installed):
    prometheus.start()
    yield
    prometheus.stop()


@pytest.fixture
def vm(prom):
    name = unique("mon")
    make_vm(name, live_migration=True, pacemaker_params="migration_transport=tcp")
    rbdvm("enable", name)
    for n in L.HYPERVISORS:
        node.start_fence_check(n, interval=0.5)
    yield name
    for n in L.HYPERVISORS:
        node.stop_fence_check(n)
    for n in L.NODES:
        if not node.REG.alive(f"pacemakerd-{n}"):
            run([LAB, "boot", n], timeout=180)
    force_remove(name)


def _seen(expr: str, want, timeout: float = 20) -> float:
    """The query's first value once it equals `want` (a value, or a test of it)."""
    test = want if callable(want) else (lambda v: v is not None and abs(v - want) < 1e-6)
    assert wait_for(timeout, lambda: test(prometheus.value(expr)), 0.5), \
        f"{expr}: {prometheus.query(expr)} (wanted {want})"
    return prometheus.value(expr)


def test_prometheus_sees_what_the_history_says_and_the_alerts_fire(vm):
    x = where(vm)
    y = other(x)
    assert _seen(f'rbdvm_vm_running{{vm="{vm}"}}', 1) and _seen(f'rbdvm_vm_trusted{{vm="{vm}"}}', 1)

    # a live migration: its downtime in both
    rbdvm("migrate", vm, y)
    moved = rbdvm_json("history", vm)["moves"][-1]
    assert (moved["kind"], moved["source"], moved["target"]) == ("migration", x, y), moved
    _seen(f'rbdvm_vm_last_migration_downtime_seconds{{vm="{vm}"}}', moved["downtime_ms"] / 1000)

    # a backup: its age in both
    began = time.time()
    rbdvm("backup", vm, "--to", str(files_dir() / f"backups-{vm}"), node=y)
    event = [e for e in rbdvm_json("events", vm, "--since", "5min")["events"] if e["kind"] == "backup"][-1]
    assert event["ok"] and event["at"] >= began - 1, event
    _seen(f'time() - rbdvm_vm_last_successful_backup_timestamp_seconds{{vm="{vm}"}}', lambda v: v is not None
          and 0 <= v < 60)

    # a setting changed with the pool's key: the VM is untrusted and its alert fires
    ops.rbd(L.HYPERVISORS[0], "image-meta", "set", f"system_{vm}", "_priority", "7")
    assert wait_for(20, lambda: prometheus.firing("RbdvmVmUntrusted", vm=vm), 0.5), "untrusted VM's alert"
    rbdvm("trust", vm, "--yes")

    # the VM's node crashes; x's self-check is silenced: the failover in both, and its alert
    node.stop_fence_check(x)
    silenced = time.monotonic()
    run([LAB, "crash", y])
    assert wait_for(60, lambda: where(vm) == x, 0.5), f"{vm} failed over to {x}"

    def failover():
        moves = rbdvm_json("history", vm, node=x)["moves"]
        return next((m for m in moves if m["kind"] == "failover" and m["source"] == y), None)
    assert wait_for(40, lambda: failover() and failover()["phases"][0]["name"] == "detection", 1.0), failover()
    m = failover()
    _seen(f'rbdvm_vm_failovers_total{{vm="{vm}"}}', 1)
    _seen(f'rbdvm_vm_last_failover_duration_seconds{{vm="{vm}"}}', lambda v: v is not None
          and abs(v - m["took"]) < 0.01)
    phases = {r[0]["phase"]: r[1] for r in prometheus.query(f'rbdvm_vm_last_failover_phase_seconds{{vm="{vm}"}}')}
    assert {"detection", "fence", "old writer gone"} <= set(phases), phases
    run([LAB, "boot", y], timeout=180)
    left = 35 - (time.monotonic() - silenced)
    assert wait_for(max(5.0, left + 10), lambda: prometheus.firing("RbdvmSelfCheckNotRunning", node=x), 1.0), \
        "the silenced self-check's alert"

    # every panel of the dashboard answers with the series its title promises
    for panel in monitoring.PANELS:
        found = prometheus.query(panel.expr)
        # a panel of what is wrong may rightly be empty: Prometheus took its query
        assert found or "unless" in panel.expr, f"panel {panel.title!r}: {panel.expr} returned nothing"
        assert all(set(panel.by) <= set(labels) for labels, _ in found), (panel.title, found)
        if "vm" in panel.by and "unless" not in panel.expr:
            assert any(labels.get("vm") == vm for labels, _ in found), (panel.title, found)
