"""node list / drain / resume: emptying a node of VMs before maintenance, and back.

Drain sets the node attribute every rbdvm VM avoids (pacemaker/nodes.py): Pacemaker moves
each VM away in one decision (live where the VM allows it, stopped and started elsewhere
otherwise; a VM pinned to the node has nowhere to go and stops). Drain then waits for the
cluster to settle and reports each VM that was there. Resume deletes the attribute: the node
takes VMs again and VMs that prefer it come back. Both are one attribute change, so running
one again (after an interruption) converges.
"""

from ..ceph import trust, vmstore
from ..core import hints, timeouts, vmschema
from ..core.errors import RbdvmError, Untrusted
from ..core.hints import Hint
from ..pacemaker import cib, crm_mon, nodes
from .env import Env


def node_list(env: Env) -> list:
    return nodes.describe(env.cluster.cluster_status(), env.cluster.cib_nodes())


def _vms_report(status, vms) -> list:
    out = []
    for vm in vms:
        st = crm_mon.vm_status(status, vm, True)
        out.append({"name": vm, "status": st["status"], "node": st["node"], "reason": st["reason"]})
    return out


def _set_drained(env: Env, node: str, drained: bool, wait: float, before: dict | None = None) -> tuple:
    """(the node before, whether the cluster settled) once its attribute is set or removed;
    `before`: the caller's describe_node() of it, when it has one."""
    before = before or nodes.describe_node(env.cluster.cluster_status(), env.cluster.cib_nodes(), node)
    env.cluster.set_drained(node, drained)
    return before, env.cluster.settle(wait)


def untrusted_vms(env: Env, vms) -> list:
    """Those of `vms` (enabled rbdvm VMs) whose stored definition this cluster did not sign:
    moved, their start on the other node would be refused and they would stop."""
    prims = env.cluster.primitives()
    by_target: dict = {}
    for vm in vms:
        target = cib.ceph_target(prims[vm]) if vm in prims else None
        if target is not None:
            by_target.setdefault(target, []).append(vm)
    found = []
    for target, names in by_target.items():
        with env.open_session(target) as session:
            for vm in names:
                try:
                    metadata = vmstore.usable_metadata(session, vm)
                except RbdvmError:
                    continue      # refused for another reason, which its start says
                if trust.definition_verdict(session, vm, vmschema.current_definition(metadata))[0] != trust.SIGNED:
                    found.append(vm)
    return sorted(found)


def drain(env: Env, node: str, wait: float = timeouts.DRAIN_WAIT, untrusted_ok: bool = False) -> dict:
    """Move every VM off `node`; refused, before anything moves, while a VM on it is not
    signed by this cluster (its start elsewhere would be refused), unless `untrusted_ok`."""
    before = nodes.describe_node(env.cluster.cluster_status(), env.cluster.cib_nodes(), node)
    untrusted = [] if untrusted_ok else untrusted_vms(env, before["vms"])
    if untrusted:
        raise Untrusted(f"cannot drain node {node}: {', '.join(untrusted)} not signed by this cluster",
                        "moved to another node, its start there would be refused and it would stop",
                        hint=Hint(hints.DRAIN_UNTRUSTED, {"vms": " ".join(untrusted)}))
    before, settled = _set_drained(env, node, True, wait, before)
    report = _vms_report(env.cluster.cluster_status(), before["vms"])
    left = [v["name"] for v in report if v["node"] == node]
    return {"node": node, "drained": True, "settled": settled, "vms": report, "still_there": left,
            "changed": not before["drained"]}


def resume(env: Env, node: str, wait: float = timeouts.DRAIN_WAIT) -> dict:
    before, settled = _set_drained(env, node, False, wait)
    after = nodes.describe_node(env.cluster.cluster_status(), env.cluster.cib_nodes(), node)
    return {"node": node, "drained": False, "settled": settled, "vms": after["vms"],
            "changed": before["drained"]}
