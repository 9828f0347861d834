"""rbdvm node list | drain | resume."""

import click

from rbdvm.helpers.ops import maintenance

from .options import cluster_env, emit, json_option, table


@click.group()
def node():
    """The cluster's nodes: list them, drain one of VMs for maintenance, resume it."""


@node.command("list")
@json_option
def list_(as_json):
    """Nodes, their state (online, standby, maintenance, offline), whether rbdvm drained
    them, the VMs running on each and their utilization."""
    rows = maintenance.node_list(cluster_env())
    emit(as_json, rows, lambda rs: table(rs, [
        ("NODE", "name"), ("STATE", "state"), ("VMS", lambda r: "drained" if r["drained"] else "taken"),
        ("RUNNING", lambda r: ", ".join(r["vms"]) or "-"),
        ("UTILIZATION", lambda r: " ".join(f"{k}={v}" for k, v in sorted(r["utilization"].items())) or "-")]))


def _vm_line(node_name, v) -> str:
    if v["node"] and v["node"] != node_name:
        return f"  {v['name']}: {v['status']} on {v['node']}"
    if v["node"] == node_name:
        return f"  {v['name']}: still on {node_name} ({v['status']})"
    return f"  {v['name']}: {v['status']}, on no node" + (f" ({v['reason']})" if v["reason"] else "")


@node.command()
@click.argument("name")
@click.option("--force", is_flag=True,
              help="Drain even when VMs on NAME are not signed by this cluster: they stop (their start "
                   "elsewhere is refused).")
@json_option
def drain(name, force, as_json):
    """Move every VM off node NAME and keep VMs away from it (for maintenance).

    Sets the node attribute rbdvm-no-vms=true, which every VM rbdvm put under Pacemaker
    avoids: each VM leaves (live if it allows live migration, else stopped and started
    elsewhere); a VM pinned to NAME has nowhere to go and stops. Waits until the cluster has
    settled and reports each VM that ran there. Run it again at will; `rbdvm node resume NAME`
    undoes it. Refused, before anything moves, while a VM on NAME is not signed by this
    cluster (rbdvm trust).
    """
    r = maintenance.drain(cluster_env(), name, untrusted_ok=force)
    emit(as_json, r, lambda r: [f"node {name} drained" + ("" if r["changed"] else " (it already was)")
                                + ("" if r["settled"] else "; the cluster has not settled yet")]
         + [_vm_line(name, v) for v in r["vms"]])


@node.command()
@click.argument("name")
@json_option
def resume(name, as_json):
    """Let node NAME take VMs again; VMs that prefer it come back."""
    r = maintenance.resume(cluster_env(), name)
    emit(as_json, r, lambda r: f"node {name} takes VMs again" + ("" if r["changed"] else " (it was not drained)")
         + (f"; running there: {', '.join(r['vms'])}" if r["vms"] else ""))
