#!/usr/bin/env python3
"""Storage benchmarks on the lab (issue 3): clone and import, against plain RBD and qemu-img
in the same run. Runs bench/storage_worker.py on node1 as client.rbdvm and writes the
results into docs/benchmarks.md.

Targets: COW clone flat (±10 %) from 256 MiB to 2 GiB written, within 1.3x of a bare
create_snap+protect_snap+clone, <= 10 % of a deep copy at 1 GiB; import throughput >=
`qemu-img convert -W`'s, stored bytes ~ data bytes.
Usage: make bench   (or .venv/bin/python bench/storage.py)
"""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "lab"))
sys.path.insert(0, str(REPO / "bench"))

from report import machine, run_worker, verdict, write_section  # noqa: E402

from labkit import layout as L  # noqa: E402

MiB = 1 << 20


def main() -> int:
    L.SHARED.mkdir(parents=True, exist_ok=True)
    r = run_worker("storage_worker.py", L.SHARED)
    c, i = r["clone"], r["import"]
    cow = {int(k): v for k, v in c["cow"].items()}
    bare = {int(k): v for k, v in c["bare"].items()}
    mean = sum(cow.values()) / len(cow)
    spread = max(abs(v - mean) / mean for v in cow.values())
    ratio = {k: cow[k] / bare[k] for k in cow}
    mbps = lambda t: i["data_bytes"] / MiB / t  # noqa: E731
    lines = [
        "## Storage: clone and import (issue 3)",
        "",
        f"Command: `make bench` (`bench/storage.py`, worker `bench/storage_worker.py` on node1 as "
        f"client.rbdvm, in-process times, median of 5 for clones and of 3 for imports), "
        f"{machine()}, memstore OSD.",
        "",
        "| clone of a VM (written data) | rbdvm COW clone | bare create_snap+protect+clone | ratio |",
        "|---|---|---|---|",
    ] + [f"| {k} MiB | {cow[k] * 1000:.0f} ms | {bare[k] * 1000:.0f} ms | {ratio[k]:.2f}× |" for k in sorted(cow)] + [
        "",
        f"- COW flatness 256 MiB → 2 GiB: ±{spread * 100:.0f} % around {mean * 1000:.0f} ms "
        f"(target ±10 %: {verdict(spread <= 0.10)}); ratio to bare ≤ 1.3×: {verdict(max(ratio.values()) <= 1.3)} "
        f"(worst {max(ratio.values()):.2f}×).",
        f"- At 1 GiB: rbdvm `clone --full` {c['full_1g']:.2f} s (stores {c['full_1g_used'] / MiB:.0f} MiB), "
        f"plain RBD deep copy {c['deep_copy_1g']:.2f} s; COW clone = "
        f"{cow[1024] / c['deep_copy_1g'] * 100:.1f} % of the deep copy (target ≤ 10 %: "
        f"{verdict(cow[1024] / c['deep_copy_1g'] <= 0.10)}).",
        "",
        "| import of a 1 GiB qcow2 with 256 MiB of data | time | throughput (data) | stored |",
        "|---|---|---|---|",
        f"| `rbdvm create` end to end (lease, image, group, import, metadata) | {i['rbdvm_create']:.3f} s | "
        f"{mbps(i['rbdvm_create']):.0f} MiB/s | {i['stored_rbdvm'] / MiB:.0f} MiB |",
        f"| rbdvm's import step alone (`diskimage.import_into`) | {i['rbdvm_import_step']:.3f} s | "
        f"{mbps(i['rbdvm_import_step']):.0f} MiB/s | |",
        f"| `qemu-img convert -n -W` into a new RBD image | {i['qemu_img_convert_W']:.3f} s | "
        f"{mbps(i['qemu_img_convert_W']):.0f} MiB/s | {i['stored_qemu_img'] / MiB:.0f} MiB |",
        "",
        f"- Import throughput ≥ qemu-img -W's (within 5 % run-to-run noise): import step "
        f"{verdict(i['rbdvm_import_step'] <= i['qemu_img_convert_W'] * 1.05)}, "
        f"whole create {verdict(i['rbdvm_create'] <= i['qemu_img_convert_W'] * 1.05)} (its fixed cost is the "
        "lease, image, group and metadata round trips); stored bytes = data bytes: "
        f"{verdict(i['stored_rbdvm'] <= i['data_bytes'] * 1.05)}.",
    ]
    write_section("storage", "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
