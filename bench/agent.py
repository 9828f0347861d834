#!/usr/bin/env python3
"""Agent benchmarks on the lab (issue 4): monitor wall time against ocf:heartbeat:VirtualDomain
and the floor (python3 + libvirt state), and start against a bare libvirt create.

Targets: rbdvm monitor <= 1.15x the floor; start <= bare create + 150 ms (Ceph read and the
split-brain guard included). Writes the results into docs/benchmarks.md.
Usage: make bench   (or .venv/bin/python bench/agent.py [--runs 50])
"""

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "lab"))
sys.path.insert(0, str(REPO / "bench"))

from report import machine, run_worker, verdict, write_section  # noqa: E402

from labkit import guest, ops  # noqa: E402
from labkit import layout as L  # noqa: E402

VM = "benchagent"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=50)
    runs = ap.parse_args().runs
    files = L.SHARED / "files"
    files.mkdir(parents=True, exist_ok=True)
    disk, base, xml = files / "bench-boot.raw", files / f"{VM}.base.xml", files / f"{VM}.xml"
    disk.write_bytes(guest.disk_image())
    base.write_text(guest.base_xml(VM, str(L.SHARED / f"{VM}.serial")))
    ops.on("node1", "rbdvm", "install-agent")
    ops.on("node1", "rbdvm", "remove", VM, check=False)
    ops.on("node1", "rbdvm", "create", VM, "--image", str(disk), "--xml", str(base), "--disabled")
    try:
        xml.write_text(ops.on("node1", "rbdvm", "metadata", "get", VM, "xml").stdout)
        r = run_worker("agent_worker.py", VM, xml, runs)
    finally:
        ops.virsh("node1", "destroy", VM, check=False)
        ops.on("node1", "rbdvm", "remove", VM, check=False)
    m, s = r["monitor"], r["start"]
    floor = m["floor (python3 + libvirt state)"]["median"]
    ours = m["rbdvm"]["median"]
    default = m["VirtualDomain (default)"]["median"]
    extra = s["rbdvm start"] - s["bare createXML"]
    lines = [
        "## Agent: monitor and start (issue 4)",
        "",
        f"Command: `make bench` (`bench/agent.py --runs {runs}`, worker `bench/agent_worker.py` on node1, "
        f"one running TCG domain, the four monitors interleaved), {machine()}. "
        "Monitor runs as Pacemaker runs it (a new process).",
        "",
        "| monitor | median | p95 | vs floor |",
        "|---|---|---|---|",
    ] + [f"| {k} | {v['median'] * 1000:.1f} ms | {v['p95'] * 1000:.1f} ms | {v['median'] / floor:.2f}× |"
         for k, v in m.items()] + [
        "",
        f"- rbdvm monitor ≤ 1.15× the floor: {verdict(ours <= 1.15 * floor)} ({ours / floor:.2f}×); "
        f"against VirtualDomain's default: {ours / default:.2f}×.",
        f"- start to running: rbdvm `start` (Ceph read + split-brain guard + create) "
        f"{s['rbdvm start'] * 1000:.0f} ms, bare `createXML` of the same XML {s['bare createXML'] * 1000:.0f} ms: "
        f"+{extra * 1000:.0f} ms (target ≤ +150 ms: {verdict(extra <= 0.150)}).",
    ]
    write_section("agent", "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
