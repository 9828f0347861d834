"""set: a VM's settings changed after it is created.

The settings are the ones create takes (vmschema.SETTINGS, the same validation). They are
written to the system disk under the VM's lease first (an interrupted `set`, run again,
finishes the job); then, for an enabled VM, its resource is replaced in one atomic CIB change
and its placement constraint brought in line. Pacemaker restarts a running resource only
when its agent's parameters change (cib.restart_needed): `set` says when, and refuses unless
the caller allows it: a surprise restart of a critical VM is worse than a refusal. A new disk
bus changes the definition, which applies at the VM's next start.
"""

from ..ceph import trust, vmstore
from ..ceph.lease import Lease
from ..core import hints, names, timeouts, vmschema
from ..core.errors import Conflict, UsageError
from ..core.faults import checkpoint
from ..core.hints import Hint
from ..pacemaker import cib, crm_mon
from . import definition, placement
from .env import Env

_HOSTS = ("pinned_host", "preferred_host")
_SETTING_KEYS = frozenset(s.key for s in vmschema.SETTINGS)


def merged(metadata: dict, changes: dict) -> dict:
    """{setting: value} once `changes` apply to what `metadata` stores. In `changes`, None
    leaves a setting as it is; a map's KEY with an empty value removes KEY; an empty pinned
    or preferred host removes it, and setting one removes the other; an empty remote_* value
    removes that setting, an empty remote_node the guest node and every remote_* setting. Pure."""
    if all(changes.get(h) for h in _HOSTS):
        raise UsageError("a VM is either pinned or has a preferred host, not both")
    values = vmschema.decode(metadata)
    for name, value in changes.items():
        if value is None:
            continue
        if vmschema.BY_NAME[name].kind == "map":
            current = vmschema.stored_map(metadata, name)
            current.update(value)
            values[name] = {k: v for k, v in current.items() if v != ""}
        elif name in _HOSTS:
            values[name] = value or None
            if value:
                values[_HOSTS[1 - _HOSTS.index(name)]] = None
        elif name == "remote_node" and value == "":
            # no longer a guest node: what described it goes with it
            for remote in vmschema.REMOTE:
                values[remote] = None
        elif name in vmschema.REMOTE and value == "":
            values[name] = None
        else:
            values[name] = value
    return values


def set_settings(env: Env, vm: str, changes: dict, restart: bool = False, strict: bool = False) -> dict:
    """Change VM `vm`'s settings ({name: value}, None: unchanged). Returns what changed, and
    for an enabled VM whether Pacemaker restarted it and its status. `strict`: an enabled
    VM's change is refused (N_PLUS_ONE) before anything is written if the cluster it leaves
    could not restart every VM after the loss of some single node."""
    session = env.session
    names.check_name(vm, "VM name")
    given = {k: v for k, v in changes.items() if v is not None and v != {}}
    if not given:
        raise UsageError(f"nothing to change on VM {vm}", "no setting was given", "Name a setting and its new value")
    enabled = env.cluster.has_resource(vm)
    status = env.cluster.cluster_status() if enabled or any(given.get(h) for h in _HOSTS) else None
    placement.check_hosts(status, given.get("pinned_host"), given.get("preferred_host"))
    if enabled and given.get("remote_node"):
        current = cib.pairs(env.cluster.resource(vm), "meta_attributes").get("remote-node")
        crm_mon.check_guest_node_name(status, vm, given["remote_node"], current)
    with Lease(session, vm, "set"):
        rec = vmstore.require_complete(session, vm)
        stored = vmschema.encode(merged(rec.metadata, given))
        metadata = {k: v for k, v in rec.metadata.items() if k not in _SETTING_KEYS} | stored
        config = vmschema.VmConfig.of(metadata)
        write = {k: v for k, v in stored.items() if rec.metadata.get(k) != v}
        remove = sorted(k for k in _SETTING_KEYS if k in rec.metadata and k not in stored)
        definition_changed = vmschema.DISK_BUS in write
        doing = f"cannot change the settings of VM {vm}"
        if definition_changed:
            write.update(definition.rebuild_definition(env, vm, metadata, rec.disks, bus=config.disk_bus))
        plan = _plan(env, vm, _config_or_default(rec.metadata), config, status, restart) if enabled else None
        if strict and plan is not None:
            from . import capacity

            fragment, gone = cib.settings_fragment(vm, plan["resource"], config)
            capacity.refuse_short(env, fragment, f"changing the settings of VM {vm}", without=gone)
        if write or remove:
            trust.write_settings(session, vm, rec.metadata, write, remove, doing)
        checkpoint("set:stored")
    out = {"name": vm, "changed": sorted(set(write) - {vmschema.XML, vmschema.DEFINITION_SIG} | set(remove)),
           "definition": "applies at the next start" if definition_changed else "unchanged",
           "enabled": enabled}
    if plan is not None:
        out.update(_apply(env, vm, config, plan))
    return out


def _config_or_default(metadata: dict) -> vmschema.VmConfig:
    """The settings before the change; a value another tool stored badly counts as unset."""
    try:
        return vmschema.VmConfig.of(metadata)
    except UsageError:
        return vmschema.VmConfig()


def _plan(env: Env, vm: str, before, after, status, restart: bool) -> dict | None:
    """The VM's resource patched for the new settings (cib.patched: what others set stays),
    and whether it restarts a running VM (refused unless `restart`); None without one."""
    old = env.cluster.resource(vm)
    if old is None:
        return None
    new = cib.patched(old, before, after)
    st = crm_mon.vm_status(status, vm, True)
    restarts = cib.restart_needed(old, new) and st["status"] not in ("Stopped", "Disabled")
    if restarts and not restart:
        raise Conflict(f"this change restarts VM {vm} ({st['status']}" + (f" on {st['node']})" if st["node"] else ")"),
                       "Pacemaker restarts a resource whose agent parameters change",
                       hint=Hint(hints.ALLOW_RESTART),
                       code="RESTART_NEEDED", details={"vm": vm, "status": st["status"], "node": st["node"]})
    return {"resource": new, "restarts": restarts}


def _apply(env: Env, vm: str, config, plan: dict) -> dict:
    # replaced also when nothing changed: a `set` interrupted after its metadata write
    # converges when run again (except for the removal of a map key: that run knew it)
    env.cluster.replace_resource(plan["resource"])
    env.cluster.set_placement(vm, config)
    settled = env.cluster.settle(timeouts.SETTLE_WAIT)
    st = crm_mon.vm_status(env.cluster.cluster_status(), vm, True)
    return {"restarted": plan["restarts"], "settled": settled,
            "status": st["status"], "node": st["node"]}
