"""Has Pacemaker confirmed that a node is fenced, and not seen it since? Asked by the
split-brain guard before it releases (blocklists) the disk clients of that node.

A node counts as confirmed fenced only when all three of Pacemaker's own records say so:
- crm_mon: the node is not online, not unclean (Pacemaker no longer waits to fence it) and
  not expected up (a node lost while fencing is disabled is expected up, not fenced);
- the fencer's history: its latest fencing event is a successful `off` or `reboot`;
- the CIB status: no operation recorded on the node after that event completed (a fence
  erases the node's operation history; a node that came back is probed, and its new
  records are later than the fence). A node that rejoined and then left cleanly is thus
  never taken for fenced, whatever old fence its history holds.
Online, unclean, unknown, never fenced, or any query failing or late: not confirmed. Every
query is one of Pacemaker's tools with XML output, bounded by the caller's deadline.
"""

import calendar
import time

from rbdvm.helpers.core import xmlsafe
from rbdvm.helpers.core.errors import RbdvmError
from rbdvm.helpers.pacemaker import crm_mon, runner

FENCE_ACTIONS = ("off", "reboot")


class Unknown(Exception):
    """A query failed or ran out of time: the node is not confirmed fenced."""


def _xml(argv, until: float):
    try:
        return xmlsafe.parse(runner.run(argv, until=until), f"{argv[0]}'s output")
    except RbdvmError as exc:
        raise Unknown(exc.message[:300]) from None


def _epoch(text: str):
    """Seconds since the epoch of a time as Pacemaker prints it ('2026-11-23 17:01:02Z',
    '... +00:00', with or without fractions); None if unreadable."""
    if not text:
        return None
    text = text.strip()
    if text.isdigit():
        return int(text)
    body = text.replace("T", " ")
    offset = 0
    if body.endswith("Z"):
        body = body[:-1]
    elif len(body) > 6 and body[-6] in "+-" and body[-3] == ":":
        sign = 1 if body[-6] == "+" else -1
        offset = sign * (int(body[-5:-3]) * 3600 + int(body[-2:]) * 60)
        body = body[:-6]
    body = body.strip().split(".")[0]
    try:
        return calendar.timegm(time.strptime(body, "%Y-%m-%d %H:%M:%S")) - offset
    except ValueError:
        return None


def last_fence(history, node: str):
    """(action, completed epoch, description) of the latest fencing event of `node`, or None
    if it has none or the latest did not succeed."""
    events = [e for e in history.iter("fence_event") if e.get("target") == node]
    if not events:
        return None
    dated = [(_epoch(e.get("completed") or ""), e) for e in events]
    latest_time, latest = max(dated, key=lambda x: x[0] or 0)
    if latest.get("status") != "success" or latest.get("action") not in FENCE_ACTIONS or latest_time is None:
        return None
    desc = f"{latest.get('action')} by {latest.get('delegate') or latest.get('origin') or '?'} " \
           f"at {latest.get('completed')}"
    return latest.get("action"), latest_time, desc


def seen_after(status, node: str, when: float) -> bool:
    """Whether the CIB status holds an operation on `node` recorded after `when`."""
    for state in status.iter("node_state"):
        if state.get("uname") != node:
            continue
        for op in state.iter("lrm_rsc_op"):
            changed = op.get("last-rc-change") or op.get("last-run")
            if changed and changed.isdigit() and int(changed) > when:
                return True
    return False


def cluster_status(until: float):
    """crm_mon's XML; Unknown if it fails or is late."""
    return _xml(["crm_mon", "--one-shot", "--output-as=xml"], until)


def offline_nodes(status) -> list:
    """The nodes crm_mon (`status`) shows offline: the only ones that may be fenced."""
    return [n.get("name") for n in status.iterfind("nodes/node")
            if crm_mon.node_state(status, n.get("name")) == "offline"]


def confirmed(node: str, until: float, status=None):
    """A description of the fence that took `node` down, if Pacemaker confirms it and has not
    seen the node since; None otherwise (with the reason in `why`, for the log). `status`:
    crm_mon's XML if the caller has just read it."""
    try:
        state = crm_mon.node_state(status if status is not None else cluster_status(until), node)
        if state != "offline":
            return None, f"node {node} is {state}"
        fence = last_fence(_xml(["stonith_admin", "--history", node, "--verbose", "--output-as=xml"], until), node)
        if fence is None:
            return None, f"node {node} has no successful fence as its latest fencing event"
        status = _xml(["cibadmin", "--query", "--scope", "status"], until)
        if seen_after(status, node, fence[1]):
            return None, f"node {node} was seen after its fence ({fence[2]})"
        return fence[2], ""
    except Unknown as exc:
        return None, f"cannot tell whether node {node} is fenced: {exc}"
