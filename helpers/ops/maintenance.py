"""node list / drain / resume: emptying a node of VMs before maintenance, and back.

Drain sets the node attribute every rbdvm VM avoids (pacemaker/nodes.py): Pacemaker moves
each VM away in one decision (live where the VM allows it, stopped and started elsewhere
otherwise; a VM pinned to the node has nowhere to go and stops). Drain then waits for the
cluster to settle and reports each VM that was there. Resume deletes the attribute: the node
takes VMs again and VMs that prefer it come back. Both are one attribute change, so running
one again (after an interruption) converges.
"""

from ..pacemaker import cluster, crm_mon, nodes

SETTLE_WAIT = 600


def node_list() -> list:
    return nodes.describe(cluster.cluster_status())


def _vms_report(status, vms) -> list:
    out = []
    for vm in vms:
        st = crm_mon.vm_status(status, vm, True)
        out.append({"name": vm, "status": st["status"], "node": st["node"], "reason": st["reason"]})
    return out


def drain(node: str, wait: float = SETTLE_WAIT) -> dict:
    status = cluster.cluster_status()
    nodes.check_node(status, node)
    before = next(n for n in nodes.describe(status) if n["name"] == node)
    nodes.set_drained(node, True)
    settled = cluster.settle(wait)
    status = cluster.cluster_status()
    report = _vms_report(status, before["vms"])
    left = [v["name"] for v in report if v["node"] == node]
    return {"node": node, "drained": True, "settled": settled, "vms": report, "still_there": left,
            "changed": not before["drained"]}


def resume(node: str, wait: float = SETTLE_WAIT) -> dict:
    status = cluster.cluster_status()
    nodes.check_node(status, node)
    before = next(n for n in nodes.describe(status) if n["name"] == node)
    nodes.set_drained(node, False)
    settled = cluster.settle(wait)
    after = next(n for n in nodes.describe(cluster.cluster_status()) if n["name"] == node)
    return {"node": node, "drained": False, "settled": settled, "vms": after["vms"],
            "changed": before["drained"]}
