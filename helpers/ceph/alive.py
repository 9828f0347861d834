"""Each node's last sign of life in Ceph: the fence self-check stamps `rbdvm.alive.<node>`
at every look that finds the node clear (pool's default namespace). A crashed node's stamp
is when it was last seen, which dates a failover's crash; a stamp that stops moving means
the self-check no longer runs. Written by anyone with the pool's key: shown, never decided on."""

import json
import math

import rados

from ..core import events
from .session import Session, ceph_errors

PREFIX = "rbdvm.alive."
# a stamp is one small JSON object; a reader takes no more than this
_MOST = 256


def object_name(node: str) -> str:
    return PREFIX + node


def stamp(session: Session, node: str, at: float) -> None:
    with ceph_errors(f"stamping node {node} alive", session.target):
        session.ioctx.write_full(object_name(node), json.dumps({"at": round(at, 3)}).encode())


def last_seen(session: Session, node: str) -> float | None:
    """When `node` was last stamped alive; None if never, or if what is there is no stamp."""
    with ceph_errors(f"reading when node {node} was last seen", session.target):
        try:
            data = session.ioctx.read(object_name(node), length=_MOST)
        except rados.ObjectNotFound:
            return None
    try:
        at = json.loads(data).get("at")
    except (ValueError, AttributeError, UnicodeError, RecursionError):
        return None
    if isinstance(at, (int, float)) and not isinstance(at, bool) and math.isfinite(at) and events.dated_sanely(at):
        return float(at)
    return None
