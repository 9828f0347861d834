"""disk add / resize / remove: a VM's disks after it is created.

Each change is made in Ceph first, under the VM's lease, and recorded in the VM's definition
(its `xml`, rebuilt with the same UUID and MACs): that is what the next start runs. A VM
running under Pacemaker is then told on the node that runs it (hypervisor.live): a new disk
is hot-plugged, a grown disk is resized in QEMU so the guest sees the new size at once. If
that live step fails, the storage change stands and the result says the guest sees it at the
next start. Shrinking is refused (it cuts off data), and so is removing a disk of a VM that
runs or removing its system disk.
"""

from ..ceph import diskimage, groups, images, vmstore
from ..ceph.lease import Lease
from ..core import names, vmschema
from ..core.errors import Conflict, NotFound, RbdvmError, UsageError
from ..core.faults import checkpoint
from ..hypervisor import live
from . import creation, definition, running, snapshots
from .env import Env


def _rbd_name(env: Env, image: str) -> str:
    session = env.session
    t = session.target
    return "/".join(p for p in (t.pool, t.namespace, image) if p)


def _disk_of(rec, disk: str) -> str:
    if disk not in rec.disks:
        raise NotFound(f"VM {rec.name} has no disk {disk}", f"its disks: {', '.join(rec.disks)}",
                       code="DISK_NOT_FOUND", details={"vm": rec.name, "disk": disk})
    return disk


def resize(env: Env, vm: str, disk: str, size: int) -> dict:
    """Grow `disk` of VM `vm` to `size` bytes (equal: nothing to do; smaller: refused)."""
    session = env.session
    names.check_name(vm, "VM name")
    with Lease(session, vm, f"resize {disk}"):
        rec = vmstore.require_complete(session, vm)
        _disk_of(rec, disk)
        before = images.size_of(session, disk)
        if size < before:
            raise Conflict(f"{disk} is {before} bytes: shrinking it to {size} is refused",
                           "it would cut off the end of the disk and the data there",
                           "Give a size at least as large",
                           code="SHRINK_REFUSED", details={"disk": disk, "size": before, "wanted": size})
        if size > before:
            images.grow(session, disk, size)
        checkpoint("disk:resized")
    out = {"name": vm, "disk": disk, "size": size, "before": before, "changed": size != before}
    out.update(_live(env, vm, lambda d: {"guest_device": d.resize(_rbd_name(env, disk), size)}))
    return out


def _live(env: Env, vm: str, act) -> dict:
    """Do `act(domain)` on the node running the VM; what the guest sees, in any case."""
    where = running.running_on(env, vm)
    if where is None:
        return {"live": False, "guest": "sees it at the next start"}
    node, uri = where
    try:
        with env.open_domain(uri, vm) as d:
            out = act(d) or {}
    except RbdvmError as exc:
        return {"live": False, "node": node, "guest": f"sees it at the next start (live change failed: {exc})"}
    return {"live": True, "node": node, "guest": "sees it now", **out}


def add(env: Env, vm: str, *, size: int | None = None, image: str | None = None,
        progress=None) -> dict:
    """A new data disk data_<vm>_<i>: empty of `size` bytes, or imported from file `image`."""
    session = env.session
    names.check_name(vm, "VM name")
    if (size is None) == (image is None):
        raise UsageError("a new disk is either empty of a given size or imported from a file")
    f = diskimage.inspect(image) if image is not None else None
    with Lease(session, vm, "disk add") as lease:
        rec = vmstore.require_complete(session, vm)
        disk = _next_disk(env, rec)
        disks = rec.disks + ([] if disk in rec.disks else [disk])
        data = [d for d in disks if d != names.system_disk(vm)]
        # the new definition first: a VM whose definition cannot be rebuilt gets no disk
        rebuilt = definition.rebuild_definition(env, vm, rec.metadata, disks)
        xml = rebuilt[vmschema.XML]
        fresh = images.ensure_image(session, disk, f.virtual_size if f is not None else int(size or 0))
        vmstore.set_metadata(session, disk, {vmschema.ADDING: vm})
        checkpoint("disk:image")
        if f is not None:
            creation.import_disk(env, vm, disk, f, lease, fresh=fresh, progress=progress)
        groups.ensure_group(session, vm, [disk])
        checkpoint("disk:group")
        lease.check()
        vmstore.set_metadata(session, names.system_disk(vm),
                             {**rebuilt, vmschema.ADDITIONAL_DISKS: str(len(data))})
        vmstore.set_metadata(session, disk, {}, remove=[vmschema.ADDING, vmschema.IMPORTED])
    out = {"name": vm, "disk": disk, "size": images.size_of(session, disk)}
    rbd_name = _rbd_name(env, disk)
    out.update(_live(env, vm, lambda d: d.attach(live.disk_element_xml(xml, rbd_name))))
    return out


def _next_disk(env: Env, rec) -> str:
    """The disk an interrupted `disk add` of this VM left unfinished (already in its group),
    else the first free data_<vm>_<i>. An image of that name that an interrupted `disk add`
    of this VM made is taken again, any other is refused (rbdvm never adopts what it did not
    make)."""
    session = env.session
    for d in rec.disks[1:]:
        if vmstore.read_metadata(session, d).get(vmschema.ADDING) == rec.name:
            return d
    taken = set(rec.disks)
    i = 0
    while names.data_disk(rec.name, i) in taken:
        i += 1
    disk = names.data_disk(rec.name, i)
    if vmstore.image_exists(session, disk):
        if vmstore.read_metadata(session, disk).get(vmschema.ADDING) != rec.name:
            raise Conflict(f"cannot add disk {disk} to VM {rec.name}: an image of that name exists",
                           "it is not one rbdvm was adding to this VM",
                           "Remove or rename that image, then add the disk again",
                           code="IMAGE_TAKEN", details={"vm": rec.name, "image": disk})
    return disk


def remove(env: Env, vm: str, disk: str) -> dict:
    """Remove data disk `disk` of a VM that does not run (its data is lost)."""
    session = env.session
    names.check_name(vm, "VM name")
    with Lease(session, vm, f"remove {disk}"):
        rec = vmstore.require_complete(session, vm)
        _disk_of(rec, disk)
        if disk == names.system_disk(vm):
            raise Conflict(f"{disk} is the system disk of VM {vm}", "a VM without it is no VM",
                           f"Remove the whole VM instead (rbdvm remove {vm})")
        if running.running_on(env, vm) is not None:
            raise Conflict(f"VM {vm} is running", "a disk is removed only from a stopped VM",
                           f"Stop it first (rbdvm stop {vm})", code="VM_RUNNING", details={"vm": vm})
        vmstore.refuse_if_open(session, vm, [disk], "remove a disk of")
        if snapshots.list_snapshots(env, vm):
            raise Conflict(f"VM {vm} has snapshots, which hold {disk} too",
                           "a rollback to them would need the disk", f"Purge them first (rbdvm snapshot purge {vm})")
        clones = images.dependent_clones(session, [disk])
        if clones:
            raise Conflict(f"{disk} has copy-on-write clones", f"{', '.join(clones)} depend on it",
                           "Remove those clones first",
                           code="HAS_CLONES", details={"disk": disk, "clones": list(clones)})
        disks = [d for d in rec.disks if d != disk]
        data = [d for d in disks if d != names.system_disk(vm)]
        rebuilt = definition.rebuild_definition(env, vm, rec.metadata, disks)
        # the definition first: from here the VM no longer uses the disk, even if the
        # delete below is interrupted (run again, it finds the disk gone from the VM)
        vmstore.set_metadata(session, names.system_disk(vm),
                             {**rebuilt, vmschema.ADDITIONAL_DISKS: str(len(data))} if data
                             else rebuilt, remove=[] if data else [vmschema.ADDITIONAL_DISKS])
        checkpoint("disk:unreferenced")
        images.delete_image(session, disk, vm)
    return {"name": vm, "disk": disk, "removed": True}
