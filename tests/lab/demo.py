#!/usr/bin/env python3
"""make demo: a VM's whole life with rbdvm: created (enabled under Pacemaker and started),
snapshotted, live-migrated, stopped and started, cloned, pinned and anti-colocated, rolled
back while enabled, and a clone removed.

Runs on a lab that is up (make demo brings it up first) and leaves the lab up.
"""

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from labkit import guest, node, ops  # noqa: E402
from labkit import layout as L  # noqa: E402
from labkit.procs import LabError  # noqa: E402

VM, CLONE = "demo", "demo2"
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


def node_of(vm: str) -> str:
    return json.loads(ops.on(L.NODES[0], "rbdvm", "status", vm, "--json").stdout)["node"]


def cleanup() -> None:
    n1 = L.NODES[0]
    for vm in (CLONE, VM):
        ops.on(n1, "rbdvm", "remove", vm, "--force", check=False, timeout=300)


def main() -> int:
    n1, n2 = L.HYPERVISORS
    files = L.SHARED / "files"
    files.mkdir(parents=True, exist_ok=True)
    step("The lab: SEAPATH's shape, two hyperconverged hypervisors (libvirtd, a Ceph monitor and OSD each) "
         "and an observer (a Ceph monitor); corosync + pacemaker everywhere, fencing on")
    show(f"Pacemaker nodes online: {', '.join(node.online_nodes(n1))}; every command runs as client.{L.CEPH_USER}")
    cleanup()
    for n in L.NODES:
        sh(n, "rbdvm", "install-agent")

    step("Create the VM: disks into RBD, definition into Ceph, enabled under Pacemaker and started")
    disk, base = files / "demo-disk.raw", files / "demo-base.xml"
    disk.write_bytes(guest.disk_image())          # a 512-byte guest OS: READY, then ACPI power-off
    base.write_text(guest.base_xml(VM, str(ops.serial_path(VM)), interface=True))
    for vm in (VM, CLONE):
        ops.serial_path(vm).unlink(missing_ok=True)
    sh(n1, "rbdvm", "create", VM, "--image", str(disk), "--xml", str(base), "--live-migration",
       "--pacemaker-params", "migration_transport=tcp", "-m", "owner=demo")
    ops.wait_boots(VM, 1)
    x = node_of(VM)
    show(f"the guest printed READY on its serial port; RBD clients of its disk: "
         f"{ops.watchers(x, f'system_{VM}')}  <- QEMU on {x}")
    sh(n1, "rbdvm", "list")
    sh(n1, "crm_mon", "-1", "--exclude=all", "--include=resources")

    step("Snapshot every disk at one instant (an RBD group snapshot), while it runs")
    sh(n1, "rbdvm", "snapshot", "create", VM, "beforeupdate")
    sh(n1, "rbdvm", "snapshot", "list", VM)

    y = n2 if x == n1 else n1
    step(f"Live-migrate it through Pacemaker: {x} -> {y} (migrate_to + migrate_from, no reboot)")
    sh(n1, "rbdvm", "migrate", VM, y)
    show(f"READY lines on the serial port: {ops.boots(VM)} (1 = the guest never rebooted)")
    hist = [f"{t_} on {n}" for n, t_, rc in ops.operations(n1, VM) if t_.startswith("migrate")]
    show(f"Pacemaker's operations: {', '.join(hist)}")

    step("Stop and start it (target-role, waiting for Pacemaker)")
    sh(n1, "rbdvm", "stop", VM)
    sh(n1, "rbdvm", "start", VM)
    ops.wait_boots(VM, 2)

    step(f"A copy-on-write clone, kept away from {VM} (anti-colocation); then {VM} pinned to {y}")
    clone_base = files / "demo-clone-base.xml"
    clone_base.write_text(guest.base_xml(CLONE, str(ops.serial_path(CLONE)), interface=True))
    sh(n1, "rbdvm", "clone", VM, CLONE, "--xml", str(clone_base), "--disabled")
    sh(n1, "rbdvm", "colocate", CLONE, VM, "--anti", "--strong")
    sh(n1, "rbdvm", "enable", CLONE)
    sh(n1, "rbdvm", "pin", VM, y)
    sh(n1, "rbdvm", "list")

    step(f"Roll {VM} back while enabled: rbdvm disables it, rolls the disks back, enables it again")
    sh(n1, "rbdvm", "snapshot", "rollback", VM, "beforeupdate")
    ops.wait_boots(VM, 3)
    show(f"READY lines: {ops.boots(VM)} (booted again from the snapshot)")

    step(f"Remove the clone (--force disables it first); {VM} stays")
    ops.wait_boots(CLONE, 1)
    sh(n1, "rbdvm", "remove", CLONE, "--force")
    sh(n1, "rbdvm", "unpin", VM)
    sh(n1, "rbdvm", "list")

    info = json.loads(ops.on(n1, "rbdvm", "info", VM, "--json").stdout)
    step(f"Done in {time.monotonic() - T0:.0f} s: VM {VM} ({info['uuid']}) runs on {node_of(VM)} under "
         f"Pacemaker, with snapshot {info['snapshots'][0]['name']}.")
    show("The lab stays up: try `tests/lab/lab exec node1 -- rbdvm list` or "
         "`tests/lab/lab crash " + node_of(VM) + "`; `make lab-down` stops everything.")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except LabError as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        sys.exit(1)
