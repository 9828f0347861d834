#!/usr/bin/env python3
"""Lab budgets: `tests/lab/lab up` wall time (fresh and over stale state) and idle memory.

Budgets (issue 2; issue 30 for the hyperconverged shape): up <= 30 s once packages are
installed; idle RSS of every lab process <= 1.5 GiB. Prints a Markdown section and writes it into docs/benchmarks.md.
Usage: make bench   (or .venv/bin/python bench/lab_bringup.py [--runs N])
"""

import argparse
import collections
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "lab"))
sys.path.insert(0, str(REPO / "bench"))

from report import write_section  # noqa: E402

from labkit import layout as L  # noqa: E402
from labkit.procs import comm, kill_pids, pids_in_netns, rss_kib, wait_for  # noqa: E402

LAB = str(REPO / "tests" / "lab" / "lab")


def timed(*args) -> float:
    t0 = time.monotonic()
    subprocess.run([LAB, *args], check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - t0


def memory():
    by = collections.defaultdict(lambda: [0, 0])
    for pid in pids_in_netns(L.ALL_NETNS):
        name = comm(pid)
        name = "pacemaker-*" if name.startswith("pacemaker") else name
        by[name][0] += 1
        by[name][1] += rss_kib(pid)
    return sorted(by.items(), key=lambda kv: -kv[1][1])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    runs = ap.parse_args().runs
    fresh, stale, downs = [], [], []
    for _ in range(runs):
        downs.append(timed("down"))
        fresh.append(timed("up"))
        kill_pids(pids_in_netns(L.ALL_NETNS))       # the whole lab loses power
        wait_for(10, lambda: not pids_in_netns(L.ALL_NETNS))
        stale.append(timed("up"))
    time.sleep(5)                                    # let the cluster settle before measuring
    mem = memory()
    total_mib = sum(r for _, (_, r) in mem) / 1024
    med = statistics.median
    lines = [
        "## Lab bring-up and idle memory",
        "",
        f"Command: `make bench` (`bench/lab_bringup.py --runs {runs}`), {time.strftime('%Y-%m-%d')}, "
        f"{platform.node()}: {os.cpu_count()} cores, Debian {Path('/etc/debian_version').read_text().strip()}, "
        f"kernel {platform.release()}.",
        "",
        "| measure | median | all runs | budget |",
        "|---|---|---|---|",
        f"| `lab up`, fresh (after `lab down`) | {med(fresh):.2f} s | "
        f"{', '.join(f'{x:.2f}' for x in fresh)} | ≤ 30 s |",
        f"| `lab up` over stale state (all lab processes SIGKILLed) | {med(stale):.2f} s | "
        f"{', '.join(f'{x:.2f}' for x in stale)} | ≤ 30 s |",
        f"| `lab down` | {med(downs[1:] or downs):.2f} s | {', '.join(f'{x:.2f}' for x in downs)} | — |",
        f"| idle RSS, all lab processes | {total_mib:.0f} MiB | — | ≤ 1536 MiB |",
        "",
        "Idle RSS by command: " + ", ".join(f"{n} ×{c} {r / 1024:.0f} MiB" for n, (c, r) in mem) + ".",
    ]
    write_section("lab_bringup", "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
