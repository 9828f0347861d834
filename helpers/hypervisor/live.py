"""What can change while a VM runs, done on the node that runs it through that node's
libvirtd, reached by the URI the VM's live migration uses (core.peer).

Every call is bounded: a node whose libvirtd hangs or cannot be reached costs timeouts.LIBVIRT_CALL,
then an error naming the node and the URI (the change on the storage side is already made
and stays; the VM sees it at its next start)."""

import time
from typing import Any

import libvirt
from lxml import etree

from ..core import defaults, timeouts, xmlsafe
from ..core.bounded import Hung, bounded
from ..core.errors import ClusterUnavailable, NotFound

# libvirt prints every error on stderr by default; here each one is raised and the front
# end renders it (a --json caller's stderr stays empty)
libvirt.registerErrorHandler(lambda _ctx, _err: None, None)


def _bounded(what: str, fn, *args):
    """fn(*args), timeouts.LIBVIRT_CALL at most (core.bounded); a libvirt error becomes ClusterUnavailable."""
    try:
        return bounded(time.monotonic() + timeouts.LIBVIRT_CALL, fn, *args)
    except Hung:
        raise ClusterUnavailable(f"libvirt did not answer {what}", f"no answer within {timeouts.LIBVIRT_CALL} s",
                                 "Check libvirtd on that node", code="LIBVIRT_UNAVAILABLE") from None
    except libvirt.libvirtError as exc:
        raise ClusterUnavailable(f"libvirt refused {what}", exc.get_error_message(),
                                 code="LIBVIRT_UNAVAILABLE") from None


class Domain:
    """`with Domain(uri, vm) as d:` the running domain of VM `vm` behind `uri`."""

    def __init__(self, uri_: str, vm: str):
        self.uri, self.vm = uri_, vm
        # libvirt's handles, set by __enter__
        self.conn: Any = None
        self.dom: Any = None

    def __enter__(self):
        try:
            self.conn = _bounded(f"a connection to {self.uri}", libvirt.open, self.uri)
        except ClusterUnavailable as exc:
            if self.uri == defaults.HYPERVISOR:
                raise
            # another node: the operator must know which way was tried to fix the right thing
            exc.fix = ("Make a live migration to that node work (its transport, user and credentials are the "
                       "VM's migration settings), or run this on the node that runs the VM")
            raise exc.reworded(f"cannot reach the libvirtd that runs {self.vm} at {self.uri}, the URI the VM's "
                               "live migrations use") from None
        try:
            self.dom = _bounded(f"looking up {self.vm} on {self.uri}", self.conn.lookupByName, self.vm)
        except ClusterUnavailable as exc:
            self.close()
            raise NotFound(f"VM {self.vm} does not run on {self.uri}", exc.why) from None
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except libvirt.libvirtError:
                pass
            self.conn = None

    def definition(self):
        return xmlsafe.parse(_bounded(f"the definition of {self.vm}", self.dom.XMLDesc, 0),
                             f"the running definition of {self.vm}")

    def target_of(self, rbd_name: str) -> str:
        """The guest's device (vda, sdb...) of the RBD image `pool[/ns]/image`."""
        for disk in self.definition().findall("devices/disk"):
            src = disk.find("source")
            if src is not None and src.get("protocol") == "rbd" and src.get("name") == rbd_name:
                return disk.find("target").get("dev")
        raise NotFound(f"the running VM {self.vm} has no disk {rbd_name}",
                       "it was started before the disk was added", "Restart it to use the disk")

    def resize(self, rbd_name: str, size: int) -> str:
        dev = self.target_of(rbd_name)
        _bounded(f"resizing {dev} of {self.vm}", self.dom.blockResize, dev, size,
                 libvirt.VIR_DOMAIN_BLOCK_RESIZE_BYTES)
        return dev

    def block_size(self, dev: str) -> int:
        """The size the guest sees (libvirt's block info: capacity)."""
        return _bounded(f"block info of {dev}", self.dom.blockInfo, dev)[0]

    def is_active(self) -> bool:
        return bool(_bounded(f"whether {self.vm} runs", self.dom.isActive))

    def defined_xml(self) -> str:
        """The domain's persistent definition as libvirt holds it (what adopt reads)."""
        return _bounded(f"the definition of {self.vm}", self.dom.XMLDesc, libvirt.VIR_DOMAIN_XML_INACTIVE)

    def shutdown(self) -> None:
        _bounded(f"shutting {self.vm} down", self.dom.shutdown)

    def completed_job(self) -> dict:
        """libvirt's statistics of the domain's last completed job (on a migration's
        destination: the incoming migration, with its downtime)."""
        return _bounded(f"the last job of {self.vm}", self.dom.jobStats,
                        libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED | libvirt.VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED)

    def pause(self) -> None:
        _bounded(f"pausing {self.vm}", self.dom.suspend)

    def resume(self) -> None:
        _bounded(f"resuming {self.vm}", self.dom.resume)

    def is_paused(self) -> bool:
        return _bounded(f"the state of {self.vm}", self.dom.state)[0] == libvirt.VIR_DOMAIN_PAUSED

    def fs_freeze(self, until: float) -> int:
        """Ask the guest agent to freeze the guest's filesystems (by `until`, monotonic);
        the number frozen. Raises Hung or libvirt.libvirtError."""
        return bounded(until, self.dom.fsFreeze)

    def fs_thaw(self, until: float) -> int:
        return bounded(until, self.dom.fsThaw)

    def attach(self, disk_xml: str) -> None:
        _bounded(f"attaching a disk to {self.vm}", self.dom.attachDeviceFlags, disk_xml,
                 libvirt.VIR_DOMAIN_AFFECT_LIVE)


def disk_element_xml(definition_xml: str, rbd_name: str) -> str:
    """The <disk> of RBD image `rbd_name` in a stored definition, as attach takes it."""
    root = xmlsafe.parse(definition_xml, "the VM's definition")
    for disk in root.findall("devices/disk"):
        src = disk.find("source")
        if src is not None and src.get("name") == rbd_name:
            return etree.tostring(disk, encoding="unicode")
    raise NotFound(f"the definition has no disk {rbd_name}")
