"""What the agent adds to the cluster's event history (ceph/eventlog): a start with its
phases, a stop, a migration's downtime. Writing it never fails or delays an action past
timeouts.EVENT_WRITE: an event that cannot be written is lost, and the log says so."""

import os
import socket
import time

from rbdvm.helpers.core import events, timeouts
from rbdvm.helpers.core.bounded import Hung, bounded

from . import definition, log
from .params import Params


def this_node() -> str:
    # Pacemaker names the node an action runs on; a hand-run agent falls back on the host name
    return os.environ.get("OCF_RESKEY_CRM_meta_on_node") or socket.gethostname()


def record(p: Params, event: events.Event, until: float, session=None) -> None:
    """Write `event` by `until` at the latest (and within EVENT_WRITE); only for a VM kept in
    Ceph (a config= resource has no history). `session`: the action's own, if it has one
    (a connection less)."""
    if not p.vm:
        return
    allowed = max(0.0, min(until - time.monotonic(), timeouts.EVENT_WRITE))
    deadline = time.monotonic() + allowed

    def write():
        from rbdvm.helpers.ceph import eventlog
        from rbdvm.helpers.ceph.session import Session

        if session is not None:
            eventlog.append(session, event, trim=False)
            return
        with Session(definition.ceph_target(p), osd_op_timeout=timeouts.EVENT_WRITE, follow_map=True) as own:
            eventlog.append(own, event, trim=False)

    try:
        bounded(deadline, write)
    except Hung:
        log.warn(f"history: the {event.kind} event of {p.vm} is lost: Ceph did not take it within "
                 f"{allowed:.1f} s")
    except Exception as exc:  # noqa: BLE001 - the history never fails an action
        log.warn(f"history: the {event.kind} event of {p.vm} is lost: {exc}")
