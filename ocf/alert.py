"""alert_rbdvm: Pacemaker's alert agent that adds fences and lost nodes to rbdvm's event
history (ceph/eventlog), the way Pacemaker's alert_*.sh.sample agents log them elsewhere.

Pacemaker runs it for every alert, as the hacluster user, with the event in CRM_alert_*
variables and the alert's instance attributes as variables of their own names
(rbdvm_ceph_conf, rbdvm_ceph_id, rbdvm_pool). `rbdvm enable` declares the alert in the CIB
(id rbdvm-history) with those attributes. Its Ceph user (rbdvm-history by default,
`rbdvm ceph-users`) may only add to the history and read the nodes' alive stamps; its
keyring must be readable by the haclient group.

A lost node's record carries the moment it was last stamped alive, read now: the stamp is
overwritten once the node is back.
"""

import os
import re
import sys
import time

from rbdvm.helpers.core import defaults, events, timeouts
from rbdvm.helpers.core.bounded import Hung, bounded

USAGE = """usage: alert_rbdvm [--help]

Pacemaker's alert agent of rbdvm: records fences and lost nodes in rbdvm's event history in
Ceph (see `rbdvm events`). Run by Pacemaker with CRM_alert_* set; its options come from the
alert's instance attributes: rbdvm_ceph_conf, rbdvm_ceph_id, rbdvm_pool."""


def _say(text: str) -> None:
    print(f"alert_rbdvm: {text}", file=sys.stderr, flush=True)


def event_of(env) -> events.Event | None:
    """The history record of the alert in `env`, or None for alerts it does not keep."""
    kind, target = env.get("CRM_alert_kind", ""), env.get("CRM_alert_node", "")
    try:
        at = int(env.get("CRM_alert_timestamp_epoch", "")) + int(env.get("CRM_alert_timestamp_usec", "0")) / 1e6
    except ValueError:
        at = time.time()
    # Pacemaker passes no name of the node an alert runs on: the host's
    here = os.uname().nodename
    desc = env.get("CRM_alert_desc", "")
    if kind == "node" and desc == "lost":
        return events.Event(at=at, kind="node-lost", node=here, info={"target": target})
    if kind == "fencing":
        # CRM_alert_task is Pacemaker's notification type; the action is in the description
        action = re.match(r"Operation (\S+) of ", desc)
        return events.Event(at=at, kind="fence", node=here, ok=env.get("CRM_alert_rc", "") == "0",
                            info={"target": target, "action": action[1] if action else "", "desc": desc})
    return None


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv:
        print(USAGE)
        return 0 if argv in (["--help"], ["-h"]) else 2
    event = event_of(os.environ)
    if event is None:
        return 0
    try:
        bounded(time.monotonic() + timeouts.ALERT_WRITE, _write, event)
    except Hung:
        _say(f"the {event.kind} event of {event.info.get('target')} is lost: Ceph did not take it "
             f"within {timeouts.ALERT_WRITE} s")
        os._exit(1)
    except Exception as exc:  # noqa: BLE001 - an alert agent says why, never a traceback
        _say(f"the {event.kind} event of {event.info.get('target')} is lost: {exc}")
        return 1
    return 0


def _write(event: events.Event) -> None:
    from rbdvm.helpers.ceph import alive, eventlog
    from rbdvm.helpers.ceph.session import Session
    from rbdvm.helpers.core.settings import CephTarget

    target = CephTarget(conf=os.environ.get("rbdvm_ceph_conf") or defaults.CEPH_CONF,
                        client_id=os.environ.get("rbdvm_ceph_id") or defaults.HISTORY_CEPH_ID,
                        pool=os.environ.get("rbdvm_pool") or defaults.POOL)
    # a lost node's OSD may hold the history until it is marked down: the request waits for
    # that, and follows the new map at once
    with Session(target, osd_op_timeout=timeouts.ALERT_WRITE - timeouts.CEPH_CONNECT // 2, follow_map=True) as session:
        if event.kind == "node-lost":
            seen = alive.last_seen(session, str(event.info["target"]))
            if seen is not None:
                event.info["last_seen"] = seen
        eventlog.append(session, event)
