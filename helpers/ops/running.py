"""Where a VM runs and how to reach the libvirtd that runs it: the one reading of both for
every operation that acts on a running guest (backup, snapshot, console, disk hot-plug, a
migration's measurements).

On the node that runs the VM, its libvirtd is reached through the local socket
(defaults.HYPERVISOR): no network, no credentials, whatever the migration settings say.
Another node is reached as the VM's live migrations reach it (core.peer), so an operation
works wherever a migration works, and a failure says that this is the way it went."""

from ..core import defaults, domainxml, peer, vmschema
from ..pacemaker import cib, crm_mon
from .env import Env


def running_on(env: Env, vm: str):
    """(node, URI of its libvirtd) if the VM runs under Pacemaker, else None (also on a host
    without Pacemaker: a storage-only host)."""
    if not env.cluster.available():
        return None
    prim = env.cluster.resource(vm)
    if prim is None:
        return None
    st = crm_mon.vm_status(env.cluster.cluster_status(), vm, True)
    if st["status"] != "Started" or not st["node"]:
        return None
    return st["node"], libvirt_uri(env, prim, st["node"])


def running_guest(env: Env, rec) -> tuple | None:
    """(node, libvirt URI, whether its definition has a QEMU guest agent channel) of a VM
    (a complete vmstore record) Pacemaker runs, else None: what a snapshot holds still."""
    where = running_on(env, rec.name)
    if where is None:
        return None
    root = domainxml.parse(rec.metadata[vmschema.XML], f"the definition of VM {rec.name}")
    return (*where, domainxml.has_guest_agent(root))


def libvirt_uri(env: Env, prim, node: str) -> str:
    """The URI of `node`'s libvirtd: the local one on this node, else as the VM's primitive
    (None: defaults) reaches it for a migration."""
    if node == env.cluster.local_node():
        return defaults.HYPERVISOR
    return peer.libvirt_uri(node, cib.params(prim) if prim is not None else {})
