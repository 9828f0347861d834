"""Adopting a libvirt domain defined on this node (vm_manager's add-to-cluster): its disks,
in host files (qcow2, raw) or already in RBD, become a new rbdvm VM through the same safe
import as create, with the domain's identity (name, UUID, MAC addresses) unless it is
adopted under another name. The original domain and its files are left as they were (the
operator removes them once the VM runs); a running domain is refused unless asked to stop
it. The import is create's: interrupted, the same command resumes it; once done, it says so.
"""

import time

from lxml import etree

from ..ceph import diskimage, images, vmstore
from ..core import defaults, domainxml, names, timeouts, vmschema
from ..core.errors import Conflict, UsageError
from ..core.vmschema import VmState
from ..hypervisor import firmware
from . import creation
from .env import Env

_MEDIA = ("cdrom", "floppy")


def plan(xml: str) -> dict:
    """What adopting a domain whose definition is `xml` takes (pure): its disks in boot
    order [{kind: file|rbd, source, format, dev, bus}], the base definition (disks gone,
    per-device boot orders gone: the system disk boots), the removable media left out, and
    every problem at once (UsageError)."""
    root = domainxml.parse(xml, "the domain's definition")
    devices = root.find("devices")
    disks, dropped, problems = [], [], []
    for disk in list(devices.iterfind("disk")) if devices is not None else []:
        device, kind = disk.get("device", "disk"), disk.get("type", "file")
        src, target, driver = disk.find("source"), disk.find("target"), disk.find("driver")
        dev = target.get("dev", "?") if target is not None else "?"
        source = next((src.get(a) for a in ("file", "dev", "name", "volume") if src is not None and src.get(a)), None)
        if device in _MEDIA:
            if source:
                dropped.append(f"{device} {dev} ({source})")
                devices.remove(disk)
            continue
        boot = disk.find("boot")
        entry = {"source": source, "format": driver.get("type", "raw") if driver is not None else "raw",
                 "dev": dev, "bus": target.get("bus") if target is not None else None,
                 "boot": int(boot.get("order", "0")) if boot is not None else 0}
        if device != "disk":
            problems.append(f"disk {dev} is a {device}: adopt takes disks, cdroms and floppies")
        elif kind == "file" and source:
            disks.append({**entry, "kind": "file"})
        elif kind == "network" and src is not None and src.get("protocol") == "rbd" and source:
            disks.append({**entry, "kind": "rbd"})
        else:
            problems.append(f"disk {dev} is a {kind} disk ({source or 'no source'}): adopt takes files and RBD images")
        devices.remove(disk)
    if not disks and not problems:
        problems.append("the domain has no disk to adopt")
    # the disk the domain boots from first becomes the system disk; the others keep their order
    disks.sort(key=lambda d: (d["boot"] == 0, d["boot"]))
    for boot in root.iterfind("devices/*/boot"):
        boot.getparent().remove(boot)
    os_ = root.find("os")
    if os_ is not None and os_.find("boot") is None:
        etree.SubElement(os_, "boot", dev="hd")
    if problems:
        raise UsageError(f"cannot adopt domain {root.findtext('name')}", "; ".join(problems),
                         "Change the domain (virsh edit) or create the VM from its files (rbdvm create)",
                         code="INVALID_DEFINITION", details={"problems": problems})
    bus = disks[0]["bus"] if disks[0]["bus"] in domainxml.DISK_BUSES else defaults.DISK_BUS
    return {"name": (root.findtext("name") or "").strip(), "uuid": domainxml.uuid_of(xml), "disks": disks,
            "bus": bus, "dropped": dropped, "base_xml": domainxml.to_string(root),
            "nvram_file": domainxml.nvram_file_of(root) if domainxml.is_uefi(root) else None}


def adopt(env: Env, domain: str, *, name: str | None = None, stop: bool = False, settings=None,
          metadata=None, progress=None, uri: str = defaults.HYPERVISOR) -> dict:
    """Make VM `name` (default: the domain's name) of libvirt domain `domain` on this node."""
    session = env.session
    name = name or domain
    names.check_new_vm_name(name)
    with env.open_domain(uri, domain) as d:
        xml = d.defined_xml()
        p = plan(xml)
        rec = vmstore.record(session, name)
        if rec.state == VmState.COMPLETE:
            # done already (the domain may run now: as the VM, under the cluster)
            if name == domain and domainxml.stored_uuid(rec.metadata.get(vmschema.XML)) == p["uuid"]:
                return {"name": name, "domain": domain, "changed": False, "disks": rec.disks,
                        "dropped": p["dropped"], "uuid": p["uuid"], "nvram": rec.nvram}
            raise Conflict("VM already exists", f"VM {name} exists and is not domain {domain} adopted",
                           "Adopt it under another name", code="VM_EXISTS", details={"vm": name})
        if d.is_active():
            _stop(d, domain, stop)
    base = p["base_xml"] if name == domain else _new_identity(p["base_xml"])
    sources = [_source(env, disk) for disk in p["disks"]]
    variables = None
    if p["nvram_file"]:
        content = firmware.read_store_file(p["nvram_file"])
        variables = (f"file {p['nvram_file']}", content) if content is not None else None
    made = creation.create(env, name, sources[0], base, data_images=sources[1:], metadata=metadata,
                           settings={"disk_bus": p["bus"], **(settings or {})}, progress=progress,
                           uefi_variables=variables)
    return {**made, "domain": domain, "changed": True, "dropped": p["dropped"]}


def _stop(d, domain: str, stop: bool) -> None:
    if not stop:
        raise Conflict(f"domain {domain} runs on this node", "its disks would be copied while it writes them",
                       "Shut it down first, or let adopt do it", code="VM_RUNNING", details={"domain": domain})
    d.shutdown()
    end = time.monotonic() + timeouts.ADOPT_SHUTDOWN_WAIT
    while d.is_active():
        if time.monotonic() > end:
            raise Conflict(f"domain {domain} did not shut down", f"it still runs after "
                           f"{timeouts.ADOPT_SHUTDOWN_WAIT} s", "Stop it yourself (virsh destroy), then adopt it",
                           code="VM_RUNNING", details={"domain": domain})
        time.sleep(0.5)


def _new_identity(base_xml: str) -> str:
    """Adopted under another name: a new UUID and new MAC addresses (the original keeps its)."""
    root = domainxml.parse(base_xml, "the base XML")
    uid = root.find("uuid")
    if uid is not None:
        root.remove(uid)
    for mac in root.findall("devices/interface/mac"):
        mac.getparent().remove(mac)
    return domainxml.to_string(root)


def _source(env: Env, disk: dict) -> diskimage.DiskFile:
    """A disk of the domain as create imports it: a file, inspected (its content must be
    the format the domain reads it as), or a raw RBD image of the VMs' pool that no one has
    open."""
    session = env.session
    if disk["kind"] == "file":
        f = diskimage.inspect(disk["source"])
        if f.format != disk["format"]:
            raise UsageError(f"disk {disk['dev']} ({disk['source']}) holds {f.format}, but the domain reads it "
                             f"as {disk['format']}", "adopted, the guest would see other data",
                             "Fix the domain's <driver type> first", code="INVALID_DISK_IMAGE",
                             details={"path": disk["source"]})
        return f
    t = session.target
    pool, _, rest = disk["source"].partition("/")
    namespace, _, image = rest.rpartition("/")
    if (pool, namespace) != (t.pool, t.namespace) or "@" in image:
        raise UsageError(f"disk {disk['dev']} is RBD image {disk['source']}, outside {vmstore.where(session)}",
                         "adopt copies RBD images within the VMs' pool and namespace",
                         "Adopt into that pool (and namespace), or copy the image there first",
                         code="INVALID_DISK_IMAGE", details={"image": disk["source"]})
    if disk["format"] != "raw":
        raise UsageError(f"disk {disk['dev']} is RBD image {disk['source']} read as {disk['format']}",
                         "adopt copies raw RBD images", code="INVALID_DISK_IMAGE", details={"image": disk["source"]})
    vmstore.refuse_if_open(session, names.vm_of_disk(image), [image], "copy the disk of")
    return diskimage.rbd_source(t, image, images.size_of(session, image))
