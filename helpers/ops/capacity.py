"""N+1, known before it is needed: would every VM restart if any one node were lost, and how
much room each node has. Answered by Pacemaker's own scheduler (crm_simulate over a copy of
the live CIB, one run per node lost), never by a model of it: priorities, utilization,
placement strategy, pins, preferences, colocations and the nodes no VM may use weigh exactly
as they will in a real failure."""

import os
import time
from concurrent.futures import ThreadPoolExecutor

from ..core import timeouts, xmlsafe
from ..core.errors import ClusterUnavailable, Conflict, RbdvmError
from ..pacemaker import cib, crm_mon, simulate
from .env import Env


def capacity(env: Env, what_if=None, budget: float | None = None, without=()) -> dict:
    """{placement_strategy, undeclared, nodes: [{name, online, vms, capacity, used, free}],
    losses: [{node, stopped: [{vm, priority}], moved: [vm]}], not_running_now,
    absorbs_any_loss, scheduler_seconds}: one CIB query, then one simulation as the cluster
    stands and one per member node lost (side by side). `not_running_now`: the VMs meant to
    run that would not even with every node up, as the cluster settles. `what_if`: a
    <configuration> fragment put into the copy first, and the elements of the ids `without`
    taken out (a change about to be made: cib.with_configuration).
    `budget`: seconds for every simulation together (each one has SIMULATE otherwise)."""
    until = time.monotonic() + budget if budget is not None else None
    text = env.cluster.cib_text()
    root = xmlsafe.parse(text, "the CIB", ClusterUnavailable)
    if what_if is not None:
        root, text = cib.with_configuration(root, what_if, without)
    vms = cib.vm_primitives(root)
    wanted = [vm for vm, p in vms.items() if cib.wanted(p)]
    now = simulate.settled(env.cluster.run, text, until=until)
    members = [n for n, online in now.nodes.items() if online]
    with ThreadPoolExecutor(max_workers=max(1, min(len(members), os.cpu_count() or 1))) as pool:
        lost = dict(zip(members, pool.map(lambda n: simulate.settled(env.cluster.run, text, n, until), members)))
    losses = [_loss(node, now, after, wanted, vms) for node, after in lost.items()]
    strategy = cib.cluster_property(root, "placement-strategy") or "default"
    declared, uses = cib.utilizations(root)
    return {
        "placement_strategy": strategy,
        "undeclared": _undeclared(declared, uses, wanted, _hypervisors(env, members)) if strategy != "default" else {},
        "nodes": _nodes(declared, uses, now, vms),
        "losses": losses,
        "not_running_now": sorted(vm for vm in wanted if not now.where(vm)),
        "absorbs_any_loss": not any(loss["stopped"] for loss in losses),
        "scheduler_seconds": max([now.seconds] + [o.seconds for o in lost.values()]),
    }


def _loss(node: str, now, after, wanted: list, vms: dict) -> dict:
    """The wanted VMs running now that would not run with `node` lost (highest priority
    first), and those that would run elsewhere."""
    running = [vm for vm in wanted if now.where(vm)]
    stopped = sorted((vm for vm in running if not after.where(vm)), key=lambda vm: (-cib.priority(vms[vm]), vm))
    moved = sorted(vm for vm in running if after.where(vm) and set(after.where(vm)) != set(now.where(vm)))
    return {"node": node, "stopped": [{"vm": vm, "priority": cib.priority(vms[vm])} for vm in stopped],
            "moved": moved}


def _hypervisors(env: Env, members: list) -> list:
    """The members where VMs may run: not the observers (the agent's own answer, as crm_mon
    keeps it)."""
    observers = set(crm_mon.without_hypervisor(env.cluster.cluster_status()))
    return [n for n in members if n not in observers]


def _undeclared(declared: dict, uses: dict, wanted: list, members: list) -> dict:
    """{attribute: [nodes]}: what the wanted VMs use that those nodes declare no capacity for.
    Once utilization counts, Pacemaker reads a capacity a node does not declare as 0: no VM
    that uses it may run there (the agent sets every VM's cpu and hv_memory at its start)."""
    used = sorted({k for vm in wanted for k, v in uses.get(vm, {}).items() if v > 0})
    out = {k: [n for n in members if k not in declared.get(n, {})] for k in used}
    return {k: nodes for k, nodes in out.items() if nodes}


def _nodes(declared: dict, uses: dict, now, vms: dict) -> list:
    """Each member node: its VMs as the cluster settles, its utilization capacity, what every
    resource placed on it uses (each attribute its capacity names), and what is left."""
    out = []
    for name, online in now.nodes.items():
        here = sorted(r for r, where in now.placed.items() if name in where)
        have = declared.get(name, {})
        used = {k: sum(uses.get(r, {}).get(k, 0) for r in here) for k in have}
        out.append({"name": name, "online": online, "vms": [r for r in here if r in vms], "capacity": have,
                    "used": used, "free": {k: have[k] - used[k] for k in have}})
    return out


def shortfall(env: Env, what_if=None) -> dict:
    """What a change to where VMs may run leaves of N+1, for the commands that make one
    (enable, set, migrate): {"absorbs_any_loss": bool, "stopped": {node: [vm]}}, or
    {"unknown": reason} when the scheduler could not be asked: the change is made either
    way, and its own result stands. Within CAPACITY_CHECK: at scale the check is said not
    done rather than holding the command."""
    try:
        r = capacity(env, what_if, budget=timeouts.CAPACITY_CHECK)
    except RbdvmError as exc:
        return {"unknown": exc.message}
    return {"absorbs_any_loss": r["absorbs_any_loss"],
            "stopped": {loss["node"]: [s["vm"] for s in loss["stopped"]] for loss in r["losses"] if loss["stopped"]}}


def refuse_short(env: Env, what_if, doing: str, without=()) -> None:
    """N_PLUS_ONE (Conflict) if the cluster with `what_if` merged in could not restart every
    VM after the loss of some single node; nothing changed yet. A scheduler that cannot be
    asked refuses too: the operator asked for the check."""
    r = capacity(env, what_if, without=without)
    if r["absorbs_any_loss"]:
        return
    lost = [f"{loss['node']} lost: {', '.join(s['vm'] for s in loss['stopped'])}" for loss in r["losses"]
            if loss["stopped"]]
    raise Conflict(f"{doing} would leave VMs that could not restart if one node were lost",
                   "; ".join(lost) + " would not restart anywhere (Pacemaker's scheduler, over a copy of the CIB)",
                   "Give the nodes more capacity, lower what the VMs use, or raise the priority of those that "
                   "must run; the capacity report shows each node's room",
                   code="N_PLUS_ONE", details={"stopped": {loss["node"]: [s["vm"] for s in loss["stopped"]]
                                                           for loss in r["losses"] if loss["stopped"]}})
