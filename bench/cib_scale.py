#!/usr/bin/env python3
"""Every CIB-writing command with 10, 100 and 1,000 VMs in the CIB (issue 33): enable, set,
pin, prefer, unpin, colocate, migrate, node drain and resume, disable and remove, each on a
real VM of the lab while the CIB holds the others' primitives and constraints as rbdvm
writes them. Timed as typed, with the processes each starts (its CIB and status round
trips). Runs bench/cib_scale_worker.py on node1 as client.rbdvm and writes the results into
docs/benchmarks.md.

Targets: <= 2 s per command at 1,000 VMs, beyond what the cluster itself takes to act (a
start, a live migration); round trips that do not grow with the VMs.
Usage: .venv/bin/python bench/cib_scale.py   (lab up; BENCH_STEPS=10,100 for a shorter run)
"""

import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "lab"))
sys.path.insert(0, str(REPO / "bench"))

from report import machine, run_worker, verdict, write_section  # noqa: E402

from labkit import guest  # noqa: E402
from labkit import layout as L  # noqa: E402

# a command that waits on the cluster to act (a start, a stop, a live migration) is judged
# on what it adds beyond that
ACTS = ("enable", "enable (second VM)", "pin (moves it live)", "prefer (moves it back)", "migrate", "node drain",
        "disable", "remove --force (enabled)")


def main() -> int:
    L.SHARED.mkdir(parents=True, exist_ok=True)
    disk, xmls = L.SHARED / "bench-cib.raw", L.SHARED / "bench-cib"
    disk.write_bytes(guest.disk_image())
    xmls.mkdir(exist_ok=True)
    for vm in ("csa", "csb", "csc"):
        (xmls / f"{vm}.xml").write_text(guest.base_xml("ignored", str(L.SHARED / f"bench-cib-{vm}.serial")))
    steps_env = os.environ.get("BENCH_STEPS", "10,100,1000")
    t0 = time.perf_counter()
    r = run_worker("cib_scale_worker.py", disk, xmls, timeout=7200, env=[f"BENCH_STEPS={steps_env}"])
    total = time.perf_counter() - t0
    steps = r["steps"]
    labels = [c["command"] for c in steps[0]["commands"]]
    table = {s["vms"]: {c["command"]: c for c in s["commands"]} for s in steps}
    sizes = [s["vms"] for s in steps]
    head = "| command | " + " | ".join(f"{n} VMs" for n in sizes) + " | processes |"
    rows = []
    for label in labels:
        procs = sorted({table[n][label]["subprocesses"] for n in sizes})
        rows.append(f"| `{label}` | " + " | ".join(f"{table[n][label]['seconds']:.2f} s" for n in sizes)
                    + f" | {', '.join(map(str, procs))} |")
    last = table[sizes[-1]]
    quick = [lbl for lbl in labels if lbl not in ACTS]
    slow_quick = [lbl for lbl in quick if last[lbl]["seconds"] > 2]
    # a drain reads the cluster every DRAIN_POLL while its VMs move: its count follows time
    flat = all(len({table[n][lbl]["subprocesses"] for n in sizes}) == 1 for lbl in labels if lbl != "node drain")
    lines = [
        f"## CIB-writing commands with {sizes[-1]:,} VMs in the CIB (issue 33)",
        "",
        f"Command: `.venv/bin/python bench/cib_scale.py` (BENCH_STEPS={steps_env}; lab up; worker "
        f"`bench/cib_scale_worker.py` on node1 as client.rbdvm; {machine()}; whole run {total / 60:.1f} min). "
        "Each command acts on real VMs of the lab's guest while the CIB also holds the primitives and "
        "constraints of the other VMs, as rbdvm writes them, target-role Stopped (kept from being probed: "
        "resource-discovery never). Wall time of the command as typed; processes: what it starts (each a CIB "
        "or status round trip), at every size.",
        "",
        head,
        "|---|" + "---|" * len(sizes) + "---|",
        *rows,
        "",
        "| VMs in the CIB | CIB size | `cibadmin --query` | settle after adding them |",
        "|---|---|---|---|",
        *[f"| {s['vms']} | {s['cib_bytes'] / 1024:.0f} KiB | {s['query']:.2f} s | {s['settle']:.1f} s |"
          for s in steps],
        "",
        f"- Commands that do not wait on the cluster to act, at {sizes[-1]:,} VMs: ≤ 2 s each: "
        f"{verdict(not slow_quick)}" + (f" ({', '.join(slow_quick)} over)" if slow_quick else "") + ".",
        f"- Processes per command the same at every size: {verdict(flat)} (but `node drain`, which reads "
        "where its VMs are every second while they move).",
        "- Every command that changes the cluster then waits for it to settle (`crm_resource --wait`, which "
        "looks again every 2 s): that is the ~2.4 s floor of `unpin`, `colocate` or `node resume` at any size.",
    ]
    write_section("cib-scale", "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
