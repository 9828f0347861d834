"""The cluster's nodes as rbdvm manages them: their state, the VMs on each, their
utilization, and the node attribute (cib.NO_VMS_ATTRIBUTE) that drains them. Every VM
resource rbdvm makes avoids a node where that attribute is true (cib.constraints), so one
attribute moves every VM away, and removing it lets them come back."""

from ..core import timeouts, xmlsafe
from ..core.errors import ClusterUnavailable
from . import cib, crm_mon
from .runner import run as _run


def _cib_nodes():
    out = _run(["cibadmin", "--query", "--scope", "nodes"], timeout=timeouts.CIB_QUERY)
    return xmlsafe.parse(out, "the CIB's nodes", ClusterUnavailable)


def _shown(state: str) -> str:
    """`rbdvm node list` tells up states apart; every down one is offline there."""
    return state if state in crm_mon.UP else "offline"


def describe(status) -> list:
    """[{name, state, drained, vms, utilization}] from crm_mon's XML and the CIB's nodes."""
    cib_nodes = {n.get("uname"): n for n in _cib_nodes().iter("node")}
    vms = set(crm_mon.enabled_vms(status))
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
                    "vms": running, "utilization": util})
    return out


def describe_node(status, node: str) -> dict:
    """describe() of one node; UsageError if it is not a cluster node."""
    crm_mon.check_node(status, node)
    return next(n for n in describe(status) if n["name"] == node)


def set_drained(node: str, drained: bool) -> None:
    """Set (or delete) the node's permanent rbdvm-no-vms attribute: one CIB change."""
    if drained:
        _run(["crm_attribute", "--type", "nodes", "--node", node, "--name", cib.NO_VMS_ATTRIBUTE,
              "--update", "true"])
    else:
        _run(["crm_attribute", "--type", "nodes", "--node", node, "--name", cib.NO_VMS_ATTRIBUTE, "--delete"])
