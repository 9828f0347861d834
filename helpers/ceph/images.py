"""RBD images as the operations need them: made, grown, cleared, cloned, copied, deleted,
read. Each step checks what is already there, so an interrupted operation re-run finishes
it (an image that exists is grown, never made again). Every librbd error is translated."""

import contextlib

import rbd

from ..core import names, vmschema
from ..core.errors import Conflict
from . import vmstore
from .session import Session, ceph_errors


@contextlib.contextmanager
def opened(session: Session, image: str, read_only: bool = False):
    """An open image (for a caller that reads its metadata and snapshots it on one handle)."""
    with ceph_errors(f"opening {image}", session.target):
        img = session.rbd.Image(session.ioctx, image, read_only=read_only)
    with img:
        yield img


def metadata_of(img) -> dict:
    return dict(img.metadata_list())


def size_of(session: Session, image: str) -> int:
    with ceph_errors(f"reading the size of {image}", session.target):
        with session.rbd.Image(session.ioctx, image, read_only=True) as img:
            return img.size()


def grow(session: Session, image: str, size: int) -> None:
    with ceph_errors(f"resizing {image}", session.target):
        with session.rbd.Image(session.ioctx, image) as img:
            img.resize(size)


def ensure_image(session: Session, image: str, size: int) -> bool:
    """Create the image if missing (True), or grow it to `size`."""
    with ceph_errors(f"creating image {image}", session.target):
        try:
            session.rbd.RBD().create(session.ioctx, image, size)
            return True
        except rbd.ImageExists:
            with session.rbd.Image(session.ioctx, image) as img:
                if img.size() < size:
                    img.resize(size)
            return False


def zero(session: Session, image: str) -> None:
    with ceph_errors(f"clearing image {image}", session.target):
        with session.rbd.Image(session.ioctx, image) as img:
            img.discard(0, img.size())


def delete_image(session: Session, disk: str, group: str | None = None):
    """Delete a disk with its snapshots, out of its group first; returns (parent image,
    parent snapshot) if it was a clone. A disk librbd cannot open (its header is gone) is
    taken out of `group` and removed all the same."""
    with ceph_errors(f"removing image {disk}", session.target):
        return _delete(session, disk, group)


def _delete(session: Session, disk: str, group: str | None):
    try:
        img = session.rbd.Image(session.ioctx, disk)
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
            session.rbd.Group(session.ioctx, group).remove_image(session.ioctx, disk)
        except (rbd.ImageNotFound, rbd.ObjectNotFound):
            pass
    try:
        session.rbd.RBD().remove(session.ioctx, disk)
    except rbd.ImageNotFound:
        pass


def dependent_clones(session: Session, disks) -> list:
    """Names of the VMs (or images) that are copy-on-write clones of these disks."""
    found = set()
    for disk in disks:
        with ceph_errors(f"listing the clones of {disk}", session.target):
            try:
                img = session.rbd.Image(session.ioctx, disk, read_only=True)
            except rbd.ImageNotFound:
                continue          # broken: no clone can read through it either
            with img:
                for child in img.list_children2():
                    found.add(names.vm_of_disk(child["image"]))
    return sorted(found)


def ensure_base_snapshot(session: Session, img, snap: str, reuse: bool, protect: bool) -> None:
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


def cow_clone(session: Session, src_disk: str, snap: str, dst_disk: str) -> None:
    with ceph_errors(f"cloning {src_disk} into {dst_disk}", session.target):
        try:
            session.rbd.RBD().clone(session.ioctx, src_disk, snap, session.ioctx, dst_disk)
        except rbd.ImageExists:
            with session.rbd.Image(session.ioctx, dst_disk, read_only=True) as img:
                try:
                    parent = img.get_parent_image_spec()
                except rbd.ImageNotFound:
                    parent = {}
            if (parent.get("image_name"), parent.get("snap_name")) != (src_disk, snap):
                raise Conflict(f"image {dst_disk} already exists and is not a clone of {src_disk}",
                               "", "Remove it, or choose another name for the clone",
                               code="IMAGE_TAKEN", details={"image": dst_disk}) from None


def full_copy(session: Session, src_disk: str, snap: str, dst_disk: str) -> None:
    with ceph_errors(f"copying {src_disk} into {dst_disk}", session.target):
        with session.rbd.Image(session.ioctx, src_disk, snapshot=snap, read_only=True) as src:
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


def remove_snapshot_quietly(session: Session, disk: str, snap: str) -> None:
    """Remove `disk`'s snapshot `snap` unless it is gone or a clone still hangs on it."""
    with ceph_errors(f"removing snapshot {snap} of {disk}", session.target):
        with session.rbd.Image(session.ioctx, disk) as img:
            if any(s["name"] == snap for s in img.list_snaps()) \
                    and not vmstore.snapshot_children(session, disk, snap):
                vmstore.remove_snapshot(img, snap)


def disk_info(session: Session, disk: str) -> dict:
    """{name, size, used, parent, open_by} of a disk (used: allocated bytes of its own)."""
    with ceph_errors(f"reading disk {disk}", session.target):
        with session.rbd.Image(session.ioctx, disk, read_only=True) as img:
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
