#!/usr/bin/env python3
"""make demo: a guest whose disk lives in Ceph boots on node1 and live-migrates to node2.

Runs on a lab that is up (make demo brings it up first) and leaves the lab up.
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from labkit import node, ops  # noqa: E402
from labkit import layout as L  # noqa: E402
from labkit.procs import LabError, wait_for  # noqa: E402

NAME = "demo"
T0 = time.monotonic()


def step(text: str) -> None:
    print(f"\n[{time.monotonic() - T0:6.2f}s] {text}", flush=True)


def show(text: str) -> None:
    print(f"          {text}", flush=True)


def cleanup() -> None:
    for n in L.NODES:
        if NAME in ops.running(n):
            ops.virsh(n, "destroy", NAME, check=False)
    ops.remove_image(L.NODES[0], NAME)


def main() -> int:
    n1, n2 = L.NODES
    step("The lab: one Ceph cluster and two hypervisors, each with corosync, pacemaker and libvirtd")
    show(f"Pacemaker nodes online: {', '.join(node.online_nodes(n1))}; "
         f"Ceph monitor at {L.IP['ceph']}; every command below runs as client.{L.CEPH_USER}")
    cleanup()

    step(f"Import a 1 MiB boot disk into RBD: {L.POOL}/{NAME} (a 512-byte guest OS: prints READY, "
         "powers off on ACPI)")
    ops.import_boot_disk(n1, NAME)
    show(ops.rbd(n1, "info", f"{L.POOL}/{NAME}").splitlines()[1].strip())

    step(f"Start a transient domain on {n1}; its disk is the RBD image (no local file anywhere)")
    ops.start_guest(n1, NAME, NAME)
    took = ops.wait_serial(NAME, "READY")
    show(f"serial port says READY after {took:.2f}s; running on {n1}: {ops.running(n1)}")
    show(f"RBD watchers of the disk (who has it open): {ops.watchers(n1, NAME)}  <- QEMU on {n1}")

    step(f"Live-migrate {NAME}: {n1} -> {n2} (libvirt peer-to-peer, memory copied over the lab switch)")
    took = ops.migrate(n1, n2, NAME)
    show(f"migrated in {took:.2f}s; on {n1}: {ops.running(n1)}, on {n2}: {ops.running(n2)}")
    show(f"RBD watchers now: {ops.watchers(n2, NAME)}  <- QEMU on {n2}")
    show(f"READY lines on the serial port: {ops.serial_text(NAME).count('READY')} "
         "(1 = the guest never rebooted)")

    step(f"Graceful shutdown on {n2} (ACPI power button)")
    took = ops.shutdown(n2, NAME)
    show(f"guest printed POWEROFF and was gone after {took:.2f}s; "
         f"serial log: {ops.serial_text(NAME).split()}")
    wait_for(10, lambda: ops.watchers(n2, NAME) == [])
    show(f"RBD watchers: {ops.watchers(n2, NAME) or 'none'}")
    cleanup()
    step("Done. The lab is still up: try `tests/lab/lab exec node1 -- crm_mon -1`; "
         "`make lab-down` stops it.")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except LabError as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        sys.exit(1)
