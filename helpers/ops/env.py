"""What an operation reaches outside itself, passed to it explicitly (pcs's library
environment is the model): the Ceph session of the VMs' pool/namespace (and a factory for
other pools), the Pacemaker cluster (its runner and CIB), a running VM's libvirt domain on
the node that runs it, the disk importer and the clock. Front ends build the real one; unit
tests script its parts (tests/unit/scripted.py) to check an operation's decisions without
the lab."""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..ceph import diskimage
from ..ceph.session import Session
from ..core import clock
from ..hypervisor import firmware, live, quiesce
from ..pacemaker.cluster import Cluster


@dataclass
class Env:
    # Ceph: an open helpers.ceph.session.Session (None for an operation that needs no Ceph)
    session: Any = None
    # Ceph elsewhere: CephTarget -> a Session to open (`with`), for VMs of other pools
    open_session: Callable = Session
    cluster: Cluster = field(default_factory=Cluster)
    # (libvirt URI, VM name) -> context manager of the running domain (hypervisor.live.Domain)
    open_domain: Callable = live.Domain
    # (DiskFile, CephTarget, image, adopt=, progress=) -> None (ceph.diskimage.import_into)
    import_disk: Callable = diskimage.import_into
    now: Callable = clock.now
    # domainxml.firmware_request -> (origin, bytes): the variables a new UEFI store starts
    # with, from the template this node's libvirt would choose (hypervisor.firmware)
    uefi_variables: Callable = firmware.variables_for
    # (libvirt URI, VM name, has a guest agent) -> context manager holding the running guest
    # still (frozen, paused) for a snapshot; yields how consistent it is (hypervisor.quiesce)
    hold_still: Callable = quiesce.held
