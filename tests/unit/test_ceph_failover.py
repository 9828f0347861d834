"""Ceph-aware failover's Ceph side, decided over the scripted monitors (tests/unit/scripted.py:
no Ceph here; the lab proves it on real OSDs, tests/system/test_hyperconverged.py), and the
pool health that `list` and `info` report."""

import json
import time

import pytest
from scripted import ScriptedCeph

from rbdvm.helpers.ceph import fencedosds, pghealth

pytestmark = pytest.mark.unit


def dead(addresses, until):
    """No OSD answers (the node is off)."""
    return set()


def test_only_the_fenced_hosts_osds_that_are_up_are_marked_down_never_out():
    s = ScriptedCeph()
    s.cluster.osd_hosts = {"node1": [0, 2], "node2": [1]}
    s.cluster.osds_down = {2}
    assert fencedosds.mark_down(s, "node1", time.monotonic() + 5, reachable=dead) == [0]
    assert s.cluster.osds_down == {0, 2}
    assert "osd out" not in s.cluster.mon_calls
    calls = len(s.cluster.mon_calls)
    assert fencedosds.mark_down(s, "node1", time.monotonic() + 5, reachable=dead) == [], \
        "again: nothing up, nothing asked"
    assert s.cluster.mon_calls[calls:] == ["osd tree"]


def test_an_osd_that_answers_is_alive_and_left_alone():
    """A storage fence leaves the node running: its OSD would only come back and peer twice."""
    s = ScriptedCeph()
    s.cluster.osd_hosts = {"node2": [1, 3]}
    asked = {}

    def osd3_answers(addresses, until):
        asked.update(addresses)
        return {3}
    assert fencedosds.mark_down(s, "node2", time.monotonic() + 5, reachable=osd3_answers) == [1]
    assert asked == {1: ["192.0.2.2:6800"], 3: ["192.0.2.4:6800"]}
    assert s.cluster.osds_down == {1}


def test_the_answering_test_is_a_connection_bounded_by_its_deadline():
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    dead_port = closed.getsockname()[1]
    closed.close()
    t0 = time.monotonic()
    assert fencedosds.answers({7: [f"127.0.0.1:{port}"], 8: [f"127.0.0.1:{dead_port}"]}, t0 + 2) == {7}
    listener.close()


def test_a_mark_repeats_only_on_an_osd_that_still_does_not_answer():
    """A living OSD marked down comes back and answers: never marked again. One still silent
    (its node stays dead) is marked again at the next start: nothing lost but a command."""
    s = ScriptedCeph()
    s.cluster.osd_hosts = {"node2": [1]}
    assert fencedosds.mark_down(s, "node2", time.monotonic() + 5, reachable=dead) == [1]
    s.cluster.osds_down.clear()        # it said "wrongly marked me down" and is up
    assert fencedosds.mark_down(s, "node2", time.monotonic() + 5, reachable=lambda a, u: {1}) == []
    assert fencedosds.mark_down(s, "node2", time.monotonic() + 5, reachable=dead) == [1]


def test_a_host_without_osds_or_unknown_to_crush_marks_nothing():
    s = ScriptedCeph()
    s.cluster.osd_hosts = {"node1": [0]}
    assert fencedosds.mark_down(s, "node3", time.monotonic() + 5, reachable=dead) == []
    assert "osd down" not in s.cluster.mon_calls


def _report(**checks):
    return json.dumps({"status": "HEALTH_WARN" if checks else "HEALTH_OK", "checks": {
        code: {"summary": {"message": "x", "count": len(lines)}, "detail": [{"message": m} for m in lines]}
        for code, lines in checks.items()}})


def test_pool_health_names_the_pools_own_placement_groups():
    assert pghealth.judge(_report(), 2) == pghealth.OK
    degraded = _report(PG_DEGRADED=["pg 2.1f is active+undersized+degraded, acting [1]"])
    assert pghealth.judge(degraded, 2) == pghealth.DEGRADED
    assert pghealth.judge(degraded, 12) == pghealth.OK, "pool 12 is not pool 2"
    inactive = _report(PG_AVAILABILITY=["pg 2.3 is stuck peering for 61.2, current state peering"])
    assert pghealth.judge(inactive, 2) == pghealth.DEGRADED
    other_check = _report(OSD_DOWN=["osd.1 (root=default,host=node2) is down"])
    assert pghealth.judge(other_check, 2) == pghealth.OK


def test_pool_health_is_unknown_when_the_report_is_cut_short_or_unreadable():
    cut = json.dumps({"checks": {"PG_DEGRADED": {"summary": {"count": 80}, "detail": [
        {"message": "pg 3.0 is active+undersized+degraded"}, {"message": "(50 more)"}]}}})
    assert pghealth.judge(cut, 2) == pghealth.UNKNOWN
    s = ScriptedCeph()
    s.cluster.health = {"status": "HEALTH_OK", "checks": {}}
    assert pghealth.pool_health(s) == pghealth.OK
    s.cluster.mon_command = lambda cmd, inbuf, timeout=0: (-110, b"", "timed out")
    assert pghealth.pool_health(s) == pghealth.UNKNOWN
    s.cluster.mon_command = lambda cmd, inbuf, timeout=0: (0, b"{not json", "")
    assert pghealth.pool_health(s) == pghealth.UNKNOWN
