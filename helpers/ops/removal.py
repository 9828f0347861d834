"""Removing a VM: its group snapshots, data disks, then the system disk (marked "removing"
first) and the group, so a remove cut short is finished by running it again (checkpoints
remove:marked, remove:disk). A UEFI VM's variable store goes with its disks. Refused while
the VM is enabled in the cluster, runs, has copy-on-write clones, or its group holds images
rbdvm did not make."""

from ..ceph import groups, images, vmstore
from ..ceph import lease as lease_module
from ..ceph.lease import Lease
from ..core import names, vmschema
from ..core.errors import Conflict
from ..core.faults import checkpoint
from ..core.vmschema import VmState
from .env import Env


def remove(env: Env, name: str) -> dict:
    session = env.session
    names.check_name(name, "VM name")
    with Lease(session, name, "remove") as lease:
        rec = vmstore.record(session, name)
        if rec.state == VmState.ABSENT:
            raise vmstore.no_such_vm(session, name)
        vmstore.refuse_foreign(rec)
        removed = remove_record(env, rec, lease)
        lease_module.remove_object(session, name)
    return {"name": name, "removed_disks": removed}


def remove_record(env: Env, rec, lease) -> list:
    """Remove what VM `rec` has in storage (under its `lease`); the disks removed. Also what
    a create with `force` does to the VM it replaces."""
    session = env.session
    name = rec.name
    if env.cluster.has_resource(name):
        raise Conflict(f"VM {name} is enabled in the cluster", "removing it would pull its disks "
                       "from under Pacemaker", f"Disable it first: rbdvm disable {name}",
                       code="VM_ENABLED", details={"vm": name})
    if rec.strangers:
        raise Conflict(f"VM {name}'s group also holds {', '.join(rec.strangers)}",
                       "rbdvm did not make those images and never deletes them",
                       f"Take them out of the group first: rbd group image remove {name} IMAGE",
                       code="NOT_RBDVM", details={"vm": name, "images": list(rec.strangers)})
    owned = rec.disks + ([rec.nvram] if rec.nvram else [])
    vmstore.refuse_if_open(session, name, owned, "remove")
    clones = images.dependent_clones(session, owned)
    if clones:
        raise Conflict(f"VM {name} has copy-on-write clones", f"{', '.join(clones)} depend on its disks",
                       "Remove those clones first (or make them independent with `rbd flatten`)",
                       code="HAS_CLONES", details={"vm": name, "clones": list(clones)})
    system = names.system_disk(name)
    if system in rec.disks and rec.state != VmState.BROKEN:
        vmstore.set_metadata(session, system, {vmschema.STATE: VmState.REMOVING})
    checkpoint("remove:marked")
    parents = set()
    if rec.in_group:
        groups.remove_snapshots(session, name)
    # data disks and the variable store first, the system disk (which says "removing") last
    for disk in [d for d in owned if d != system] + [system]:
        lease.check()
        if disk == system and rec.in_group:
            groups.remove_group(session, name)
        parent = images.delete_image(session, disk, name if rec.in_group else None)
        if parent:
            parents.add(parent)
        checkpoint("remove:disk")
    if rec.in_group:
        groups.remove_group(session, name)
    for image, snap in parents:
        images.remove_snapshot_quietly(session, image, snap)
    return rec.disks
