"""rbdvm backup NAME --to DIR | backup list | verify | prune, and rbdvm restore."""

import sys

import click

from rbdvm.helpers.core import backupset
from rbdvm.helpers.ops import backup as backups
from rbdvm.helpers.ops import restore as restoring

from .options import (
    Progress,
    ceph_command,
    ceph_env,
    cluster_env,
    emit,
    human_bytes,
    in_session,
    json_option,
    parse_time,
    table,
)
from .vms import disabled_option, report_made


class _Group(click.Group):
    """`rbdvm backup NAME --to DIR` is `rbdvm backup create NAME --to DIR` (a VM named like
    a subcommand: say `create`)."""

    def resolve_command(self, ctx, args):
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["create", *args]
        return super().resolve_command(ctx, args)


@click.group(cls=_Group)
def backup():
    """Back VMs up off the cluster, into a directory; list, verify and prune backups.

    \b
    rbdvm backup NAME --to DIR     back VM NAME up (incremental when DIR holds its chain)
    rbdvm backup list DIR [NAME]   the backups in DIR, each checked
    rbdvm backup verify DIR        every file read again against its checksum
    rbdvm backup prune DIR --keep N
    rbdvm restore DIR NAME         rebuild a VM from DIR

    DIR/NAME/ID/ holds one backup: one RBD diff stream per disk (the format of `rbd
    export-diff`, so `rbd import-diff` applies it by hand too) and a manifest signed by the
    cluster. See docs/backup.md.
    """


@backup.command()
@click.argument("name")
@click.option("--to", "directory", required=True, metavar="DIR",
              help="The backup directory (made if missing); the VM's backups go to DIR/NAME/.")
@click.option("--full", is_flag=True, help="A full backup even when DIR holds a chain to continue.")
@ceph_command
def create(name, directory, full, target, as_json):
    """Back VM NAME up into DIR, while it runs.

    Every disk and the UEFI variable store are snapshotted at one instant (the guest's
    filesystems frozen first when it has a QEMU guest agent: application-consistent; else
    crash-consistent, and said so). Only allocated data is exported. Incremental by default
    when DIR holds a whole chain of the VM whose snapshot the VM still has: that snapshot
    (backup-ID in `rbdvm snapshot list`) is kept until the next backup replaces it.
    Interrupted, run it again: the partial backup is removed and a new one taken.
    """
    bar = Progress(not as_json, "exporting")
    try:
        result = in_session(target, backups.backup, name, directory, full=full,
                            progress=lambda image, done, total: bar(image, done / total if total else 1.0))
    finally:
        bar.close()
    emit(as_json, result, lambda r: [
        f"{r['kind']} backup {r['id']} of VM {r['vm']}: {human_bytes(r['bytes'])} in {r['path']} "
        f"({r['seconds']:.1f} s)" + (f", parent {r['parent']}" if r["parent"] else f" ({r['why_full']})"),
        f"{r['consistency']['level']}: {r['consistency']['why']}"
        + (f"; guest paused {r['consistency']['paused_ms']} ms" if r["consistency"].get("paused_ms") is not None
           else "")]
        + ([f"released snapshot(s) {', '.join(r['released'])}"] if r["released"] else []))


def _rows(rows) -> list:
    return table(rows, [("VM", "vm"), ("ID", "id"), ("KIND", "kind"), ("PARENT", "parent"),
                        ("CONSISTENCY", "consistency"), ("SIZE", lambda r: human_bytes(r["bytes"]) if "bytes" in r
                                                         else "-"),
                        ("SIGNED", "signed"), ("STATE", lambda r: "ok" if r["ok"] else f"BROKEN: {r['problem']}")])


@backup.command(name="list")
@click.argument("directory", metavar="DIR")
@click.argument("name", required=False)
@json_option
def list_(directory, name, as_json):
    """The backups in DIR (of VM NAME), oldest first, each checked: manifest readable and
    signed, files present at their sizes, chain unbroken. Interrupted backups are never
    listed as restore points."""
    result = backups.list_backups(cluster_env(), directory, name)

    def text(r):
        lines = _rows(r["backups"]) if r["backups"] else [f"no backups in {r['directory']}"]
        lines += [f"{vm}: interrupted backup(s) {', '.join(ids)} (removed by its next backup)"
                  for vm, ids in r["interrupted"].items()]
        return lines
    emit(as_json, result, text)


@backup.command()
@click.argument("directory", metavar="DIR")
@click.argument("name", required=False)
@json_option
def verify(directory, name, as_json):
    """Read every file in DIR (of VM NAME) again and compare it with its SHA-256; exits
    non-zero naming what is damaged."""
    result = backups.verify(cluster_env(), directory, name)
    emit(as_json, result, lambda r: _rows(r["backups"]) + [
        "all backups are whole" if r["ok"] else "SOME BACKUPS ARE DAMAGED"])
    if not result["ok"]:
        sys.exit(1)


@backup.command()
@click.argument("directory", metavar="DIR")
@click.argument("name", required=False)
@click.option("--keep", type=int, required=True, metavar="N",
              help="Restore points to keep per VM (the newest N, with every backup they need).")
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
@json_option
def prune(directory, name, keep, dry_run, as_json):
    """Remove old backups from DIR, keeping the newest N restore points per VM (by the time
    their signed manifests give) and every backup their chains need. Only backups this
    cluster signed count or are removed: anything else in DIR (another cluster's, forged,
    unreadable, or a chain with a file missing) is left for you to look at, and so is every
    backup it names as a parent. Run as root on a cluster node (it needs the signing key)."""
    result = backups.prune(cluster_env(), directory, keep, name, dry_run=dry_run)
    emit(as_json, result, lambda r: [f"{'would remove' if r['dry_run'] else 'removed'} {len(r['removed'])} "
                                     f"backup(s)" + (f": {', '.join(r['removed'])}" if r["removed"] else ""),
                                     f"kept {len(r['kept'])}"] +
         ([f"left alone {len(r['left'])} (not signed by this cluster, or in doubt): {', '.join(r['left'])}"]
          if r["left"] else []))


def _point(value):
    """--at: a backup id as it is, else a time."""
    return value if value is None or backupset.is_id(value) else parse_time(value, "--at")


@click.command()
@click.argument("directory", metavar="DIR")
@click.argument("name")
@click.option("--as", "as_name", metavar="NEW", help="Restore as a new VM NEW, with a new UUID and MACs.")
@click.option("--at", "at", metavar="ID|TIME",
              help="The restore point: a backup id, or a time (the newest backup taken then or before) "
                   "[default: the newest].")
@click.option("--force", is_flag=True,
              help="Replace VM NAME if it still exists (it must be disabled; its disks and snapshots are deleted).")
@click.option("--accept-foreign", is_flag=True,
              help="Restore a backup this cluster did not sign (another cluster's, or from before a key change).")
@disabled_option
@ceph_command
def restore(directory, name, as_name, at, force, accept_foreign, disabled, target, as_json):
    """Rebuild VM NAME from the backups in DIR, then enable and start it (unless --disabled).

    The full backup and the incrementals up to the restore point are applied to new images
    in the pool and namespace given (another cluster too). Everything is checked first
    (chain, signatures, every file's checksum): nothing is written for a broken backup.
    Under its own name the VM keeps its UUID and MACs, and is refused while it exists
    (unless --force on a disabled VM); --as NEW makes a new VM beside it. Interrupted, run
    the same command again.
    """
    bar, done = Progress(not as_json, ""), {}

    def progress(what, n, total):
        done[what] = done.get(what, 0) + n      # bytes of this file or disk so far
        bar(what, done[what] / total if total else 1.0)
    with ceph_env(target) as env:
        try:
            result = restoring.restore(env, directory, name, as_name=as_name, at=_point(at), force=force,
                                       accept_foreign=accept_foreign, progress=progress)
        finally:
            bar.close()
        report_made(as_json, env, result, disabled, "restored",
                    lambda r: f"VM {r['name']} restored from backup {r['backup']} of VM {r['vm']} "
                              f"({len(r['chain'])} backup(s): {', '.join(r['chain'])}), UUID {r['uuid']}")
