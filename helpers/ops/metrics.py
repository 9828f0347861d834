"""The metrics `rbdvm exporter` serves: per VM (state wanted and actual, node, failures,
trust, storage, snapshots, backups, migrations, failovers) and per node (online, fenced,
drained, the self-check's last sign of life), read from three sources, each within a
deadline: Pacemaker (one crm_mon and one CIB nodes query), Ceph (the VM listing with trust
and pool health, the blocklist, the alive stamps) and the event history.

A source that does not answer in time is marked (rbdvm_up{source} 0) and its metrics are
left out: never a stale value passed off as fresh. The number of calls does not grow with
the number of VMs, except one read of each VM's group header for its snapshot count.
"""

import time

from ..ceph import alive, blocklist, osdflags, pghealth, rbdbulk
from ..core import events, hostnames, promtext, timeline, timeouts
from ..core.bounded import Hung, bounded
from ..core.errors import RbdvmError
from ..core.settings import CephTarget
from ..pacemaker import crm_mon, nodes
from . import history, inventory
from .env import Env

SOURCES = ("pacemaker", "ceph", "history")
# what the history is read over for the counters and the last of each kind
HISTORY_DAYS = 31

# name -> (type, help), declared once: the exposition and the docs' table come from it
METRICS = {
    "rbdvm_up": ("gauge", "Whether the exporter read this source in time (0: its metrics are left out)."),
    "rbdvm_collect_duration_seconds": ("gauge", "How long reading this source took."),
    "rbdvm_collect_timestamp_seconds": ("gauge", "When the metrics served were read."),
    "rbdvm_vm_wanted_running": ("gauge", "1 if the VM is enabled with target role Started."),
    "rbdvm_vm_running": ("gauge", "1 if Pacemaker shows the VM running (started or migrating)."),
    "rbdvm_vm_node": ("gauge", "1 for the node the VM runs on."),
    "rbdvm_vm_failed": ("gauge", "1 if Pacemaker shows the VM failed."),
    "rbdvm_vm_failures": ("gauge", "Failed operations of the VM Pacemaker keeps on record."),
    "rbdvm_vm_trusted": ("gauge", "1 if the VM's definition and settings are signed by this cluster."),
    "rbdvm_vm_storage_degraded": ("gauge", "1 if the VM's pool has placement groups not fully replicated."),
    "rbdvm_vm_snapshots": ("gauge", "Snapshots of the VM (its RBD group's)."),
    "rbdvm_vm_last_backup_timestamp_seconds": ("gauge", "When the VM's last backup (rbdvm backup) began."),
    "rbdvm_vm_last_backup_success": ("gauge", "1 if the VM's last backup succeeded."),
    "rbdvm_vm_last_successful_backup_timestamp_seconds": ("gauge", "When the VM's last successful backup began."),
    "rbdvm_vm_last_migration_downtime_seconds": ("gauge", "The guest's downtime in its last live migration."),
    "rbdvm_vm_last_failover_duration_seconds": ("gauge", "The VM's last failover, crash to running again."),
    "rbdvm_vm_last_failover_phase_seconds": ("gauge", "Each phase of the VM's last failover."),
    "rbdvm_vm_last_failover_timestamp_seconds": ("gauge", "When the VM's last failover began (the crash)."),
    "rbdvm_vm_failovers_total": ("counter", "Failovers of the VM in the history kept (31 days)."),
    "rbdvm_vm_migrations_total": ("counter", "Live migrations of the VM in the history kept (31 days)."),
    "rbdvm_node_online": ("gauge", "1 if Pacemaker shows the node online."),
    "rbdvm_node_drained": ("gauge", "1 if the node is drained (rbdvm node drain): it takes no VMs."),
    "rbdvm_node_fenced": ("gauge", "1 if Ceph's blocklist holds an entry for the node's address."),
    "rbdvm_node_noout": ("gauge", "1 if the OSDs of the node's CRUSH host have noout (node drain --maintenance)."),
    "rbdvm_node_selfcheck_last_seen_timestamp_seconds": (
        "gauge", "When the node's fence self-check last found it clear (its alive stamp)."),
    "rbdvm_cluster_quorate": ("gauge", "1 if this node's Pacemaker partition has quorum."),
    "rbdvm_history_unreadable_lines": ("gauge", "Lines of the history that are not rbdvm records (skipped)."),
}


class _Out:
    """The samples one source read: added to the families only once the source is done (one
    given up on, still running in its thread, writes into its own)."""

    def __init__(self):
        self.samples: list = []

    def __call__(self, name: str, value, **labels) -> None:
        if name not in METRICS:
            raise KeyError(name)
        self.samples.append((name, value, labels))


def collect(env: Env, target: CephTarget, budget: float = timeouts.EXPORTER_COLLECT) -> str:
    """The exposition text, every source read within `budget` seconds."""
    families = {name: promtext.Family(name, kind, text) for name, (kind, text) in METRICS.items()}
    box: dict = {}
    end = time.monotonic() + budget
    for source, read in (("pacemaker", _pacemaker), ("ceph", _ceph), ("history", _history)):
        t0, out = time.monotonic(), _Out()
        try:
            bounded(end, read, env, target, out, box)
            ok = 1
        except (Hung, RbdvmError):
            ok, out.samples = 0, []
        for name, value, labels in out.samples:
            families[name].add(value, **labels)
        families["rbdvm_up"].add(ok, source=source)
        families["rbdvm_collect_duration_seconds"].add(time.monotonic() - t0, source=source)
    families["rbdvm_collect_timestamp_seconds"].add(time.time())
    return promtext.render(families.values())


def _pacemaker(env: Env, target: CephTarget, out: _Out, box: dict) -> None:
    status, cib_nodes = env.cluster.cluster_status(), env.cluster.cib_nodes()
    rows = []
    for vm in crm_mon.enabled_vms(status):
        st = crm_mon.vm_status(status, vm, True)
        rows.append((vm, st, len(crm_mon.failures(status, vm))))
    node_rows = nodes.describe(status, cib_nodes)
    quorate = status.find("summary/current_dc")
    # gathered first, written after: a source that fails half way leaves nothing half written
    for vm, st, failures in rows:
        out("rbdvm_vm_wanted_running", int(st["target"] == "Started"), vm=vm)
        out("rbdvm_vm_running", int(st["status"] in ("Started", "Migrating")), vm=vm)
        out("rbdvm_vm_failed", int(st["status"] == "Failed"), vm=vm)
        out("rbdvm_vm_failures", failures, vm=vm)
        if st["node"]:
            out("rbdvm_vm_node", 1, vm=vm, node=st["node"])
    for n in node_rows:
        out("rbdvm_node_online", int(n["state"] == "online"), node=n["name"])
        out("rbdvm_node_drained", int(n["drained"]), node=n["name"])
    out("rbdvm_cluster_quorate", int(quorate is not None and quorate.get("with_quorum") == "true"))
    box["nodes"] = [n["name"] for n in node_rows]


def _ceph(env: Env, target: CephTarget, out: _Out, box: dict) -> None:
    with env.open_session(target, osd_op_timeout=timeouts.EXPORTER_OSD_OP) as session:
        vms = inventory.list_vms(Env(session=session, cluster=env.cluster))
        snaps = rbdbulk.group_snapshot_counts(session, [v["name"] for v in vms])
        listed = blocklist.entries(session)
        node_names = box.get("nodes") or sorted(set(hostnames.cluster_addresses().values()))
        stamps = {n: alive.last_seen(session, n) for n in node_names}
        flagged = osdflags.flagged_hosts(session)
    box["vms"] = {v["name"] for v in vms}
    addresses = hostnames.cluster_addresses()
    fenced = {addresses.get(e.rsplit(":", 1)[0]) for e in listed if e.endswith(":0/0")}
    for v in vms:
        out("rbdvm_vm_trusted", int(v["trust"] == "signed"), vm=v["name"])
        out("rbdvm_vm_storage_degraded", int(v["storage_health"] == pghealth.DEGRADED), vm=v["name"])
        if v["name"] in snaps:
            out("rbdvm_vm_snapshots", snaps[v["name"]], vm=v["name"])
    for n in node_names:
        out("rbdvm_node_fenced", int(n in fenced), node=n)
        # a node's CRUSH host is named as the node (node drain --maintenance's default)
        out("rbdvm_node_noout", int(osdflags.NOOUT in flagged.get(n, [])), node=n)
        if stamps.get(n) is not None:
            out("rbdvm_node_selfcheck_last_seen_timestamp_seconds", stamps[n], node=n)


def _history(env: Env, target: CephTarget, out: _Out, box: dict) -> None:
    with env.open_session(target, osd_op_timeout=timeouts.EXPORTER_OSD_OP) as session:
        reading = history.read(Env(session=session, cluster=env.cluster), time.time() - HISTORY_DAYS * 86400)
    # each VM's records once (a cluster's month of them, read for every VM, would cost VMs x
    # records), with the nodes' records a failover is dated by
    own: dict = {}
    for e in reading.events:
        if e.vm:
            own.setdefault(e.vm, []).append(e)
    nodes_events = [e for e in reading.events if e.kind in events.NODE_KINDS and not e.vm]
    # the VMs that exist, when Ceph said so (a removed VM's history is not a metric)
    vms = sorted(vm for vm in own if "vms" not in box or vm in box["vms"])
    for vm in vms:
        backups = [e for e in own[vm] if e.kind == "backup"]
        if backups:
            out("rbdvm_vm_last_backup_timestamp_seconds", backups[-1].at, vm=vm)
            out("rbdvm_vm_last_backup_success", int(backups[-1].ok), vm=vm)
            good = [e for e in backups if e.ok]
            if good:
                out("rbdvm_vm_last_successful_backup_timestamp_seconds", good[-1].at, vm=vm)
        moves = timeline.moves(own[vm] + nodes_events, vm)
        migrations = [m for m in moves if m.kind == "migration" and m.ok]
        failovers = [m for m in moves if m.kind == "failover"]
        out("rbdvm_vm_migrations_total", len(migrations), vm=vm)
        out("rbdvm_vm_failovers_total", len(failovers), vm=vm)
        if migrations and migrations[-1].downtime_ms is not None:
            out("rbdvm_vm_last_migration_downtime_seconds", migrations[-1].downtime_ms / 1000, vm=vm)
        if failovers:
            last = failovers[-1]
            out("rbdvm_vm_last_failover_duration_seconds", last.took, vm=vm)
            out("rbdvm_vm_last_failover_timestamp_seconds", last.began, vm=vm)
            for name, seconds in _phase_totals(last.phases):
                out("rbdvm_vm_last_failover_phase_seconds", seconds, vm=vm, phase=name)
    out("rbdvm_history_unreadable_lines", reading.skipped)


def _phase_totals(phases) -> list:
    """Each phase name once (a name repeated adds up), in order."""
    totals: dict = {}
    for name, seconds in phases:
        totals[name] = totals.get(name, 0.0) + seconds
    return list(totals.items())
