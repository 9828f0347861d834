"""The split-brain guard: never start a second writer on a VM's RBD disks.

Before a start, every RBD disk of the domain is checked for clients that have it open (RBD
watchers: a running QEMU is one). The domain is not running on this node (start checked), so
any such client is a writer elsewhere: a node cut off by a network partition, or a crashed
node whose watch has not expired yet (~30 s after the crash). The start waits for them to go
and, if they are still there when its time is nearly up, fails saying which disk and client.
"""

import time

from rbdvm.helpers import domainxml, vmstore
from rbdvm.helpers.ceph import Session
from rbdvm.helpers.errors import RbdvmError
from rbdvm.helpers.settings import CephTarget

from . import log


class GuardRefused(Exception):
    """Clients still hold the disks open; the message is the exit reason."""


def rbd_disks(xml: str) -> list:
    """[(pool, namespace, image)] of the domain's RBD disks."""
    out = []
    for src in domainxml.parse(xml, "the domain XML").iterfind("devices/disk/source[@protocol='rbd']"):
        parts = (src.get("name") or "").split("/")
        if len(parts) == 2:
            out.append((parts[0], "", parts[1]))
        elif len(parts) == 3:
            out.append(tuple(parts))
    return out


def _clients(conf: str, client_id: str, disks, session=None) -> list:
    found = []
    by_place = {}
    for pool, ns, image in disks:
        by_place.setdefault((pool, ns), []).append(image)
    for (pool, ns), images in by_place.items():
        label = f"{pool}/{ns + '/' if ns else ''}"
        if session is not None and (session.target.pool, session.target.namespace) == (pool, ns):
            found += [(label + d, a, h) for d, a, h in vmstore.watchers(session, images)]
            continue
        with Session(CephTarget(conf=conf, client_id=client_id, pool=pool, namespace=ns)) as s:
            found += [(label + d, a, h) for d, a, h in vmstore.watchers(s, images)]
    return found


def wait_until_free(conf: str, client_id: str, xml: str, deadline: float, session=None) -> None:
    """Return once no client has any RBD disk of the domain open; GuardRefused at `deadline`.

    `session`: an open session to reuse for the disks in its pool and namespace."""
    disks = rbd_disks(xml)
    if not disks:
        return
    said = 0.0
    while True:
        try:
            clients = _clients(conf, client_id, disks, session)
        except RbdvmError as exc:
            raise GuardRefused(f"split-brain guard cannot check the disks' clients: {exc.message}") from None
        if not clients:
            return
        who = "; ".join(f"{d} is open by {a}" + (f" ({h})" if h else "") for d, a, h in clients)
        now = time.monotonic()
        if now >= deadline:
            raise GuardRefused(
                f"split-brain guard: {who}: refusing to start a second writer. If that node is "
                "down, fence it (its watch then expires within ~30 s); if it runs the VM, stop it there")
        if now - said >= 5:
            log.warn(f"split-brain guard: {who}; waiting for it to go "
                     f"({deadline - now:.0f} s left)")
            said = now
        time.sleep(min(1.0, max(0.0, deadline - now)))
