#!/usr/bin/env python3
"""Draining a node of many VMs (issue 33): `rbdvm node drain` (one attribute change, Pacemaker
moving the VMs side by side) against moving the same VMs one by one with `rbdvm migrate`, and
the drain with `--limit` (the cluster's migration-limit).

N VMs (default 10) of the lab's guest, each allowed to migrate live, with priorities 1..N,
run on node1. Each way of emptying node1 is timed from the command's start to its end; the
VMs are brought back to node1 (drain of node2) between runs, untimed. A thread reads
crm_mon every 0.2 s meanwhile: the most VMs seen migrating at once, and the order the VMs
reached node2 (a drain reports when each left: left_after).

Prints a Markdown section and writes it into docs/benchmarks.md.
Usage: .venv/bin/python bench/drain.py [--vms N] [--limit L]   (lab up)
"""

import argparse
import json
import sys
import threading
import time
from pathlib import Path

from lxml import etree

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "lab"))
sys.path.insert(0, str(REPO / "bench"))

from report import machine, write_section  # noqa: E402

from labkit import layout as L  # noqa: E402
from labkit import ops  # noqa: E402
from labkit.procs import wait_for  # noqa: E402
from labkit.testing import force_remove_all, make_vm, rbdvm, rbdvm_json, unique  # noqa: E402

N1, N2 = L.HYPERVISORS


def placed(vms) -> dict:
    """{vm: (node, migrating)} from one crm_mon."""
    root = etree.fromstring(ops.on(N1, "crm_mon", "--output-as=xml").stdout.encode())
    out = {}
    for r in root.iter("resource"):
        if r.get("id") in vms:
            node = r.find("node")
            out[r.get("id")] = (node.get("name") if node is not None else None, r.get("role") == "Migrating")
    return out


class Watch:
    """crm_mon read every 0.2 s in a thread: the most VMs migrating at once, and the read in
    which each VM was first seen running on node2 (`arrived`)."""

    def __init__(self, vms):
        self.vms, self.most, self.stop = set(vms), 0, threading.Event()
        self.arrived: dict = {}
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        reads = 0
        while not self.stop.is_set():
            try:
                now = placed(self.vms)
            except Exception:   # noqa: BLE001 - a crm_mon read that failed: the next one counts
                continue
            reads += 1
            self.most = max(self.most, sum(1 for _, m in now.values() if m))
            for vm, (node, migrating) in now.items():
                if node == N2 and not migrating:
                    self.arrived.setdefault(vm, reads)
            time.sleep(0.2)

    def order(self, priorities: dict) -> str:
        """The priorities in the order the VMs arrived; those seen in the same read joined by =."""
        groups: dict = {}
        for vm, read in self.arrived.items():
            groups.setdefault(read, []).append(priorities[vm])
        return ", ".join("=".join(map(str, sorted(g, reverse=True))) for _, g in sorted(groups.items()))

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def home(vms) -> None:
    """Every VM back on node1, untimed: node2 drained, then taking VMs again."""
    rbdvm("node", "drain", N2)
    if not wait_for(300, lambda: all(n == N1 for n, _ in placed(vms).values()), 1.0):
        raise SystemExit(f"the VMs did not come back to {N1}: {placed(vms)}")
    rbdvm("node", "resume", N2)


def one_by_one(vms) -> dict:
    t0 = time.monotonic()
    with Watch(vms) as w:
        for vm in sorted(vms, key=lambda v: -vms[v]):
            m = rbdvm_json("migrate", vm, N2)
            if m.get("how") != "live":
                raise SystemExit(f"{vm} did not move live: {m}")
    return {"seconds": time.monotonic() - t0, "most": w.most}


def drained(vms, limit=None) -> dict:
    args = ["node", "drain", N1, "--json"] + (["--limit", str(limit)] if limit else [])
    t0 = time.monotonic()
    with Watch(vms) as w:
        r = json.loads(rbdvm(*args).stdout)
    seconds = time.monotonic() - t0
    rbdvm("node", "resume", N1)
    if r["still_there"] or any(v["node"] != N2 for v in r["vms"]):
        raise SystemExit(f"the drain did not move every VM: {r}")
    return {"seconds": seconds, "most": w.most, "order": w.order(vms), "settled": r["settled"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vms", type=int, default=10)
    ap.add_argument("--limit", type=int, default=2)
    args = ap.parse_args()
    vms = {unique("dr"): i + 1 for i in range(args.vms)}     # name -> priority
    try:
        for vm, prio in vms.items():
            make_vm(vm, live_migration=True, priority=prio, pacemaker_params="migration_transport=tcp")
        rbdvm("node", "drain", N2)          # every VM starts on node1
        for vm in vms:
            rbdvm("enable", vm)
        rbdvm("node", "resume", N2)
        serial = one_by_one(vms)
        home(vms)
        free = drained(vms)
        home(vms)
        limited = drained(vms, args.limit)
    finally:
        rbdvm("node", "resume", N2, check=False)
        rbdvm("node", "resume", N1, check=False)
        ops.on(N1, "crm_attribute", "--type", "crm_config", "--name", "migration-limit", "--delete", check=False)
        force_remove_all(vms)
    body = f"""## Draining a node of {args.vms} VMs (issue 33)

{args.vms} VMs of the lab's guest (64 MiB, TCG), each allowed to migrate live, priorities 1 to
{args.vms}, run on node1; node1 is emptied three ways, the VMs brought back between runs
(untimed). "Most at once": the most VMs crm_mon showed migrating at the same moment (read
every 0.2 s). "Order": the VMs' priorities in the order crm_mon showed them running on
node2 (read every 0.2 s; VMs first seen in the same read joined by =).

| how | time | most at once | order (priorities) |
|---|---|---|---|
| `rbdvm migrate` one by one, highest priority first | {serial['seconds']:.1f} s | {serial['most']} | - |
| `rbdvm node drain` | {free['seconds']:.1f} s | {free['most']} | {free['order']} |
| `rbdvm node drain --limit {args.limit}` | {limited['seconds']:.1f} s | {limited['most']} | {limited['order']} |

Command: `.venv/bin/python bench/drain.py --vms {args.vms} --limit {args.limit}` (lab up; {machine()})."""
    write_section("drain", body)


if __name__ == "__main__":
    main()
