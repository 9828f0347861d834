"""Storage fencing's two facts in Ceph: whether this host is cut off (its address on the OSD
blocklist), and the one lock that lets only one of two nodes fence the other.

The blocklist is enforced by the OSDs, not by the monitors: a blocklisted host can still add
and remove blocklist entries (measured on the lab). Two nodes that lost each other and fence
at the same moment would both succeed and stop every VM. So a fencer first takes an exclusive
lock on one object: an OSD answers a blocklisted host with error 108, so a node already fenced
can never fence the other. The winner adds its entries, waits for the OSD map that holds them
and releases the lock under that map: the OSD holding the lock object then knows the entries
and refuses the loser."""

import contextlib
import os
import socket
import time

import rados

from ..core import timeouts
from ..core.errors import ClusterUnavailable, Conflict
from .radoslock import RadosLock
from .session import Session, refused_by_blocklist, translate

OBJECT = "rbdvm.fence"       # in the pool's default namespace
LOCK = "fence"


class Fenced(ClusterUnavailable):
    """The OSDs refuse this host: it has been fenced off the storage."""


def _fenced_itself() -> "Fenced":
    return Fenced("this host is fenced itself: it may not fence another",
                  "the OSDs refuse its address (it is on the blocklist)",
                  "Reboot this host; unfencing removes the entry when it rejoins")


def refuse_if_listed(session: Session, listed) -> None:
    """Fenced if the blocklist entries `listed` (read from the monitors) cut this very
    client's host off: checked before a fencer does anything, even what the monitors would
    let a blocklisted host do (mark the other node's OSDs down)."""
    addr = session.cluster.get_addrs()          # "IP:PORT/NONCE", this client as Ceph sees it
    host = addr.rsplit(":", 1)[0] if isinstance(addr, str) else ""
    if host and f"{host}:0/0" in set(listed):
        raise _fenced_itself()


def cut_off(session: Session) -> bool:
    """Whether the OSDs refuse this host's clients (one small read, by a client made now)."""
    try:
        session.ioctx.stat(OBJECT)
    except rados.ObjectNotFound:
        return False
    except rados.Error as exc:
        if refused_by_blocklist(exc):
            return True
        raise translate(exc, "asking an OSD whether this host is fenced", session.target) from exc
    return False


@contextlib.contextmanager
def exclusive(session: Session, until: float):
    """Hold the fence lock (waiting for another fencer until `until`, monotonic clock).

    Raises Fenced when the OSDs refuse this host, Conflict when another fencer keeps it."""
    lock = RadosLock(session.ioctx, OBJECT, LOCK, timeouts.FENCE_LOCK, desc="rbdvm storage fencing",
                     cookie=f"{socket.gethostname()}/{os.getpid()}/{time.time_ns()}")
    try:
        if not lock.take(until, every=0.2):
            raise Conflict("another node is fencing right now",
                           f"the lock on {OBJECT} in pool {session.target.pool} stayed taken",
                           "Check `rados -p POOL lock info rbdvm.fence fence`", code="FENCE_BUSY")
    except rados.Error as exc:
        if refused_by_blocklist(exc):
            raise _fenced_itself() from exc
        raise translate(exc, f"taking the fence lock on {OBJECT}", session.target) from exc
    try:
        yield
        # the release travels with the newest OSD map: entries added above are known to
        # the OSD before anyone else can take the lock
        session.cluster.wait_for_latest_osdmap()
    finally:
        lock.release()      # or it expires after timeouts.FENCE_LOCK
