"""How a VM is stored in RBD: its group, disks, metadata and state, read in one place."""

import time
from dataclasses import dataclass, field

import rados
import rbd

from ..core import hostnames, names, vmschema
from ..core.errors import Conflict, NotFound
from ..core.vmschema import VmState
from . import rbdbulk
from .session import Session, ceph_errors, translate

# on the VM's lease object from the moment a create/clone makes its first image until that
# image carries vmschema.OWNER_KEYS: the one window in which rbdvm's own system disk has no marker
MAKING_XATTR = "rbdvm.making"


@dataclass
class VmRecord:
    name: str
    state: VmState
    disks: list = field(default_factory=list)
    metadata: dict = field(default_factory=dict)   # of the system disk
    in_group: bool = False
    why: str = ""                       # foreign or broken: what makes it so
    strangers: list = field(default_factory=list)  # group members without the VM's image names
    nvram: str | None = None            # its UEFI variable store, if the image exists


def owned(metadata: dict) -> bool:
    return any(k in metadata for k in vmschema.OWNER_KEYS)


def mark_making(session: Session, vm: str, making: bool) -> None:
    """Note on the VM's lease object (held by the caller) that a create/clone is making its
    images, or that they now carry their markers."""
    obj = names.lease_object(vm)
    with ceph_errors(f"writing the lease of VM {vm}", session.target):
        if making:
            session.ioctx.set_xattr(obj, MAKING_XATTR, b"1")
        else:
            try:
                session.ioctx.rm_xattr(obj, MAKING_XATTR)
            except (rados.ObjectNotFound, rados.NoData):
                pass


def _making(session: Session, vm: str) -> bool:
    try:
        session.ioctx.get_xattr(names.lease_object(vm), MAKING_XATTR)
        return True
    except (rados.ObjectNotFound, rados.NoData):
        return False


def group_exists(session: Session, vm: str) -> bool:
    return vm in list_groups(session)


def list_groups(session: Session) -> list:
    if not session.namespace_exists():
        return []
    with ceph_errors("listing RBD groups", session.target):
        return sorted(session.rbd.RBD().group_list(session.ioctx))


def list_images(session: Session) -> list:
    if not session.namespace_exists():
        return []
    with ceph_errors("listing RBD images", session.target):
        return session.rbd.RBD().list(session.ioctx)


def image_exists(session: Session, image: str) -> bool:
    try:
        with session.rbd.Image(session.ioctx, image, read_only=True):
            return True
    except rbd.ImageNotFound:
        return False


def read_metadata(session: Session, image: str) -> dict:
    with ceph_errors(f"reading the metadata of {image}", session.target):
        with session.rbd.Image(session.ioctx, image, read_only=True) as img:
            return dict(img.metadata_list())


def group_images(session: Session, vm: str) -> list:
    with ceph_errors(f"listing the disks of VM {vm}", session.target):
        return [i["name"] for i in session.rbd.Group(session.ioctx, vm).list_images()]


def disk_order(vm: str, disks) -> list:
    """System disk first, then data disks by index, then anything else by name."""
    def key(d):
        parsed = names.parse_disk(d)
        if parsed is None or parsed[0] != vm:
            return (2, 0, d)
        return (0, 0, d) if parsed[1] is None else (1, parsed[1], d)
    return sorted(disks, key=key)


def record(session: Session, vm: str, groups=None, images=None, metadata=None, members=None) -> VmRecord:
    """Everything about a VM's storage; state 'absent' if there is nothing at all.

    `groups`, `images` (listings), `metadata` (of the system disk) and `members` (of its
    group) may be passed in by a caller that already has them."""
    groups = list_groups(session) if groups is None else groups
    if not isinstance(images, (set, frozenset)):
        images = set(list_images(session) if images is None else images)
    system = names.system_disk(vm)
    rec = VmRecord(vm, VmState.ABSENT, in_group=vm in groups)
    if not rec.in_group and system not in images:
        return rec
    if members is None:
        members = set(group_images(session, vm)) if rec.in_group else set()
    rec.strangers = sorted(m for m in members if not names.is_vm_image(vm, m))
    if names.nvram_image(vm) in members or names.nvram_image(vm) in images:
        rec.nvram = names.nvram_image(vm)
    if system not in images:
        # rbdvm makes the system disk first and deletes it last
        return _foreign(rec, f"group {vm} has no system disk {system}")
    if metadata is None:
        try:
            metadata = read_metadata(session, system)
        except NotFound:
            # listed but unopenable: its header is gone (a crash inside librbd's remove)
            rec.state, rec.why = VmState.BROKEN, f"image {system} is listed but cannot be opened"
            rec.disks = disk_order(vm, {system} | {i for i in images if names.is_vm_disk(vm, i)})
            return rec
    if not _claimed(session, vm, metadata):
        return _unclaimed(rec)
    rec.metadata = metadata
    disks = {m for m in members if names.is_vm_disk(vm, m)} | {system}
    count = rec.metadata.get(vmschema.ADDITIONAL_DISKS)
    if count and count.isdigit():
        disks.update(names.data_disk(vm, i) for i in range(int(count))
                     if names.data_disk(vm, i) in images)
    rec.disks = disk_order(vm, disks)
    rec.state = state_of(rec.metadata, system in members)
    return rec


def _foreign(rec: VmRecord, why: str) -> VmRecord:
    rec.state, rec.why, rec.in_group = VmState.FOREIGN, why, False
    return rec


def _claimed(session: Session, vm: str, metadata: dict) -> bool:
    """The ownership rule: the system disk carries rbdvm's (or vm_manager's) markers, or a
    create/clone of the VM is making it (the lease object's note)."""
    return owned(metadata) or _making(session, vm)


def _unclaimed(rec: VmRecord) -> VmRecord:
    return _foreign(rec, f"image {names.system_disk(rec.name)} carries no rbdvm metadata (no vm_name)")


def state_of(metadata: dict, system_in_group: bool) -> VmState:
    """The one rule for "is this VM usable", from its system disk alone: its metadata and
    whether it is a member of the VM's group. Shared by every listing and by the agent.

    The system disk joins the group last: membership is a create/clone's commit point. A
    half-done clone's system disk already carries the source's metadata, `xml` included."""
    state = metadata.get(vmschema.STATE)
    if state in vmschema.INTERRUPTED:
        return VmState(state)
    if system_in_group and vmschema.XML in metadata:
        return VmState.COMPLETE
    return VmState.CREATING   # a create or clone that stopped before it could say so


def records(session: Session) -> list:
    """The record of every VM of the pool/namespace, complete or not, for listing: headers
    read in bulk (rbdbulk), librbd for any VM those reads do not show complete."""
    if not session.namespace_exists():
        return []
    ids = rbdbulk.image_ids(session)
    groups = rbdbulk.group_ids(session)
    candidates = set(groups) | {p[0] for p in map(names.parse_disk, ids) if p and p[1] is None}
    headers = rbdbulk.system_headers(session, candidates, ids)
    group_set, image_set = set(groups), set(ids)
    out = []
    for vm in sorted(candidates):
        header = headers.get(vm)
        metadata = rbdbulk.metadata(header) if header is not None else {}
        if vm in groups and header is not None and rbdbulk.group_id(header) == groups[vm] \
                and vmschema.STATE not in metadata and owned(metadata):
            # complete: the system disk is in the VM's group; its other members are its data
            # disks, which record() finds from _additional_disks
            rec = record(session, vm, group_set, image_set, metadata=metadata, members={names.system_disk(vm)})
        else:
            # partly created or removed: rare, and read exactly through librbd
            rec = record(session, vm, group_set, image_set)
        if rec.state not in (VmState.ABSENT, VmState.FOREIGN):
            out.append(rec)
    return out


def no_such_vm(session: Session, vm: str) -> NotFound:
    return NotFound("VM does not exist", f"no VM {vm} in {where(session)}", "List the VMs with `rbdvm list`",
                    code="VM_NOT_FOUND", details={"vm": vm})


def require_complete(session: Session, vm: str, groups=None, images=None, metadata=None,
                     rolling_back_ok: bool = False) -> VmRecord:
    """The VM's record if it can be used; `rolling_back_ok`: also half rolled back (for
    the rollback that finishes it)."""
    rec = record(session, vm, groups, images, metadata)
    refuse_incomplete(session, rec, rolling_back_ok)
    return rec


def usable_metadata(session: Session, vm: str) -> dict:
    """The system disk's metadata of a usable VM, read from it alone (one open, no listing):
    the agent starts its `xml` (once trust.py verified it). Refused by the same rules and
    messages as every command."""
    system = names.system_disk(vm)
    try:
        img = session.rbd.Image(session.ioctx, system, read_only=True)
    except rbd.ImageNotFound:
        raise no_such_vm(session, vm) from None
    except rbd.Error as exc:
        raise translate(exc, f"opening {system}", session.target) from None
    with ceph_errors(f"reading the definition of VM {vm}", session.target), img:
        metadata = dict(img.metadata_list())
        group = img.group()
    in_group = group.get("name") == vm and group.get("pool") == session.ioctx.get_pool_id()
    rec = VmRecord(vm, state_of(metadata, in_group), [system], metadata, in_group)
    if not _claimed(session, vm, metadata):
        _unclaimed(rec)
    refuse_incomplete(session, rec)
    return metadata


def refuse_incomplete(session: Session, rec: VmRecord, rolling_back_ok: bool = False) -> None:
    vm = rec.name
    if rec.state == VmState.ROLLING_BACK and not rolling_back_ok:
        snap = rec.metadata.get(vmschema.ROLLBACK_TO, "?")
        raise Conflict(f"VM {vm} is partly rolled back to snapshot {snap}",
                       "a rollback was interrupted: some disks may be at the snapshot, others not",
                       f"Run `rbdvm snapshot rollback {vm} {snap}` again to finish it",
                       code="VM_INCOMPLETE", details={"vm": vm, "snapshot": snap})
    if rec.state == VmState.ABSENT:
        raise no_such_vm(session, vm)
    if rec.state == VmState.CREATING:
        raise Conflict(f"VM {vm} is only partly created", "a create or clone of it was interrupted",
                       f"Run that create/clone again to finish it, or `rbdvm remove {vm}`",
                       code="VM_INCOMPLETE", details={"vm": vm})
    refuse_unusable(rec)


def refuse_unusable(rec: VmRecord) -> None:
    """Refuse a name no command but remove may touch: being removed, broken, another tool's."""
    if rec.state == VmState.REMOVING:
        raise Conflict(f"VM {rec.name} is being removed", "a remove of it was interrupted",
                       f"Run `rbdvm remove {rec.name}` again to finish it",
                       code="VM_INCOMPLETE", details={"vm": rec.name})
    if rec.state == VmState.BROKEN:
        raise Conflict(f"VM {rec.name} is broken", rec.why, f"Remove what is left of it: rbdvm remove {rec.name}",
                       code="VM_BROKEN", details={"vm": rec.name})
    refuse_foreign(rec)


def refuse_foreign(rec: VmRecord) -> None:
    if rec.state == VmState.FOREIGN:
        raise Conflict(f"{rec.name} is not a VM rbdvm manages", rec.why,
                       "It belongs to another tool: rbdvm leaves it alone",
                       code="NOT_RBDVM", details={"name": rec.name})


def refuse_taken(session: Session, vm: str, disks, images=None) -> None:
    """Before a new VM's first image: none of its disk names (nor its variable store's) may
    exist (another tool's image, or what a VM of that name left behind)."""
    images = set(list_images(session) if images is None else images)
    taken = [d for d in [*disks, names.nvram_image(vm)] if d in images]
    if taken:
        raise Conflict(f"cannot make VM {vm}: image {', '.join(taken)} already exists",
                       "it is not part of any VM rbdvm manages, and rbdvm never overwrites an "
                       "image it did not make", "Choose another VM name, or remove or rename that image",
                       code="IMAGE_TAKEN", details={"vm": vm, "images": list(taken)})


def where(session: Session) -> str:
    t = session.target
    return f"pool {t.pool}" + (f", namespace {t.namespace}" if t.namespace else "")


def set_metadata(session: Session, image: str, values: dict, remove=()) -> None:
    with ceph_errors(f"writing the metadata of {image}", session.target):
        with session.rbd.Image(session.ioctx, image) as img:
            for k, v in values.items():
                img.metadata_set(k, v)
            for k in remove:
                try:
                    img.metadata_remove(k)
                except KeyError:
                    pass


def replace_metadata(session: Session, image: str, values: dict, keep=()) -> None:
    """Make the image's metadata exactly `values` (plus the keys in `keep`), in one open,
    writing only what differs."""
    with ceph_errors(f"writing the metadata of {image}", session.target):
        with session.rbd.Image(session.ioctx, image) as img:
            current = dict(img.metadata_list())
            for k, v in values.items():
                if current.get(k) != v:
                    img.metadata_set(k, v)
            for k in current:
                if k not in values and k not in keep:
                    img.metadata_remove(k)


def remove_snapshot(img, snap: str) -> None:
    """Remove snapshot `snap` of an open image, unprotecting it first if it is protected
    (the caller has made sure no clone depends on it)."""
    if img.is_protected_snap(snap):
        img.unprotect_snap(snap)
    img.remove_snap(snap)


def snapshot_children(session: Session, image: str, snap: str) -> list:
    """The images cloned from this one snapshot of `image` (librbd's list_children2 on the
    image's head lists the clones of every snapshot: never the answer to this question)."""
    with ceph_errors(f"listing the clones of {image}@{snap}", session.target):
        with session.rbd.Image(session.ioctx, image, snapshot=snap, read_only=True) as at:
            return [c["image"] for c in at.list_children2()]


def watchers(session: Session, disks) -> list:
    """[(disk, address, host name or None)] of every client holding a disk open."""
    found = []
    for disk in disks:
        with ceph_errors(f"listing the clients of {disk}", session.target):
            try:
                img = session.rbd.Image(session.ioctx, disk, read_only=True)
            except rbd.ImageNotFound:
                continue          # listed but its header is gone: nobody can have it open
            with img:
                for w in img.watchers_list():
                    addr = client_address(w)
                    found.append((disk, addr, hostnames.name_of(addr)))
    return found


def client_address(watcher: dict) -> str:
    """The host address of an RBD watcher (librbd gives `IP:PORT/NONCE`)."""
    return watcher["addr"].split("/")[0].rsplit(":", 1)[0]


def describe_watchers(found) -> str:
    return "; ".join(f"{disk} is open by the client at {addr}" + (f" ({host})" if host else "")
                     for disk, addr, host in found)


def refuse_if_open(session: Session, vm: str, disks, doing: str, wait: float = 0.0, check=lambda: None) -> None:
    """Raise Conflict if a client holds one of `disks` open after `wait` seconds, asking again
    every second meanwhile (and calling `check`, e.g. a lease's, each time)."""
    until = time.monotonic() + wait
    found = watchers(session, disks)
    while found and time.monotonic() < until:
        time.sleep(1)
        check()
        found = watchers(session, disks)
    if found:
        raise Conflict(f"cannot {doing} VM {vm} while it runs", describe_watchers(found),
                       f"Stop the VM first (rbdvm stop {vm} when it is enabled in the cluster)",
                       code="VM_RUNNING",
                       details={"vm": vm, "clients": [{"disk": d, "address": a, "host": h} for d, a, h in found]})
