"""Runs on a lab node (venv python, client.rbdvm): every CIB-writing rbdvm command on two real
VMs while the CIB holds 10, 100, then 1,000 other VMs' primitives and constraints as rbdvm
writes them (target-role Stopped, in the pool's namespace `cibscale`, never created in Ceph:
the commands read the CIB, not the others' disks). Each command is timed as typed, with the
number of processes it starts (Python's audit hook on subprocess.Popen: each one is a CIB or
status round trip). Prints one JSON document. Called by bench/cib_scale.py; argv: boot disk
file, a directory with a base XML per VM (NAME.xml: each its own serial file)."""

import json
import os
import statistics
import subprocess
import sys
import time

from lxml import etree
from report import COUNTING_CLI

from rbdvm.helpers.core.settings import ceph_target_from_env
from rbdvm.helpers.core.vmschema import VmConfig
from rbdvm.helpers.pacemaker import cib

STEPS = tuple(int(n) for n in os.environ.get("BENCH_STEPS", "10,100,1000").split(","))
IMAGE, XMLS = sys.argv[1], sys.argv[2]
A, B, C = "csa", "csb", "csc"            # the VMs the commands act on (real, in the default namespace)
PATTERN = "^cf[0-9]{4}$"                 # the others' names
# (label, argv): the order leaves the cluster as it found it
COMMANDS = (
    ("enable", ["enable", A]),
    ("enable (second VM)", ["enable", B]),
    ("set --priority", ["set", A, "--priority", "5"]),
    ("pin (moves it live)", ["pin", A, "node2"]),
    ("prefer (moves it back)", ["prefer", A, "node1"]),
    ("unpin", ["unpin", A]),
    ("colocate", ["colocate", A, B]),
    ("colocate --remove", ["colocate", A, B, "--remove"]),
    ("migrate", ["migrate", A, "node2"]),
    ("node drain", ["node", "drain", "node2"]),
    ("node resume", ["node", "resume", "node2"]),
    ("disable", ["disable", B]),
    ("remove --force (enabled)", ["remove", "--force", A]),
)


def cli(*args, check=True):
    res = subprocess.run([sys.executable, "-c", COUNTING_CLI, *args], capture_output=True, text=True)
    if check and res.returncode != 0:
        raise SystemExit(f"rbdvm {' '.join(args)} failed ({res.returncode}): {res.stderr}")
    return res


def xml(vm: str) -> str:
    return os.path.join(XMLS, f"{vm}.xml")


def name(i: int) -> str:
    return f"cf{i:04d}"


def add_others(target, vms) -> None:
    """The VMs' primitives and constraints as rbdvm writes them, target-role Stopped, in one
    CIB update."""
    conf = etree.Element("configuration")
    rsc, cons = etree.SubElement(conf, "resources"), etree.SubElement(conf, "constraints")
    for vm in vms:
        rsc.append(cib.primitive(vm, target, VmConfig(), start=False))
        cons.extend(cib.constraints(vm, VmConfig()))
    subprocess.run(["cibadmin", "--modify", "--allow-create", "--scope", "configuration", "--xml-pipe"],
                   input=etree.tostring(conf), check=True)


def no_probes() -> None:
    """One constraint keeping Pacemaker from probing the others on any node (resource-discovery
    never): 1,000 agents probed on three nodes took the listing benchmark over 9 minutes.
    They stay Stopped either way; the CIB the commands read and write is as large."""
    loc = etree.Element("rsc_location", id="cibscale-no-probes", **{"rsc-pattern": PATTERN,
                                                                     "resource-discovery": "never"})
    rule = etree.SubElement(loc, "rule", id="cibscale-no-probes-rule", score="-INFINITY")
    etree.SubElement(rule, "expression", id="cibscale-no-probes-expr", attribute="#uname", operation="defined")
    subprocess.run(["cibadmin", "--create", "--scope", "constraints", "--xml-text", etree.tostring(loc)],
                   check=True)


def settle() -> float:
    t0 = time.perf_counter()
    res = subprocess.run(["crm_resource", "--wait", "--timeout", "600s"], capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"settle: crm_resource --wait failed ({res.returncode}): {res.stderr.strip()}")
    return time.perf_counter() - t0


def measure() -> list:
    cli("create", "--disabled", C, "--image", IMAGE, "--xml", xml(C))
    rows = []
    for label, argv in COMMANDS + (("remove (disabled)", ["remove", C]),):
        t0 = time.perf_counter()
        res = cli(*argv)
        rows.append({"command": label, "seconds": time.perf_counter() - t0,
                     "subprocesses": int(res.stderr.rsplit("SUBPROCESSES", 1)[1].split()[0])})
    # A was removed: made again for the next step, as it was
    cli("create", "--disabled", A, "--image", IMAGE, "--xml", xml(A), "--live-migration",
        "--pacemaker-params", "migration_transport=tcp")
    return rows


def main() -> None:
    target = ceph_target_from_env(namespace="cibscale")
    out = {"steps": []}
    for vm, extra in ((A, ["--live-migration", "--pacemaker-params", "migration_transport=tcp"]), (B, [])):
        cli("create", "--disabled", vm, "--image", IMAGE, "--xml", xml(vm), *extra)
    no_probes()
    made = 0
    try:
        for count in STEPS:
            add_others(target, [name(i) for i in range(made, count)])
            made = count
            settled = settle()
            t0 = time.perf_counter()
            subprocess.run(["cibadmin", "--query"], capture_output=True, check=True)
            query = time.perf_counter() - t0
            cib_bytes = len(subprocess.run(["cibadmin", "--query"], capture_output=True, check=True).stdout)
            out["steps"].append({"vms": count, "settle": settled, "cib_bytes": cib_bytes, "query": query,
                                 "commands": measure()})
    finally:
        subprocess.run(["cibadmin", "--delete", "--delete-all", "--force", "--xpath",
                        "//primitive[starts-with(@id, 'cf')][@type='VirtualDomain'] | "
                        "//rsc_location[starts-with(@id, 'rbdvm-cf')] | //rsc_location[@id='cibscale-no-probes']"],
                       check=False)
        for vm in (A, B, C):
            cli("remove", "--force", vm, check=False)
    for step in out["steps"]:
        step["median"] = statistics.median(r["seconds"] for r in step["commands"])
    print(json.dumps(out))


if __name__ == "__main__":
    main()
