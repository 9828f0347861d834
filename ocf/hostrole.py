"""Whether this node can run a VM at all. An observer (SEAPATH's third node: a Ceph monitor
and a cluster member that never runs VMs) has no libvirt daemon installed. There the agent
answers every action at once, without touching libvirt or Ceph: the probe says "not
installed", which Pacemaker records as stopped and bans the node for this resource (with or
without rbdvm's constraints it never tries a start there), a stop succeeds (nothing can run),
and anything that would start a domain is refused the same way."""

import os
from urllib.parse import urlsplit

# libvirt's monolithic daemon and its modular QEMU driver daemon (Debian 12 ships both)
DAEMONS = ("/usr/sbin/libvirtd", "/usr/sbin/virtqemud")


def local(uri: str) -> bool:
    """The URI names this node's own libvirt (no host part): the only one this check judges."""
    return not urlsplit(uri).netloc


def missing(uri: str, daemons=DAEMONS) -> str | None:
    """Why this node has no hypervisor for `uri`, or None if it may have one."""
    if not local(uri) or any(os.path.exists(d) for d in daemons):
        return None
    return (f"this node has no hypervisor (none of {', '.join(daemons)} is installed): it runs no "
            "VM, as a cluster's observer node")
