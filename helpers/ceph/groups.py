"""A VM's RBD group: made with its disks as members (the system disk joins last: a
create's or clone's commit point), and taken apart. Each step checks what is already there."""

import rbd

from ..core.errors import Conflict
from . import vmstore
from .session import Session, ceph_errors


def ensure_group(session: Session, vm: str, disks, exists: bool = False) -> None:
    """The group `vm` with `disks` as members (`exists`: the caller just made sure of it)."""
    with ceph_errors(f"creating group {vm}", session.target):
        if not exists:
            try:
                session.rbd.RBD().group_create(session.ioctx, vm)
            except (rbd.ImageExists, rbd.ObjectExists):
                pass
        group = session.rbd.Group(session.ioctx, vm)
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


def remove_snapshots(session: Session, vm: str) -> None:
    """Every group snapshot of `vm` (a remove takes them all)."""
    with ceph_errors(f"removing the snapshots of VM {vm}", session.target):
        group = session.rbd.Group(session.ioctx, vm)
        for snap in list(group.list_snaps()):
            group.remove_snap(snap["name"])


def remove_group(session: Session, vm: str) -> None:
    """The group of `vm` emptied and removed; nothing if it is gone already."""
    if vm not in vmstore.list_groups(session):
        return
    with ceph_errors(f"removing group {vm}", session.target):
        group = session.rbd.Group(session.ioctx, vm)
        for member in [i["name"] for i in group.list_images()]:
            group.remove_image(session.ioctx, member)
        session.rbd.RBD().group_remove(session.ioctx, vm)
