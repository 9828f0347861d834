"""Ceph-aware failover: once a node's fence is confirmed, its OSDs are marked down at once.
On a hyperconverged cluster the dead node took OSDs with it, and until Ceph notices (its
heartbeat grace, 20 s by default) every I/O to a placement group whose primary was there
stalls: the VM restarted on the survivor hangs on its first read. Marked down and definitely
dead (the fence made them so), those placement groups peer on the survivors and serve I/O
within a second, without waiting out the dead primary's read lease.

Only the OSDs under the fenced node's CRUSH host (named like the node, as Ceph names hosts
by their hostname), only those the map still shows up, and never `out`: the node comes
back, and with as many replicas as hypervisors there is nowhere to rebalance to. An OSD
marked down that is in fact alive (a storage fence leaves its node running) says so and is
up again at once. So each fence marks them once: an OSD the map shows marked down since the
fence (`since`) and up again is alive, and left alone (Ceph shuts an OSD down that is marked
down five times in ten minutes: a mark at every start would end a living node's OSD). A
node that boots brings its OSDs up by itself. The caller decides that the fence is
confirmed: nothing here guesses.

Its Ceph user needs mon 'allow r, allow command "osd down"' (fence_rbdvm's user has it:
docs/fencing.md)."""

import calendar
import json
import time

from .osdflags import host_osds
from .session import Session, mon_command


def mark_down(session: Session, host: str, until: float, since: float | None = None) -> list:
    """Mark the OSDs of CRUSH host `host` that are up down, by `until` (time.monotonic());
    `since` (seconds since the epoch, the fence's): skip those marked down since then.
    Returns the ids marked ([]: none). Raises ClusterUnavailable."""
    up = host_osds(session, host, _left(until), up_only=True)
    if up and since is not None:
        stamps = _down_stamps(session, until)
        up = [i for i in up if stamps.get(i, 0) < since]
    if up:
        # definitely dead: a new primary then serves I/O at once instead of waiting out the old
        # primary's read lease (0.8 x the heartbeat grace: 16 s by default, measured 9 s on
        # the lab); the fence makes it true, or cuts the node's clients off
        mon_command(session, {"prefix": "osd down", "ids": [f"osd.{i}" for i in up], "definitely_dead": True},
                    f"marking the OSDs of fenced host {host} down", _left(until))
    return up


def _down_stamps(session: Session, until: float) -> dict:
    """{osd id: when the monitors last marked it down, seconds since the epoch}."""
    dump = json.loads(mon_command(session, {"prefix": "osd dump", "format": "json"}, "reading the OSD map",
                                  _left(until)))
    return {x["osd"]: _epoch(x.get("down_stamp", "")) for x in dump.get("osd_xinfo", []) if "osd" in x}


def _epoch(stamp: str) -> float:
    """'2026-12-06T22:51:30.419144+0000' (Ceph's UTC stamps) in seconds; 0 if none."""
    try:
        return calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return 0.0


def _left(until: float) -> float:
    return max(1.0, until - time.monotonic())
