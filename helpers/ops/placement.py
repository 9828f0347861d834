"""pin / prefer / unpin / colocate: where a VM may run, stored in its metadata (so that
`disable` + `enable` restores it) and, while it is enabled, in the cluster's constraints.

The metadata is written first: an interrupted command leaves the wish recorded, and running
it again brings the constraints in line."""


from ..ceph import trust, vmstore
from ..ceph.lease import Lease
from ..core import names, timeouts, vmschema
from ..core.errors import UsageError
from ..core.vmschema import VmState
from ..pacemaker import cib, crm_mon
from .env import Env


def check_hosts(status, pinned: str | None = None, preferred: str | None = None) -> None:
    """NOT_A_NODE unless the pinned host and every preferred host are cluster nodes."""
    named = [pinned] if pinned else []
    if preferred:
        named += [n for n, _ in vmschema.preferred_hosts(preferred)]
    for node in named:
        crm_mon.check_node(status, node)
        crm_mon.check_hypervisor(status, node)


def _result(status, vm: str, changed: bool, settled: bool) -> dict:
    return {**crm_mon.vm_status(status, vm, True), "changed": changed, "settled": settled}


def _apply(env: Env, vm: str, enabled: bool, changed: bool, update) -> dict:
    """Run `update()` (the CIB change) if the VM is enabled, then wait for the cluster to
    carry out what it implies (a move, a stop) and report the VM's status."""
    settled = True
    if enabled:
        update()
        settled = env.cluster.settle(timeouts.SETTLE_WAIT)
    return _result(env.cluster.cluster_status(), vm, changed, settled)


def _set_host(env: Env, vm: str, node, key: str, verb: str) -> dict:
    """`key` = node (pinned or preferred host, dropping the other one), or node None: neither."""
    session = env.session
    names.check_name(vm, "VM name")
    status = env.cluster.cluster_status()
    check_hosts(status, **({"preferred": node} if key == vmschema.PREFERRED_HOST else {"pinned": node}))
    with Lease(session, vm, verb):
        rec = vmstore.require_complete(session, vm)
        keys = (vmschema.PINNED_HOST, vmschema.PREFERRED_HOST)
        wanted = {key: node} if node is not None else {}
        current = {k: rec.metadata[k] for k in keys if k in rec.metadata}
        changed = current != wanted
        if changed:
            trust.write_settings(session, vm, rec.metadata, wanted, [k for k in keys if k not in wanted],
                                 f"cannot {verb} VM {vm}")
        metadata = {**{k: v for k, v in rec.metadata.items() if k not in keys}, **wanted}

    def update():
        env.cluster.set_placement(vm, vmschema.VmConfig.of(metadata))
    return _apply(env, vm, crm_mon.is_enabled(status, vm), changed, update)


def pin(env: Env, vm: str, node: str) -> dict:
    """The VM runs only on `node`: when that node is away, the VM stops."""
    return _set_host(env, vm, node, vmschema.PINNED_HOST, f"pin {node}")


def prefer(env: Env, vm: str, node: str) -> dict:
    """The VM runs on `node` whenever it can, and goes back there when it returns; `node`
    may be an ordered list or weighted nodes (vmschema.preferred_hosts): the VM runs on
    the most preferred node that is up."""
    return _set_host(env, vm, node, vmschema.PREFERRED_HOST, f"prefer {node}")


def unpin(env: Env, vm: str) -> dict:
    """Neither pinned nor preferred: the cluster places the VM."""
    return _set_host(env, vm, None, "", "unpin")


def colocate(env: Env, vm: str, others, strong: bool = False, anti: bool = False,
             remove: bool = False) -> dict:
    """Keep VM with (or, `anti`, away from) each of `others`: always (`strong`) or when the
    cluster can (`remove`: forget those colocations)."""
    session = env.session
    names.check_name(vm, "VM name")
    others = list(dict.fromkeys(others))
    for other in others:
        names.check_name(other, "VM name")
        if other == vm:
            raise UsageError(f"VM {vm} cannot be colocated with itself")
    status = env.cluster.cluster_status()
    with Lease(session, vm, "colocate"):
        rec = vmstore.require_complete(session, vm)
        if not remove:
            for other in others:
                if vmstore.record(session, other).state == VmState.ABSENT:
                    raise vmstore.no_such_vm(session, other)
        current = vmschema.colocations(rec.metadata)
        kept = [c for c in current if c["with"] not in others]
        added = [] if remove else [{"with": o, "strong": strong, "anti": anti} for o in others]
        wanted = sorted(kept + added, key=lambda c: c["with"])
        changed = wanted != sorted(current, key=lambda c: c["with"])
        if changed:
            trust.write_settings(session, vm, rec.metadata,
                                 {vmschema.COLOCATIONS: vmschema.encode_colocations(wanted)} if wanted else {},
                                 [] if wanted else [vmschema.COLOCATIONS], f"cannot colocate VM {vm}")
    enabled = crm_mon.enabled_vms(status)

    def update():
        if remove:
            env.cluster.delete_constraints([cib.colocation_id(vm, o) for o in others])
        else:
            # with a VM that is not enabled, the constraint is added when that VM is enabled
            env.cluster.set_constraints([cib.colocation(vm, c) for c in added if c["with"] in enabled])
    out = _apply(env, vm, vm in enabled, changed, update)
    out["colocations"] = wanted
    return out
