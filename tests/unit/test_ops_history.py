"""The event history over the scripted environment (pure: records in a scripted ioctx, no
Ceph): what is recorded reads back, what a pool-key holder wrote instead is skipped and
bounded, and a VM's failovers and migrations come out with phases that add up."""

import json
import time

import pytest

from rbdvm.helpers.ceph import alive, eventlog
from rbdvm.helpers.core import events, timeline
from rbdvm.helpers.ops import history

pytestmark = pytest.mark.unit

NOW = round(time.time(), 3)    # as a record keeps it (ms)


def _put(env, *records, day_of=None):
    for r in records:
        line = r if isinstance(r, bytes) else events.encode(r)
        env.session.ioctx.append(eventlog.object_name(eventlog._day(day_of or NOW)), line + b"\n")


def test_what_an_operation_records_reads_back(env):
    # not NOW: a worker may run this test minutes after the module was imported
    began = time.time() - 5
    assert history.record(env, "backup", "vm1", began=began, info={"directory": "/backups"}) is None
    got = history.read(env, began - 60).events
    assert [(e.kind, e.vm, e.ok) for e in got] == [("backup", "vm1", True)]
    assert got[0].info == {"directory": "/backups"} and 4.5 < got[0].took < 60


def test_a_vms_events_are_its_own_and_the_nodes(env):
    _put(env, events.Event(at=NOW - 30, kind="start", node="node1", vm="vm1"),
         events.Event(at=NOW - 20, kind="start", node="node1", vm="vm2"),
         events.Event(at=NOW - 10, kind="fence", node="node2", info={"target": "node1"}))
    assert [(e.kind, e.vm) for e in history.read(env, NOW - 60, vm="vm1").events] == [("start", "vm1"), ("fence", "")]


def test_hostile_lines_are_skipped_and_never_crash_a_reading(env):
    good = events.Event(at=NOW - 1, kind="start", node="node1", vm="vm1")
    nested = b'{"v":1,"info":' + b"[" * 5000 + b"]" * 5000 + b"}"
    _put(env, b"not json", b"\xff\xfe garbage", nested, b"x" * 100_000, b'{"v":1,"at":NaN}',
         b'{"v":1,"at":1e999,"kind":"start","node":"n"}', json.dumps({"v": 1, "at": NOW, "kind": "start",
                                                                   "node": "n", "phases": [["a", -5]]}).encode(),
         json.dumps({"v": 1, "at": NOW, "kind": "x" * 50, "node": "n"}).encode(), good)
    reading = history.read(env, NOW - 60)
    assert reading.events == [good]
    assert reading.skipped == 8


def test_a_huge_history_costs_a_bounded_read(env):
    """A pool-key holder's 40 MiB in one day's object: the reader takes the last
    READ_PER_DAY bytes, and the newest record in them."""
    junk = (b"j" * 1023 + b"\n") * (40 * 1024)
    _put(env, junk, events.Event(at=NOW - 1, kind="stop", node="node1", vm="vm1"))
    env.session.store.bytes_read = 0
    reading = history.read(env, NOW - 60)
    assert [e.kind for e in reading.events] == ["stop"]
    assert reading.cut and env.session.store.bytes_read <= eventlog.READ_PER_DAY


def test_the_days_past_what_is_kept_are_removed_by_a_writer(env):
    old = NOW - (eventlog.DAYS_KEPT + 3) * 86400
    _put(env, events.Event(at=old, kind="stop", node="node1", vm="vm1"), day_of=old)
    assert eventlog.object_name(eventlog._day(old)) in env.session.store.objects
    history.record(env, "trust", "vm1", began=NOW)
    assert eventlog.object_name(eventlog._day(old)) not in env.session.store.objects


def test_a_failover_adds_up_from_the_crash_to_the_vm_running_again(env):
    crash = NOW - 100
    _put(env, events.Event(at=crash - 50, kind="start", node="node1", vm="vm1", took=1.0),
         events.Event(at=crash + 3.5, kind="node-lost", node="node2", info={"target": "node1", "last_seen": crash}),
         events.Event(at=crash + 3.6, kind="node-lost", node="node3", info={"target": "node1", "last_seen": crash}),
         events.Event(at=crash + 5.0, kind="fence", node="node2", info={"target": "node1", "action": "off"}),
         events.Event(at=crash + 5.5, kind="start", node="node2", vm="vm1", took=2.0,
                      phases=(("libvirt", 0.1), ("fenced OSDs down", 0.4), ("old writer gone", 1.5)),
                      info={"after_fence_of": "node1"}))
    (move,), _ = history.moves(env, "vm1", NOW - 3600)
    assert (move.kind, move.source, move.target) == ("failover", "node1", "node2")
    assert move.began == pytest.approx(crash)
    assert move.took == pytest.approx(7.5)
    assert [n for n, _ in move.phases] == ["detection", "fence", "recovery scheduled", "libvirt",
                                           "fenced OSDs down", "old writer gone"]
    assert sum(s for _, s in move.phases) == pytest.approx(move.took)


def test_a_failover_without_the_alerts_begins_at_the_start(env):
    _put(env, events.Event(at=NOW - 10, kind="start", node="node2", vm="vm1", took=2.0,
                           phases=(("a", 2.0),), info={"after_fence_of": "node1"}))
    (move,), _ = history.moves(env, "vm1", NOW - 3600)
    assert move.began == pytest.approx(NOW - 10) and move.phases == [("a", 2.0)]


def test_a_forged_last_seen_far_before_the_loss_is_not_taken(env):
    _put(env, events.Event(at=NOW - 10, kind="node-lost", node="node2", info={"target": "node1", "last_seen": 1.0}),
         events.Event(at=NOW - 5, kind="start", node="node2", vm="vm1", took=1.0, info={"after_fence_of": "node1"}))
    (move,), _ = history.moves(env, "vm1", NOW - 3600)
    assert move.began == pytest.approx(NOW - 10) and move.phases[0][0] == "recovery scheduled"


def test_a_migration_shows_its_downtime(env):
    _put(env, events.Event(at=NOW - 10, kind="migrate", node="node2", vm="vm1", took=0.4,
                           info={"source": "node1", "target": "node2", "downtime_ms": 12}))
    (move,), _ = history.moves(env, "vm1", NOW - 3600)
    assert (move.kind, move.source, move.target, move.downtime_ms) == ("migration", "node1", "node2", 12)


def test_alive_stamps_read_back_and_junk_is_no_stamp(env):
    alive.stamp(env.session, "node1", NOW)
    assert alive.last_seen(env.session, "node1") == pytest.approx(NOW, abs=0.01)
    assert alive.last_seen(env.session, "node9") is None
    for junk in (b"[]", b"{\"at\": 1e999}", b"\xff", b'{"at": true}', b'{"at": 5}'):
        env.session.ioctx.write_full(alive.object_name("node2"), junk)
        assert alive.last_seen(env.session, "node2") is None


def test_the_bar_shows_every_phase():
    phases = [("long", 10.0), ("tiny", 0.001), ("mid", 5.0)]
    bar = timeline.bar(phases)
    assert len(set(bar)) == 3 and abs(len(bar) - timeline.BAR_WIDTH) <= 2


def test_a_backup_and_a_refused_drain_are_recorded_with_their_outcome(env, vm, tmp_path):
    from rbdvm.helpers.core.errors import RbdvmError
    from rbdvm.helpers.ops import backup, maintenance

    made = backup.backup(env, vm, str(tmp_path))
    with pytest.raises(RbdvmError):
        maintenance.drain(env, "no-such-node")
    reading = history.read(env, NOW - 60)
    got = reading.events
    assert [(e.kind, e.vm, e.ok) for e in got] == [("backup", "vm1", True), ("drain", "", False)], \
        (reading, {k: v for k, v in env.session.store.objects.items() if k.startswith("rbdvm.")}, time.time(), NOW)
    assert got[0].info == {"id": made["id"], "kind": "full"}
    assert got[1].info["target"] == "no-such-node" and got[1].info["code"]


def test_a_nodes_loss_before_the_vm_came_back_to_it_is_not_its_failover(env):
    """node1 lost (an earlier failover), the VM migrated back to node1, node1 lost again: the
    second failover is dated by the second loss only."""
    t = NOW - 500
    _put(env, events.Event(at=t, kind="node-lost", node="node2", info={"target": "node1", "last_seen": t - 3}),
         events.Event(at=t + 5, kind="start", node="node2", vm="vm1", took=1.0, info={"after_fence_of": "node1"}),
         events.Event(at=t + 100, kind="migrate", node="node1", vm="vm1", took=0.5,
                      info={"source": "node2", "target": "node1"}),
         events.Event(at=t + 200, kind="start", node="node2", vm="vm1", took=1.0, info={"after_fence_of": "node1"}))
    first, _, second = history.moves(env, "vm1", NOW - 3600)[0]
    assert first.began == pytest.approx(t - 3)
    assert second.began == pytest.approx(t + 200) and second.phases == []


def test_a_failed_migration_is_shown_failed_and_not_counted_as_a_move(env, vm):
    from rbdvm.helpers.ops import metrics

    _put(env, events.Event(at=NOW - 20, kind="migrate", node="node2", vm="vm1", took=0.4,
                           info={"source": "node1", "target": "node2", "downtime_ms": 12}),
         events.Event(at=NOW - 10, kind="migrate", node="node2", vm="vm1", ok=False, took=3.0,
                      info={"source": "node2", "target": "node1", "reason": "aborted"}))
    first, failed = history.moves(env, "vm1", NOW - 3600)[0]
    assert (failed.source, failed.target, failed.ok) == ("node2", "node1", False)
    text = metrics.collect(env, metrics.CephTarget())
    assert 'rbdvm_vm_migrations_total{vm="vm1"} 1' in text
    assert 'rbdvm_vm_last_migration_downtime_seconds{vm="vm1"} 0.012' in text
