"""The exporter's collection over the scripted environment (pure: a scripted Pacemaker and
Ceph): what each source says becomes its metrics, and a source that fails or hangs is
marked with nothing of it served."""

import time

import pytest

from rbdvm.helpers.core import events
from rbdvm.helpers.core.errors import ClusterUnavailable
from rbdvm.helpers.core.settings import CephTarget
from rbdvm.helpers.ops import history, lifecycle, metrics, snapshots

pytestmark = pytest.mark.unit
TARGET = CephTarget()


def samples(text: str) -> dict:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def test_an_enabled_vm_its_trust_its_history_and_the_nodes(env, vm):
    lifecycle.enable(env, vm)
    snapshots.create_snapshot(env, vm, "s1")
    history.record(env, "backup", vm, began=time.time() - 10, info={"id": "b1"})
    env.session.ioctx.append("rbdvm.events." + time.strftime("%Y%m%d", time.gmtime()), events.encode(events.Event(
        at=time.time() - 5, kind="migrate", node="node2", vm=vm, took=0.3,
        info={"source": "node1", "target": "node2", "downtime_ms": 40})) + b"\n")
    got = samples(metrics.collect(env, TARGET))
    assert [got[f'rbdvm_up{{source="{s}"}}'] for s in metrics.SOURCES] == [1, 1, 1]
    assert got['rbdvm_vm_wanted_running{vm="vm1"}'] == 1 and got['rbdvm_vm_running{vm="vm1"}'] == 1
    assert got['rbdvm_vm_trusted{vm="vm1"}'] == 1 and got['rbdvm_vm_snapshots{vm="vm1"}'] == 1
    assert got['rbdvm_vm_last_backup_success{vm="vm1"}'] == 1
    assert got['rbdvm_vm_last_migration_downtime_seconds{vm="vm1"}'] == pytest.approx(0.04)
    assert got['rbdvm_vm_migrations_total{vm="vm1"}'] == 1
    assert any(k.startswith("rbdvm_node_online{") for k in got)


def test_a_source_that_fails_is_marked_and_none_of_it_is_served(env, vm):
    def refuse(target, **kw):
        raise ClusterUnavailable("cannot reach the Ceph cluster")
    env.open_session = refuse
    got = samples(metrics.collect(env, TARGET))
    assert got['rbdvm_up{source="ceph"}'] == 0 and got['rbdvm_up{source="history"}'] == 0
    assert got['rbdvm_up{source="pacemaker"}'] == 1
    assert not [k for k in got if k.startswith(("rbdvm_vm_trusted", "rbdvm_vm_last_", "rbdvm_node_fenced"))]


def test_a_hung_source_is_given_up_on_within_the_budget(env, vm):
    def hang(target, **kw):
        time.sleep(30)
    env.open_session = hang
    t0 = time.monotonic()
    got = samples(metrics.collect(env, TARGET, budget=0.5))
    assert time.monotonic() - t0 < 1.5
    assert got['rbdvm_up{source="ceph"}'] == 0


def test_a_fenced_node_is_read_from_the_blocklist(env, vm, monkeypatch):
    from rbdvm.helpers.core import hostnames

    monkeypatch.setattr(hostnames, "cluster_addresses", lambda *a: {"10.0.0.1": "node1", "10.0.0.2": "node2"})
    env.session.cluster.blocklist = ["10.0.0.1:0/0", "10.0.0.2:0/123"]
    env.session.cluster.host_flags = {"node2": ["noout"]}
    got = samples(metrics.collect(env, TARGET))
    assert got['rbdvm_node_fenced{node="node1"}'] == 1 and got['rbdvm_node_fenced{node="node2"}'] == 0
    assert got['rbdvm_node_noout{node="node2"}'] == 1 and got['rbdvm_node_noout{node="node1"}'] == 0
