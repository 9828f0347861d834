"""rbdvm capacity: would every VM restart if any one node were lost."""

import click

from rbdvm.helpers.ops import capacity as capacity_op

from .options import cluster_env, emit, escaped, json_asked, json_option, table


def _amounts(values: dict) -> str:
    return " ".join(f"{escaped(k)}={v}" for k, v in sorted(values.items())) or "-"


def lines(r) -> list:
    out = [f"Placement strategy: {escaped(r['placement_strategy'])}" + (
        "" if r["placement_strategy"] != "default" else
        " (Pacemaker places VMs without counting utilization: a node may be given more than it has; "
        "set placement-strategy=utilization and the nodes' capacity to have it counted)"), ""]
    for attribute, nodes in sorted(r["undeclared"].items()):
        out.append(f"Warning: VMs use {escaped(attribute)}, for which {', '.join(map(escaped, nodes))} declare(s) no "
                   f"capacity: Pacemaker counts it as 0 there, so no such VM may run there "
                   f"(`pcs node utilization NODE {escaped(attribute)}=...`)")
    if r["undeclared"]:
        out.append("")
    out += table(r["nodes"], [
        ("NODE", lambda n: escaped(n["name"])), ("STATE", lambda n: "online" if n["online"] else "offline"),
        ("VMS", lambda n: str(len(n["vms"]))), ("CAPACITY", lambda n: _amounts(n["capacity"])),
        ("USED", lambda n: _amounts(n["used"])), ("FREE", lambda n: _amounts(n["free"]))])
    out += ["", "If one node were lost:"]
    for loss in r["losses"]:
        moved = f"{len(loss['moved'])} VM(s) restart elsewhere"
        if loss["stopped"]:
            names = ", ".join(f"{escaped(s['vm'])} (priority {s['priority']})" for s in loss["stopped"])
            out.append(f"  {escaped(loss['node'])}: {names} would not restart; {moved}")
        else:
            out.append(f"  {escaped(loss['node'])}: every VM runs on; {moved}")
    if r["not_running_now"]:
        out.append("Would not run even with every node up, though enabled: "
                   f"{', '.join(map(escaped, r['not_running_now']))}")
    out.append("The cluster absorbs the loss of any one node." if r["absorbs_any_loss"] else
               "The cluster cannot absorb the loss of every single node: the VMs above would stay down. "
               "Give the nodes more capacity, lower what those VMs use, or raise their priority over others.")
    return out


@click.command()
@json_option
def capacity(as_json):
    """Would every VM restart if any one node were lost (N+1), and how much room each node
    has. Pacemaker's own scheduler answers: crm_simulate over a copy of the live CIB, once
    per node taken offline (the live cluster is never touched), so priorities, utilization
    and placement-strategy, pins, preferences, colocations and drained nodes count exactly
    as they will in a real failure.

    \b
    Headroom is each node's utilization capacity (`pcs node utilization NODE hv_memory=...`)
    minus what the resources placed there use; the agent sets each VM's cpu and hv_memory
    from its definition when it starts it. Exit code 0 either way: read absorbs_any_loss
    (--json) in scripts."""
    emit(as_json, capacity_op.capacity(cluster_env()), lines)


def checked(result: dict, changed: bool) -> dict:
    """A change's result with what it leaves of N+1 (`n_plus_one`), said on stderr to people:
    enable, set and migrate change where VMs may run. Unchecked when the command `changed`
    nothing in the cluster."""
    if not changed:
        return result
    result["n_plus_one"] = check = capacity_op.shortfall(cluster_env())
    if not json_asked():
        if "unknown" in check:
            click.echo(f"Warning: could not check that the cluster absorbs the loss of any one node: "
                       f"{escaped(check['unknown'])}", err=True)
        for node, vms in sorted(check.get("stopped", {}).items()):
            click.echo(f"Warning: if {escaped(node)} were lost, {', '.join(map(escaped, vms))} would not restart "
                       "anywhere (see `rbdvm capacity`)", err=True)
    return result
