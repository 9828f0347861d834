"""Ceph-aware failover: once a node's fence is confirmed, its OSDs are marked down at once.
On a hyperconverged cluster the dead node took OSDs with it, and until Ceph notices (its
heartbeat grace, 20 s by default) every I/O to a placement group whose primary was there
stalls: the VM restarted on the survivor hangs on its first read. Marked down and definitely
dead (the fence made them so), those placement groups peer on the survivors and serve I/O
within a second, without waiting out the dead primary's read lease.

Only the OSDs under the fenced node's CRUSH host (named like the node, as Ceph names hosts
by their hostname), only those the map still shows up, and never `out`: the node comes
back, and with as many replicas as hypervisors there is nowhere to rebalance to. An OSD that
accepts a connection from here is alive (a storage fence leaves its node running) and left
alone: marked down, it would only say "wrongly marked me down", come back and make its
placement groups peer twice (Ceph shuts down an OSD marked down five times in ten minutes).
So a mark never repeats on a living OSD, and one left alone by mistake is marked down by
Ceph's own detection. A node that boots brings its OSDs up by itself. The caller decides
that the fence is confirmed.

Its Ceph user needs mon 'allow r, allow command "osd down"' (fence_rbdvm's user has it:
docs/fencing.md)."""

import json
import socket
import threading
import time

from ..core import timeouts
from .osdflags import host_osds
from .session import Session, mon_command


def mark_down(session: Session, host: str, until: float, reachable=None) -> list:
    """Mark down, by `until` (time.monotonic()), the OSDs of CRUSH host `host` that are up and
    do not answer from here. Returns the ids marked. Raises ClusterUnavailable.
    `reachable(addresses, until)`: the OSD answering test (a connection to its address)."""
    up = host_osds(session, host, _left(until), up_only=True)
    if not up:
        return []
    dump = json.loads(mon_command(session, {"prefix": "osd dump", "format": "json"}, "reading the OSD map",
                                  _left(until)))
    addresses = {o["osd"]: _addresses(o) for o in dump.get("osds", []) if o.get("osd") in up}
    alive = (reachable or answers)({i: addresses.get(i, []) for i in up},
                                   min(until, time.monotonic() + timeouts.OSD_ALIVE_PROBE))
    up = [i for i in up if i not in alive]
    if up:
        mon_command(session, {"prefix": "osd down", "ids": [f"osd.{i}" for i in up], "definitely_dead": True},
                    f"marking the OSDs of fenced host {host} down", _left(until))
        # this client's next request must use the map without them: it asks for a newer map
        # only once a request has waited long (seen: fence_rbdvm's lock timed out at 10 s)
        session.cluster.wait_for_latest_osdmap()
    return up


def answers(addresses: dict, until: float) -> set:
    """Ids of the OSDs ({id: ["IP:PORT", ...]}) one of whose addresses accepts a TCP
    connection before `until`: all tried at once."""
    alive: set = set()

    def probe(osd, addr):
        host, _, port = addr.rpartition(":")
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=max(0.05, until - time.monotonic())).close()
            alive.add(osd)
        except (OSError, ValueError):
            pass
    threads = [threading.Thread(target=probe, args=(osd, a), daemon=True) for osd, addrs in addresses.items()
               for a in addrs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.0, until - time.monotonic()))
    return set(alive)


def _addresses(osd: dict) -> list:
    return [a["addr"] for a in (osd.get("public_addrs") or {}).get("addrvec", []) if a.get("addr")]


def _left(until: float) -> float:
    return max(1.0, until - time.monotonic())
