"""enable / disable / start / stop / status / migrate: the VM's life in the cluster."""

from . import cluster, names, vmstore
from .ceph import Session
from .errors import Conflict, NotFound, RbdvmError, UsageError

START_WAIT, STOP_WAIT, MIGRATE_WAIT = 120, 150, 180


class ClusterOperationFailed(RbdvmError):
    exit_code = 1


def _not_on_cluster(vm: str) -> NotFound:
    return NotFound("VM is not on the cluster", f"VM {vm} has no Pacemaker resource",
                    f"Enable it first: rbdvm enable {vm}")


def _failed(vm: str, st: dict, doing: str) -> ClusterOperationFailed:
    return ClusterOperationFailed(f"VM {vm} failed to {doing}",
                                  st.get("reason") or f"its status is {st['status']}",
                                  f"Fix the cause, then `rbdvm disable {vm}` and `rbdvm enable {vm}`")


def enable(session: Session, vm: str, start: bool = True, wait: float = START_WAIT) -> dict:
    names.check_name(vm, "VM name")
    rec = vmstore.require_complete(session, vm)
    status = cluster.cluster_status()
    if cluster.is_enabled(status, vm):
        st = cluster.vm_status(status, vm, True)
        return {**st, "changed": False}
    cluster.add_resource(vm, session.target, rec.metadata, start)
    st = cluster.wait_for_status(vm, ("Started",) if start else ("Stopped",), wait)
    if st["status"] == "Failed" or (start and st["status"] != "Started"):
        raise _failed(vm, st, "start")
    return {**st, "changed": True}


def disable(session: Session, vm: str, wait: float = STOP_WAIT) -> dict:
    names.check_name(vm, "VM name")
    status = cluster.cluster_status()
    if not cluster.is_enabled(status, vm):
        return {"name": vm, "status": "Disabled", "changed": False}
    st = cluster.vm_status(status, vm, True)
    if st["status"] != "Stopped":
        cluster.set_target_role(vm, "Stopped")
        st = cluster.wait_for_status(vm, ("Stopped",), wait)
        if st["status"] == "Failed":
            # a failed resource counts as stopped once its failure is cleared (Pacemaker
            # keeps it from running); if it still runs somewhere, do not pull it out
            if st["node"]:
                raise _failed(vm, st, "stop")
    cluster.remove_resource(vm)
    return {"name": vm, "status": "Disabled", "changed": True}


def _set_role(vm: str, role: str, wanted: str, wait: float) -> dict:
    names.check_name(vm, "VM name")
    if not cluster.is_enabled(cluster.cluster_status(), vm):
        raise _not_on_cluster(vm)
    cluster.set_target_role(vm, role)
    st = cluster.wait_for_status(vm, (wanted,), wait)
    if st["status"] != wanted:
        raise _failed(vm, st, role.lower().replace("started", "start").replace("stopped", "stop"))
    return st


def start(vm: str, wait: float = START_WAIT) -> dict:
    if cluster.is_enabled(cluster.cluster_status(), vm):
        # an operator's start is a fresh attempt: forget earlier failures first
        cluster._run(["crm_resource", "--cleanup", "--resource", vm], timeout=60)
    return _set_role(vm, "Started", "Started", wait)


def stop(vm: str, wait: float = STOP_WAIT) -> dict:
    return _set_role(vm, "Stopped", "Stopped", wait)


def status(session: Session, vm: str) -> dict:
    names.check_name(vm, "VM name")
    rec = vmstore.record(session, vm)
    return cluster.vm_status(cluster.cluster_status(), vm, rec.state != "absent")


def list_status(session: Session) -> list:
    """Every VM of the pool/namespace with its cluster status: one listing, one crm_mon."""
    from .provision import list_vms

    vms = list_vms(session)
    try:
        status = cluster.cluster_status()
    except RbdvmError:
        status = None   # not a cluster node: storage facts only
    out = []
    for v in vms:
        st = cluster.vm_status(status, v["name"], True) if status is not None else \
            {"status": "Disabled", "node": None, "reason": None}
        out.append({**v, **{k: st[k] for k in ("status", "node", "reason")}})
    return out


def migrate(session: Session, vm: str, node: str, wait: float = MIGRATE_WAIT) -> dict:
    """Live migration through Pacemaker: move, wait, clear the temporary constraint."""
    names.check_name(vm, "VM name")
    rec = vmstore.require_complete(session, vm)
    status = cluster.cluster_status()
    if not cluster.is_enabled(status, vm):
        raise _not_on_cluster(vm)
    if node not in cluster.cluster_nodes(status):
        raise UsageError(f"{node} is not a cluster node", f"nodes: {', '.join(cluster.cluster_nodes(status))}")
    if rec.metadata.get("_live_migration") != "true":
        raise Conflict(f"VM {vm} does not allow live migration",
                       "its _live_migration setting is not true",
                       "Recreate or clone it with --live-migration, or stop and start it elsewhere")
    st = cluster.vm_status(status, vm, True)
    if st["status"] != "Started":
        raise Conflict(f"VM {vm} is {st['status']}, not running", "only a running VM migrates live",
                       f"Start it: rbdvm start {vm}")
    if st["node"] == node:
        return {**st, "changed": False}
    cluster._run(["crm_resource", "--move", "--resource", vm, "--node", node])
    try:
        st = cluster.wait_for_status(vm, ("Started",), wait, node=node)
    finally:
        cluster._run(["crm_resource", "--clear", "--resource", vm])
    if st["status"] != "Started" or st["node"] != node:
        raise _failed(vm, st, f"migrate to {node}")
    return {**st, "changed": True}
