"""A UEFI VM's firmware variable store in RBD (names.nvram_image): a small raw image in the
VM's group, so group snapshots, rollbacks and clones carry the variables with the disks,
and every node boots from the same store.

The store is complete only once its whole content is written and marked (vmschema.
NVRAM_ORIGIN): an interrupted write is written again, never booted from; a complete store
is never overwritten."""

import rbd

from ..core import names, vmschema
from . import groups
from .session import Session, ceph_errors


def is_complete(session: Session, vm: str) -> bool:
    image = names.nvram_image(vm)
    with ceph_errors(f"reading the variable store of VM {vm}", session.target):
        try:
            with session.rbd.Image(session.ioctx, image, read_only=True) as img:
                return vmschema.NVRAM_ORIGIN in dict(img.metadata_list())
        except rbd.ImageNotFound:
            return False


def ensure_store(session: Session, vm: str, content: bytes, origin: str, in_group: bool = True) -> bool:
    """The VM's variable store holding `content` (from `origin`: a template or a host
    file), unless a complete store is there already; a member of the VM's group if
    `in_group`. True if it was written now."""
    image = names.nvram_image(vm)
    written = False
    with ceph_errors(f"making the variable store of VM {vm}", session.target):
        try:
            session.rbd.RBD().create(session.ioctx, image, len(content))
        except rbd.ImageExists:
            pass
        with session.rbd.Image(session.ioctx, image) as img:
            if vmschema.NVRAM_ORIGIN not in dict(img.metadata_list()):
                if img.size() != len(content):
                    img.resize(len(content))
                img.write(content, 0)
                img.flush()
                img.metadata_set(vmschema.NVRAM_ORIGIN, origin)
                written = True
    if in_group:
        groups.ensure_group(session, vm, [image])
    return written


def mark_complete(session: Session, vm: str, origin: str) -> None:
    """The store's content is all there (a restore wrote it): mark it so."""
    with ceph_errors(f"marking the variable store of VM {vm}", session.target):
        with session.rbd.Image(session.ioctx, names.nvram_image(vm)) as img:
            img.metadata_set(vmschema.NVRAM_ORIGIN, origin)
