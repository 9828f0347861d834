"""rbdvm node list | drain | resume."""

import os
import sys

import click

from rbdvm.helpers.core import defaults
from rbdvm.helpers.core.settings import ceph_target_from_env
from rbdvm.helpers.ops import maintenance

from .options import cluster_env, emit, escaped, json_option, table


def _maintenance_options(fn):
    """--maintenance and the Ceph user and CRUSH host it acts with (drain and resume)."""
    fn = click.option("--ceph-host", metavar="HOST",
                      help="The node's CRUSH host, if it is not named as the node [default: NAME]")(fn)
    fn = click.option("--conf", "ceph_conf", metavar="FILE",
                      help=f"ceph.conf of the cluster [default: {defaults.CEPH_CONF}, or RBDVM_CEPH_CONF]")(fn)
    fn = click.option("--maintenance-id", metavar="USER",
                      default=lambda: os.environ.get("RBDVM_MAINTENANCE_ID", defaults.MAINTENANCE_CEPH_ID),
                      help=f"Ceph user that may set noout [default: {defaults.MAINTENANCE_CEPH_ID}, or "
                           "RBDVM_MAINTENANCE_ID]; docs/day-two.md gives its capabilities")(fn)
    return click.option("--maintenance", "for_maintenance", is_flag=True,
                        help="A hyperconverged node about to go down: also keep Ceph from rebalancing "
                             "(noout on the node's OSDs) until resume.")(fn)


def _maintenance_target(for_maintenance, maintenance_id, ceph_conf):
    if not for_maintenance:
        return None
    # mon commands only: the pool is whichever the session opens
    return ceph_target_from_env(conf=ceph_conf, client_id=maintenance_id)


def _ceph_line(r) -> list:
    c = r.get("ceph")
    if not c:
        return []
    if "osds" in c:
        return [f"Ceph: noout set on host {c['host']} (osd {', '.join(map(str, c['osds']))}): no rebalancing "
                "while it is down" if c["osds"] else f"Ceph: host {c['host']} has no OSDs: nothing to keep in"]
    return [f"Ceph: noout cleared on host {c['host']}" + ("" if c["was_set"] else " (it was not set)")]


@click.group()
def node():
    """The cluster's nodes: list them, drain one of VMs for maintenance, resume it."""


@node.command("list")
@json_option
def list_(as_json):
    """Nodes, their state (online, standby, maintenance, offline), whether they take VMs
    (drained by rbdvm, or none: no hypervisor there, an observer), the VMs running on each
    and their utilization."""
    rows = maintenance.node_list(cluster_env())
    emit(as_json, rows, lambda rs: table(rs, [
        ("NODE", "name"), ("STATE", "state"),
        ("VMS", lambda r: "none (no hypervisor)" if not r["hypervisor"] else "drained" if r["drained"] else "taken"),
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
@click.option("--limit", type=click.IntRange(min=1), metavar="N",
              help="At most N live migrations at once per node: sets the cluster's migration-limit "
                   "(Pacemaker's own throttle, which stays for every later move; unlimited by default).")
@_maintenance_options
@json_option
def drain(name, force, limit, for_maintenance, maintenance_id, ceph_conf, ceph_host, as_json):
    """Move every VM off node NAME and keep VMs away from it (for maintenance).

    Sets the node attribute rbdvm-no-vms=true, which every VM rbdvm put under Pacemaker
    avoids: each VM leaves (live if it allows live migration, else stopped and started
    elsewhere); a VM pinned to NAME has nowhere to go and stops. Waits until the cluster has
    settled and reports each VM that ran there, highest priority first: where it went, and
    for one that did not move, why. Pacemaker moves them side by side (--limit bounds how
    many), higher priorities placed first; one VM's failed migration stops no other. On a
    terminal each VM's progress is shown as it happens. Run it again at will;
    `rbdvm node resume NAME` undoes it. Refused, before anything moves, while a VM on NAME
    is not signed by this cluster (rbdvm trust).

    --maintenance (a hyperconverged node about to reboot): refused, before anything moves,
    while Ceph is not HEALTH_OK or a VM on NAME could run on no other node; once the VMs are
    away, sets noout on NAME's CRUSH host so Ceph does not rebalance while its OSDs are down.
    `rbdvm node resume NAME --maintenance` clears it.
    """
    r = maintenance.drain(cluster_env(), name, untrusted_ok=force,
                          maintenance=_maintenance_target(for_maintenance, maintenance_id, ceph_conf),
                          ceph_host=ceph_host, limit=limit, progress=_Progress(name) if _on_terminal() else None)
    emit(as_json, r, lambda r: [f"node {name} drained" + ("" if r["changed"] else " (it already was)")
                                + ("" if r["settled"] else "; the cluster has not settled yet")
                                + (f" (migration-limit {r['migration_limit']})" if r["migration_limit"] else "")]
         + [_vm_line(name, v) for v in r["vms"]] + _ceph_line(r))


def _on_terminal() -> bool:
    return sys.stderr.isatty()


class _Progress:
    """A drain's progress on the terminal (stderr): a line each time a VM changes state."""

    def __init__(self, node_name: str):
        self.node = node_name
        self.seen: dict[str, str] = {}

    def __call__(self, report: list) -> None:
        gone = sum(1 for v in report if v["node"] != self.node)
        for v in report:
            line = _vm_line(self.node, v).strip()
            if self.seen.get(v["name"]) != line:
                self.seen[v["name"]] = line
                click.echo(f"[{gone}/{len(report)} off {escaped(self.node)}] {escaped(line)}", err=True)


@node.command()
@click.argument("name")
@_maintenance_options
@json_option
def resume(name, for_maintenance, maintenance_id, ceph_conf, ceph_host, as_json):
    """Let node NAME take VMs again; VMs that prefer it come back. --maintenance first clears
    the noout a `drain --maintenance` set on its OSDs."""
    r = maintenance.resume(cluster_env(), name,
                           maintenance=_maintenance_target(for_maintenance, maintenance_id, ceph_conf),
                           ceph_host=ceph_host)
    emit(as_json, r, lambda r: [f"node {name} takes VMs again" + ("" if r["changed"] else " (it was not drained)")
                                + (f"; running there: {', '.join(r['vms'])}" if r["vms"] else "")]
         + _ceph_line(r))
