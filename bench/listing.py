#!/usr/bin/env python3
"""`rbdvm list` with 1,000 VMs (issue 5): tiny VMs in their own RBD namespace, each
a Pacemaker resource with target-role Stopped; `rbdvm list` timed at 10, 100 and 1,000 VMs
with the number of processes it starts. Runs bench/listing_worker.py on node1 as
client.rbdvm and writes the results into docs/benchmarks.md.

Targets: <= 2 s at 1,000 VMs; the number of subprocesses does not grow with the VMs.
Usage: make bench   (or .venv/bin/python bench/listing.py)
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


def main() -> int:
    L.SHARED.mkdir(parents=True, exist_ok=True)
    disk, xml = L.SHARED / "bench-list.raw", L.SHARED / "bench-list.xml"
    disk.write_bytes(guest.disk_image())
    # a serial file where the lab's device policy allows one (the VMs are never started)
    xml.write_text(guest.base_xml("ignored", str(L.SHARED / "bench-list.serial")))
    t0 = time.perf_counter()
    r = run_worker("listing_worker.py", disk, xml, timeout=7200,
                   env=[f"BENCH_STEPS={os.environ.get('BENCH_STEPS', '10,100,1000')}"])
    total = time.perf_counter() - t0
    steps, made = r["steps"], r["made"]
    last = steps[-1]
    procs = {tuple(s["subprocesses"]) for s in steps}
    lines = [
        "## `rbdvm list` with 1,000 VMs (issue 5)",
        "",
        f"Command: `make bench` (`bench/listing.py`, worker `bench/listing_worker.py` on node1 as "
        f"client.rbdvm; VMs of a 1 MiB disk made with `creation.create` in the RBD namespace bench1k, each a "
        f"primitive with target-role Stopped; `rbdvm list --json -N bench1k` run 5 times per step, "
        f"median wall time of the whole command), {machine()}, "
        f"memstore OSD. Whole benchmark {total / 60:.1f} min.",
        "",
        "| VMs | `rbdvm list` (wall, median) | subprocesses | in-process: Ceph listing | crm_mon | whole list |",
        "|---|---|---|---|---|---|",
    ] + [f"| {s['vms']} | {s['wall']:.2f} s | {', '.join(map(str, s['subprocesses']))} | "
         f"{s['ceph_listing']:.2f} s | {s['crm_mon']:.2f} s | {s['in_process']:.2f} s |" for s in steps] + [
        "",
        f"- {last['vms']} VMs: {last['wall']:.2f} s (target ≤ 2 s: {verdict(last['wall'] <= 2)}); "
        f"subprocesses per list: {', '.join(str(p[0]) for p in sorted(procs))} at every size "
        f"(target flat: {verdict(len(procs) == 1)}).",
        f"- Making them: create {made.get('create_1000', 0) * 1000:.0f} ms per VM; " + _settled(made) +
        f"; remove {made['remove_each'] * 1000:.0f} ms per VM.",
    ]
    write_section("listing", "\n".join(lines))
    write_section("exporter", "\n".join(exporter_lines(steps)))
    return 0


def _settled(made: dict) -> str:
    took = made.get("settle_1000", 0)
    if took < 0:
        return (f"Pacemaker did not settle: `crm_resource --wait` failed after {-took:.0f} s (\"Could not "
                "obtain the current CIB: Communication error on send\": an IPC limit with 1,000 resources on "
                "three nodes; the resources are disabled, the measures above read them all Stopped)")
    return (f"Pacemaker settled (probes of every resource on every node) in {took:.0f} s after the "
            "resources were added in one CIB update")


def exporter_lines(steps) -> list:
    last = steps[-1]
    procs = {tuple(s["collect_subprocesses"]) for s in steps}
    return [
        "## `rbdvm exporter` with 1,000 VMs (issue 32)",
        "",
        "Command: `make bench` (`bench/listing.py`, on the same VMs as the listing above): one collection "
        "(`ops.metrics.collect`: Pacemaker, Ceph, the history; median of 5, in process, with the processes it "
        "starts counted), then a Prometheus-style scrape of a running `rbdvm exporter` (HTTP GET /metrics, "
        "median of 20).",
        "",
        "| VMs | scrape (median) | exposition size | collection (median) | subprocesses per collection |",
        "|---|---|---|---|---|",
    ] + [f"| {s['vms']} | {s['scrape'] * 1000:.1f} ms | {s['scrape_bytes'] / 1024:.0f} KiB | {s['collect']:.2f} s | "
         f"{', '.join(map(str, s['collect_subprocesses']))} |" for s in steps] + [
        "",
        f"- {last['vms']} VMs: a scrape answers in {last['scrape'] * 1000:.1f} ms (target ≤ 200 ms: "
        f"{verdict(last['scrape'] <= 0.2)}): the exporter serves its latest collection, made in the "
        f"background every `--interval` seconds; the collection itself takes {last['collect']:.2f} s.",
        f"- Subprocesses per collection: {', '.join(str(p[0]) for p in sorted(procs))} at every size "
        f"(target flat: {verdict(len(procs) == 1)}).",
    ]


if __name__ == "__main__":
    sys.exit(main())
