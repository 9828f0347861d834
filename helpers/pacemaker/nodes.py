"""The cluster's nodes as rbdvm manages them: their state, the VMs on each, their
utilization, and the node attribute (cib.NO_VMS_ATTRIBUTE) that drains them. Every VM
resource rbdvm makes avoids a node where that attribute is true (cib.constraints), so one
attribute moves every VM away, and removing it lets them come back (Cluster.set_drained).
Pure: reads the documents it is given."""

from . import cib, crm_mon


def _shown(state: str) -> str:
    """`rbdvm node list` tells up states apart; every down one is offline there."""
    return state if state in crm_mon.UP else "offline"


def describe(status, cib_nodes) -> list:
    """[{name, state, drained, hypervisor, vms, utilization}] from crm_mon's XML and the CIB's
    nodes section (Cluster.cib_nodes); hypervisor False: rbdvm's agent found none there."""
    cib_nodes = {n.get("uname"): n for n in cib_nodes.iter("node")}
    vms = set(crm_mon.enabled_vms(status))
    observers = set(crm_mon.without_hypervisor(status))
    out = []
    for n in status.iterfind("nodes/node"):
        name = n.get("name")
        entry = cib_nodes.get(name)
        attrs = cib.pairs(entry, "instance_attributes") if entry is not None else {}
        util = cib.pairs(entry, "utilization") if entry is not None else {}
        running = sorted(r.get("id") for r in status.iter("resource")
                         if r.get("id") in vms and any(x.get("name") == name for x in r.iterfind("node")))
        out.append({"name": name, "state": _shown(crm_mon.node_state(status, name)),
                    "drained": attrs.get(cib.NO_VMS_ATTRIBUTE) == "true",
                    "hypervisor": name not in observers,
                    "vms": running, "utilization": util})
    return out


def describe_node(status, cib_nodes, node: str) -> dict:
    """describe() of one node; UsageError if it is not a cluster node."""
    crm_mon.check_node(status, node)
    return next(n for n in describe(status, cib_nodes) if n["name"] == node)
