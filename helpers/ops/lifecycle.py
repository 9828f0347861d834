"""enable / disable / start / stop / status / migrate: the VM's life in the cluster."""

from ..ceph import rbdbulk, trust, vmstore
from ..core import domainxml, hints, migstats, names, timeouts, vmschema
from ..core.errors import Conflict, NotFound, RbdvmError
from ..core.faults import checkpoint
from ..core.hints import Hint
from ..core.vmschema import VmState
from ..pacemaker import cib, crm_mon
from ..pacemaker.crm_mon import NOT_PLACED  # also the CLI's word for it
from . import inventory, removal, running, snapshots
from .env import Env


class ClusterOperationFailed(RbdvmError):
    exit_code = 1


def _not_on_cluster(vm: str) -> NotFound:
    return NotFound("VM is not on the cluster", f"VM {vm} has no Pacemaker resource",
                    f"Enable it first: rbdvm enable {vm}", code="VM_NOT_ENABLED", details={"vm": vm})


def _failed(vm: str, st: dict, doing: str) -> ClusterOperationFailed:
    if st.get("reason") == NOT_PLACED:
        return ClusterOperationFailed(f"VM {vm} failed to {doing}", st["reason"],
                                      f"Check its pinned host and colocations (`rbdvm info {vm}`) and the "
                                      "nodes (`crm_mon -1`): the cluster starts it once a node may run it")
    return ClusterOperationFailed(f"VM {vm} failed to {doing}",
                                  st.get("reason") or f"its status is {st['status']}",
                                  f"Fix the cause, then `rbdvm disable {vm}` and `rbdvm enable {vm}`")


def enable(env: Env, vm: str, start: bool = True, wait: float = timeouts.START_WAIT, strict: bool = False) -> dict:
    """Put the VM under Pacemaker and wait for it to run (or to be Stopped, `start` False).
    `strict`: refused (N_PLUS_ONE) before anything changes if, with the VM running, the
    loss of some single node would leave VMs that could not restart anywhere."""
    session = env.session
    names.check_name(vm, "VM name")
    rec = vmstore.require_complete(session, vm)
    status = env.cluster.cluster_status()
    if crm_mon.is_enabled(status, vm):
        st = crm_mon.vm_status(status, vm, True)
        return {**st, "changed": False}
    # the resource is built from the settings, and the agent starts the definition: both
    # must be this cluster's (the agent checks the definition again at every start)
    trust.require_settings(session, vm, rec.metadata, f"cannot enable VM {vm}")
    trust.require_definition(session, vm, rec.metadata, f"cannot enable VM {vm}")
    enabled = crm_mon.enabled_vms(status)
    config = vmschema.VmConfig.of(rec.metadata)
    if config.remote_node:
        crm_mon.check_guest_node_name(status, vm, config.remote_node)
    inbound = _inbound(env, vm, enabled)
    if strict and start:
        from . import capacity

        uses = _definition_utilization(config, rec.metadata)
        capacity.refuse_short(env, cib.resource_fragment(vm, session.target, config, start, enabled, inbound, uses),
                              f"enabling VM {vm}")
    env.cluster.add_resource(vm, session.target, config, start, enabled, inbound)
    _forget_reenable(env, vm, rec.metadata)
    st = env.cluster.wait_for_status(vm, ("Started",) if start else ("Stopped",), wait)
    if st["status"] == "Failed" or (start and st["status"] != "Started"):
        raise _failed(vm, st, "start")
    return {**st, "changed": True}


def _definition_utilization(config: vmschema.VmConfig, metadata: dict) -> dict:
    """What the agent will set as the VM's utilization at its start (its definition's cpu
    and hv_memory, unless the resource's parameters turn that off)."""
    try:
        uses = domainxml.utilization(metadata.get(vmschema.XML, ""))
    except RbdvmError:
        return {}
    off = {k for k in ("cpu", "hv_memory")
           if config.pacemaker_params.get(f"autoset_utilization_{k}", "true").lower() in ("false", "0", "no", "off")}
    return {k: v for k, v in uses.items() if k not in off}


def _inbound(env: Env, vm: str, enabled) -> dict:
    """{other VM: its colocation with `vm`} for the enabled VMs that declared one: disabling
    `vm` removed those constraints (a constraint cannot name a missing resource)."""
    session = env.session
    found = {}
    for other, header in rbdbulk.system_headers(session, [o for o in enabled if o != vm]).items():
        metadata = rbdbulk.metadata(header)
        if trust.settings_verdict(session, other, metadata)[0] != trust.SIGNED:
            continue     # a colocation only another VM's signed settings declare
        for colo in vmschema.colocations(metadata):
            if colo["with"] == vm:
                found[other] = colo
    return found


def _forget_reenable(env: Env, vm: str, metadata=None) -> None:
    """Drop an interrupted rollback's note that the VM is to be enabled again."""
    session = env.session
    if metadata is not None and vmschema.REENABLE not in metadata:
        return
    try:
        vmstore.set_metadata(session, names.system_disk(vm), {}, remove=[vmschema.REENABLE])
    except NotFound:
        pass


def disable(env: Env, vm: str, wait: float = timeouts.STOP_WAIT) -> dict:
    names.check_name(vm, "VM name")
    out = _disable(env, vm, wait)
    _forget_reenable(env, vm)      # the operator's disable: no rollback re-enables it
    return out


def _disable(env: Env, vm: str, wait: float = timeouts.STOP_WAIT) -> dict:
    status = env.cluster.cluster_status()
    if not crm_mon.is_enabled(status, vm):
        return {"name": vm, "status": "Disabled", "changed": False}
    env.cluster.refuse_operators_constraints(vm)     # before the VM is stopped for nothing
    st = crm_mon.vm_status(status, vm, True)
    if st["status"] != "Stopped" or crm_mon.target_role(status, vm) != "Stopped":
        # a VM meant to run but Stopped now (no node had room, or it failed) may be started
        # any moment (room freed elsewhere): it is told to stop too
        env.cluster.set_target_role(vm, "Stopped")
        st = env.cluster.wait_for_status(vm, ("Stopped",), wait)
        if st["status"] == "Failed":
            # a failed resource counts as stopped once its failure is cleared (Pacemaker
            # keeps it from running); if it still runs somewhere, do not pull it out
            if st["node"]:
                raise _failed(vm, st, "stop")
    # an action still in flight (a start decided elsewhere, e.g. by the other side of a
    # healed partition) would run on after remove_resource has erased its history: an
    # orphan QEMU no one stops. Remove only once the cluster has settled with the VM stopped.
    env.cluster.settle(wait)
    st = crm_mon.vm_status(env.cluster.cluster_status(), vm, True)
    if st["node"]:
        raise _failed(vm, st, "stop")
    env.cluster.remove_resource(vm)
    return {"name": vm, "status": "Disabled", "changed": True}


def _set_role(env: Env, vm: str, role: str, verb: str, wait: float, clear_failures: bool = False) -> dict:
    """Set the target role (Started/Stopped) and wait until the VM has it."""
    names.check_name(vm, "VM name")
    if not crm_mon.is_enabled(env.cluster.cluster_status(), vm):
        raise _not_on_cluster(vm)
    if clear_failures:
        env.cluster.cleanup(vm)
    env.cluster.set_target_role(vm, role)
    st = env.cluster.wait_for_status(vm, (role,), wait)
    if st["status"] != role:
        raise _failed(vm, st, verb)
    return st


def start(env: Env, vm: str, wait: float = timeouts.START_WAIT) -> dict:
    # an operator's start is a fresh attempt: earlier failures are forgotten first
    return _set_role(env, vm, "Started", "start", wait, clear_failures=True)


def stop(env: Env, vm: str, wait: float = timeouts.STOP_WAIT) -> dict:
    return _set_role(env, vm, "Stopped", "stop", wait)


def status(env: Env, vm: str) -> dict:
    session = env.session
    names.check_name(vm, "VM name")
    rec = vmstore.record(session, vm)
    return crm_mon.vm_status(env.cluster.cluster_status(), vm, rec.state != VmState.ABSENT)


def status_words(env: Env, vm: str, st: dict | None = None) -> str:
    """The VM's status as SEAPATH's cluster_vm words it: Undefined, Disabled, or Pacemaker's
    own text of its resource ("Started node1", "Stopped (disabled)"); `st`: its status()."""
    st = st or status(env, vm)
    if st["status"] in ("Undefined", "Disabled"):
        return st["status"]
    return env.cluster.status_text(vm) or st["status"]


def list_status(env: Env) -> list:
    """Every VM of the pool/namespace with its cluster status: one listing, one crm_mon."""
    vms = inventory.list_vms(env)
    try:
        status = env.cluster.cluster_status()
    except RbdvmError:
        status = None   # not a cluster node: storage facts only
    out = []
    for v in vms:
        st = crm_mon.vm_status(status, v["name"], True)
        out.append({**v, **{k: st[k] for k in ("status", "node", "reason", "target")}})
    return out


def migrate(env: Env, vm: str, node: str, wait: float = timeouts.MIGRATE_WAIT, cold: bool = False,
            strict: bool = False) -> dict:
    """Move a running VM to `node` through Pacemaker: move, wait, clear the temporary
    constraint. Live (no reboot) if its settings allow it; `cold`: stopped here and started
    there (the only way for a VM without live migration; asked for, also for one with it).
    `strict`: refused (N_PLUS_ONE) before anything changes if, with the VM on `node`, the
    loss of some single node would leave VMs that could not restart anywhere."""
    status = env.cluster.cluster_status()
    live, st = _movable(env, vm, node, status, cold)
    how = "cold" if cold else "live"
    if st["node"] == node:
        return {**st, "changed": False, "how": how}
    if strict:
        from . import capacity

        capacity.refuse_short(env, cib.moved_to(vm, node), f"moving VM {vm} to {node}")
    source = st["node"]
    seen = {_failure_id(f) for f in crm_mon.failures(status, vm)}
    if live:
        # Pacemaker migrates a resource that allows it: for a cold move, it does not. Set
        # either way: a cold move interrupted before it set it back left it false
        env.cluster.set_meta(vm, "allow-migrate", "false" if cold else "true")
    env.cluster.move(vm, node)
    broken = None
    try:
        st = env.cluster.wait_for_status(vm, ("Started",), wait, node=node)
        if not cold:
            broken = _failed_live_migration(env, vm, seen)
            if broken:
                how = "restarted"
                env.cluster.settle(wait)
                st = crm_mon.vm_status(env.cluster.cluster_status(), vm, True)
    finally:
        env.cluster.clear_move(vm)
        if cold and live:
            env.cluster.set_meta(vm, "allow-migrate", "true")
    measured = _measured(env, vm, node) if how == "live" and st["node"] == node else None
    if st["status"] != "Started" or st["node"] != node:
        if broken:
            raise ClusterOperationFailed(f"VM {vm} failed to migrate to {node}",
                                         f"{broken}; it is {st['status']} now"
                                         + (f" on {st['node']}" if st["node"] else ""),
                                         f"See `crm_mon -1` and `rbdvm status {vm}`")
        raise _failed(vm, st, f"migrate to {node}")
    # a live migration that fails is recovered by Pacemaker with a stop here and a start
    # there: the VM moved, but its guest rebooted, and the operator must hear it
    warning = (f"{broken}; Pacemaker stopped VM {vm} on {source} and started it on {node}: the guest rebooted"
               if broken else None)
    return {**st, "changed": True, "how": how, **({"warning": warning} if warning else {}),
            **({"migration": measured} if measured else {})}


def _movable(env: Env, vm: str, node: str, status, cold: bool) -> tuple:
    """(whether the VM migrates live, its status) of a VM that may move to `node` now;
    the reason it may not, raised."""
    session = env.session
    names.check_name(vm, "VM name")
    rec = vmstore.require_complete(session, vm)
    if not crm_mon.is_enabled(status, vm):
        raise _not_on_cluster(vm)
    crm_mon.check_node(status, node)
    # a VM whose definition would be refused at its next start is not moved: a move ends
    # in that start (cold) or in the check after a live migration, and the VM stops
    trust.require_definition(session, vm, rec.metadata, f"cannot move VM {vm}")
    live = vmschema.VmConfig.of(rec.metadata).live_migration
    if not live and not cold:
        raise Conflict(f"VM {vm} does not allow live migration",
                       "its _live_migration setting is not true",
                       hint=Hint(hints.LIVE_MIGRATION, {"vm": vm}))
    st = crm_mon.vm_status(status, vm, True)
    if st["status"] != "Started":
        raise Conflict(f"VM {vm} is {st['status']}, not running", "only a running VM migrates live",
                       f"Start it: rbdvm start {vm}", code="VM_NOT_RUNNING", details={"vm": vm, "status": st["status"]})
    return live, st


def _failed_live_migration(env: Env, vm: str, seen: set) -> str | None:
    """What failed of the live migration just asked for (a migrate_to or migrate_from
    failure not in `seen`), or None."""
    failed = [f for f in crm_mon.failures(env.cluster.cluster_status(), vm)
              if f["task"] in ("migrate_to", "migrate_from") and _failure_id(f) not in seen]
    if not failed:
        return None
    f = failed[-1]
    return (f"the live migration failed ({f['task']} on {f['node']}: "
            + (f["reason"] or f"{f['status']}; the agent's message is in the Pacemaker log of {f['node']}") + ")")


def _measured(env: Env, vm: str, node: str) -> dict | None:
    """The live migration's downtime and total time, from the destination's libvirt (its
    completed job); None if it cannot say (the move itself succeeded either way)."""
    try:
        with env.open_domain(running.libvirt_uri(env, env.cluster.resource(vm), node), vm) as d:
            return migstats.summary(d.completed_job())
    except RbdvmError:
        return None


def _failure_id(f: dict) -> tuple:
    return f["task"], f["node"], f["call"]


def enable_new(env: Env, vm: str, made: str) -> dict:
    """`enable` right after a create or clone: a failure says the VM itself exists."""
    try:
        return enable(env, vm)
    except RbdvmError as exc:
        raise exc.reworded(f"VM {vm} was {made} but not started: {exc.what}") from None


def remove(env: Env, vm: str, force: bool = False) -> dict:
    """Remove a VM; an enabled one only with `force`, which disables it first."""
    names.check_name(vm, "VM name")
    if env.cluster.has_resource(vm):      # False on a host without Pacemaker: storage-only hosts remove too
        if not force:
            raise Conflict(f"VM {vm} is enabled in the cluster",
                           "removing it would pull its disks from under Pacemaker",
                           hint=Hint(hints.FORCE_REMOVE, {"vm": vm}), code="VM_ENABLED", details={"vm": vm})
        _disable(env, vm)
    return removal.remove(env, vm)


def rollback(env: Env, vm: str, snap: str) -> dict:
    """Snapshot rollback; an enabled VM is disabled for it and enabled again afterwards
    with the same target role, also when the rollback fails. The role to restore is noted
    in the VM's metadata first, so a rollback interrupted while the VM is disabled enables
    it again when it is run again."""
    session = env.session
    names.check_name(vm, "VM name")
    rec = snapshots.require_rollback_target(env, vm, snap)
    snapshots.check_rollback(env, rec, snap)     # a wrong name must not cost a restart
    role = rec.metadata.get(vmschema.REENABLE)
    if env.cluster.has_resource(vm):
        env.cluster.refuse_operators_constraints(vm)
        role = crm_mon.vm_status(env.cluster.cluster_status(), vm, True)["target"]
        vmstore.set_metadata(session, names.system_disk(vm), {vmschema.REENABLE: role})
        _disable(env, vm)
        checkpoint("rollback:disabled")
    if role is None:
        return snapshots.rollback(env, vm, snap)
    start = role == "Started"
    try:
        out = snapshots.rollback(env, vm, snap)
    except RbdvmError as failed:
        try:
            again = enable(env, vm, start=start)
        except RbdvmError as also:
            raise ClusterOperationFailed(f"rollback of VM {vm} to {snap} failed, and so did enabling it again",
                                         f"{failed.message}; then {also.message}",
                                         f"Fix both, then `rbdvm enable {vm}`") from failed
        raise ClusterOperationFailed(f"rollback of VM {vm} to {snap} failed", failed.message,
                                     f"The VM is enabled again, unchanged ({again['status']}"
                                     + (f" on {again['node']})" if again.get("node") else ")")) from failed
    try:
        again = enable(env, vm, start=start)
    except RbdvmError as exc:
        raise exc.reworded(f"VM {vm} was rolled back to {snap} but not enabled again: {exc.what}") from None
    return {**out, "cluster": again}
