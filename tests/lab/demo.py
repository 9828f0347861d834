#!/usr/bin/env python3
"""make demo: a VM created with rbdvm, put under Pacemaker, snapshotted and live-migrated.

Runs on a lab that is up (make demo brings it up first) and leaves the lab up.
"""

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from labkit import guest, node, ops  # noqa: E402
from labkit import layout as L  # noqa: E402
from labkit.procs import LabError, wait_for  # noqa: E402

VM = "demo"
T0 = time.monotonic()


def step(text: str) -> None:
    print(f"\n[{time.monotonic() - T0:6.2f}s] {text}", flush=True)


def show(text: str) -> None:
    for line in text.rstrip().splitlines():
        print(f"          {line}", flush=True)


def sh(n: str, *argv) -> str:
    """Run a command on a node, echo it like a terminal, return its output."""
    print(f"          {n}# {' '.join(argv)}", flush=True)
    out = ops.on(n, *argv, timeout=180).stdout
    show(out)
    return out


def where():
    return ops.resource_node(L.NODES[0], VM)


def cleanup() -> None:
    n1 = L.NODES[0]
    if ops.on(n1, "crm_resource", "--locate", "-r", VM, check=False).returncode == 0:
        ops.on(n1, "crm_resource", "--clear", "-r", VM, check=False)
        ops.on(n1, "crm_resource", "--meta", "-r", VM, "-p", "target-role", "-v", "Stopped", check=False)
        wait_for(60, lambda: where() is None)
        ops.on(n1, "pcs", "resource", "delete", VM, "--force", check=False)
    for n in L.NODES:
        if VM in ops.running(n):
            ops.virsh(n, "destroy", VM, check=False)
    ops.on(n1, "rbdvm", "remove", VM, check=False)


def main() -> int:
    n1, n2 = L.NODES
    files = L.SHARED / "files"
    files.mkdir(parents=True, exist_ok=True)
    step("The lab: one Ceph cluster and two hypervisors (corosync + pacemaker + libvirtd, fencing on)")
    show(f"Pacemaker nodes online: {', '.join(node.online_nodes(n1))}; every command runs as client.{L.CEPH_USER}")
    cleanup()

    step("Create the VM from a disk file and a base libvirt XML: disks into RBD, definition into Ceph")
    disk, base = files / "demo-disk.raw", files / "demo-base.xml"
    disk.write_bytes(guest.disk_image())          # a 512-byte guest OS: READY, then ACPI power-off
    base.write_text(guest.base_xml(VM, str(ops.serial_path(VM)), interface=True))
    ops.serial_path(VM).unlink(missing_ok=True)
    sh(n1, "rbdvm", "create", VM, "--image", str(disk), "--xml", str(base), "--live-migration",
       "-m", "owner=demo")
    sh(n1, "rbdvm", "list")

    step("Put it under Pacemaker: the agent reads the definition from Ceph (no XML file on any node)")
    for n in L.NODES:
        sh(n, "rbdvm", "install-agent")
    sh(n1, "pcs", "resource", "create", VM, "ocf:rbdvm:VirtualDomain", f"vm={VM}", "migration_transport=tcp",
       "meta", "allow-migrate=true", "op", "monitor", "interval=5s")
    if not wait_for(60, lambda: where() is not None):
        raise LabError("Pacemaker did not start the VM")
    took = ops.wait_serial(VM, "READY")
    x = where()
    show(f"Started on {x}; the guest printed READY on its serial port ({took:.2f}s after Started)")
    show(f"RBD clients of its disk: {ops.watchers(x, f'system_{VM}')}  <- QEMU on {x}")

    step("Snapshot every disk at one instant (an RBD group snapshot), while it runs")
    sh(n1, "rbdvm", "snapshot", "create", VM, "beforeupdate")
    sh(n1, "rbdvm", "snapshot", "list", VM)

    y = n2 if x == n1 else n1
    step(f"Live-migrate it: Pacemaker moves it {x} -> {y} (migrate_to + migrate_from, no restart)")
    t = time.monotonic()
    sh(n1, "crm_resource", "--move", "-r", VM, "-N", y)
    if not wait_for(60, lambda: where() == y):
        raise LabError("the VM did not move")
    ops.on(n1, "crm_resource", "--clear", "-r", VM)
    show(f"running on {where()} after {time.monotonic() - t:.2f}s; RBD clients now: {ops.watchers(y, f'system_{VM}')}")
    show(f"READY lines on the serial port: {ops.serial_text(VM).count('READY')} (1 = the guest never rebooted)")
    hist = [f"{t_} on {n}" for n, t_, rc in ops.operations(n1, VM) if t_.startswith("migrate")]
    show(f"Pacemaker's operations: {', '.join(hist)}")
    sh(n1, "crm_mon", "-1", "--exclude=all", "--include=resources")

    info = json.loads(ops.on(n1, "rbdvm", "info", VM, "--json").stdout)
    step(f"Done: VM {VM} ({info['uuid']}) runs on {y} under Pacemaker, with snapshot "
         f"{info['snapshots'][0]['name']}.")
    show("The lab stays up: try `tests/lab/lab exec node1 -- crm_mon -1` or "
         "`tests/lab/lab crash " + y + "`; `make lab-down` stops everything.")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except LabError as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        sys.exit(1)
