"""N+1, known before it is needed: would every VM restart if any one node were lost, and how
much room each node has. Answered by Pacemaker's own scheduler (crm_simulate over a copy of
the live CIB, one run per node lost), never by a model of it: priorities, utilization,
placement strategy, pins, preferences, colocations and the nodes no VM may use weigh exactly
as they will in a real failure."""

import os
from concurrent.futures import ThreadPoolExecutor

from ..core import xmlsafe
from ..core.errors import ClusterUnavailable
from ..pacemaker import cib, simulate
from .env import Env


def capacity(env: Env) -> dict:
    """{placement_strategy, nodes: [{name, online, vms, capacity, used, free}], losses:
    [{node, stopped: [{vm, priority}], moved: [vm]}], not_running_now, absorbs_any_loss,
    scheduler_seconds}: one CIB query, then one simulation per cluster node (side by side)."""
    text = env.cluster.cib_text()
    root = xmlsafe.parse(text, "the CIB", ClusterUnavailable)
    vms = cib.vm_primitives(root)
    wanted = [vm for vm, p in vms.items() if cib.wanted(p)]
    now = simulate.settled(env.cluster.run, text)
    members = [n for n, online in now.nodes.items() if online]
    with ThreadPoolExecutor(max_workers=max(1, min(len(members), os.cpu_count() or 1))) as pool:
        lost = dict(zip(members, pool.map(lambda n: simulate.settled(env.cluster.run, text, down=n), members)))
    losses = [_loss(node, now, after, wanted, vms) for node, after in lost.items()]
    return {
        "placement_strategy": cib.cluster_property(root, "placement-strategy") or "default",
        "nodes": _nodes(root, now, vms),
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


def _nodes(root, now, vms: dict) -> list:
    """Each member node: its VMs as the cluster settles, its utilization capacity, what every
    resource placed on it uses (each attribute its capacity names), and what is left."""
    declared, uses = cib.utilizations(root)
    out = []
    for name, online in now.nodes.items():
        here = sorted(r for r, where in now.placed.items() if name in where)
        have = declared.get(name, {})
        used = {k: sum(uses.get(r, {}).get(k, 0) for r in here) for k in have}
        out.append({"name": name, "online": online, "vms": [r for r in here if r in vms], "capacity": have,
                    "used": used, "free": {k: have[k] - used[k] for k in have}})
    return out
