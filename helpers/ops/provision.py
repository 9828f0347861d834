"""Creating, cloning and removing VMs, and reading what exists.

Every mutating operation runs under the VM's lease and is written as steps that each check
what is already there, so re-running an interrupted command finishes it: nothing that
exists correctly is deleted and recreated.
"""

from datetime import datetime, timezone

import rados
import rbd

from ..ceph import diskimage, rbdbulk, trust, vmstore
from ..ceph.lease import Lease
from ..ceph.monitors import monitor_hosts
from ..ceph.session import Session, ceph_errors
from ..ceph.vmstore import where
from ..core import defaults, domainxml, hints, names, secret, vmschema
from ..core.errors import Conflict, RbdvmError, UsageError
from ..core.faults import checkpoint
from ..core.hints import Hint
from ..core.vmschema import VmState
from ..pacemaker import cluster
from .snapshots import list_snapshots


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _user_metadata(metadata) -> dict:
    return vmschema.check_user_metadata(metadata)


# ------------------------------------------------------------------ create
def create(session: Session, name: str, image: str, base_xml: str, *, data_images=(),
           metadata=None, settings=None, force=False, progress=None) -> dict:
    """Import the disk files into a new VM `name` and store its definition.

    progress(disk, fraction) follows each import.
    """
    names.check_new_vm_name(name)
    user_md = _user_metadata(metadata)
    settings = dict(settings or {})
    stored = vmschema.encode(settings)
    bus = settings.get("disk_bus") or defaults.DISK_BUS
    files = [diskimage.inspect(image)] + [diskimage.inspect(p) for p in data_images]
    base_uuid = domainxml.uuid_of(base_xml, "the base XML")
    key = secret.load()     # a node that cannot sign makes nothing
    trust.require_policy(session, name, base_xml, f"cannot create VM {name}")
    session.ensure_namespace()
    with Lease(session, name, "create") as lease:
        disks = names.disk_names(name, len(data_images))
        resuming = _claim(session, name, disks, lease, force, base_uuid)
        fresh = _make_images(session, name, disks, [f.virtual_size for f in files], lease, resuming)
        checkpoint("create:images")
        ensure_group(session, name, disks)
        checkpoint("create:group")
        for disk, f in zip(disks, files):
            import_disk(session, name, disk, f, lease, fresh=disk in fresh, progress=progress)
        xml = _build_xml(session, base_xml, name, disks, bus)
        values = {vmschema.VM_NAME: name, vmschema.DISK_BUS: bus, vmschema.CREATED: _now(), **stored, **user_md,
                  **trust.new_definition(session, name, xml, base_xml, f"cannot create VM {name}", key)}
        values.update(trust.signed_settings(session, name, values, key))
        if data_images:
            values[vmschema.ADDITIONAL_DISKS] = str(len(data_images))
        for disk in disks[1:]:
            vmstore.set_metadata(session, disk, {}, remove=[vmschema.IMPORTED])
        checkpoint("create:commit")
        lease.check()
        # the commit point: _state goes last; settings nobody gave are not left to be signed
        vmstore.set_metadata(session, disks[0], values, remove=[vmschema.IMPORTED, vmschema.STATE] + [
            k for k in vmschema.SIGNED_SETTINGS if k not in values])
    return {"name": name, "disks": disks, "uuid": domainxml.uuid_of(xml),
            "formats": [f.format for f in files]}


def _claim(session: Session, name: str, disks, lease, force: bool, base_uuid) -> bool:
    """Make sure `name` may be created (an existing VM replaced only with `force`); True if
    an interrupted create or clone of it is being finished."""
    rec = vmstore.record(session, name)
    if rec.state == VmState.COMPLETE:
        if not force:
            raise Conflict("VM already exists", f"VM {name} exists in {where(session)}",
                           hint=Hint(hints.REPLACE_VM), code="VM_EXISTS", details={"vm": name})
        _remove(session, rec, lease)
    vmstore.refuse_unusable(rec)
    if base_uuid:
        check_uuid_free(session, base_uuid, name)
    if rec.state == VmState.CREATING:
        return True
    vmstore.refuse_taken(session, name, disks)
    vmstore.mark_making(session, name, True)
    return False


def _make_images(session: Session, name: str, disks, sizes, lease, resuming: bool) -> set:
    """The VM's images at their sizes; returns those made now (the others a previous run
    made). The system disk is marked as being created the moment it exists."""
    fresh = set()
    for disk, size in zip(disks, sizes):
        lease.check()
        if ensure_image(session, disk, size):
            fresh.add(disk)
        if disk == disks[0]:
            vmstore.set_metadata(session, disk, {vmschema.STATE: VmState.CREATING, vmschema.VM_NAME: name})
            vmstore.mark_making(session, name, False)
    return fresh


def import_disk(session: Session, name: str, disk: str, f, lease, fresh: bool, progress) -> None:
    """One disk file into its image, unless a previous run imported exactly that file."""
    lease.check()
    if vmstore.read_metadata(session, disk).get(vmschema.IMPORTED) == f.fingerprint:
        return
    if not fresh:
        # made by the interrupted run; whoever opened it since would lose their writes
        vmstore.refuse_if_open(session, name, [disk], "overwrite the disks of")
        _zero(session, disk)   # an import must start on an all-zero image
    lease.check()
    try:
        diskimage.import_into(f, session.target, disk, adopt=lease.adopt,
                              progress=(lambda x: progress(disk, x)) if progress else None)
    except RbdvmError:
        lease.check()      # qemu-img was killed because the lease was lost: say that
        raise
    lease.check()
    vmstore.set_metadata(session, disk, {vmschema.IMPORTED: f.fingerprint})
    checkpoint("create:imported")


def _build_xml(session: Session, base_xml: str, vm: str, disks, bus: str, new_identity: bool = False) -> str:
    t = session.target
    return domainxml.build(base_xml, vm=vm, images=disks, pool=t.pool, namespace=t.namespace,
                           monitors=monitor_hosts(session), client_id=t.client_id, bus=bus,
                           new_identity=new_identity)


def rebuild_definition(session: Session, vm: str, metadata: dict, disks, *, bus: str | None = None,
                       base_xml: str | None = None) -> dict:
    """The VM's definition built again from its base (or a new one) for `disks`, keeping its
    UUID and MAC addresses unless the base sets them; checked against the device policy and
    signed: the metadata to write (`xml`, `_base_xml`, their signature)."""
    if base_xml is None:
        # built again from the stored base: only one this cluster signed
        trust.require_definition(session, vm, metadata, f"cannot build the definition of VM {vm} again")
    base_xml = base_xml or metadata.get(vmschema.BASE_XML)
    if not base_xml:
        raise Conflict(f"VM {vm} has no base definition stored",
                       "another tool made it, and rbdvm builds the definition again from its base",
                       hint=Hint(hints.GIVE_BASE, {"vm": vm}))
    base = domainxml.keep_identity(base_xml, metadata.get(vmschema.XML))
    xml = _build_xml(session, base, vm, disks, bus or metadata.get(vmschema.DISK_BUS) or defaults.DISK_BUS)
    return trust.new_definition(session, vm, xml, base_xml, f"cannot change the definition of VM {vm}")


def ensure_image(session: Session, image: str, size: int) -> bool:
    """Create the image if missing (True), or grow it to `size`."""
    with ceph_errors(f"creating image {image}", session.target):
        try:
            rbd.RBD().create(session.ioctx, image, size)
            return True
        except rbd.ImageExists:
            with rbd.Image(session.ioctx, image) as img:
                if img.size() < size:
                    img.resize(size)
            return False


def _zero(session: Session, image: str) -> None:
    with ceph_errors(f"clearing image {image}", session.target):
        with rbd.Image(session.ioctx, image) as img:
            img.discard(0, img.size())


def ensure_group(session: Session, vm: str, disks, exists: bool = False) -> None:
    """The group `vm` with `disks` as members (`exists`: the caller just made sure of it)."""
    with ceph_errors(f"creating group {vm}", session.target):
        if not exists:
            try:
                rbd.RBD().group_create(session.ioctx, vm)
            except (rbd.ImageExists, rbd.ObjectExists):
                pass
        group = rbd.Group(session.ioctx, vm)
        members = {i["name"] for i in group.list_images()} if not exists else set()
        for disk in disks:
            if disk in members:
                continue
            try:
                group.add_image(session.ioctx, disk)
            except (rbd.ImageExists, rbd.ObjectExists):
                raise Conflict(f"image {disk} belongs to another group", "",
                               "Remove it from that group (rbd group image rm) or remove the VM owning it",
                               code="IMAGE_TAKEN", details={"image": disk}) from None


def check_uuid_free(session: Session, uid: str, name: str) -> None:
    # every VM's stored XML, in one bulk read of the system disks' headers
    others = [vm for vm in vmstore.list_groups(session) if vm != name]
    for other, header in rbdbulk.system_headers(session, others).items():
        if domainxml.stored_uuid(rbdbulk.metadata(header).get(vmschema.XML)) == uid:
            raise Conflict(f"UUID {uid} is already used by VM {other}",
                           "two VMs with one UUID cannot both run in a libvirt cluster",
                           "Remove <uuid> from the base XML (rbdvm generates one) or choose another")


# ------------------------------------------------------------------ clone
_NOT_INHERITED = (vmschema.VM_NAME, vmschema.XML, vmschema.BASE_XML, vmschema.ADDITIONAL_DISKS) \
    + vmschema.INTERNAL_KEYS


def clone(session: Session, src: str, dst: str, *, full=False, base_xml=None, metadata=None,
          settings=None, unset=()) -> dict:
    """Make VM `dst` from VM `src`: copy-on-write (default) or an independent full copy.

    The clone gets a new UUID and new MAC addresses; it inherits the source's metadata and
    settings unless given here, or named in `unset` (settings the clone starts without).
    The source may keep running.
    """
    names.check_name(src, "VM name")
    names.check_new_vm_name(dst)
    if src == dst:
        raise UsageError("src_name and name cannot be the same", f"both are {src}",
                         "Give the clone another name")
    user_md = _user_metadata(metadata)
    settings = dict(settings or {})
    stored = vmschema.encode(settings)
    dropped = {vmschema.BY_NAME[n].key for n in unset}
    if base_xml is not None:
        trust.require_policy(session, dst, base_xml, f"cannot clone VM {src} into {dst}")
    key = secret.load()
    mode = "full" if full else "cow"
    with Lease(session, src, f"clone to {dst}") as src_lease, \
            Lease(session, dst, f"clone from {src}") as dst_lease:
        lease = _Both(src_lease, dst_lease)
        snap = names.clone_base_snapshot(dst)
        srec, dst_disks = _snapshot_source(session, src, dst, snap, keep=not full)
        checkpoint("clone:snapshots")
        for s, d in zip(srec.disks, dst_disks):
            lease.check()
            (_full_copy if full else _cow_clone)(session, s, snap, d)
            checkpoint("clone:disk")
        # the data disks join the group now, the system disk last (the commit point)
        ensure_group(session, dst, dst_disks[1:])
        checkpoint("clone:group")
        base = base_xml if base_xml is not None else srec.metadata[vmschema.BASE_XML]
        bus = settings.get("disk_bus") or srec.metadata.get(vmschema.DISK_BUS) or defaults.DISK_BUS
        xml = _build_xml(session, base, dst, dst_disks, bus, new_identity=True)
        inherited = {k: v for k, v in _inherited(srec.metadata).items() if k not in dropped}
        values = {**inherited, **stored, **user_md, vmschema.VM_NAME: dst,
                  vmschema.DISK_BUS: bus, vmschema.CLONED_FROM: vmschema.encode_cloned_from(src, mode, _now()),
                  **trust.new_definition(session, dst, xml, base, f"cannot clone VM {src} into {dst}", key)}
        values.update(trust.signed_settings(session, dst, values, key))
        if len(dst_disks) > 1:
            values[vmschema.ADDITIONAL_DISKS] = str(len(dst_disks) - 1)
        for disk in dst_disks[1:]:
            vmstore.replace_metadata(session, disk, {})   # what the copy brought from the source
        if full:   # a full copy needs its source snapshots no more
            for disk in srec.disks:
                _remove_snapshot_quietly(session, disk, snap)
        vmstore.replace_metadata(session, dst_disks[0], values)
        vmstore.mark_making(session, dst, False)     # the system disk carries vm_name now
        checkpoint("clone:commit")
        lease.check()
        ensure_group(session, dst, dst_disks[:1], exists=True)
    return {"name": dst, "source": src, "mode": mode, "disks": dst_disks, "uuid": domainxml.uuid_of(xml)}


def _snapshot_source(session: Session, src: str, dst: str, snap: str, keep: bool):
    """Check both VMs, claim dst's names, and take the source's base snapshots; returns the
    source's record and the clone's disk names."""
    groups, images = vmstore.list_groups(session), vmstore.list_images(session)
    if names.system_disk(src) not in images:
        vmstore.require_complete(session, src, groups, images)   # says what is missing
    # the source's system disk is opened once: its metadata (the source must be complete)
    # and its snapshot come from the same handle
    with ceph_errors(f"opening the system disk of VM {src}", session.target):
        system = rbd.Image(session.ioctx, names.system_disk(src))
    with system:
        srec = vmstore.require_complete(session, src, groups, images, metadata=dict(system.metadata_list()))
        # a clone runs what its source runs, with its settings: only what this cluster signed
        trust.require_definition(session, src, srec.metadata, f"cannot clone VM {src}")
        trust.require_settings(session, src, srec.metadata, f"cannot clone VM {src}")
        drec = vmstore.record(session, dst, groups, images)
        if drec.state == VmState.COMPLETE:
            raise Conflict("VM already exists", f"VM {dst} exists in {where(session)}",
                           "Choose another name for the clone", code="VM_EXISTS", details={"vm": dst})
        vmstore.refuse_unusable(drec)
        dst_disks = names.disk_names(dst, len(srec.disks) - 1)
        resuming = drec.state == VmState.CREATING
        if not resuming:
            vmstore.refuse_taken(session, dst, dst_disks, images)
            vmstore.mark_making(session, dst, True)
        # all source snapshots first, back to back: as close to one instant as per-disk
        # snapshots get (a clone hangs on image snapshots; group snapshots cannot be cloned)
        _ensure_base_snapshot(session, system, snap, resuming, keep)
        for disk in srec.disks[1:]:
            with ceph_errors(f"opening {disk}", session.target):
                img = rbd.Image(session.ioctx, disk)
            with img:
                _ensure_base_snapshot(session, img, snap, resuming, keep)
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


def _ensure_base_snapshot(session: Session, img, snap: str, reuse: bool, protect: bool) -> None:
    """The snapshot of an open source disk a clone is made from (protected for copy-on-write)."""
    with ceph_errors(f"snapshotting {img.get_name()} for the clone", session.target):
        exists = any(s["name"] == snap for s in img.list_snaps())
        if exists and not reuse and not vmstore.snapshot_children(session, img.get_name(), snap):
            # left by an earlier clone of the same name (removed, or a full copy cut short):
            # the source as it was then, never the base of a new clone
            vmstore.remove_snapshot(img, snap)
            exists = False
        if not exists:
            img.create_snap(snap)
            if protect:
                img.protect_snap(snap)
        elif protect and not img.is_protected_snap(snap):
            img.protect_snap(snap)


def _cow_clone(session: Session, src_disk: str, snap: str, dst_disk: str) -> None:
    with ceph_errors(f"cloning {src_disk} into {dst_disk}", session.target):
        try:
            rbd.RBD().clone(session.ioctx, src_disk, snap, session.ioctx, dst_disk)
        except rbd.ImageExists:
            with rbd.Image(session.ioctx, dst_disk, read_only=True) as img:
                try:
                    parent = img.get_parent_image_spec()
                except rbd.ImageNotFound:
                    parent = {}
            if (parent.get("image_name"), parent.get("snap_name")) != (src_disk, snap):
                raise Conflict(f"image {dst_disk} already exists and is not a clone of {src_disk}",
                               "", "Remove it, or choose another name for the clone",
                               code="IMAGE_TAKEN", details={"image": dst_disk}) from None


def _full_copy(session: Session, src_disk: str, snap: str, dst_disk: str) -> None:
    with ceph_errors(f"copying {src_disk} into {dst_disk}", session.target):
        with rbd.Image(session.ioctx, src_disk, snapshot=snap, read_only=True) as src:
            marker = f"{src_disk}@{src.snap_get_id(snap)}"
            if vmstore.image_exists(session, dst_disk):
                if vmstore.read_metadata(session, dst_disk).get(vmschema.COPIED) == marker:
                    return
                # a copy cut short, or of a snapshot since replaced: it is not the source's
                # content, so it is redone (unless someone has it open since)
                vmstore.refuse_if_open(session, names.vm_of_disk(dst_disk), [dst_disk], "overwrite the disks of")
                delete_image(session, dst_disk)
            src.copy(session.ioctx, dst_disk)
        vmstore.set_metadata(session, dst_disk, {vmschema.COPIED: marker})


def _remove_snapshot_quietly(session: Session, disk: str, snap: str) -> None:
    with ceph_errors(f"removing snapshot {snap} of {disk}", session.target):
        with rbd.Image(session.ioctx, disk) as img:
            if any(s["name"] == snap for s in img.list_snaps()) \
                    and not vmstore.snapshot_children(session, disk, snap):
                vmstore.remove_snapshot(img, snap)


# ------------------------------------------------------------------ remove
def remove(session: Session, name: str) -> dict:
    names.check_name(name, "VM name")
    with Lease(session, name, "remove") as lease:
        rec = vmstore.record(session, name)
        if rec.state == VmState.ABSENT:
            raise vmstore.no_such_vm(session, name)
        vmstore.refuse_foreign(rec)
        removed = _remove(session, rec, lease)
        with ceph_errors(f"removing the lease of {name}", session.target):
            try:
                session.ioctx.remove_object(names.lease_object(name))
            except rados.ObjectNotFound:
                pass
    return {"name": name, "removed_disks": removed}


def _remove(session: Session, rec, lease) -> list:
    name = rec.name
    if cluster.has_resource(name):
        raise Conflict(f"VM {name} is enabled in the cluster", "removing it would pull its disks "
                       "from under Pacemaker", f"Disable it first: rbdvm disable {name}",
                       code="VM_ENABLED", details={"vm": name})
    if rec.strangers:
        raise Conflict(f"VM {name}'s group also holds {', '.join(rec.strangers)}",
                       "rbdvm did not make those images and never deletes them",
                       f"Take them out of the group first: rbd group image remove {name} IMAGE",
                       code="NOT_RBDVM", details={"vm": name, "images": list(rec.strangers)})
    vmstore.refuse_if_open(session, name, rec.disks, "remove")
    clones = dependent_clones(session, rec.disks)
    if clones:
        raise Conflict(f"VM {name} has copy-on-write clones", f"{', '.join(clones)} depend on its disks",
                       "Remove those clones first (or make them independent with `rbd flatten`)",
                       code="HAS_CLONES", details={"vm": name, "clones": list(clones)})
    system = names.system_disk(name)
    if system in rec.disks and rec.state != VmState.BROKEN:
        vmstore.set_metadata(session, system, {vmschema.STATE: VmState.REMOVING})
    checkpoint("remove:marked")
    parents = set()
    with ceph_errors(f"removing VM {name}", session.target):
        if rec.in_group:
            group = rbd.Group(session.ioctx, name)
            for snap in list(group.list_snaps()):
                group.remove_snap(snap["name"])
        # data disks first, the system disk (which says "removing") last
        for disk in [d for d in rec.disks if d != system] + [system]:
            lease.check()
            if disk == system and rec.in_group:
                _remove_group(session, name, rec.disks)
            parent = delete_image(session, disk, name if rec.in_group else None)
            if parent:
                parents.add(parent)
            checkpoint("remove:disk")
        if rec.in_group:
            _remove_group(session, name, rec.disks)
    for image, snap in parents:
        _remove_snapshot_quietly(session, image, snap)
    return rec.disks


def _remove_group(session: Session, name: str, disks) -> None:
    if name not in vmstore.list_groups(session):
        return
    group = rbd.Group(session.ioctx, name)
    for member in [i["name"] for i in group.list_images()]:
        group.remove_image(session.ioctx, member)
    rbd.RBD().group_remove(session.ioctx, name)


def delete_image(session: Session, disk: str, group: str | None = None):
    """Delete a disk with its snapshots, out of its group first; returns (parent image,
    parent snapshot) if it was a clone. A disk librbd cannot open (its header is gone) is
    taken out of `group` and removed all the same."""
    try:
        img = rbd.Image(session.ioctx, disk)
    except rbd.ImageNotFound:
        if disk in vmstore.list_images(session):
            _unlink(session, disk, group)
        return None
    with img:
        try:
            spec = img.get_parent_image_spec()
            parent = (spec["image_name"], spec["snap_name"])
        except rbd.ImageNotFound:
            parent = None
        for s in list(img.list_snaps()):
            if s.get("namespace", rbd.RBD_SNAP_NAMESPACE_TYPE_USER) != rbd.RBD_SNAP_NAMESPACE_TYPE_USER:
                continue
            vmstore.remove_snapshot(img, s["name"])
        group_name = img.group().get("name") or None
    _unlink(session, disk, group_name)
    return parent


def _unlink(session: Session, disk: str, group) -> None:
    """Take the disk out of `group` (if any, and if still there) and remove the image."""
    if group:
        try:
            rbd.Group(session.ioctx, group).remove_image(session.ioctx, disk)
        except (rbd.ImageNotFound, rbd.ObjectNotFound):
            pass
    try:
        rbd.RBD().remove(session.ioctx, disk)
    except rbd.ImageNotFound:
        pass


def dependent_clones(session: Session, disks) -> list:
    """Names of the VMs (or images) that are copy-on-write clones of these disks."""
    found = set()
    for disk in disks:
        with ceph_errors(f"listing the clones of {disk}", session.target):
            try:
                img = rbd.Image(session.ioctx, disk, read_only=True)
            except rbd.ImageNotFound:
                continue          # broken: no clone can read through it either
            with img:
                for child in img.list_children2():
                    found.add(names.vm_of_disk(child["image"]))
    return sorted(found)



# ------------------------------------------------------------------ read
def list_vms(session: Session) -> list:
    """Every VM in the pool/namespace, complete or not: one listing of groups and images and
    one bulk read of the system disks' headers."""
    out = []
    key = trust.key_here()
    for rec in vmstore.records(session):
        trusted, _ = _trust(session, rec, key)
        out.append({"name": rec.name, "state": trust.UNTRUSTED if trusted == trust.UNTRUSTED else rec.state,
                    "disks": len(rec.disks), "uuid": domainxml.stored_uuid(rec.metadata.get(vmschema.XML)),
                    "trust": trusted})
    return out


def _trust(session: Session, rec, key) -> tuple:
    """(signed | untrusted | unknown, why) of a complete VM; ("", "") for any other."""
    if rec.state != VmState.COMPLETE:
        return "", ""
    return trust.state(session, rec.name, rec.metadata, key)


def info(session: Session, name: str) -> dict:
    names.check_name(name, "VM name")
    rec = vmstore.record(session, name)
    if rec.state == VmState.ABSENT:
        raise vmstore.no_such_vm(session, name)
    vmstore.refuse_foreign(rec)
    if rec.state == VmState.BROKEN:
        return {"name": name, "state": rec.state, "pool": session.target.pool,
                "namespace": session.target.namespace, "why": rec.why,
                "disks": [{"name": d} for d in rec.disks]}
    disks = [_disk_info(session, d) for d in rec.disks]
    md = rec.metadata
    trusted, why = _trust(session, rec, trust.key_here())
    return {
        "name": name, "state": trust.UNTRUSTED if trusted == trust.UNTRUSTED else rec.state,
        "trust": trusted, **({"untrusted_because": why} if trusted == trust.UNTRUSTED else {}),
        "pool": session.target.pool,
        "namespace": session.target.namespace,
        "uuid": domainxml.stored_uuid(md.get(vmschema.XML)),
        "created": vmschema.created(md),
        "cloned_from": vmschema.cloned_from(md),
        "disks": disks,
        "settings": vmschema.decode(md),
        "colocations": vmschema.colocations(md),
        "metadata": {k: v for k, v in sorted(md.items()) if vmschema.is_user_key(k)},
        "snapshots": list_snapshots(session, name) if rec.state == VmState.COMPLETE else [],
        "clones": dependent_clones(session, rec.disks),
    }


def _disk_info(session: Session, disk: str) -> dict:
    with ceph_errors(f"reading disk {disk}", session.target):
        with rbd.Image(session.ioctx, disk, read_only=True) as img:
            size = img.size()
            used = [0]

            def count(offset, length, exists):
                if exists:
                    used[0] += length
            img.diff_iterate(0, size, None, count, include_parent=False, whole_object=True)
            try:
                spec = img.get_parent_image_spec()
                parent = f"{spec['image_name']}@{spec['snap_name']}"
            except rbd.ImageNotFound:
                parent = None
            watchers = [w["addr"] for w in img.watchers_list()]
    return {"name": disk, "size": size, "used": used[0], "parent": parent, "open_by": watchers}
