"""Runs on a lab node (venv python, client.rbdvm): `rbdvm list` with 10, 100 and 1,000 VMs,
each enabled as a Pacemaker resource with target-role Stopped. Prints one JSON document.
Called by bench/listing.py; argv: boot disk file, base XML file."""

import json
import os
import statistics
import subprocess
import sys
import time

from lxml import etree
from report import COUNTING_CLI

from rbdvm.helpers.ceph import vmstore
from rbdvm.helpers.ceph.session import Session
from rbdvm.helpers.core.settings import ceph_target_from_env
from rbdvm.helpers.core.vmschema import VmConfig
from rbdvm.helpers.ops import creation, inventory, lifecycle, removal
from rbdvm.helpers.ops.env import Env
from rbdvm.helpers.pacemaker import cib

NAMESPACE = "bench1k"        # its own namespace: the pool's other VMs are not listed
STEPS = tuple(int(n) for n in os.environ.get("BENCH_STEPS", "10,100,1000").split(","))
REPEAT = 5
IMAGE, BASE_XML = sys.argv[1], sys.argv[2]


def name(i: int) -> str:
    return f"b{i:04d}"


def add_resources(target, vms) -> None:
    """The VMs' primitives and constraints, target-role Stopped, in one CIB update."""
    conf = etree.Element("configuration")
    rsc, cons = etree.SubElement(conf, "resources"), etree.SubElement(conf, "constraints")
    for vm in vms:
        rsc.append(cib.primitive(vm, target, VmConfig(), start=False))
        for c in cib.constraints(vm, VmConfig()):
            cons.append(c)
    subprocess.run(["cibadmin", "--modify", "--allow-create", "--scope", "configuration",
                    "--xml-pipe"], input=etree.tostring(conf), check=True)


def settle() -> float:
    """Seconds until Pacemaker has nothing left to do; negative when crm_resource --wait gave
    up (seen with 1,000 resources on three nodes: "Could not obtain the current CIB:
    Communication error on send" after 20 min, an IPC limit issue 33 is about)."""
    t0 = time.perf_counter()
    res = subprocess.run(["crm_resource", "--wait", "--timeout", "600s"], capture_output=True, text=True)
    if res.returncode != 0:
        print(f"settle: crm_resource --wait failed ({res.returncode}): {res.stderr.strip()}", file=sys.stderr)
        return -(time.perf_counter() - t0)
    return time.perf_counter() - t0


def measure(env, count: int) -> dict:
    argv = [sys.executable, "-c", COUNTING_CLI, "list", "--json", "--namespace", NAMESPACE]
    walls, procs = [], set()
    for _ in range(REPEAT):
        t0 = time.perf_counter()
        res = subprocess.run(argv, capture_output=True, text=True, check=True)
        walls.append(time.perf_counter() - t0)
        procs.add(int(res.stderr.rsplit("SUBPROCESSES", 1)[1].split()[0]))
        rows = json.loads(res.stdout)
        assert len(rows) == count and all(r["status"] == "Stopped" for r in rows), rows[:3]
    t0 = time.perf_counter()
    inventory.list_vms(env)
    ceph = time.perf_counter() - t0
    t0 = time.perf_counter()
    env.cluster.cluster_status()
    crm = time.perf_counter() - t0
    t0 = time.perf_counter()
    lifecycle.list_status(env)
    whole = time.perf_counter() - t0
    return {"vms": count, "wall": statistics.median(walls), "walls": walls, "subprocesses": sorted(procs),
            "ceph_listing": ceph, "crm_mon": crm, "in_process": whole, **measure_exporter(env, count)}


SPAWNED = [0]
sys.addaudithook(lambda event, args: SPAWNED.__setitem__(0, SPAWNED[0] + (event == "subprocess.Popen")))


def measure_exporter(env, count: int) -> dict:
    """Issue 32: one collection of `rbdvm exporter` (in process: its time and the processes it
    starts), then the scrape a Prometheus makes of a running exporter (median of 20)."""
    import urllib.request

    from rbdvm.helpers.ops import metrics

    target = ceph_target_from_env(namespace=NAMESPACE)
    collections, procs = [], set()
    for _ in range(REPEAT):
        before, t0 = SPAWNED[0], time.perf_counter()
        text = metrics.collect(Env(), target, budget=120)
        collections.append(time.perf_counter() - t0)
        procs.add(SPAWNED[0] - before)
        assert all(f'rbdvm_up{{source="{s}"}} 1' in text for s in metrics.SOURCES), text[:2000]
        assert text.count("rbdvm_vm_trusted{") == count
    port = 9776
    server = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "rbdvm"), "exporter", "--listen",
                               f"127.0.0.1:{port}", "--interval", "30", "--namespace", NAMESPACE],
                              stderr=subprocess.DEVNULL)
    try:
        scrapes = []
        for i in range(21):
            t0 = time.perf_counter()
            for _ in range(600 if i == 0 else 1):      # the first waits for the first collection
                try:
                    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=120).read()
                    break
                except OSError:
                    time.sleep(0.1)
            if i:
                scrapes.append(time.perf_counter() - t0)
        assert body.count(b"rbdvm_vm_trusted{") == count
    finally:
        server.terminate()
        server.wait()
    return {"collect": statistics.median(collections), "collect_subprocesses": sorted(procs),
            "scrape": statistics.median(scrapes), "scrape_bytes": len(body)}


def main() -> None:
    target = ceph_target_from_env(namespace=NAMESPACE)
    xml = open(BASE_XML).read()
    out = {"steps": [], "made": {}}
    with Session(target) as s:
        env = Env(session=s)
        t0 = time.perf_counter()
        if vmstore.record(s, name(0)).state != "complete":    # a run that was interrupted
            creation.create(env, name(0), IMAGE, xml, force=True)
        out["made"]["create"] = time.perf_counter() - t0
        made, t0 = 1, time.perf_counter()
        add_resources(target, [name(0)])
        for count in STEPS:
            new = [name(i) for i in range(made, count)]
            t1 = time.perf_counter()
            for vm in new:
                if vmstore.record(s, vm).state != "complete":
                    creation.create(env, vm, IMAGE, xml, force=True)
            out["made"][f"create_{count}"] = (time.perf_counter() - t1) / max(len(new), 1)
            add_resources(target, new)
            made = count
            out["made"][f"settle_{count}"] = settle()
            out["steps"].append(measure(env, count))
        # cleanup: every resource in one delete, then the VMs
        t0 = time.perf_counter()
        subprocess.run(["cibadmin", "--delete", "--delete-all", "--force", "--xpath",
                        "//primitive[starts-with(@id, 'b')][@type='VirtualDomain'] | "
                        "//rsc_location[starts-with(@id, 'rbdvm-b')]"], check=True)
        subprocess.run(["crm_resource", "--cleanup"], capture_output=True)
        settle()
        t1 = time.perf_counter()
        for i in reversed(range(made)):
            removal.remove(env, name(i))
        out["made"]["remove_each"] = (time.perf_counter() - t1) / made
    print(json.dumps(out))


if __name__ == "__main__":
    main()
