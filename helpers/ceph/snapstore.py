"""A VM's snapshots as RBD holds them: group snapshots (one atomic snapshot of every disk)
and vm_manager's per-disk snapshots, read into one listing, and the librbd steps that make,
remove and roll back to them. The decisions (what may be removed, rolled back to) are the
operations'."""

from datetime import datetime, timezone

import rbd

from ..core import names, vmschema
from . import vmstore
from .session import Session, ceph_errors

GROUP, PER_DISK = "group", "per-disk"


def parse_time(text):
    """A stored snapshot time (ISO 8601; UTC if it has no offset), None if unreadable."""
    try:
        t = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def snapshots(session: Session, rec) -> dict:
    """{name: {"kind", "time", "disks", "complete", "children"(, "missing")}} of a VM (a
    vmstore record), oldest first."""
    system = names.system_disk(rec.name)
    out = {}
    group_times = {}
    with ceph_errors(f"listing the snapshots of VM {rec.name}", session.target):
        if rec.in_group:
            for s in session.rbd.Group(session.ioctx, rec.name).list_snaps():
                out[s["name"]] = {"kind": GROUP, "disks": list(rec.disks), "children": [],
                                  "complete": s["state"] == rbd.RBD_GROUP_SNAP_STATE_COMPLETE,
                                  "time": parse_time(rec.metadata.get(vmschema.SNAPSHOT_TIME_PREFIX + s["name"]))}
        for disk in rec.disks:
            with session.rbd.Image(session.ioctx, disk, read_only=True) as img:
                for s in img.list_snaps():
                    ns = s.get("namespace", rbd.RBD_SNAP_NAMESPACE_TYPE_USER)
                    if ns == rbd.RBD_SNAP_NAMESPACE_TYPE_GROUP and disk == system:
                        g = img.snap_get_group_namespace(s["id"])
                        group_times[g.get("group_snap_name")] = img.get_snap_timestamp(s["id"])
                    if ns != rbd.RBD_SNAP_NAMESPACE_TYPE_USER or s["name"].startswith(names.INTERNAL_SNAP_PREFIX):
                        continue
                    entry = out.setdefault(s["name"], {"kind": PER_DISK, "disks": [], "children": [],
                                                       "complete": True, "time": None})
                    if entry["kind"] != PER_DISK:
                        continue
                    entry["disks"].append(disk)
                    if entry["time"] is None:
                        entry["time"] = img.get_snap_timestamp(s["id"]).replace(tzinfo=timezone.utc)
                    if img.is_protected_snap(s["name"]):
                        with session.rbd.Image(session.ioctx, disk, snapshot=s["name"], read_only=True) as at:
                            entry["children"] += [c["image"] for c in at.list_children2()]
    for name, entry in out.items():
        if entry["kind"] == PER_DISK:
            # a per-disk snapshot restores the VM only if every disk has it
            entry["missing"] = [d for d in rec.disks if d not in entry["disks"]]
            entry["complete"] = not entry["missing"]
        if entry["time"] is None and name in group_times:
            # the group snapshot's creation time was not recorded (interrupted): the time
            # librbd gave the system disk's member snapshot is the same instant
            entry["time"] = group_times[name].replace(tzinfo=timezone.utc)
    far_past = datetime.min.replace(tzinfo=timezone.utc)
    return dict(sorted(out.items(), key=lambda kv: (kv[1]["time"] or far_past, kv[0])))


def create_group_snapshot(session: Session, vm: str, snap: str) -> None:
    with ceph_errors(f"creating snapshot {snap} of VM {vm}", session.target):
        session.rbd.Group(session.ioctx, vm).create_snap(snap)


def remove_snapshot(session: Session, vm: str, snap: str, entry: dict) -> None:
    """Snapshot `snap` of VM `vm` as snapshots() listed it (`entry`), group or per disk."""
    with ceph_errors(f"removing snapshot {snap} of VM {vm}", session.target):
        if entry["kind"] == GROUP:
            session.rbd.Group(session.ioctx, vm).remove_snap(snap)
        else:
            for disk in entry["disks"]:
                with session.rbd.Image(session.ioctx, disk) as img:
                    vmstore.remove_snapshot(img, snap)


def rollback_group(session: Session, vm: str, snap: str) -> None:
    with ceph_errors(f"rolling VM {vm} back to snapshot {snap}", session.target):
        session.rbd.Group(session.ioctx, vm).rollback_to_snap(snap)


def rollback_disk(session: Session, vm: str, disk: str, snap: str) -> None:
    with ceph_errors(f"rolling {disk} of VM {vm} back to snapshot {snap}", session.target):
        with session.rbd.Image(session.ioctx, disk) as img:
            img.rollback_to_snap(snap)
