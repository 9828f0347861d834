"""What tests and the demo do on a running lab: commands on nodes, guests, RBD images."""

import json
import time
import uuid as uuidlib
import xml.etree.ElementTree as ET

from . import guest, node
from . import layout as L
from .procs import LabError, wait_for

VIRSH = ("virsh", "-q", "-c", "qemu:///system")
RBD = ("rbd", "--id", L.CEPH_USER)


def on(n: str, *argv, check=True, timeout=60):
    """Run argv on node n (its namespaces, its /etc/ceph, its libvirtd)."""
    return node.sh(n, argv, check=check, timeout=timeout)


def virsh(n: str, *args, check=True, timeout=60) -> str:
    return on(n, *VIRSH, *args, check=check, timeout=timeout).stdout.strip()


def rbd(n: str, *args, check=True) -> str:
    return on(n, *RBD, *args, check=check).stdout.strip()


def serial_path(name: str):
    return L.SHARED / f"{name}.serial"


def serial_text(name: str) -> str:
    try:
        return serial_path(name).read_text(errors="replace")
    except FileNotFoundError:
        return ""


def boots(name: str) -> int:
    """How many times the lab guest has booted (it prints READY once per boot)."""
    return serial_text(name).count("READY")


def wait_boots(name: str, times: int, timeout: float = 60) -> None:
    """Wait for the guest's boot number `times` (a graceful stop needs a booted guest: an
    ACPI press during boot is lost); LabError if it does not come."""
    if not wait_for(timeout, lambda: boots(name) >= times):
        raise LabError(f"guest {name} booted {boots(name)} times, not {times}, within {timeout}s")


def wait_serial(name: str, text: str, timeout: float = 30) -> float:
    """Seconds until `text` appears on the guest's serial port; LabError if it never does."""
    t0 = time.monotonic()
    if not wait_for(timeout, lambda: text in serial_text(name), 0.05):
        raise LabError(f"guest {name} did not print {text!r} within {timeout}s; "
                       f"serial so far: {serial_text(name)!r}")
    return time.monotonic() - t0


def import_boot_disk(n: str, image: str) -> None:
    """An RBD image holding the boot sector, imported from node n as client.rbdvm."""
    raw = L.SHARED / f"{image}.raw"
    raw.write_bytes(guest.disk_image())
    try:
        rbd(n, "import", "--no-progress", str(raw), f"{L.POOL}/{image}")
    finally:
        raw.unlink()


def start_guest(n: str, name: str, image: str) -> str:
    """Start a transient domain on node n booting from RBD image; returns its UUID."""
    dom_uuid = str(uuidlib.uuid4())
    xml = L.SHARED / f"{name}.xml"
    serial_path(name).unlink(missing_ok=True)
    xml.write_text(guest.domain_xml(name, dom_uuid, image, str(serial_path(name))))
    virsh(n, "create", str(xml))
    return dom_uuid


def running(n: str) -> list:
    return virsh(n, "list", "--name").split()


def watchers(n: str, image: str, entities: bool = False) -> list:
    """IP addresses of the clients that have the image open (QEMU included); `entities`:
    each client instance as the blocklist names it (IP:PORT/NONCE)."""
    out = rbd(n, "status", "--format", "json", f"{L.POOL}/{image}")
    found = [w["address"] for w in json.loads(out).get("watchers", [])]
    return sorted(found) if entities else sorted({a.split(":")[0] for a in found})


def migrate(src: str, dst: str, name: str) -> float:
    """Live-migrate over libvirt (peer to peer, data on the lab switch); returns seconds."""
    t0 = time.monotonic()
    virsh(src, "migrate", "--live", "--p2p", name, f"qemu+tcp://{dst}/system",
          "--migrateuri", f"tcp://{L.IP[dst]}", timeout=120)
    return time.monotonic() - t0


def shutdown(n: str, name: str, timeout: float = 20) -> float:
    """ACPI power button; seconds until the transient domain is gone."""
    t0 = time.monotonic()
    virsh(n, "shutdown", name)
    if not wait_for(timeout, lambda: name not in running(n)):
        raise LabError(f"{name} still running on {n} {timeout}s after the ACPI power button")
    return time.monotonic() - t0


def remove_image(n: str, image: str) -> None:
    rbd(n, "rm", "--no-progress", f"{L.POOL}/{image}", check=False)


def resource_node(n: str, rsc: str):
    """The node where Pacemaker (seen from n) runs rsc, or None."""
    x = node.cluster_status(n)
    if x is None:
        return None
    for r in x.iter("resource"):
        if r.get("id") == rsc and r.get("role") == "Started":
            found = r.find("node")
            return None if found is None else found.get("name")
    return None


def operations(n: str, rsc: str) -> list:
    """[(node, task, rc)] of rsc's operation history, from crm_mon's XML."""
    res = on(n, "crm_mon", "-1", "--output-as=xml", "--include=all", timeout=10)
    out = []
    for nh in ET.fromstring(res.stdout).iter("node"):
        if nh.find("resource_history") is None:
            continue
        for rh in nh.iter("resource_history"):
            if rh.get("id") != rsc:
                continue
            out += [(nh.get("name"), op.get("task"), op.get("rc")) for op in rh.iter("operation_history")]
    return out


def fence_events(n: str, target: str) -> list:
    """Successful fencing events against target, from stonith_admin's XML history."""
    # --verbose: without it only the latest event per target is listed
    res = on(n, "stonith_admin", "--history", target, "--verbose", "--output-as=xml", timeout=10)
    return [e.attrib for e in ET.fromstring(res.stdout).iter("fence_event")
            if e.get("target") == target and e.get("status") == "success"]
