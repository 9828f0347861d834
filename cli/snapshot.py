"""rbdvm snapshot create | list | remove | rollback | purge."""


import click

from rbdvm.helpers.ops import lifecycle, snapshots

from .cluster import cluster_line
from .options import ceph_command, ceph_env, emit, in_session, parse_time, table, vm_command


@click.group()
def snapshot():
    """Snapshots of a VM's disks, all disks at one instant.

    A snapshot is an RBD group snapshot: one instant across every disk of the VM, and it
    may be taken while the VM runs. When the VM runs and its definition has a QEMU guest
    agent channel, the agent freezes the guest's filesystems for the snapshot
    (application-consistent); otherwise it is crash-consistent, and says so. Per-disk
    snapshots made by vm_manager, and the snapshot a backup keeps (backup-ID), are listed
    and handled too.
    """


@vm_command("snap", under=snapshot)
def create(name, snap, target, as_json):
    """Snapshot every disk of VM NAME at once as SNAP."""
    emit(as_json, in_session(target, snapshots.create_snapshot, name, snap),
         lambda r: f"snapshot {r['name']} of VM {r['vm']} created at {r['time']} "
                   f"({len(r['disks'])} disks), {r['consistency']['level']}: {r['consistency']['why']}")


@vm_command(under=snapshot, name="list")
def list_(name, target, as_json):
    """List the snapshots of VM NAME, oldest first."""
    emit(as_json, in_session(target, snapshots.list_snapshots, name), lambda r: table(r, [
        ("NAME", "name"), ("TIME", "time"), ("KIND", "kind"),
        ("DISKS", lambda x: ",".join(x["disks"])),
        ("NOTE", lambda x: ("incomplete " if not x["complete"] else "")
         + (f"clones: {','.join(x['clones'])}" if x["clones"] else ""))]) if r else f"VM {name} has no snapshots")


@vm_command("snap", under=snapshot)
def remove(name, snap, target, as_json):
    """Remove snapshot SNAP of VM NAME."""
    emit(as_json, in_session(target, snapshots.remove_snapshot, name, snap),
         lambda r: f"snapshot {r['name']} of VM {r['vm']} removed")


@vm_command("snap", under=snapshot)
def rollback(name, snap, target, as_json):
    """Restore every disk of VM NAME to snapshot SNAP (the snapshot stays).

    An enabled VM is disabled for the rollback and enabled again afterwards (started if it
    was running), also when the rollback fails. Refused while a disk is open outside the
    cluster's control.
    """
    emit(as_json, in_session(target, lifecycle.rollback, name, snap),
         lambda r: [f"VM {r['vm']} rolled back to snapshot {r['name']} "
                   f"({', '.join(r['disks'])})"]
         + ([cluster_line(r["cluster"])] if r.get("cluster") else []))


@snapshot.command()
@click.argument("name")
@click.option("--all", "everything", is_flag=True, help="Remove every snapshot.")
@click.option("--oldest", type=int, metavar="N", help="Remove the N oldest snapshots.")
@click.option("--before", metavar="DATE", help="Remove snapshots older than DATE (ISO 8601; UTC if no offset).")
@ceph_command
def purge(name, everything, oldest, before, target, as_json):
    """Remove many snapshots of VM NAME at once.

    A snapshot that copy-on-write clones still depend on is kept and reported. Not
    transactional: if interrupted, run it again.
    """
    with ceph_env(target) as s:
        result = snapshots.purge(s, name, everything=everything, oldest=oldest, before=parse_time(before, "--before"))

    def text(r):
        lines = [f"removed {len(r['removed'])} snapshot(s) of VM {r['vm']}"
                 + (f": {', '.join(r['removed'])}" if r["removed"] else "")]
        lines += [f"kept {k['name']}: {k['reason']}" for k in r["kept"]]
        return lines
    emit(as_json, result, text)
