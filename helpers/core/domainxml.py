"""The libvirt XML a VM runs with: the operator's base XML plus its RBD disks.

Base XML comes from outside, so it is parsed with entity resolution and network access off.
"""

import random
import uuid as uuidlib

from lxml import etree

from . import xmlsafe
from .errors import UsageError

# every disk bus libvirt's schema accepts (diskTarget), with the device name prefix libvirt's
# name parser reads for it; whether QEMU runs a disk on it is QEMU's to say at start
_DEV_PREFIX = {"virtio": "vd", "scsi": "sd", "sata": "sd", "usb": "sd", "ide": "hd", "fdc": "fd", "xen": "xvd",
               "sd": "sd", "uml": "ubd"}
DISK_BUSES = tuple(_DEV_PREFIX)


def parse(text: str, source: str = "the XML") -> etree._Element:
    root = xmlsafe.parse(text, source, fix="Fix the libvirt domain XML")
    if root.tag != "domain":
        raise UsageError(f"{source} is not a libvirt domain", f"its root element is <{root.tag}>",
                         "Give a <domain> definition", code="INVALID_DEFINITION")
    return root


def content(el) -> str:
    """An element's text as libvirt reads it: all of its text, its children's included,
    comments left out (libxml2's node content), never stripped."""
    return "".join(el.itertext())


def to_string(root) -> str:
    return etree.tostring(root, pretty_print=True, encoding="unicode")


def uuid_of(text: str, source: str = "the XML"):
    uid = parse(text, source).findtext("uuid")
    return uid.strip().lower() if uid else None


def stored_uuid(text):
    """UUID of a VM's stored XML for listings; None if absent or unreadable (never fails a list)."""
    try:
        return uuid_of(text) if text else None
    except UsageError:
        return None


def _random_mac() -> str:
    # 52:54:00 is QEMU/KVM's locally administered prefix
    return "52:54:00:" + ":".join(f"{random.randrange(256):02x}" for _ in range(3))


def _device_names(bus: str, taken, count: int) -> list:
    prefix = _DEV_PREFIX[bus]
    names: list = []
    i = 0
    while len(names) < count:
        n, letters = i, ""
        while True:   # a..z, aa..az, ... as the kernel names disks
            letters = chr(ord("a") + n % 26) + letters
            n = n // 26 - 1
            if n < 0:
                break
        dev = prefix + letters
        if dev not in taken:
            names.append(dev)
        i += 1
    return names


def build(base_xml: str, *, vm: str, images, pool: str, namespace: str, monitors,
          client_id: str, bus: str = "virtio", new_identity: bool = False, nvram: str | None = None) -> str:
    """The `xml` of a VM: base + one RBD disk per image (in order: vda, vdb, ...), and, for
    a UEFI guest, its variable store `nvram` (an image) in place of any host file.

    Keeps the base's UUID and MAC addresses unless `new_identity` (a clone); fills in what is
    missing, so the VM keeps the same identity on every node it ever starts on.
    """
    if bus not in _DEV_PREFIX:
        raise UsageError(f"unknown disk bus {bus!r}", f"choose one of {', '.join(DISK_BUSES)}")
    root = parse(base_xml, "the base XML")
    name = root.find("name")
    if name is None:
        name = etree.Element("name")
        root.insert(0, name)
    name.text = vm
    uid = root.find("uuid")
    if new_identity and uid is not None:
        root.remove(uid)
        uid = None
    if uid is None:
        uid = etree.Element("uuid")
        name.addnext(uid)
        uid.text = str(uuidlib.uuid4())
    devices = root.find("devices")
    if devices is None:
        devices = etree.SubElement(root, "devices")
    for iface in devices.findall("interface"):
        mac = iface.find("mac")
        if mac is None:
            mac = etree.Element("mac")
            iface.insert(0, mac)
        if new_identity or not mac.get("address"):
            mac.set("address", _random_mac())
    taken = {t.get("dev") for t in devices.findall("disk/target")}
    for image, dev in zip(images, _device_names(bus, taken, len(images))):
        devices.append(_rbd_disk(image, dev, pool=pool, namespace=namespace, monitors=monitors,
                                 client_id=client_id, bus=bus))
    if nvram and is_uefi(root):
        set_nvram(root, nvram, pool=pool, namespace=namespace, monitors=monitors, client_id=client_id)
    return to_string(root)


def is_uefi(root) -> bool:
    """Whether the domain boots UEFI firmware with a variable store of its own: firmware
    autoselection of 'efi', or a read-only pflash loader (the code, its variables apart)."""
    os_ = root.find("os")
    if os_ is None:
        return False
    if os_.get("firmware") == "efi":
        return True
    loader = os_.find("loader")
    return loader is not None and loader.get("type") == "pflash" and loader.get("readonly") == "yes"


GUEST_AGENT_CHANNEL = "org.qemu.guest_agent.0"


def has_guest_agent(root) -> bool:
    """The definition gives the guest a QEMU guest agent channel (virtio-serial)."""
    return any(t.get("name") == GUEST_AGENT_CHANNEL for t in root.findall("devices/channel/target"))


def nvram_image_of(root) -> str | None:
    """The RBD image name (pool[/namespace]/image) of a variable store kept in Ceph."""
    el = root.find("os/nvram")
    if el is None or el.get("type") != "network":
        return None
    source = el.find("source")
    return source.get("name") if source is not None and source.get("protocol") == "rbd" else None


def nvram_file_of(root) -> str | None:
    """The host file a variable store is kept in (libvirt's own choice when only the
    firmware is named: /var/lib/libvirt/qemu/nvram/<name>_VARS.fd)."""
    el = root.find("os/nvram")
    if el is not None and el.get("type", "file") == "file" and content(el):
        return content(el)       # exactly the path the device policy judged
    if el is not None and el.get("type") not in (None, "file"):
        return None
    return f"/var/lib/libvirt/qemu/nvram/{(root.findtext('name') or '').strip()}_VARS.fd"


def firmware_request(root) -> dict:
    """What the definition asks of its UEFI firmware, for choosing the variables' template:
    arch, machine, loader (a path named by hand), template (given in <nvram template>) and
    features ({name: enabled})."""
    os_ = root.find("os")
    type_ = os_.find("type") if os_ is not None else None
    features = {f.get("name"): f.get("enabled") == "yes" for f in root.findall("os/firmware/feature")}
    nvram = root.find("os/nvram")
    return {"arch": type_.get("arch", "x86_64") if type_ is not None else "x86_64",
            "machine": type_.get("machine", "pc") if type_ is not None else "pc",
            "loader": (root.findtext("os/loader") or "").strip() or None,
            "template": nvram.get("template") if nvram is not None else None,
            "features": features}


def set_nvram(root, image: str, *, pool: str, namespace: str, monitors, client_id: str) -> None:
    """The variable store of `root` made RBD image `image` (replacing a host file)."""
    os_ = root.find("os")
    old = os_.find("nvram")
    el = etree.Element("nvram", type="network")
    if old is not None:
        if old.get("template"):
            el.set("template", old.get("template"))
        old.addprevious(el)
        os_.remove(old)
    else:
        anchor = next((os_.find(t) for t in ("loader", "firmware", "type") if os_.find(t) is not None), None)
        if anchor is not None:
            anchor.addnext(el)
        else:
            os_.insert(0, el)
    source = _rbd_source(el, pool, namespace, image, monitors)
    _auth(source, client_id)


def keep_identity(base_xml: str, current_xml: str | None) -> str:
    """The base with the identity of the VM's current definition wherever the base sets
    none: its UUID, and the MAC address of each interface (in order). A VM whose definition
    is built again (a new disk, bus or base) stays the same machine to its guest and network."""
    root = parse(base_xml, "the base XML")
    if not current_xml:
        return to_string(root)
    current = parse(current_xml, "the VM's definition")
    old_uuid = current.findtext("uuid")
    if root.find("uuid") is None and old_uuid:
        uid = etree.Element("uuid")
        uid.text = old_uuid
        name = root.find("name")
        if name is not None:
            name.addnext(uid)
        else:
            root.insert(0, uid)
    old_macs = [m.get("address") for m in current.findall("devices/interface/mac")]
    for iface, mac_addr in zip(root.findall("devices/interface"), old_macs):
        mac = iface.find("mac")
        if mac is None:
            mac = etree.Element("mac")
            iface.insert(0, mac)
        if not mac.get("address") and mac_addr:
            mac.set("address", mac_addr)
    return to_string(root)


def _rbd_disk(image, dev, *, pool, namespace, monitors, client_id, bus):
    disk = etree.Element("disk", type="network", device="disk")
    etree.SubElement(disk, "driver", name="qemu", type="raw", cache="writeback", discard="unmap")
    _auth(disk, client_id)
    _rbd_source(disk, pool, namespace, image, monitors)
    etree.SubElement(disk, "target", dev=dev, bus=bus)
    return disk


def _auth(parent, client_id: str) -> None:
    auth = etree.SubElement(parent, "auth", username=client_id)
    # by usage, not UUID: every node's libvirt secret for this client matches, whatever its UUID
    etree.SubElement(auth, "secret", type="ceph", usage=f"client.{client_id}")


def _rbd_source(parent, pool: str, namespace: str, image: str, monitors):
    path = "/".join(p for p in (pool, namespace, image) if p)
    source = etree.SubElement(parent, "source", protocol="rbd", name=path)
    for host, port in monitors:
        etree.SubElement(source, "host", name=host, port=str(port))
    return source


_UNITS = {"b": 1, "bytes": 1, "k": 1 << 10, "kib": 1 << 10, "kb": 1000, "m": 1 << 20, "mib": 1 << 20,
          "mb": 10 ** 6, "g": 1 << 30, "gib": 1 << 30, "gb": 10 ** 9, "t": 1 << 40, "tib": 1 << 40}


def utilization(xml: str) -> dict:
    """{cpu, hv_memory (MiB)} a definition asks for: what the agent sets as the resource's
    utilization at its start (autoset_utilization_*), and what `enable --strict` counts for
    a VM that has not started yet. Raises UsageError if it is not a domain."""
    root = parse(xml, "the domain XML")
    out = {}
    vcpu = root.findtext("vcpu")
    if vcpu and vcpu.strip().isdigit():
        out["cpu"] = int(vcpu.strip())
    mem = root.find("memory")
    amount = (mem.text or "").strip() if mem is not None else ""
    if mem is not None and amount.isdigit():
        unit = _UNITS.get((mem.get("unit") or "KiB").lower(), 1 << 10)
        out["hv_memory"] = int(amount) * unit >> 20
    return out
