"""The cluster's event history: reading it (every event, or one VM's failovers and
migrations) and recording what an operation did. Recording is best effort within
timeouts.EVENT_WRITE: an operation never fails for its history."""

import dataclasses
import functools
import inspect
import socket
import time

from ..ceph import eventlog
from ..core import events, timeline, timeouts
from ..core.bounded import Hung, bounded
from ..core.errors import RbdvmError
from ..core.settings import ceph_target_from_env
from .env import Env


def read(env: Env, since: float, until: float | None = None, vm: str | None = None) -> eventlog.Reading:
    """The events from `since` to `until` (now), oldest first; only `vm`'s and the nodes'
    (fences, lost nodes) when `vm` is given."""
    reading = eventlog.read(env.session, since, until)
    target = env.session.target
    if target.namespace:
        # the nodes' events are in the pool's default namespace
        default = dataclasses.replace(target, namespace="")
        with env.open_session(default, osd_op_timeout=env.session.osd_op_timeout) as session:
            nodes = eventlog.read(session, since, until)
        reading.events = sorted(reading.events + [e for e in nodes.events if e.kind in events.NODE_KINDS],
                                key=lambda e: e.at)
        reading.skipped += nodes.skipped
        reading.cut |= nodes.cut
    if vm is not None:
        reading.events = [e for e in reading.events if e.vm in (vm, "")]
    return reading


def moves(env: Env, vm: str, since: float, until: float | None = None) -> tuple:
    """(the failovers and migrations of `vm`, the reading they came from)."""
    reading = read(env, since, until, vm)
    return timeline.moves(reading.events, vm), reading


def record(env: Env, kind: str, vm: str = "", *, began: float, ok: bool = True, info=None) -> str | None:
    """Add what an operation did to the history; None when recorded, else why it was lost
    (for the front end to say)."""
    event = events.Event(at=began, kind=kind, node=_node(env), vm=vm, ok=ok, took=time.time() - began,
                         info=dict(info or {}))
    try:
        if env.session is not None:
            bounded(time.monotonic() + timeouts.EVENT_WRITE, eventlog.append, env.session, event)
        else:
            # a command that needed no Ceph of its own (node drain): the default VMs' pool
            bounded(time.monotonic() + timeouts.EVENT_WRITE, _append_elsewhere, env, event)
    except Hung:
        return f"Ceph did not take it within {timeouts.EVENT_WRITE} s"
    except RbdvmError as exc:
        return exc.message
    return None


def recorded(kind: str, *, vm_arg: str | None = "vm", node_arg: str | None = None, keep=()):
    """An operation whose every run goes into the history as `kind`: its VM (argument
    `vm_arg`), the node it is about (`node_arg`), success or failure (the error's code), and
    the fields `keep` of its result. When the event is lost, a dict result says why under
    "history" (the front end shows it); the operation's own outcome never changes."""
    def wrap(op):
        signature = inspect.signature(op)

        @functools.wraps(op)
        def run(env: Env, *args, **kwargs):
            bound = signature.bind(env, *args, **kwargs).arguments
            vm = str(bound.get(vm_arg, "")) if vm_arg else ""
            about = {"target": str(bound[node_arg])} if node_arg and bound.get(node_arg) else {}
            began = time.time()
            try:
                result = op(env, *args, **kwargs)
            except RbdvmError as exc:
                record(env, kind, vm, began=began, ok=False, info={**about, "code": exc.code, "reason": exc.what})
                raise
            kept = {k: result[k] for k in keep if isinstance(result, dict) and isinstance(result.get(k), (str, int))}
            lost = record(env, kind, vm, began=began, info={**about, **kept})
            if lost and isinstance(result, dict):
                result = {**result, "history": f"this {kind} is not in the history: {lost}"}
            return result
        return run
    return wrap


def _append_elsewhere(env: Env, event: events.Event) -> None:
    with env.open_session(ceph_target_from_env(), osd_op_timeout=timeouts.EVENT_WRITE) as session:
        eventlog.append(session, event)


def _node(env: Env) -> str:
    try:
        return env.cluster.local_node()
    except RbdvmError:
        return socket.gethostname()
