"""Cloning a VM: copy-on-write (the default) or an independent full copy, with a new UUID
and new MAC addresses; it inherits the source's settings and metadata unless told otherwise.
It runs under both VMs' leases; re-running an interrupted clone finishes it (checkpoints
clone:snapshots, clone:disk, clone:group, clone:commit). The source may keep running."""

from ..ceph import groups as storegroups
from ..ceph import images, trust, vmstore
from ..ceph.lease import Lease
from ..ceph.vmstore import where
from ..core import defaults, domainxml, names, vmschema
from ..core.errors import Conflict, UsageError
from ..core.faults import checkpoint
from ..core.vmschema import VmState
from . import definition
from .env import Env

_NOT_INHERITED = (vmschema.VM_NAME, vmschema.XML, vmschema.BASE_XML, vmschema.ADDITIONAL_DISKS) \
    + vmschema.INTERNAL_KEYS


def clone(env: Env, src: str, dst: str, *, full=False, base_xml=None, metadata=None,
          settings=None, unset=()) -> dict:
    """Make VM `dst` from VM `src`: copy-on-write (default) or an independent full copy.

    The clone gets a new UUID and new MAC addresses; it inherits the source's metadata and
    settings unless given here, or named in `unset` (settings the clone starts without).
    The source may keep running.
    """
    session = env.session
    user_md, settings, stored, dropped = _checked_inputs(src, dst, metadata, settings, unset)
    if base_xml is not None:
        trust.require_policy(session, dst, base_xml, f"cannot clone VM {src} into {dst}")
    key = trust.signing_key(session)
    mode = "full" if full else "cow"
    with Lease(session, src, f"clone to {dst}") as src_lease, \
            Lease(session, dst, f"clone from {src}") as dst_lease:
        lease = _Both(src_lease, dst_lease)
        snap = names.clone_base_snapshot(dst)
        srec, dst_disks = _snapshot_source(env, src, dst, snap, keep=not full)
        checkpoint("clone:snapshots")
        pairs = list(zip(srec.disks, dst_disks))
        if srec.nvram:    # its own variable store, from the source's at the same instant
            pairs.append((srec.nvram, names.nvram_image(dst)))
        for s, d in pairs:
            lease.check()
            (images.full_copy if full else images.cow_clone)(session, s, snap, d)
            checkpoint("clone:disk")
        # the data disks (and store) join the group now, the system disk last (the commit point)
        storegroups.ensure_group(session, dst, [d for _, d in pairs[1:]])
        checkpoint("clone:group")
        base = base_xml if base_xml is not None else srec.metadata[vmschema.BASE_XML]
        bus = settings.get("disk_bus") or srec.metadata.get(vmschema.DISK_BUS) or defaults.DISK_BUS
        xml = definition.build(env, base, dst, dst_disks, bus, new_identity=True)
        inherited = {k: v for k, v in _inherited(srec.metadata).items() if k not in dropped}
        cloned_from = vmschema.encode_cloned_from(src, mode, env.now().isoformat())
        values = {**inherited, **stored, **user_md, vmschema.VM_NAME: dst,
                  vmschema.DISK_BUS: bus, vmschema.CLONED_FROM: cloned_from,
                  **trust.new_definition(session, dst, xml, base, f"cannot clone VM {src} into {dst}", key)}
        values.update(trust.signed_settings(session, dst, values, key))
        if len(dst_disks) > 1:
            values[vmschema.ADDITIONAL_DISKS] = str(len(dst_disks) - 1)
        for disk in dst_disks[1:]:
            vmstore.replace_metadata(session, disk, {})   # what the copy brought from the source
        if full:   # a full copy needs its source snapshots no more
            for disk, _ in pairs:
                images.remove_snapshot_quietly(session, disk, snap)
        vmstore.replace_metadata(session, dst_disks[0], values)
        vmstore.mark_making(session, dst, False)     # the system disk carries vm_name now
        checkpoint("clone:commit")
        lease.check()
        storegroups.ensure_group(session, dst, dst_disks[:1], exists=True)
    return {"name": dst, "source": src, "mode": mode, "disks": dst_disks, "uuid": domainxml.uuid_of(xml),
            "nvram": names.nvram_image(dst) if srec.nvram else None}


def _checked_inputs(src: str, dst: str, metadata, settings, unset) -> tuple:
    """(the user's metadata, the settings given, their stored form, the metadata keys the
    clone starts without), each checked before anything is touched."""
    names.check_name(src, "VM name")
    names.check_new_vm_name(dst)
    if src == dst:
        raise UsageError("src_name and name cannot be the same", f"both are {src}",
                         "Give the clone another name")
    user_md = vmschema.check_user_metadata(metadata)
    settings = dict(settings or {})
    return user_md, settings, vmschema.encode(settings), {vmschema.BY_NAME[n].key for n in unset}


def _snapshot_source(env: Env, src: str, dst: str, snap: str, keep: bool):
    """Check both VMs, claim dst's names, and take the source's base snapshots; returns the
    source's record and the clone's disk names."""
    session = env.session
    groups, listed = vmstore.list_groups(session), vmstore.list_images(session)
    if names.system_disk(src) not in listed:
        vmstore.require_complete(session, src, groups, listed)   # says what is missing
    # the source's system disk is opened once: its metadata (the source must be complete)
    # and its snapshot come from the same handle
    with images.opened(session, names.system_disk(src)) as system:
        srec = vmstore.require_complete(session, src, groups, listed, metadata=images.metadata_of(system))
        # a clone runs what its source runs, with its settings: only what this cluster signed
        trust.require_definition(session, src, srec.metadata, f"cannot clone VM {src}")
        trust.require_settings(session, src, srec.metadata, f"cannot clone VM {src}")
        drec = vmstore.record(session, dst, groups, listed)
        if drec.state == VmState.COMPLETE:
            raise Conflict("VM already exists", f"VM {dst} exists in {where(session)}",
                           "Choose another name for the clone", code="VM_EXISTS", details={"vm": dst})
        vmstore.refuse_unusable(drec)
        dst_disks = names.disk_names(dst, len(srec.disks) - 1)
        resuming = drec.state == VmState.CREATING
        if not resuming:
            vmstore.refuse_taken(session, dst, dst_disks, listed)
            vmstore.mark_making(session, dst, True)
        # all source snapshots first, back to back: as close to one instant as per-disk
        # snapshots get (a clone hangs on image snapshots; group snapshots cannot be cloned)
        images.ensure_base_snapshot(session, system, snap, resuming, keep)
        for disk in srec.disks[1:] + ([srec.nvram] if srec.nvram else []):
            with images.opened(session, disk) as img:
                images.ensure_base_snapshot(session, img, snap, resuming, keep)
    return srec, dst_disks


def _inherited(metadata: dict) -> dict:
    """What a clone takes from its source's metadata: settings and the user's keys."""
    return {k: v for k, v in metadata.items()
            if k not in _NOT_INHERITED and not k.startswith(vmschema.SNAPSHOT_PREFIXES)}


class _Both:
    """The two leases a clone holds, checked together."""

    def __init__(self, *leases):
        self.leases = leases

    def check(self) -> None:
        for lease in self.leases:
            lease.check()
