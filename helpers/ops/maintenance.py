"""node list / drain / resume: emptying a node of VMs before maintenance, and back.

Drain sets the node attribute every rbdvm VM avoids (pacemaker/nodes.py): Pacemaker moves
each VM away in one decision (live where the VM allows it, stopped and started elsewhere
otherwise; a VM pinned to the node has nowhere to go and stops). Drain then waits for the
cluster to settle and reports each VM that was there. Resume deletes the attribute: the node
takes VMs again and VMs that prefer it come back. Both are one attribute change, so running
one again (after an interruption) converges.

With `maintenance` (a hyperconverged node about to reboot), drain first checks that Ceph is
healthy and that every VM there can run on another node, refusing before anything moves;
once the VMs are away it sets `noout` on the node's CRUSH host, so Ceph does not rebalance
while its OSDs are down. Resume clears that flag first. Every step is idempotent.
"""

import time

from ..ceph import osdflags, trust, vmstore
from ..core import hints, timeouts, vmschema
from ..core.errors import Conflict, RbdvmError, Untrusted
from ..core.faults import checkpoint
from ..core.hints import Hint
from ..pacemaker import cib, crm_mon, nodes
from .env import Env
from .history import recorded

MIGRATION_LIMIT = "migration-limit"
_ON_THE_WAY = ("Starting", "Stopping", "Migrating")


def node_list(env: Env) -> list:
    return nodes.describe(env.cluster.cluster_status(), env.cluster.cib_nodes())


def _vms_report(status, vms) -> list:
    out = []
    for vm in vms:
        st = crm_mon.vm_status(status, vm, True)
        out.append({"name": vm, "status": st["status"], "node": st["node"], "reason": st["reason"]})
    return out


def _stored(env: Env, vms):
    """(session, vm, metadata) of each of `vms` (enabled rbdvm VMs), one Ceph session per
    pool/namespace their resources name; a VM whose metadata is refused is left out (its
    start says why)."""
    prims = env.cluster.primitives()
    by_target: dict = {}
    for vm in vms:
        target = cib.ceph_target(prims[vm]) if vm in prims else None
        if target is not None:
            by_target.setdefault(target, []).append(vm)
    for target, names in by_target.items():
        with env.open_session(target) as session:
            for vm in names:
                try:
                    metadata = vmstore.usable_metadata(session, vm)
                except RbdvmError:
                    continue
                yield session, vm, metadata


def untrusted_vms(env: Env, vms) -> list:
    """Those of `vms` (enabled rbdvm VMs) whose stored definition this cluster did not sign:
    moved, their start on the other node would be refused and they would stop."""
    return sorted(vm for session, vm, metadata in _stored(env, vms)
                  if trust.definition_verdict(session, vm, vmschema.current_definition(metadata))[0] != trust.SIGNED)


@recorded("drain", vm_arg=None, node_arg="node")
def drain(env: Env, node: str, wait: float = timeouts.DRAIN_WAIT, untrusted_ok: bool = False,
          maintenance=None, ceph_host: str | None = None, limit: int | None = None, progress=None) -> dict:
    """Move every VM off `node`; refused, before anything moves, while a VM on it is not
    signed by this cluster (its start elsewhere would be refused), unless `untrusted_ok`.

    `maintenance`: the CephTarget of a user that may set noout (then also refused while
    Ceph is unhealthy or a VM there could run nowhere else); `ceph_host`: the node's CRUSH
    host, if not named as the node. `limit`: the live migrations a node runs at once, set
    as the cluster's migration-limit (it stays). `progress`: called with the VMs' report
    (as returned, highest priority first) each time one of them changes state."""
    status, cib_nodes = env.cluster.cluster_status(), env.cluster.cib_nodes()
    before = nodes.describe_node(status, cib_nodes, node)
    untrusted = [] if untrusted_ok else untrusted_vms(env, before["vms"])
    if untrusted:
        raise Untrusted(f"cannot drain node {node}: {', '.join(untrusted)} not signed by this cluster",
                        "moved to another node, its start there would be refused and it would stop",
                        hint=Hint(hints.DRAIN_UNTRUSTED, {"vms": " ".join(untrusted)}))
    host = ceph_host or node
    if maintenance is not None:
        _refuse_stranded(env, node, before["vms"], nodes.describe(status, cib_nodes))
        with env.open_session(maintenance) as ceph:
            _refuse_unhealthy(ceph, node, host)
    if limit is not None:
        env.cluster.set_cluster_option(MIGRATION_LIMIT, str(limit))
    env.cluster.set_drained(node, True)
    checkpoint("drain:drained")
    report, settled = _follow(env, node, _by_priority(env, before["vms"]), wait, progress)
    left = [v["name"] for v in report if v["node"] == node]
    out = {"node": node, "drained": True, "settled": settled, "vms": report, "still_there": left,
           "changed": not before["drained"], "migration_limit": _migration_limit(env)}
    if maintenance is not None:
        with env.open_session(maintenance) as ceph:
            osds = osdflags.host_osds(ceph, host)
            if osds:
                osdflags.set_noout(ceph, host)
            out["ceph"] = {"host": host, "osds": osds, "noout": bool(osds)}
    return out


def _by_priority(env: Env, vms) -> list:
    """`vms`, highest priority first (Pacemaker places them in that order), then by name."""
    prims = env.cluster.primitives()
    return sorted(vms, key=lambda vm: (-(cib.priority(prims[vm]) if vm in prims else 0), vm))


def _follow(env: Env, node: str, vms: list, wait: float, progress) -> tuple:
    """(report, settled) once no VM of `vms` is on `node` or on its way, and the cluster has
    settled (within what is left of `wait`), or at `wait`. Each VM's report says when it was
    first seen running elsewhere (`left_after`, seconds from the start)."""
    t0 = time.monotonic()
    end, last = t0 + wait, None
    left_after: dict[str, float] = {}

    def read() -> list:
        nonlocal last
        report = _vms_report(env.cluster.cluster_status(), vms)
        for v in report:
            if v["node"] not in (None, node) and v["status"] == "Started":
                left_after.setdefault(v["name"], round(time.monotonic() - t0, 1))
            v["left_after"] = left_after.get(v["name"])
        if progress is not None and report != last:
            progress(report)
        last = report
        return report

    while not all(v["node"] != node and v["status"] not in _ON_THE_WAY for v in read()):
        if time.monotonic() >= end:
            return last, False
        time.sleep(timeouts.DRAIN_POLL)
    # what the cluster still does then (a VM refused where it went, and stopped) is in the
    # report: read again once the cluster has settled
    settled = env.cluster.settle(max(1.0, end - time.monotonic()))
    return read(), settled


def _migration_limit(env: Env) -> int | None:
    """The cluster's migration-limit (None: unlimited, Pacemaker's default)."""
    value = env.cluster.cluster_option(MIGRATION_LIMIT)
    return int(value) if value and value.lstrip("-").isdigit() and int(value) > 0 else None


def _refuse_stranded(env: Env, node: str, vms, cluster_nodes) -> None:
    """Conflict if a VM on `node` could run on no other node: none is up and taking VMs,
    or the VM is pinned to `node` (it would stop for the whole maintenance)."""
    if not vms:
        return
    elsewhere = [n["name"] for n in cluster_nodes
                 if n["name"] != node and n["state"] == "online" and not n["drained"] and n["hypervisor"]]
    stranded = list(vms) if not elsewhere else sorted(vm for vm, host in _pins(env, vms).items() if host == node)
    if stranded:
        why = "no other node is online and taking VMs" if not elsewhere else f"pinned to {node}"
        raise Conflict(f"cannot put node {node} in maintenance: {', '.join(stranded)} could run nowhere else",
                       f"{why}: it would stay stopped until {node} is back",
                       "Move or unpin it first (rbdvm unpin VM), or bring another node back",
                       code="NOWHERE_TO_GO", details={"node": node, "vms": stranded})


def _pins(env: Env, vms) -> dict:
    """{vm: its pinned host} of `vms`, from their stored settings."""
    return {vm: vmschema.VmConfig.of(metadata).pinned_host for _, vm, metadata in _stored(env, vms)}


def _refuse_unhealthy(ceph, node: str, host: str) -> None:
    """Conflict unless Ceph is healthy, apart from the noout this maintenance set itself
    (a re-run after an interruption): another host's flags mean another node is down for
    maintenance, and two at once is what this refuses."""
    status, checks = osdflags.health(ceph)
    flagged = osdflags.flagged_hosts(ceph)
    ours = set(checks) <= set(osdflags.MAINTENANCE_CHECKS) and set(flagged) <= {host}
    if status != "HEALTH_OK" and not ours:
        others = {h: f for h, f in flagged.items() if h != host}
        problems = [f"{code}: {message}" for code, message in checks.items()] + \
            [f"host {h} has {', '.join(f)} set" for h, f in others.items()]
        raise Conflict(f"cannot put node {node} in maintenance: Ceph is {status}",
                       "; ".join(problems) or status,
                       "Wait until `ceph health` is HEALTH_OK (and no other node is in maintenance)",
                       code="CEPH_UNHEALTHY", details={"node": node, "status": status, "checks": checks})


@recorded("resume", vm_arg=None, node_arg="node")
def resume(env: Env, node: str, wait: float = timeouts.DRAIN_WAIT, maintenance=None,
           ceph_host: str | None = None) -> dict:
    """Let `node` take VMs again; with `maintenance`, first clear the noout drain set."""
    ceph = None
    if maintenance is not None:
        host = ceph_host or node
        with env.open_session(maintenance) as session:
            had = osdflags.NOOUT in osdflags.flagged_hosts(session).get(host, [])
            osdflags.unset_noout(session, host)
        ceph = {"host": host, "noout": False, "was_set": had}
    before = nodes.describe_node(env.cluster.cluster_status(), env.cluster.cib_nodes(), node)
    env.cluster.set_drained(node, False)
    settled = env.cluster.settle(wait)
    after = nodes.describe_node(env.cluster.cluster_status(), env.cluster.cib_nodes(), node)
    out = {"node": node, "drained": False, "settled": settled, "vms": after["vms"],
           "changed": before["drained"]}
    if ceph:
        out["ceph"] = ceph
    return out
