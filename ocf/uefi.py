"""A UEFI guest's variables moved into Ceph at its start (vm= only).

A VM made before rbdvm kept UEFI variables in Ceph (or made by vm_manager, or edited from
BIOS to UEFI) has a definition whose variable store is a host file, different on every
node. At its next start, inside the split-brain guard's critical section (no other node
starts it meanwhile), this node fills the VM's store in Ceph from its own copy of that file,
or from the firmware's template when it has none, and starts the domain on the store. The
host file is left as it was. The stored definition names the store from the next change of
the VM's definition on (definition.build); until then every start does this rewrite, which
finds the store complete and only points the domain at it."""

from rbdvm.helpers.ceph import nvram
from rbdvm.helpers.ceph.monitors import monitor_hosts
from rbdvm.helpers.core import domainxml, names
from rbdvm.helpers.core.errors import RbdvmError
from rbdvm.helpers.hypervisor import firmware

from . import log


def in_ceph(session, vm: str, root) -> str | None:
    """The definition to start if `root` keeps its variables in a host file (its store in
    Ceph made complete first), else None (start the definition as it is)."""
    if not domainxml.is_uefi(root) or domainxml.nvram_image_of(root):
        return None
    if not nvram.is_complete(session, vm):
        origin, content = _variables(root)
        nvram.ensure_store(session, vm, content, origin)
        log.info(f"VM {vm}: UEFI variables moved into Ceph image {names.nvram_image(vm)} (from {origin})")
    t = session.target
    domainxml.set_nvram(root, names.nvram_image(vm), pool=t.pool, namespace=t.namespace,
                        monitors=_monitors(root) or monitor_hosts(session), client_id=t.client_id)
    return domainxml.to_string(root)


def _variables(root):
    """(origin, content): this node's file of the guest's variables, else the template."""
    path = domainxml.nvram_file_of(root)
    if path:
        try:
            # the path passed the device policy (nvram_dirs); still, never follow a link
            content = firmware.read_store_file(path)
        except RbdvmError as exc:
            log.warn(f"{exc.what} ({exc.why}): starting from the template")
            content = None
        if content is not None:
            return f"file {path}", content
    return firmware.variables_for(domainxml.firmware_request(root))


def _monitors(root) -> list:
    """The monitors the definition's RBD disks name (the same for the store)."""
    source = root.find("devices/disk/source[@protocol='rbd']")
    if source is None:
        return []
    return [(h.get("name"), int(h.get("port", "6789"))) for h in source.findall("host") if h.get("name")]
