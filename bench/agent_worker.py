"""Runs on a lab node: times the agent's monitor and start against ocf:heartbeat:VirtualDomain
and bare libvirt calls, interleaved in one run. Prints one JSON document (bench/agent.py)."""

import json
import os
import statistics
import subprocess
import sys
import time

VM, XML_FILE, RUNS = sys.argv[1], sys.argv[2], int(sys.argv[3])
URI = "qemu:///system"
OURS = "/usr/lib/ocf/resource.d/rbdvm/VirtualDomain"
THEIRS = "/usr/lib/ocf/resource.d/heartbeat/VirtualDomain"
BASE = {"OCF_ROOT": "/usr/lib/ocf", "OCF_RESOURCE_INSTANCE": VM, "PATH": os.environ["PATH"],
        "OCF_RESKEY_CRM_meta_interval": "10000", "OCF_RESKEY_CRM_meta_timeout": "30000"}
FLOOR = ["/usr/bin/python3", "-c",
         f"import libvirt; libvirt.open({URI!r}).lookupByName({VM!r}).state()"]
BARE_CREATE = ["/usr/bin/python3", "-c",
               f"import libvirt; libvirt.open({URI!r}).createXML(open({XML_FILE!r}).read(), 0)"]
CASES = {
    "rbdvm": ([OURS, "monitor"], {"OCF_RESKEY_vm": VM}),
    "VirtualDomain (default)": ([THEIRS, "monitor"], {"OCF_RESKEY_config": XML_FILE}),
    "VirtualDomain (utilization autoset off)": ([THEIRS, "monitor"], {
        "OCF_RESKEY_config": XML_FILE, "OCF_RESKEY_autoset_utilization_cpu": "false",
        "OCF_RESKEY_autoset_utilization_hv_memory": "false",
        "OCF_RESKEY_autoset_utilization_host_memory": "false"}),
    "floor (python3 + libvirt state)": (FLOOR, {}),
}


def timed(argv, env, expect=None):
    t0 = time.perf_counter()
    res = subprocess.run(argv, env={**BASE, **env}, capture_output=True)
    took = time.perf_counter() - t0
    if expect is not None and res.returncode != expect:
        raise SystemExit(f"{argv} returned {res.returncode}: {res.stderr.decode()}")
    return took


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def destroy():
    subprocess.run(["virsh", "-q", "-c", URI, "destroy", VM], capture_output=True)
    time.sleep(0.3)


def main():
    destroy()
    timed([OURS, "start"], {"OCF_RESKEY_vm": VM}, expect=0)
    for argv, env in CASES.values():   # warm caches
        timed(argv, env)
    samples = {k: [] for k in CASES}
    for _ in range(RUNS):
        for name, (argv, env) in CASES.items():
            samples[name].append(timed(argv, env, expect=0))
    monitor = {k: {"median": statistics.median(v), "p95": pct(v, 0.95)} for k, v in samples.items()}
    starts = {"rbdvm start": [], "bare createXML": []}
    # no OCF_RESOURCE_INSTANCE: no cluster resource, so no utilization update after the start
    alone = {"OCF_RESOURCE_INSTANCE": "", "OCF_RESKEY_vm": VM}
    for _ in range(5):
        destroy()
        starts["rbdvm start"].append(timed([OURS, "start"], alone, expect=0))
        destroy()
        starts["bare createXML"].append(timed(BARE_CREATE, {}, expect=0))
    destroy()
    print(json.dumps({"monitor": monitor, "start": {k: statistics.median(v) for k, v in starts.items()},
                      "runs": RUNS}))


if __name__ == "__main__":
    main()
