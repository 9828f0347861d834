"""The split-brain guard: never start a second writer on a VM's RBD disks.

Before a start, every RBD disk of the domain is checked for clients that have it open (RBD
watchers: a running QEMU is one). The domain is not running on this node (start checked), so
any such client is a writer elsewhere: a node cut off by a network partition, or a crashed
node whose watch has not expired yet (~30 s after the crash). The start waits for them to go
and, if they are still there when its time is nearly up, fails saying which disk and client.

Checking and starting are one critical section per disk across the cluster: a RADOS lock
named LOCK_NAME on the image's header object, taken (in one global order) before the check
and released once the new QEMU's watch is visible. Two starts of the same VM at the same
instant, on two nodes, cannot both see the disks free: the second one takes the lock after
the first QEMU has opened the disks, sees its watch and refuses. The lock has an expiry, so
an agent killed inside the section blocks nobody for longer than its start timeout.

A crashed node's watch would hold the start ~30 s after Pacemaker has already fenced that
node. So a client whose address belongs to a cluster node that Pacemaker confirms fenced,
and has not seen since (ocf/fenced.py), is added to the OSD blocklist (exactly that client
instance, with an expiry): its watch goes at once and the start goes on. A client of a node
that is online, unclean, unknown or not confirmed fenced is never released: in a partition
without fencing the guard refuses exactly as before.
"""

import time
import uuid

import rbd

from rbdvm.helpers.ceph import blocklist, vmstore
from rbdvm.helpers.ceph.radoslock import RadosLock
from rbdvm.helpers.ceph.session import Session
from rbdvm.helpers.core import hostnames, timeouts
from rbdvm.helpers.core.errors import RbdvmError
from rbdvm.helpers.core.settings import CephTarget

from . import fenced, hints, log
from .codes import OCF_ERR_GENERIC, AgentError

# not librbd's own "rbd_lock" (the exclusive-lock feature and `rbd lock`): an independent lock
LOCK_NAME = "rbdvm.start"


class GuardRefused(AgentError):
    """Clients still hold the disks open (or cannot be checked): the start fails."""

    def __init__(self, message: str):
        super().__init__(OCF_ERR_GENERIC, message)


class Disk:
    __slots__ = ("pool", "namespace", "image", "writable", "label", "handle", "ioctx", "header")

    def __init__(self, pool, namespace, image, writable):
        self.pool, self.namespace, self.image, self.writable = pool, namespace, image, writable
        self.label = f"{pool}/{namespace + '/' if namespace else ''}{image}"
        self.handle = self.ioctx = self.header = None


def rbd_disks(root) -> list:
    """The domain's RBD disks (a parsed domain XML), in the one order locks are taken in,
    and its UEFI variable store when that is in RBD (QEMU writes it like a disk)."""
    out = []
    for disk in [*root.iterfind("devices/disk"), *root.iterfind("os/nvram")]:
        src = disk.find("source[@protocol='rbd']")
        if src is None:
            continue
        parts = (src.get("name") or "").split("/")
        if len(parts) in (2, 3):
            pool, image = parts[0], parts[-1]
            ns = parts[1] if len(parts) == 3 else ""
            out.append(Disk(pool, ns, image, disk.find("readonly") is None))
    return sorted(out, key=lambda d: (d.pool, d.namespace, d.image))


class StartSection:
    """`with StartSection(conf, client_id, disks, session, hold_until) as section:` holds the
    start lock of every disk; section.wait_free(), start the domain, section.wait_visible().

    `session`: an open session to reuse for the disks in its pool and namespace."""

    def __init__(self, conf: str, client_id: str, disks, session=None, hold_until: float = 0):
        self.conf, self.client_id, self.disks, self.session = conf, client_id, disks, session
        self.hold_seconds = max(5, int(hold_until - time.monotonic()) + 1)
        self.cookie = uuid.uuid4().hex
        self.opened: list = []
        self.locked: list = []
        self.release = True
        self.places: dict = {}
        self.judged: dict = {}      # node -> fence description, or None (not confirmed)
        self.released: list = []    # what was blocklisted, for the log

    def __enter__(self):
        try:
            self._open()
        except BaseException:
            self._close()
            raise
        return self

    def _open(self) -> None:
        places = self.places
        if self.session is not None:
            places[(self.session.target.pool, self.session.target.namespace)] = self.session
        for d in self.disks:
            key = (d.pool, d.namespace)
            if key not in places:
                s = Session(CephTarget(conf=self.conf, client_id=self.client_id, pool=d.pool,
                                       namespace=d.namespace)).__enter__()
                self.opened.append(s)
                places[key] = s
            d.ioctx = places[key].ioctx
            try:
                d.handle = rbd.Image(d.ioctx, d.image, read_only=True)
            except rbd.ImageNotFound:
                raise GuardRefused(f"disk {d.label} of the domain does not exist") from None
            d.header = f"rbd_header.{d.handle.id()}"

    def lock(self, until: float) -> None:
        """Take every disk's start lock; GuardRefused if another start holds one at `until`."""
        import socket

        desc = f"start by {socket.gethostname()}"
        for d in self.disks:
            lock = RadosLock(d.ioctx, d.header, LOCK_NAME, self.hold_seconds, desc=desc, cookie=self.cookie)
            if not lock.take(until, every=0.05):
                # the other start may have its QEMU up by now: name it if so
                clients = self.clients()
                if clients:
                    raise GuardRefused(_refusal(clients))
                raise GuardRefused(f"split-brain guard: another start of {d.label} is under way (it "
                                   "holds the disk's start lock); refusing to start a second writer")
            self.locked.append(lock)

    def clients(self) -> list:
        """[(disk label, address, node name or None, client instance)] of every client
        holding a disk open."""
        found = []
        for d in self.disks:
            for w in d.handle.watchers_list():
                addr = vmstore.client_address(w)
                found.append((d.label, addr, hostnames.name_of(addr), w["addr"]))
        return found

    def release_fenced(self, clients, until: float) -> None:
        """Blocklist the clients of nodes Pacemaker confirms fenced and has not seen since
        (fenced.confirmed): their QEMU is gone with the node, only its watch lingers. Each
        node is judged once per start; nothing else is ever blocklisted."""
        for label, addr, node, entity in clients:
            if not node or entity in self.released:
                continue
            if node not in self.judged:
                self.judged[node], why = fenced.confirmed(node, until)
                if self.judged[node] is None:
                    log.info(f"split-brain guard: not releasing the clients of {node}: {why}")
            fence = self.judged[node]
            if fence is None:
                continue
            session = next(iter(self.places.values()))
            try:
                blocklist.add(session, entity)
            except RbdvmError as exc:
                log.warn(f"split-brain guard: could not blocklist {entity} of {node}: {hints.reason(exc)}")
                self.judged[node] = None
                continue
            self.released.append(entity)
            log.warn(f"split-brain guard: {label} was open by {addr} ({node}), a node Pacemaker fenced "
                     f"({fence}) and has not seen since: blocklisted that client ({entity})")

    def wait_free(self, deadline: float) -> None:
        """Return once no client has any disk open; GuardRefused at `deadline`."""
        said = 0.0
        while True:
            clients = self.clients()
            if not clients:
                return
            now = time.monotonic()
            if now >= deadline:
                raise GuardRefused(_refusal(clients))
            self.release_fenced(clients, min(deadline, now + timeouts.FENCE_QUERY))
            if now - said >= 5:
                who = _who(clients)
                log.warn(f"split-brain guard: {who}; waiting for it to go ({deadline - now:.0f} s left)")
                said = now
            # a released client's watch goes with the next OSD map: look again soon
            time.sleep(min(0.1 if self.released else 1.0, max(0.0, deadline - now)))

    def wait_visible(self, until: float) -> None:
        """Return once every writable disk shows a client (the new QEMU's watch): from then on
        any other start sees it. Not seen by `until`: the locks are left to expire."""
        while True:
            if all(d.handle.watchers_list() for d in self.disks if d.writable):
                return
            if time.monotonic() >= until:
                log.warn("the new QEMU's disk watch is not visible yet; the start locks expire "
                         f"in {self.hold_seconds} s instead of being released")
                self.release = False
                return
            time.sleep(0.02)

    def keep_locks(self) -> None:
        """The domain may or may not be starting (libvirt did not answer): let the locks expire."""
        self.release = False

    def __exit__(self, *exc):
        self._close()

    def _close(self) -> None:
        for lock in self.locked if self.release else ():
            lock.release()
        for d in self.disks:
            if d.handle is not None:
                d.handle.close()
                d.handle = None
        for s in self.opened:
            s.close()


def _who(clients) -> str:
    return "; ".join(f"{d} is open by {a}" + (f" ({h})" if h else "") for d, a, h, _ in clients)


def _refusal(clients) -> str:
    return (f"split-brain guard: {_who(clients)}: refusing to start a second writer. If that node "
            "is down, fence it (its watch then expires within ~30 s); if it runs the VM, stop it there")


def ceph_error(exc: RbdvmError) -> GuardRefused:
    return GuardRefused(f"split-brain guard cannot check the disks' clients: {hints.reason(exc)}")
