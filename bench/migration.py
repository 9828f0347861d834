#!/usr/bin/env python3
"""Live migration: the guest's downtime and the total time of each live migration, through
rbdvm (`rbdvm migrate`: Pacemaker's migrate_to/migrate_from, the agent's peer-to-peer
migration) and bare `virsh migrate --live --p2p` of the same guest, in the same run (issue 21).

The guest keeps writing to its RBD disk the whole time (labkit.guest.writer_disk_image: a
boot sector looping over BIOS disk writes). Downtime and total come from libvirt's completed
job statistics on the destination, for both paths: what `rbdvm migrate` reports, and
`virsh domjobinfo --completed` after the bare migration. The bare guest runs from the same
image, outside Pacemaker, after rbdvm's VM is stopped (one writer at a time).

Target: rbdvm's median downtime within 1.2x (+10 ms) of bare virsh's (the migration itself is
libvirt's; rbdvm adds Pacemaker's scheduling to the total, not to the downtime).
Prints a Markdown section and writes it into docs/benchmarks.md.
Usage: .venv/bin/python bench/migration.py [--runs N]   (lab up)
"""

import argparse
import re
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "lab"))
sys.path.insert(0, str(REPO / "bench"))

from report import machine, verdict, write_section  # noqa: E402

from labkit import guest, ops  # noqa: E402
from labkit import layout as L  # noqa: E402
from labkit.procs import wait_for  # noqa: E402
from labkit.testing import base_xml, files_dir, force_remove, rbdvm, rbdvm_json, read_bytes, unique  # noqa: E402

N1, N2 = L.HYPERVISORS


def where(vm):
    return ops.resource_node(N1, vm) or ops.resource_node(N2, vm)


def _ms(text: str, label: str) -> int:
    found = re.search(rf"^{label}:\s+(\d+)\s+ms", text, re.M)
    if not found:
        raise SystemExit(f"no {label!r} in: {text}")
    return int(found.group(1))


def rbdvm_runs(vm: str, runs: int) -> list:
    out = []
    for _ in range(runs):
        target = N2 if rbdvm_json("status", vm)["node"] == N1 else N1
        t0 = time.monotonic()
        m = rbdvm_json("migrate", vm, target)
        wall = time.monotonic() - t0
        wait_for(30, lambda t=target: where(vm) == t)    # Pacemaker's stop of the source done
        if m.get("how") != "live" or "migration" not in m:
            raise SystemExit(f"not a measured live migration: {m}")
        out.append({"downtime": m["migration"]["downtime_ms"], "total": m["migration"]["total_ms"],
                    "wall": wall * 1000})
    return out


def bare_runs(vm: str, runs: int) -> list:
    xml = ops.on(N1, "rbd", "--id", L.CEPH_USER, "image-meta", "get", f"{L.POOL}/system_{vm}", "xml").stdout
    path = files_dir() / f"{vm}.bare.xml"
    path.write_text(xml.replace(f"<name>{vm}</name>", f"<name>{vm}bare</name>", 1))
    ops.virsh(N1, "create", str(path))
    name, at, out = f"{vm}bare", N1, []
    try:
        for _ in range(runs):
            to = N2 if at == N1 else N1
            t0 = time.monotonic()
            ops.virsh(at, "migrate", "--live", "--p2p", name, f"qemu+tcp://{to}/system")
            wall = time.monotonic() - t0
            info = ops.virsh(to, "domjobinfo", "--completed", name)
            out.append({"downtime": _ms(info, "Total downtime"), "total": _ms(info, "Time elapsed"),
                        "wall": wall * 1000})
            at = to
    finally:
        ops.virsh(at, "destroy", name, check=False)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    vm = unique("mig")
    disk = files_dir() / "writer.raw"
    disk.write_bytes(guest.writer_disk_image())
    rbdvm("create", vm, "--image", str(disk), "--xml", base_xml(vm), "--live-migration",
          "--pacemaker-params", "migration_transport=tcp", "--pacemaker-params", "force_stop=true")
    try:
        wait_for(60, lambda: where(vm) is not None)
        ops.wait_serial(vm, "READY")
        # the guest writes its boot sector to CHS sector 2 (LBA 1: byte 512) of its disk, again and again
        if not wait_for(30, lambda: read_bytes(f"system_{vm}", 512, 512) == guest.writer_disk_image()[:512]):
            raise SystemExit("the guest is not writing to its disk")
        ours = rbdvm_runs(vm, args.runs)
        rbdvm("stop", vm)
        bare = bare_runs(vm, args.runs)
    finally:
        force_remove(vm)

    def med(rs, key):
        return statistics.median(r[key] for r in rs)
    ok = med(ours, "downtime") <= med(bare, "downtime") * 1.2 + 10
    median = (f"| median | {med(ours, 'downtime'):.0f} ms | {med(ours, 'total'):.0f} ms | {med(ours, 'wall'):.0f} ms "
              f"| {med(bare, 'downtime'):.0f} ms | {med(bare, 'total'):.0f} ms | {med(bare, 'wall'):.0f} ms |")
    rows = "\n".join(f"| {i + 1} | {a['downtime']} ms | {a['total']} ms | {a['wall']:.0f} ms | "
                     f"{b['downtime']} ms | {b['total']} ms | {b['wall']:.0f} ms |"
                     for i, (a, b) in enumerate(zip(ours, bare)))
    body = f"""## Live migration: downtime and total time, rbdvm against bare virsh (issue 21)

A guest that keeps writing to its RBD disk (a boot sector looping over BIOS disk writes, TCG,
64 MiB) migrates back and forth between the lab's nodes {args.runs} times through `rbdvm
migrate` (Pacemaker's migrate_to/migrate_from, the agent's peer-to-peer migration), then, as a
domain outside Pacemaker started from the same definition, {args.runs} times with bare `virsh
migrate --live --p2p`. Downtime and total are libvirt's completed job statistics on the
destination (what `rbdvm migrate` reports; `virsh domjobinfo --completed` for bare virsh);
wall is the command's own time.

| run | rbdvm downtime | rbdvm total | rbdvm wall | virsh downtime | virsh total | virsh wall |
|---|---|---|---|---|---|---|
{rows}
{median}

Target: rbdvm's median downtime within 1.2x (+10 ms) of bare virsh's: {verdict(ok)}. The
migration itself is libvirt's in both cases; `rbdvm migrate`'s wall time adds Pacemaker's
scheduling (the move constraint, migrate_to, migrate_from, the status wait) and the
constraint's removal.

Command: `.venv/bin/python bench/migration.py --runs {args.runs}` (lab up; {machine()})."""
    write_section("migration", body)


if __name__ == "__main__":
    main()
