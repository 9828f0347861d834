"""Reading crm_mon's XML: the nodes, and a VM's state as operators see it. Pure."""

from ..core.errors import UsageError
from .cib import AGENT

NOT_PLACED = "no node may run it now (standby or offline nodes, pinning, colocations)"


def node_state(status, node: str) -> str:
    """A node as crm_mon's XML shows it, the one reading of it: online | maintenance | standby
    (up), or unclean (Pacemaker waits to fence it) | lost (gone while Pacemaker still expects
    it up: left without being fenced, e.g. fencing disabled) | offline (expected down: fenced
    or shut down), or unknown (not a node of the cluster). Only `offline` can be a confirmed
    fence."""
    found = next((n for n in status.iter("node") if n.get("name") == node), None)
    if found is None:
        return "unknown"
    if found.get("online") != "true":
        if found.get("unclean") == "true":
            return "unclean"
        return "lost" if found.get("expected_up") == "true" else "offline"
    if found.get("maintenance") == "true":
        return "maintenance"
    if found.get("standby") == "true" or found.get("standby_onfail") == "true":
        return "standby"
    return "online"


UP = ("online", "maintenance", "standby")


def cluster_nodes(status) -> list:
    return sorted(n.get("name") for n in status.iterfind("nodes/node"))


def check_node(status, node: str) -> None:
    """UsageError unless `node` is one of the cluster's nodes."""
    nodes = cluster_nodes(status)
    if node not in nodes:
        raise UsageError(f"{node} is not a cluster node", f"nodes: {', '.join(nodes)}",
                         code="NOT_A_NODE", details={"node": node, "nodes": nodes})


def without_hypervisor(status) -> list:
    """Nodes where rbdvm's agent answered that there is no hypervisor (an observer): the
    probe of any rbdvm resource there returned "not installed", which Pacemaker keeps in
    the node's history (it bans the node for that resource, without a failed action). The
    agent's own answer, so no node attribute to set or forget."""
    ours = set(enabled_vms(status))
    out = set()
    for n in status.iterfind("node_history/node"):
        for rh in n.iterfind("resource_history"):
            if rh.get("id") in ours and any(op.get("rc") == "5" and op.get("task") in ("probe", "monitor")
                                            for op in rh.iterfind("operation_history")):
                out.add(n.get("name"))
                break
    return sorted(out)


def check_guest_node_name(status, vm: str, name: str, current: str | None = None) -> None:
    """UsageError unless `name` may be VM `vm`'s guest node: a node name of its own, neither
    the VM's resource id nor another node's name nor another resource's id (Pacemaker
    refuses those). `current`: the guest node the VM's resource already has."""
    if name == vm:
        raise UsageError(f"the guest node of VM {vm} cannot be named {vm}",
                         "Pacemaker needs the guest node's name to differ from its resource's",
                         "Give the guest node another name (its host name inside the VM, say)",
                         code="INVALID_SETTING", details={"setting": "_remote_node"})
    if name == current:
        return
    taken = set(cluster_nodes(status)) | {r.get("id") for r in status.iter("resource")}
    if name in taken:
        raise UsageError(f"the guest node of VM {vm} cannot be named {name}",
                         "a node or resource of the cluster has that name already", "Give it another name",
                         code="INVALID_SETTING", details={"setting": "_remote_node", "name": name})


def check_hypervisor(status, node: str) -> None:
    """UsageError if `node` is known to have no hypervisor (without_hypervisor)."""
    if node in without_hypervisor(status):
        raise UsageError(f"{node} runs no VM", "rbdvm's agent answered there that it has no hypervisor "
                         "(no libvirt daemon installed): a cluster member that only votes, like an observer",
                         "Name a node with a hypervisor", code="NOT_A_HYPERVISOR", details={"node": node})


def _resource(status, vm):
    return next((r for r in status.iter("resource") if r.get("id") == vm), None)


def vm_status(status, vm: str, in_storage: bool) -> dict:
    """{name, status, node, reason, target} of a VM as crm_mon shows it (status None: no
    cluster). status: Undefined (not in storage), Disabled (no resource), Started, Stopped,
    Starting, Stopping, Migrating, Failed."""
    out = {"name": vm, "status": "Disabled" if in_storage else "Undefined", "node": None, "reason": None,
           "target": None}
    if status is None:
        return out
    failures = _failures_of(status, vm)
    if failures:
        f = failures[-1]
        out["reason"] = f.get("exitreason") or f"{f.get('task')} returned {f.get('exitstatus')}"
    rsc = _resource(status, vm)
    if rsc is None:
        return out
    running = [n.get("name") for n in rsc.iterfind("node")]
    out["node"] = running[0] if running else None
    stopped = rsc.get("target_role", "Started").lower() == "stopped"
    out["status"] = _state(rsc, stopped, start_failed=any(f.get("task") == "start" for f in failures),
                           guest_flag=not failures and _guest_node_down(status, vm))
    if out["status"] == "Stopped" and not stopped:
        # a pending start shows as role Starting: this one waits for a node it may run on
        out["reason"] = out["reason"] or NOT_PLACED
    out["target"] = "Stopped" if stopped else "Started"
    return out


def failures(status, vm: str) -> list:
    """The VM's operation failures crm_mon records: [{task, node, call, status, reason}]
    (reason: the agent's exit reason; crm_mon leaves it empty for a failed migrate_to)."""
    if status is None:
        return []
    return [{"task": f.get("task"), "node": f.get("node"), "call": f.get("call"),
             "status": f.get("exitstatus"), "reason": f.get("exitreason") or ""}
            for f in _failures_of(status, vm)]


def _failures_of(status, vm: str) -> list:
    """The failure elements of resource `vm`: op keys are RESOURCE_TASK_INTERVAL, and a prefix
    alone would give VM vm1 the failures of a resource named vm1_x."""
    found = []
    for f in status.iterfind("failures/failure"):
        key, task = f.get("op_key", ""), f.get("task", "")
        head = f"{vm}_{task}_"
        if task and key.startswith(head) and key[len(head):].isdigit():
            found.append(f)
    return found


def _guest_node_down(status, vm: str) -> bool:
    """Whether VM `vm` is a guest node's VM and that guest node is offline."""
    return any(n.get("id_as_resource") == vm and n.get("online") != "true" for n in status.iterfind("nodes/node"))


def _state(rsc, stopped: bool, start_failed: bool, guest_flag: bool = False) -> str:
    """`guest_flag`: the VM's failed="true" is its guest node's (offline with resources still
    active there, as while Pacemaker moves the VM: it stops the connection first), not a
    failure of the VM, which would be on record. Read as Failed, a waiting migrate gave up,
    cleared its move, and the aborted transition made Pacemaker restart the VM."""
    role, active = rsc.get("role"), rsc.get("active") == "true"
    if role == "Migrating":
        return "Migrating"
    failed = rsc.get("failed") == "true" and not guest_flag
    # a failure Pacemaker still acts on: the resource is failed or blocked, or it cannot start
    # anywhere (a failed start bans a node until its failure is cleaned up)
    if failed or rsc.get("blocked") == "true" or (start_failed and not active and not stopped):
        return "Failed"
    if role in ("Starting", "Stopping"):
        return role
    if stopped:
        return "Stopping" if active else "Stopped"
    return "Started" if active else "Stopped"


def is_enabled(status, vm: str) -> bool:
    return _resource(status, vm) is not None


def target_role(status, vm: str) -> str:
    """The role the resource is meant to have (crm_mon's target_role; Started when unset)."""
    rsc = _resource(status, vm)
    return (rsc.get("target_role") if rsc is not None else None) or "Started"


def enabled_vms(status) -> list:
    """Ids of the cluster's ocf:rbdvm:VirtualDomain resources."""
    agent = "{class}:{provider}:{type}".format(**AGENT)
    return [r.get("id") for r in status.iter("resource") if r.get("resource_agent") == agent]
