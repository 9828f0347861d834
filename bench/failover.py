#!/usr/bin/env python3
"""Failover: a node crashes -> the VM is READY on the survivor, broken down into detection,
fencing, and guard + start (issue 12).

Each run: a VM (TCG guest, one RBD disk, live migration allowed) runs on one node under
Pacemaker; that node is crashed the way the lab's fence agent powers a node off; the bench
polls from the survivor every 50 ms:
- detection: the survivor's crm_mon no longer shows the node online;
- fencing: the fencer's history shows the node fenced (successfully);
- guard + start: the guest prints READY on its serial console again (what the operator
  waits for), i.e. Pacemaker's start on the survivor, the split-brain guard, QEMU and the
  guest's boot.
The crashed node is booted again before the next run.

With `--fencing storage` the nodes are fenced by fence_rbdvm instead of the lab's power
fence (fencing levels name only it, the self-check runs on both nodes; issue 12 part 2): the
crashed node is cut off Ceph, and unfenced when it boots again.

Target: guard + start <= 3 s after the fence is confirmed (the whole failover <= the lab's
fence time + 3 s). Prints a Markdown section and writes it into docs/benchmarks.md.
Usage: .venv/bin/python bench/failover.py [--runs N] [--fencing power|storage]   (lab up)
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "lab"))
sys.path.insert(0, str(REPO / "bench"))

from report import machine, verdict, write_section  # noqa: E402

from labkit import layout as L  # noqa: E402
from labkit import node, ops, storagefence  # noqa: E402
from labkit.procs import run, wait_for  # noqa: E402
from labkit.testing import force_remove, make_vm, unique  # noqa: E402

LAB = str(REPO / "tests" / "lab" / "lab")
N1, N2 = L.HYPERVISORS
TARGET = 3.0


def where(vm):
    return ops.resource_node(N1, vm) or ops.resource_node(N2, vm)


def online(observer: str, n: str) -> bool:
    x = node.cluster_status(observer)
    if x is None:
        return True
    found = next((e for e in x.iter("node") if e.get("name") == n), None)
    return found is not None and found.get("online") == "true"


def one_run(vm: str, storage: bool) -> dict:
    x = where(vm)
    y = N2 if x == N1 else N1
    fences = len(ops.fence_events(y, x))
    boots = ops.boots(vm)
    t0 = time.monotonic()
    run([LAB, "crash", x])
    marks = {}
    while time.monotonic() - t0 < 180 and "ready" not in marks:
        now = time.monotonic() - t0
        if "detected" not in marks and not online(y, x):
            marks["detected"] = now
        if "fenced" not in marks and len(ops.fence_events(y, x)) > fences:
            marks["fenced"] = now
        if ops.boots(vm) > boots:
            marks["ready"] = now
        time.sleep(0.05)
    if "ready" not in marks:
        raise SystemExit(f"{vm} never came back after the crash of {x}: {marks}")
    marks.setdefault("detected", marks.get("fenced", marks["ready"]))
    marks.setdefault("fenced", marks["detected"])
    run([LAB, "boot", x], timeout=180)
    wait_for(60, lambda: node.online_nodes(y) == sorted(L.NODES))
    if storage:
        if not wait_for(60, lambda: storagefence.fenced_hosts() == []):
            raise SystemExit(f"{x} was not unfenced when it rejoined")
        node.start_fence_check(x)
    return {"node": x, "detection": marks["detected"], "fencing": marks["fenced"] - marks["detected"],
            "guard_start": marks["ready"] - marks["fenced"], "total": marks["ready"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--fencing", choices=("power", "storage"), default="power")
    args = ap.parse_args()
    storage = args.fencing == "storage"
    if storage:
        storagefence.enable()
    vm = unique("fo")
    make_vm(vm, live_migration=True)
    ops.on(N1, "pcs", "resource", "create", vm, "ocf:rbdvm:VirtualDomain", f"vm={vm}", "migration_transport=tcp",
           "meta", "allow-migrate=true", "op", "monitor", "interval=5s", "timeout=30s", "start", "timeout=90s")
    try:
        wait_for(60, lambda: where(vm) is not None)
        ops.wait_serial(vm, "READY")
        results = [one_run(vm, storage) for _ in range(args.runs)]
    finally:
        live = N1 if node.REG.alive(f"pacemakerd-{N1}") else N2
        ops.on(live, "crm_resource", "--meta", "-r", vm, "-p", "target-role", "-v", "Stopped", check=False)
        wait_for(60, lambda: where(vm) is None)
        ops.on(live, "pcs", "resource", "delete", vm, "--force", check=False)
        force_remove(vm)
        if storage:
            storagefence.disable()

    def med(key):
        return statistics.median(r[key] for r in results)

    rows = "\n".join(f"| {i + 1} ({r['node']}) | {r['detection']:.1f} s | {r['fencing']:.1f} s | "
                     f"{r['guard_start']:.1f} s | {r['total']:.1f} s |" for i, r in enumerate(results))
    worst = max(r["guard_start"] for r in results)
    how = "fenced by fence_rbdvm (its address blocklisted in Ceph)" if storage else "fenced by the lab's power fence"
    title = "with storage fencing (fence_rbdvm)" if storage else "(issue 12)"
    flag = " --fencing storage" if storage else ""
    body = f"""## Failover: node crash to guest READY on the survivor {title}

Command: `.venv/bin/python bench/failover.py --runs {args.runs}{flag}` (lab up; one TCG guest
under Pacemaker; its node crashed as the lab's fence agent powers a node off, then {how};
times seen from the survivor every 50 ms), {machine()}.

| run | detection | fencing | guard + start | crash → READY |
|---|---|---|---|---|
{rows}
| median | {med('detection'):.1f} s | {med('fencing'):.1f} s | {med('guard_start'):.1f} s | {med('total'):.1f} s |

- guard + start ≤ {TARGET:.0f} s after the fence is confirmed: {verdict(worst <= TARGET)} (worst {worst:.1f} s).
- detection is corosync's token timeout and consensus (SEAPATH's token, 1000 ms); fencing
  is the fence device (no delay: three votes, only a majority fences); guard + start is
  Pacemaker scheduling the start, the OSDs of the dead node marked down (Ceph-aware
  failover), the guard releasing the fenced node's disk client (blocklist), QEMU, and the
  guest's boot to READY."""
    write_section("failover-storage" if storage else "failover", body)


if __name__ == "__main__":
    main()
